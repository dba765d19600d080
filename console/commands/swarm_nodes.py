"""Swarm nodes in `get nodes`, and cordon / uncordon / drain of a swarm node (its availability
set through the cluster's manager: pause, active, drain). docs/swarm.md."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from backends.base import BackendUnavailable
from console.context import AppContext
from console.gate import register_action
from console.tables import format_table, human_bytes

register_action("node.drain", destructive=True, description="move a Swarm node's tasks away and place nothing new there")

SWARM_TABLE = (
    ("id", lambda n: n.id), ("cluster", lambda n: n.cluster), ("role", lambda n: n.role + (" (leader)" if n.leader else "")),
    ("availability", lambda n: n.availability), ("state", lambda n: n.state), ("engine", lambda n: n.engine_version),
    ("cpus", lambda n: f"{n.cpu_count:g}"), ("memory", lambda n: human_bytes(n.memory_bytes)),
    ("labels", lambda n: ",".join(f"{k}={v}" for k, v in sorted(n.labels.items()) if not k.startswith("rtm.affinity.")) or "-"),
    ("tasks", lambda n: len(n.tasks)),
)


def clusters(ctx: AppContext) -> list[Any]:
    """The Swarm clusters among the configured Docker engines (none without Docker)."""
    handler = ctx.handlers().get("container")
    target = getattr(handler, "swarm", None)
    return target.clusters() if target is not None else []


def engine_roles(ctx: AppContext) -> dict[str, str]:
    """Each answering engine's place in a swarm: manager, worker or none."""
    handler = ctx.handlers().get("container")
    target = getattr(handler, "swarm", None)
    if target is None:
        return {}
    target.clusters()
    return {name: role.role for name, role in target.roles.items()}


def swarm_nodes(ctx: AppContext) -> list[Any]:
    nodes = []
    for cluster in clusters(ctx):
        try:
            nodes.extend(cluster.nodes())
        except BackendUnavailable as error:
            print(f"rtm-console: left out: {error.availability.describe()}", file=sys.stderr)
        except ValueError as error:  # the engine refused (DockerRequestError), e.g. no longer a manager
            print(f"rtm-console: left out: the swarm of {cluster.name}: {error}", file=sys.stderr)
    return nodes


def swarm_summary(ctx: AppContext, nodes: list[Any]) -> str:
    """The text `get nodes` prints after the host when an engine is in a swarm: which engines
    are clusters, and the swarm's nodes."""
    roles = engine_roles(ctx)
    if all(role == "none" for role in roles.values()):
        return ""  # no swarm: `get nodes` is this machine alone, as before
    lines = [f"{engine}: {'Swarm ' + role + (' (a cluster)' if role == 'manager' else '') if role != 'none' else 'standalone engine'}"
             for engine, role in sorted(roles.items())]
    if nodes:
        lines += ["", format_table([title for title, _ in SWARM_TABLE], [[str(cell(n)) for _, cell in SWARM_TABLE] for n in nodes])]
    return "\n".join(lines)


def cluster_of_node(ctx: AppContext, name: str) -> Any | None:
    """The cluster that has a node with this hostname (one whose manager does not answer has none)."""
    for cluster in clusters(ctx):
        try:
            if cluster.node(name) is not None:
                return cluster
        except (BackendUnavailable, ValueError):  # unreachable, or refused (DockerRequestError)
            continue
    return None


def set_swarm_availability(ctx: AppContext, cluster: Any, command: str, name: str) -> int:
    """cordon (pause), uncordon (active) or drain one swarm node, through the gate."""
    from backends.docker.swarm.cluster import AVAILABILITY_OF

    availability = AVAILABILITY_OF[command]
    result = ctx.gate.run(f"node.{command}", f"node/{name}", {"cluster": getattr(cluster, "name", None), "availability": availability},
                          lambda: cluster.set_availability(name, availability), destructive=command == "drain")
    if not result.ok:
        print(f"rtm-console: {result.message}", file=sys.stderr)
        return 1
    done = {"cordon": "cordoned", "uncordon": "uncordoned", "drain": "drained"}[command]
    print(f"node/{name} {done} (Swarm availability {availability})" + ("" if result.value else " (already)"))
    return 0


def run_drain(args: argparse.Namespace, ctx: AppContext, name: str) -> int:
    if ctx.gate.read_only:  # refused (and audited) before any engine is asked
        return set_swarm_availability(ctx, None, "drain", name)
    cluster = cluster_of_node(ctx, name)
    if cluster is None:
        known = [n.id for n in swarm_nodes(ctx)]
        where = f"; the swarm nodes are: {', '.join(known)}" if known else "; no configured Docker engine is a Swarm manager"
        print(f"rtm-console: node {name} is not in a swarm: drain moves Swarm tasks{where} (hint: cordon {name} stops new placements)",
              file=sys.stderr)
        return 1
    return set_swarm_availability(ctx, cluster, "drain", name)
