"""Thresholds from the specs, as Prometheus alerting rules and as breaches the console shows.

The seed's monitoring practice: alert on what the specs promise. Each workload (a named spec
document) contributes the thresholds its kinds define:

- AutoScalingPolicy targets: average CPU / memory utilization of the running replicas above
  `target_*_utilization` (percent of the container's request, else its limit, as the HPA
  computes it) for longer than `scale_up_cooldown` (the autoscaler had its chance to act).
- HealthCheck probes: `retries` failures of one probe within `retries x interval` (at least a
  minute); ContainerRuntime.health_check: a container Docker reports unhealthy.
- FailoverStrategy.recovery: `max_restart_attempts` restarts within an hour, and the control
  loop giving up.
- Replicas: fewer running than the spec asks for, for longer than `failover_timeout`.
- Always: a backend that cannot be reached for a minute.

`alert_rules()` renders them for `rtm-console render --alert-rules` (clean under `promtool
check rules`); `breached()` is the same arithmetic over the poller's state and the event log,
for the console to highlight (it has no `for:` delay: the console shows the present).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from backends.records import ContainerInfo
from console.eventlog import Event
from console.exporter.event_counts import probe_name
from console.poller import PollState
from rtm.autoscaling import ResourceAmounts, resource_utilization
from rtm.autoscaling.from_spec import resource_amounts
from rtm.documents import Document

ThresholdKind = Literal[
    "backend_down", "cpu_utilization", "memory_utilization", "probe_failures", "unhealthy",
    "restarts", "gave_up", "replicas_missing",
]
Severity = Literal["warning", "critical"]

BACKEND_DOWN_FOR = 60.0
RESTART_WINDOW = 3600.0
MIN_WINDOW = 60.0  # rate()/increase() need a few scrapes inside their window
UTILIZATION_RATE_WINDOW = "2m"


@dataclass(frozen=True)
class Threshold:
    """One promise of the specs that can be broken."""

    alert: str  # the alert's name, e.g. RtmWorkloadCpuAboveTarget
    kind: ThresholdKind
    workload: str | None
    limit: float  # percent for utilizations, a count for failures and restarts, replicas
    seconds: float  # the `for:` duration, or the counting window for failures and restarts
    severity: Severity
    source: str  # "path:line" of the spec that sets it
    base: float | None = None  # utilization: the per-replica request (CPU cores or bytes)
    probe: str | None = None  # probe_failures: startup, liveness or readiness


@dataclass(frozen=True)
class Breach:
    threshold: Threshold
    subject: str  # what breaks it: a workload, a container or a backend
    value: float
    message: str


# --------------------------------------------------------------------------------- specs


def thresholds_from_documents(documents: Iterable[Document]) -> tuple[tuple[Threshold, ...], tuple[str, ...]]:
    """The thresholds of every workload, plus notes on what could not become one."""
    thresholds = [Threshold("RtmBackendDown", "backend_down", None, 0, BACKEND_DOWN_FOR, "critical", "built in")]
    notes: list[str] = []
    for doc in documents:
        if not doc.is_workload or doc.name is None:
            kinds = [k for k in ("AutoScalingPolicy", "HealthCheck", "FailoverStrategy") if doc.get(k) is not None]
            if kinds:
                notes.append(f"{doc.path}: {', '.join(kinds)} without a workload (name: and a runtime kind) is not tied to replicas; no alert")
            continue
        thresholds += _utilization(doc, notes)
        thresholds += _health(doc)
        thresholds += _recovery(doc)
        if doc.runtime_kind == "ContainerRuntime":
            failover = doc.get("FailoverStrategy")
            wait = max(MIN_WINDOW, failover.load_balancing.failover_timeout if failover else MIN_WINDOW)
            thresholds.append(Threshold("RtmWorkloadReplicasMissing", "replicas_missing", doc.name, doc.desired_replicas, wait, "warning", _where(doc, doc)))
    return tuple(thresholds), tuple(notes)


def _where(doc: Document, spec: Any) -> str:
    where = getattr(spec, "where", None) or doc.where
    return f"{where.path}:{where.line}"


def _utilization(doc: Document, notes: list[str]) -> list[Threshold]:
    policy = doc.get("AutoScalingPolicy")
    if policy is None or policy.horizontal is None:
        return []
    horizontal = policy.horizontal
    if doc.runtime_kind != "ContainerRuntime":
        notes.append(f"{doc.label}: utilization targets are alerted for containers only")
        return []
    cpu, memory = resource_amounts(doc)
    found = []
    for kind, target, amounts, scale in (
        ("cpu_utilization", horizontal.target_cpu_utilization, cpu, 1000.0),
        ("memory_utilization", horizontal.target_memory_utilization, memory, 1.0),
    ):
        if target is None:
            continue
        amount = amounts.base  # the request, else the limit: what the autoscaler measures against
        if amount is None:
            notes.append(f"{doc.label}: {kind.split('_')[0]} utilization needs resources.requests or resources.limits; no alert")
            continue
        name = "RtmWorkloadCpuAboveTarget" if kind == "cpu_utilization" else "RtmWorkloadMemoryAboveTarget"
        found.append(Threshold(name, kind, doc.name, float(target), max(MIN_WINDOW, horizontal.scale_up_cooldown), "warning",  # type: ignore[arg-type]
                               _where(doc, horizontal), base=amount / scale))
    return found


def _health(doc: Document) -> list[Threshold]:
    found = []
    health = doc.get("HealthCheck")
    for name, probe in (health.probes().items() if health is not None else ()):
        window = max(MIN_WINDOW, probe.retries * probe.interval)
        found.append(Threshold("RtmProbeFailing", "probe_failures", doc.name, probe.retries, window, "warning", _where(doc, probe), probe=name))
    container = doc.get("ContainerRuntime")
    if container is not None and container.health_check is not None:
        found.append(Threshold("RtmContainerUnhealthy", "unhealthy", doc.name, 1, 0, "warning", _where(doc, container.health_check)))
    return found


def _recovery(doc: Document) -> list[Threshold]:
    failover = doc.get("FailoverStrategy")
    if failover is None or not failover.recovery.auto_restart:
        return []
    recovery = failover.recovery
    found = [Threshold("RtmRecoveryGaveUp", "gave_up", doc.name, 1, RESTART_WINDOW, "critical", _where(doc, recovery))]
    if recovery.max_restart_attempts > 0:
        found.append(Threshold("RtmWorkloadRestarting", "restarts", doc.name, recovery.max_restart_attempts, RESTART_WINDOW, "warning", _where(doc, recovery)))
    return found


# ------------------------------------------------------------------------ Prometheus rules


def _quote(value: str) -> str:
    return json.dumps(value)  # a PromQL string literal: same escapes as JSON for these names


def _duration(seconds: float) -> str:
    """A Prometheus duration, whole seconds rounded up: 90 -> 1m30s, 3600 -> 1h."""
    left = int(math.ceil(seconds))
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"


def _limit(value: float) -> str:
    """A number exactly as PromQL reads it (no exponent rounding: 33554432, not 3.35544e+07)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rule_for(threshold: Threshold) -> dict[str, Any]:
    """One Prometheus alerting rule."""
    t = threshold
    w = _quote(t.workload or "")
    running = f"on(container, engine, workload) (rtm_container_state{{workload={w}, state=\"running\"}} == 1)"
    if t.kind == "backend_down":
        expr = "rtm_backend_up == 0"
        summary = "rtm-console cannot reach backend {{ $labels.backend }}"
        description = "{{ $labels.backend }} at {{ $labels.endpoint }} has not answered for a minute; its metrics are missing."
    elif t.kind == "cpu_utilization":
        expr = (f"100 * avg(rate(rtm_container_cpu_usage_seconds_total{{workload={w}}}[{UTILIZATION_RATE_WINDOW}]) and {running})"
                f" / {_limit(t.base or 1)} > {_limit(t.limit)}")
        summary = f"{t.workload}: CPU utilization above its {_limit(t.limit)}% target"
        description = (f"Running replicas of {t.workload} average {{{{ $value | printf \"%.0f\" }}}}% of their CPU request "
                       f"({_limit(t.base or 1)} cores) for over {_duration(t.seconds)}; the autoscaler has not brought it down (at max_replicas?).")
    elif t.kind == "memory_utilization":
        expr = (f"100 * avg(rtm_container_memory_working_set_bytes{{workload={w}}} and {running})"
                f" / {_limit(t.base or 1)} > {_limit(t.limit)}")
        summary = f"{t.workload}: memory utilization above its {_limit(t.limit)}% target"
        description = (f"Running replicas of {t.workload} average {{{{ $value | printf \"%.0f\" }}}}% of their memory request "
                       f"({_limit(t.base or 1)} bytes) for over {_duration(t.seconds)}.")
    elif t.kind == "probe_failures":
        expr = (f"increase(rtm_probe_failures_total{{workload={w}, probe={_quote(t.probe or '')}}}[{_duration(t.seconds)}])"
                f" >= {_limit(t.limit)}")
        summary = f"{t.workload}: {t.probe} probe failing"
        description = f"The {t.probe} probe of {t.workload} failed about {{{{ $value | printf \"%.0f\" }}}} times in {_duration(t.seconds)} (retries: {_limit(t.limit)})."
    elif t.kind == "unhealthy":
        expr = f"rtm_container_health{{workload={w}, health=\"unhealthy\"}} == 1"
        summary = f"{t.workload}: container {{{{ $labels.container }}}} is unhealthy"
        description = "Docker's health check reports {{ $labels.container }} on {{ $labels.engine }} unhealthy."
    elif t.kind == "restarts":
        expr = f"increase(rtm_workload_restarts_total{{workload={w}}}[{_duration(t.seconds)}]) >= {_limit(t.limit)}"
        summary = f"{t.workload}: restarted {_limit(t.limit)} times or more within an hour"
        description = f"The control loop restarted replicas of {t.workload} about {{{{ $value | printf \"%.0f\" }}}} times in the last hour (max_restart_attempts: {_limit(t.limit)})."
    elif t.kind == "gave_up":
        expr = f"increase(rtm_control_events_total{{kind=\"give_up\", workload={w}}}[{_duration(t.seconds)}]) > 0"
        summary = f"{t.workload}: recovery gave up"
        description = f"A replica of {t.workload} used up its restart attempts; it stays down until someone acts."
    else:  # replicas_missing: against the exported desired count, the spec's while none is exported
        desired = (f"max by (workload) (rtm_workload_replicas_desired{{workload={w}}}"
                   f" or on(workload) label_replace(vector({_limit(t.limit)}), \"workload\", {w}, \"\", \"\"))")
        expr = f"rtm_workload_replicas{{workload={w}, state=\"running\"}} < on(workload) group_left {desired}"
        summary = f"{t.workload}: fewer replicas running than desired"
        description = (f"{{{{ $value }}}} replicas of {t.workload} are running, fewer than its desired count "
                       f"(rtm_workload_replicas_desired, which scale and the autoscaler change; the spec asks for {_limit(t.limit)}).")
    rule: dict[str, Any] = {"alert": t.alert, "expr": expr}
    if t.seconds and t.kind in ("backend_down", "cpu_utilization", "memory_utilization", "replicas_missing"):
        rule["for"] = _duration(t.seconds)
    labels = {"severity": t.severity}
    if t.workload is not None:
        labels["workload"] = t.workload
    if t.probe is not None:
        labels["probe"] = t.probe  # one rule per probe: the label keeps their alerts apart
    rule["labels"] = labels
    rule["annotations"] = {"summary": summary, "description": description, "source": t.source}
    return rule


