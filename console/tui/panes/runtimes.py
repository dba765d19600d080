"""The Containers, VMs and Functions panes: one table each, over every backend of the kind."""

from __future__ import annotations

from console.tui.panes.resource import ResourcePane


class ContainersPane(ResourcePane):
    kind = "containers"


class VmsPane(ResourcePane):
    kind = "vms"


class FunctionsPane(ResourcePane):
    kind = "functions"
