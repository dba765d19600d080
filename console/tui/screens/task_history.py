"""What Enter shows first on a Swarm task's row of the Containers pane: every task Swarm still
keeps for that slot, newest first, with its node, desired and current state, timestamps, exit
code and Swarm's message or error text (`task: non-zero exit (3)`). The details screen reads it
from the cluster's manager engine in a thread worker (console/tui/screens/details.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

LABEL_TASK = "rtm.swarm.task"  # as backends/docker/swarm/tasks.py labels a task's row
LABEL_CLUSTER = "rtm.swarm.cluster"
COLUMNS = ("TASK", "NODE", "DESIRED", "STATE", "CREATED", "STATE SINCE", "EXIT", "ERROR / MESSAGE")


def task_history_tab(record: Any, backends: Mapping[str, Any]) -> Callable[[], str] | None:
    """The history's reader for a Swarm task's row (None for any other row)."""
    labels = getattr(record, "labels", None) or {}
    if LABEL_TASK not in labels:
        return None
    manager = backends.get(labels.get(LABEL_CLUSTER, ""))
    service, slot = labels.get("rtm.swarm.service", record.workload), record.replica

    def read() -> str:
        from backends.docker.swarm.tasks import engine_missing, slot_history

        if manager is None:
            return f"the cluster's manager engine {labels.get(LABEL_CLUSTER, '')} is not configured: its task history cannot be read"
        missing = engine_missing(record)
        return history_text(f"{service}.{slot}", slot_history(manager, service, slot), missing)

    return read


def history_text(name: str, tasks: list[Any], missing: str = "") -> str:
    """The slot's tasks as aligned columns, newest first, under one line naming the slot."""
    heading = f"{name}: {len(tasks)} task{'s' if len(tasks) != 1 else ''} Swarm keeps for this slot, newest first"
    rows = [COLUMNS, *((t.id[:12], t.node, t.desired_state, t.state, _instant(t.created_at), _instant(t.state_since),
                        "" if t.exit_code is None else str(t.exit_code), t.error or t.message) for t in tasks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in rows]
    return "\n".join([heading, *([missing] if missing else []), "", *lines])


def _instant(stamp: str) -> str:
    """Swarm's RFC 3339 time (nanoseconds, UTC) to the second: 2026-12-04 18:15:50Z."""
    return f"{stamp[:10]} {stamp[11:19]}Z" if len(stamp) >= 19 else stamp
