"""The control loops that keep container workloads healthy and sized: probes, failover,
load-balancer membership and autoscaling. The agent runs them; an interactive console runs
them itself only when no agent holds the lock. Never imports textual.

- engines.py      the Docker engines as the loops use them (ping, exec, restart, limits, usage);
                  replicas are added and removed by backends/docker/replica_service.py
- supervised.py   what the loops need from a workload's specs
- probe_runner.py one probe against one replica (command, HTTP, TCP), bounded by its timeout
- workload_supervisor.py per workload: probes, detection, restarts, replacement, rescheduling
- membership.py   ready replicas -> nginx upstream file (+ reload)
- swarm_watch.py  what Swarm does for workloads that are services, as events; their upstream members
- task_readiness.py the readiness probe of a service's tasks, for its upstream members
- gated_actions.py the changes the loops make, declared with the action gate
- reconcile.py    every applied workload kept at its desired count (missing replaced, surplus removed)
- autoscaler.py   horizontal and vertical scaling from live usage
- swarm_autoscaling.py the same for a workload that is a Swarm service (its replica count, a rolling update)
- loops.py        the threads that run all of it
- embedded.py     the loops inside an interactive console, when no agent holds the lock
- live.py         one-off decisions for `rtm-console scale --workload`
"""

from typing import TYPE_CHECKING

from backends.lazy import on_first_use

if TYPE_CHECKING:
    from console.supervisor.loops import Supervisor

# Imported on first use: the console declares the loops' gated actions (gated_actions.py) at
# start, and the loops with the Docker backend they drive start after its first frame.
__all__ = ["Supervisor"]
__getattr__ = on_first_use(__name__, {"Supervisor": "loops"})
