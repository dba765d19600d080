"""`agent`: the headless agent (exporter plus control loops); see console/agent.py."""

from __future__ import annotations

import argparse

EXAMPLES = """\
  rtm-console agent                                 supervise the workloads of specs_dir, serve on exporter.listen
  rtm-console agent --specs ./specs --listen 127.0.0.1:9465
  curl -s http://127.0.0.1:9465/agent/state         the loops, their last decisions and recent events
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    agent = subparsers.add_parser(
        "agent",
        help="run the control loops (probes, failover, autoscaling) and the exporter, headless",
        description="Supervise the container workloads of the specs folder: probes, restarts, replacement, rescheduling "
        "when an engine is lost, the nginx upstream of ready replicas, and autoscaling; serve metrics and the agent's "
        "state. One agent per data folder. Logs JSON lines to stderr; stops on SIGTERM or SIGINT, leaving workloads running.",
        epilog="examples:\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    agent.add_argument("--specs", metavar="DIR", help="spec folder to supervise (default: specs_dir); reloaded on change")
    agent.add_argument("--listen", metavar="ADDR:PORT", help="address for metrics and /agent/state (default: exporter.listen)")
    agent.add_argument("--web-config", metavar="FILE", help="node_exporter-style web config: TLS, client certificates, basic auth")
    agent.add_argument("--autoscale-interval", type=float, metavar="SECONDS", help="seconds between autoscaling evaluations (default: 15)")
    agent.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from console.agent import run_agent

    return run_agent(args)
