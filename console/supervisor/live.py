"""One-off scaling of a running workload, for `rtm-console scale --workload NAME`.

The same decision the agent's autoscaler makes (same measurements, same history file in the
data folder), made once: shown, and executed with `--apply`; `--replicas N` sets the count by
hand. Usage is read twice, a second apart, so the CPU figure covers a real interval.

For a workload that is a Docker Swarm service the measure is over its running tasks, the
decision sets the service's replica count (running tasks kept) and `--vertical` is one
rolling update of the service, which the plan line and the question name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.context import AppContext, supervisor_engines
from console.supervisor.autoscaler import LiveUsage, execute_scale, history_path, load_history, measure, resize, update_history
from backends.docker.desired import DesiredStore
from backends.docker.swarm.task_stats import TaskStats
from console.supervisor.engines import Engine, replica_service
from console.supervisor.supervised import load_workloads
from console.supervisor.swarm_autoscaling import ServiceFinder, execute_service_scale, rolling_update_note
from rtm.autoscaling import Decision, History, HistoryFormatError, VerticalRecommendation, decide, recommend_vertical
from rtm.documents import ASK_BEFORE_CREATING_ABOVE

SAMPLE_GAP_SECONDS = 1.0


class LiveScaleError(Exception):
    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class LiveScaleReport:
    workload: str
    replicas: int
    metrics: dict[str, float]
    decision: Decision | None = None
    vertical: VerticalRecommendation | None = None
    plan: list[str] = field(default_factory=list)  # what --apply changes besides the count (the vertical step)
    applied: list[str] = field(default_factory=list)  # what was done
    refused: list[str] = field(default_factory=list)  # what the gate or the engine refused

    @property
    def ok(self) -> bool:
        return not self.refused

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = self.decision.to_json() if self.decision else {"current_replicas": self.replicas}
        data.update({
            "workload": self.workload,
            "metrics": {k: round(v, 2) for k, v in self.metrics.items()},
            "vertical": self.vertical.to_json() if self.vertical else None,
            "plan": self.plan,
            "applied": self.applied,
            "refused": self.refused,
        })
        return data

    def text(self) -> str:
        measured = ", ".join(f"{k} {v:.1f}%" for k, v in self.metrics.items()) or "no usage figures yet"
        lines = [f"workload {self.workload}: {self.replicas} replicas, utilization {measured}"]
        if self.decision is not None:
            d = self.decision
            lines += [f"{d.direction}: {d.current_replicas} -> {d.target_replicas}", f"reason: {d.reason}"]
            lines += [f"  {metric} proposes {n}" for metric, n in d.proposals.items()]
        if self.vertical is not None:
            for item in (self.vertical.cpu, self.vertical.memory):
                lines.append(f"vertical {item.resource}: {item.reason}")
        lines += [f"plan: {line}" for line in self.plan]
        lines += [f"done: {line}" for line in self.applied]
        lines += [f"not done: {line}" for line in self.refused]
        return "\n".join(lines)


def many_replicas(current: int, target: int) -> str | None:
    """Why a scale-up is confirmed first, as `apply` confirms creating this many at once."""
    creating = target - current
    return f"creates {creating:,} replicas at once (more than {ASK_BEFORE_CREATING_ABOVE})" if creating > ASK_BEFORE_CREATING_ABOVE else None


def scale_question(workload: str, current: int, target: int) -> str | None:
    """The question a large scale-up asks first (None: nothing to ask)."""
    many = many_replicas(current, target)
    return f"Scale workload/{workload} from {current} to {target}? It {many}." if many else None


def _measure_twice(workload: Any, engines: list[Engine], service: Any) -> LiveUsage:
    task_stats = TaskStats()  # the tasks' CPU figures then cover the gap between the two
    try:
        measure(workload, engines, service, task_stats)
        time.sleep(SAMPLE_GAP_SECONDS)
        return measure(workload, engines, service, task_stats)
    finally:
        task_stats.close()


def scale_step(workload: str, current: int, target: int, cluster: str | None) -> str:
    """A change of the replica count as a plan line (`cluster`: the workload is a Swarm service there)."""
    if cluster is not None:
        return f"scale service/{workload} on {cluster}: {current} -> {target} replicas (running tasks kept)"
    return f"scale workload/{workload}: {current} -> {target} replicas (placed by the scheduler)"


def live_scale(ctx: AppContext, name: str, *, apply: bool = False, vertical: bool = False, replicas: int | None = None,
               now: float | None = None, state_file: Path | None = None, dry_run: bool = False) -> LiveScaleReport:
    """`dry_run`: the plan of what --apply (or --replicas) would change, nothing changed and
    the history not written."""
    specs = load_workloads(ctx.config.specs_dir, ctx.config.autoscaler.tolerance)
    workload = specs.workloads.get(name)
    if workload is None:
        known = ", ".join(sorted(specs.workloads)) or "none"
        raise LiveScaleError(f"no container workload named {name!r} in {ctx.config.specs_dir} (workloads there: {known})")
    engines = supervisor_engines(ctx)
    try:
        return _scale(ctx, workload, engines, apply, vertical, replicas, time.time() if now is None else now, state_file, dry_run)
    finally:
        for engine in engines:
            engine.close()


def _scale(ctx: AppContext, workload: Any, engines: list[Engine], apply: bool, vertical: bool, replicas: int | None,
           now: float, state_file: Path | None, dry_run: bool = False) -> LiveScaleReport:
    if replicas is not None:
        current = len(replica_service(engines).survey(workload.name).of(workload.name))
        report = LiveScaleReport(workload.name, current, {})
        if dry_run:
            report.plan.append(scale_step(workload.name, current, replicas, None))
        else:
            _execute(ctx, workload, engines, report, current, replicas, "set by hand")
        return report
    apply, vertical = apply and not dry_run, vertical and not dry_run
    service = ServiceFinder().holding(workload.name, engines)
    usage = _measure_twice(workload, engines, service)
    report = LiveScaleReport(workload.name, usage.current_replicas, usage.metrics)
    if workload.horizontal is not None:
        path = state_file or history_path(ctx.config.data_dir, workload.name)

        def evaluate(history: History) -> History:
            report.decision, history = decide(workload.horizontal, usage.current_replicas, usage.metrics, history, now, assume_applied=False)
            return history

        try:
            if dry_run:
                evaluate(load_history(path))
            else:
                update_history(path, evaluate)
        except HistoryFormatError as exc:
            raise LiveScaleError(f"{path}: {exc}", exit_code=1) from None
        decision = report.decision
        if decision is not None and decision.direction != "no_scale":
            report.plan.append(scale_step(workload.name, decision.current_replicas, decision.target_replicas, usage.service.cluster if usage.service else None))
        if apply and decision is not None and decision.direction != "no_scale":
            if _execute(ctx, workload, engines, report, decision.current_replicas, decision.target_replicas, decision.reason, service):
                update_history(path, lambda h: h.record_event(now, decision.current_replicas, decision.target_replicas))
    if workload.vertical is not None and usage.cpu_millis:
        cpu_limit, memory_limit = usage.limits()
        report.vertical = recommend_vertical(workload.vertical, list(usage.cpu_millis), list(usage.memory_bytes), cpu_limit, memory_limit)
        if report.vertical.changes:
            step = rolling_update_note(workload.name, usage.service.cluster, usage.service.replicas) if usage.service else f"in place on {sum(r.running for r in usage.replicas)} running replicas"
            report.plan.append(f"resize workload/{workload.name}: {step}")
        if apply and vertical and report.vertical.changes:
            done, line = resize(workload, engines, ctx.gate, ctx.events, usage, report.vertical, service)
            (report.applied if done else report.refused).append(line)
    return report


def _execute(ctx: AppContext, workload: Any, engines: list[Engine], report: LiveScaleReport, current: int, target: int, reason: str,
             service: Any = None) -> bool:
    many = many_replicas(current, target)
    question = scale_question(workload.name, current, target)
    if service is not None:
        counts, message = execute_service_scale(workload.name, service, ctx.gate, ctx.events, current, target, reason, question)
        if counts is None:
            report.refused.append(f"{message} (it {many})" if many else message)
            return False
        report.applied.append(f"{counts[0]} -> {counts[1]} replicas of service/{workload.name} on {service.cluster.name} (running tasks kept)")
        return True
    done, message = execute_scale(workload, engines, ctx.gate, ctx.events, current, target, reason, DesiredStore(ctx.config.data_dir),
                                  question=question)
    if done is None:
        report.refused.append(f"{message} (it {many})" if many else message)
        return False
    report.applied.append(f"{done.before} -> {done.after} replicas" + "".join(f", +{n}" for n in done.created) + "".join(f", -{n}" for n in done.removed))
    return True
