"""`scale --workload NAME --replicas N` for a workload that is a Swarm service: its replica count
is set on the service's stored spec (with its version index), so running tasks are kept and the
service's spec is the desired count (docs/swarm.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

from backends.base import BackendUnavailable
from console.supervisor.live import many_replicas, scale_question, scale_step
from console.supervisor.swarm_autoscaling import execute_service_scale


def scale_service(ctx: Any, workload: str, replicas: int, as_json: bool, dry_run: bool = False) -> int | None:
    """0 or 1 when `workload` is a Swarm service; None when it is not one (the standalone path).
    `dry_run`: the plan line only."""
    handler = ctx.handlers().get("container")
    target = getattr(handler, "swarm", None)
    try:
        services = target.holding(workload) if target is not None else None
    except BackendUnavailable:
        return None
    if services is None:
        return None
    current = int(services.find(workload)["Spec"]["Mode"]["Replicated"]["Replicas"])
    if dry_run:
        step = scale_step(workload, current, replicas, services.cluster.name)
        print(json.dumps({"workload": workload, "service": True, "from": current, "to": replicas, "plan": [step]}) if as_json else f"plan: {step}")
        return 0
    many = many_replicas(current, replicas)
    counts, message = execute_service_scale(workload, services, ctx.gate, ctx.events, current, replicas, "set by hand",
                                            scale_question(workload, current, replicas))
    if counts is None:
        print(f"rtm-console scale: {message}" + (f" (it {many})" if many else ""), file=sys.stderr)
        return 1
    before, after = counts
    if as_json:
        print(json.dumps({"workload": workload, "service": True, "from": before, "to": after}))
    else:
        print(f"{workload}: service/{workload} on {services.cluster.name}: {before} -> {after} replicas (running tasks kept)")
    return 0
