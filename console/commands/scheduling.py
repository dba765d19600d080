"""`schedule`: preview where a workload's replicas would go, explained as kube-scheduler does."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backends.base import BackendUnavailable
from console.commands.spec_commands import print_findings
from rtm.documents import Document, load_file
from rtm.scheduling import ALGORITHMS, render_text, schedule
from rtm.scheduling.from_spec import nodes_from_inventory, requirements

EXAMPLES = """\
  rtm-console schedule --policy sample-specs/scheduling-policy.yaml --nodes sample-specs/nodes.yaml --replicas 5
  rtm-console schedule --policy sample-specs/workload-web.yaml --nodes sample-specs/nodes.yaml --algorithm ip_hash --client 10.0.0.1 --client 10.0.0.2 --json
  rtm-console schedule --policy sample-specs/workload-web.yaml          # onto the live nodes
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="preview replica placement with a scheduling policy",
        description="Place replicas with resource accounting and node affinity using round_robin, least_connections, "
        "weighted_round_robin or ip_hash (consistent hashing of --client keys). Contacts only the live nodes, and only without --nodes.",
        epilog="examples:\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--policy", type=Path, required=True, metavar="FILE", help="a SchedulingPolicy, or a workload that has one")
    parser.add_argument("--nodes", type=Path, metavar="FILE", help="a Nodes inventory (default: the live nodes)")
    parser.add_argument("--replicas", type=int, metavar="N", help="default: the policy's scaling.min_replicas (ip_hash: the number of --client keys)")
    parser.add_argument("--algorithm", choices=ALGORITHMS, help="default: the policy's first algorithm")
    parser.add_argument("--client", action="append", default=[], metavar="KEY", help="ip_hash: the client key of replica i (repeatable)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_schedule)


def _load(path: Path) -> list[Document]:
    result = load_file(path)
    if not result.ok:
        print_findings(list(result.findings))
        raise ValueError(f"{path} has errors")
    return list(result.documents)


def run_schedule(args: argparse.Namespace) -> int:
    try:
        documents = _load(args.policy)
        document = next((d for d in documents if d.get("SchedulingPolicy") is not None), None)
        if document is None:
            raise ValueError(f"{args.policy} has no SchedulingPolicy")
        if args.nodes:
            inventory = next((d.nodes for d in _load(args.nodes) if d.nodes is not None), None)
            if inventory is None:
                raise ValueError(f"{args.nodes} has no Nodes inventory")
            nodes = nodes_from_inventory(inventory)
        else:
            nodes = _live_nodes(args)
    except OSError as exc:
        print(f"rtm-console schedule: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, BackendUnavailable) as exc:
        print(f"rtm-console schedule: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, BackendUnavailable) else 1
    policy = document.get("SchedulingPolicy")
    algorithm = args.algorithm or policy.default_algorithm
    replicas = args.replicas
    if replicas is None:
        replicas = len(args.client) if algorithm == "ip_hash" else policy.scaling.min_replicas
    if algorithm == "ip_hash" and len(args.client) < replicas:
        print(f"rtm-console schedule: ip_hash needs a --client key per replica ({replicas} replicas, {len(args.client)} keys)", file=sys.stderr)
        return 2
    result = schedule(nodes, requirements(document), replicas, algorithm, args.client)
    print(json.dumps(result.to_json(), indent=2) if args.json else render_text(result))
    return 0


def _live_nodes(args: argparse.Namespace) -> list:
    from console.context import open_context
    from console.placement import live_nodes

    ctx = open_context(args, "interactive")
    try:
        return live_nodes(ctx.backends())
    finally:
        ctx.close()
