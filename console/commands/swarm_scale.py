"""`scale --workload NAME --replicas N` for a workload that is a Swarm service: its replica count
is set on the service's stored spec (with its version index), so running tasks are kept and the
service's spec is the desired count (docs/swarm.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

from backends.base import BackendUnavailable
from console.supervisor.gated_actions import SCALE


def scale_service(ctx: Any, workload: str, replicas: int, as_json: bool) -> int | None:
    """0 or 1 when `workload` is a Swarm service; None when it is not one (the standalone path)."""
    handler = ctx.handlers().get("container")
    target = getattr(handler, "swarm", None)
    try:
        services = target.holding(workload) if target is not None else None
    except BackendUnavailable:
        return None
    if services is None:
        return None
    current = int(services.find(workload)["Spec"]["Mode"]["Replicated"]["Replicas"])
    result = ctx.gate.run(SCALE.name, f"workload/{workload}", {"from": current, "to": replicas, "reason": "set by hand", "service": True},
                          lambda: services.scale(workload, replicas), destructive=replicas < current,
                          records_event=True)
    if not result.ok:
        ctx.events.record("scale_failed", result.message, workload=workload, target=f"workload/{workload}")
        print(f"rtm-console scale: {result.message}", file=sys.stderr)
        return 1
    before, after = result.value
    ctx.events.record("scale", f"{before} -> {after} replicas (Swarm service; running tasks kept): set by hand",
                      workload=workload, target=f"workload/{workload}", details={"from": before, "to": after})
    if as_json:
        print(json.dumps({"workload": workload, "service": True, "from": before, "to": after}))
    else:
        print(f"{workload}: service/{workload} on {services.cluster.name}: {before} -> {after} replicas (running tasks kept)")
    return 0