def alert_rules(thresholds: Sequence[Threshold]) -> dict[str, Any]:
    """The rule file: one group for the backends, one per workload."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for threshold in thresholds:
        group = f"rtm-workload-{threshold.workload}" if threshold.workload else "rtm-backends"
        groups.setdefault(group, []).append(rule_for(threshold))
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]}


def render_alert_rules(documents: Iterable[Document]) -> str:
    """The rules as YAML for `rtm-console render --alert-rules`, with notes as comments."""
    thresholds, notes = thresholds_from_documents(documents)
    header = ["# Prometheus alerting rules generated by rtm-console from the specs.",
              "# Check: promtool check rules FILE; load with rule_files: in prometheus.yml."]
    header += [f"# note: {note}" for note in notes]
    body = yaml.safe_dump(alert_rules(thresholds), sort_keys=False, allow_unicode=True, width=1000)
    return "\n".join(header) + "\n" + body


# ------------------------------------------------------------------------------- console


def breached(thresholds: Sequence[Threshold], state: PollState, events: Sequence[Event] = (), now: float = 0.0,
             desired: Mapping[str, int] | None = None) -> tuple[Breach, ...]:
    """The thresholds broken now, by the poller's latest state and the events of the log.

    `now` is the wall-clock time (epoch seconds) the event windows end at. `desired`: the
    desired replica count of applied workloads (scale and the autoscaler change it), which
    replicas_missing compares against instead of the spec's count. Utilization is
    rtm.autoscaling's one measure.
    """
    containers = [c for c in state.items("containers") if isinstance(c, ContainerInfo)]
    # Before any container backend has answered, no replica is known to be missing or busy.
    polled = any(backend.snapshot is not None for backend in state.of_kind("containers"))
    found: list[Breach] = []
    for t in thresholds:
        if not polled and t.kind in ("cpu_utilization", "memory_utilization", "replicas_missing"):
            continue
        mine = [c for c in containers if c.workload == t.workload]
        running = [c for c in mine if c.state == "running"]
        if t.kind == "backend_down":
            for backend in state.backends.values():
                if backend.settled and (backend.error is not None or not backend.availability.connected):
                    found.append(Breach(t, backend.name, 0, f"backend {backend.name} is down: {backend.error or backend.availability.describe()}"))
        elif t.kind == "cpu_utilization" and t.base:
            ratios = [c.cpu_ratio for c in running if c.cpu_ratio is not None]
            if (value := resource_utilization(ratios, ResourceAmounts(t.base, None))) is not None and value > t.limit:
                found.append(Breach(t, t.workload or "", value, f"{t.workload}: CPU at {value:.0f}% of request, target {t.limit:g}%"))
        elif t.kind == "memory_utilization" and t.base:
            readings = [float(c.memory_working_set_bytes) for c in running]
            if (value := resource_utilization(readings, ResourceAmounts(t.base, None))) is not None and value > t.limit:
                found.append(Breach(t, t.workload or "", value, f"{t.workload}: memory at {value:.0f}% of request, target {t.limit:g}%"))
        elif t.kind == "unhealthy":
            for c in mine:
                if c.health == "unhealthy":
                    found.append(Breach(t, c.name, 1, f"{c.name} is unhealthy"))
        elif t.kind == "replicas_missing":
            wanted = (desired or {}).get(t.workload or "", t.limit)
            if (count := len(running)) < wanted:
                found.append(Breach(t, t.workload or "", count, f"{t.workload}: {count} of {wanted:g} replicas running"))
        else:
            count = _count_events(t, events, now)
            if count >= t.limit:
                found.append(Breach(t, t.workload or "", count, _event_message(t, count)))
    return tuple(found)


def _count_events(t: Threshold, events: Sequence[Event], now: float) -> int:
    kind = {"probe_failures": "probe_failed", "restarts": "restart", "gave_up": "give_up"}[t.kind]
    return sum(
        1 for e in events
        if e.kind == kind and e.workload == t.workload and now - t.seconds <= e.time <= now
        and (t.kind != "probe_failures" or probe_name(e) == t.probe)
    )


def _event_message(t: Threshold, count: int) -> str:
    window = _duration(t.seconds)
    if t.kind == "probe_failures":
        return f"{t.workload}: {t.probe} probe failed {count} times in {window}"
    if t.kind == "restarts":
        return f"{t.workload}: restarted {count} times in {window} (max {t.limit:g})"
    return f"{t.workload}: recovery gave up"
