"""The changes the control loops make, declared with the action gate.

In agent mode the gate runs them without a question and audits each one; in kiosk mode it
refuses them, so a read-only console never restarts, replaces or scales anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from console.eventlog import EventLog
from console.gate import ActionGate, ActionSpec, register_action

T = TypeVar("T")

RESTART = register_action("replica.restart", description="restart a replica whose liveness failed")
REPLACE = register_action("replica.replace", destructive=True, description="remove a replica that kept failing and start a new one")
RESCHEDULE = register_action("replica.reschedule", description="start a lost engine's replica on another engine")
REMOVE_STALE = register_action("replica.remove_stale", destructive=True, description="remove a replica that was replaced while its engine was lost")
SCALE = register_action("workload.scale", description="set a workload's replica count (replicas placed by the scheduler)")
RESIZE = register_action("workload.resize", description="change a workload's cpu and memory limits in place")
WRITE_UPSTREAM = register_action("load_balancer.write_upstream", description="write the nginx upstream file of ready replicas and reload")
CREATE_MISSING = register_action("replica.create_missing", description="start replicas a workload is missing to keep its desired count")
REMOVE_SURPLUS = register_action("replica.remove_surplus", destructive=True, description="remove replicas beyond a workload's desired count")


def run_workload_change(gate: ActionGate, events: EventLog, action: ActionSpec, workload: str, params: Mapping[str, Any],
                        change: Callable[[], T], outcome: Callable[[T], tuple[str, dict[str, Any]]], *, destructive: bool,
                        question: str | None = None) -> tuple[T | None, str]:
    """`change` of workload/NAME through the gate; the event log then gets one `scale` event,
    `outcome(value)` -> (message, details), or `scale_failed` with the gate's message when it
    did not happen. (value, the gate's message), value None when it did not happen."""
    target = f"workload/{workload}"
    result = gate.run(action.name, target, params, change, destructive=destructive, records_event=True, question=question)
    if not result.ok:
        events.record("scale_failed", result.message, workload=workload, target=target)
        return None, result.message
    message, details = outcome(result.value)  # type: ignore[arg-type]
    events.record("scale", message, workload=workload, target=target, details=details)
    return result.value, result.message
