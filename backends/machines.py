"""Nodes are machines: the one rule that turns what a runtime reports into a node id.

A node is a machine, identified by the hostname its runtimes report (`docker info`'s Name for
a Docker engine, `getHostname()` for a libvirt host, this machine's for the host backend).
Cordons are kept by that id, and every backend is handed the same question, `cordoned(node
id)`, so cordoning a machine keeps each runtime it carries out of placement.
"""

from __future__ import annotations

from collections.abc import Callable

Cordoned = Callable[[str], bool]


def never_cordoned(node_id: str) -> bool:
    return False


def machine_id(reported_hostname: str | None, runtime_name: str) -> str:
    """The node id of the machine that carries a runtime: the hostname the runtime reports,
    else (a runtime that reports none) the runtime's configured name."""
    return reported_hostname or runtime_name
