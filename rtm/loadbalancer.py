"""Render a workload's ready replicas as an nginx `upstream` block.

round_robin -> nginx's default; least_connections -> `least_conn`; weighted_round_robin ->
`weight=` on each server; ip_hash -> `hash $remote_addr consistent` (ketama, like rtm's own
ip_hash: removing a server moves only the clients it had).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIRECTIVES = {
    "round_robin": None,
    "least_connections": "least_conn;",
    "weighted_round_robin": None,
    "ip_hash": "hash $remote_addr consistent;",
}


@dataclass(frozen=True)
class Member:
    address: str  # host:port
    weight: int = 1


def upstream_name(workload: str) -> str:
    return "rtm_" + re.sub(r"[^A-Za-z0-9_]", "_", workload)


def render_upstream(workload: str, algorithm: str, members: list[Member]) -> str:
    if algorithm not in DIRECTIVES:
        raise ValueError(f"unknown load-balancing algorithm {algorithm!r}")
    lines = [f"# rtm-console: ready replicas of workload {workload} ({algorithm})", f"upstream {upstream_name(workload)} {{"]
    directive = DIRECTIVES[algorithm]
    if directive:
        lines.append(f"    {directive}")
    for member in sorted(members, key=lambda m: m.address):
        weight = f" weight={member.weight}" if algorithm == "weighted_round_robin" else ""
        lines.append(f"    server {member.address}{weight};")
    if not members:
        # nginx refuses an empty upstream; a server that is always down keeps the file valid
        lines.append("    server 127.0.0.1:9 down;  # no ready replica")
    lines.append("}")
    return "\n".join(lines) + "\n"
