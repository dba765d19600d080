"""The control loops that keep container workloads healthy and sized: probes, failover,
load-balancer membership and autoscaling. The agent runs them; an interactive console runs
them itself only when no agent holds the lock. Never imports textual.

- engines.py      the Docker engines as the loops use them (replicas, exec, restart, create)
- workloads.py    what the loops need from a workload's specs
- probe_runner.py one probe against one replica (command, HTTP, TCP), bounded by its timeout
- failover.py     per workload: probes, detection, restarts, replacement, rescheduling
- membership.py   ready replicas -> nginx upstream file (+ reload)
- placement.py    adding and removing replicas through the scheduler
- autoscaler.py   horizontal and vertical scaling from live usage
- runtime.py      the threads that run all of it
- embedded.py     the loops inside an interactive console, when no agent holds the lock
- live.py         one-off decisions for `rtm-console scale --workload`
"""

from console.supervisor.runtime import Supervisor

__all__ = ["Supervisor"]
