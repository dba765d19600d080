"""Probe state machines with Kubernetes semantics; time is passed in.

One `ReplicaProbes` per replica holds its startup, liveness and readiness probes:

- a probe runs first at `initial_delay` after the replica started, then every `interval`;
- `retries` consecutive failures fail it (the failure threshold), one success passes it;
- the startup probe gates the other two until it passes; failing it (its budget is
  retries x interval) means restart, like a liveness failure;
- liveness failure means restart; readiness failure takes the replica out of rotation
  without a restart, and a later success brings it back;
- without a liveness probe, Docker's own `unhealthy` verdict counts as a liveness failure.

The caller runs the probes that are `due()` (commands in the container, HTTP or TCP to its
address), feeds each outcome to `record()`, and acts on the returned transitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

ProbeName = Literal["startup", "liveness", "readiness"]
Verdict = Literal["unknown", "passing", "failing"]


@dataclass(frozen=True)
class ProbeTiming:
    interval: float = 10.0
    timeout: float = 1.0
    retries: int = 3  # the failure threshold
    initial_delay: float = 0.0


@dataclass(frozen=True)
class ProbeState:
    timing: ProbeTiming
    last_run: float | None = None
    failures: int = 0  # consecutive
    verdict: Verdict = "unknown"

    def due(self, now: float, started_at: float) -> bool:
        if now < started_at + self.timing.initial_delay:
            return False
        return self.last_run is None or now >= self.last_run + self.timing.interval

    def next_due(self, started_at: float) -> float:
        first = started_at + self.timing.initial_delay
        return first if self.last_run is None else max(first, self.last_run + self.timing.interval)

    def record(self, ok: bool, now: float) -> ProbeState:
        if ok:
            return replace(self, last_run=now, failures=0, verdict="passing")
        failures = self.failures + 1
        verdict: Verdict = "failing" if failures >= self.timing.retries else self.verdict
        return replace(self, last_run=now, failures=failures, verdict=verdict)


@dataclass(frozen=True)
class Transition:
    """Something the supervisor must act on or log."""

    kind: Literal["started", "restart", "ready", "unready", "probe_failed", "probe_passed"]
    probe: ProbeName | Literal["docker-health"]
    message: str


@dataclass(frozen=True)
class ReplicaProbes:
    started_at: float
    probes: tuple[tuple[ProbeName, ProbeState], ...] = ()
    started: bool = False  # the startup probe passed (or there is none)
    ready: bool = False
    has_readiness: bool = field(default=False)

    @classmethod
    def create(cls, started_at: float, timings: dict[str, ProbeTiming]) -> ReplicaProbes:
        probes = tuple((name, ProbeState(timings[name])) for name in ("startup", "liveness", "readiness") if name in timings)
        has_startup = "startup" in timings
        has_readiness = "readiness" in timings
        # Without a readiness probe a started replica is ready (Kubernetes' default).
        return cls(started_at, probes, started=not has_startup, ready=not has_startup and not has_readiness, has_readiness=has_readiness)

    def state(self, name: ProbeName) -> ProbeState | None:
        return dict(self.probes).get(name)

    def due(self, now: float) -> list[ProbeName]:
        """The probes to run now; only the startup probe until it has passed."""
        active = ("startup",) if not self.started else ("liveness", "readiness")
        return [name for name, state in self.probes if name in active and state.due(now, self.started_at)]

    def next_due(self) -> float | None:
        active = ("startup",) if not self.started else ("liveness", "readiness")
        times = [state.next_due(self.started_at) for name, state in self.probes if name in active]
        return min(times) if times else None

    def record(self, name: ProbeName, ok: bool, now: float, detail: str = "") -> tuple[ReplicaProbes, list[Transition]]:
        """Feed one probe outcome; returns the new state and what changed."""
        old = self.state(name)
        if old is None:
            raise KeyError(f"this replica has no {name} probe")
        new = old.record(ok, now)
        probes = tuple((n, new if n == name else s) for n, s in self.probes)
        result = replace(self, probes=probes)
        transitions: list[Transition] = []
        suffix = f": {detail}" if detail else ""
        if not ok:
            transitions.append(Transition("probe_failed", name, f"{name} probe failed ({new.failures}/{new.timing.retries}){suffix}"))
        elif old.verdict != "passing":
            transitions.append(Transition("probe_passed", name, f"{name} probe passed{suffix}"))
        if name == "startup":
            if new.verdict == "passing" and not self.started:
                result = replace(result, started=True, ready=not self.has_readiness)
                transitions.append(Transition("started", name, "startup probe passed: liveness and readiness probes begin"))
            elif new.verdict == "failing":
                transitions.append(Transition("restart", name, f"startup probe failed {new.failures} times in a row"))
        elif name == "liveness" and new.verdict == "failing":
            transitions.append(Transition("restart", name, f"liveness probe failed {new.failures} times in a row"))
        elif name == "readiness":
            if new.verdict == "passing" and not self.ready:
                result = replace(result, ready=True)
                transitions.append(Transition("ready", name, "readiness probe passed: back in rotation"))
            elif new.verdict == "failing" and self.ready:
                result = replace(result, ready=False)
                transitions.append(Transition("unready", name, f"readiness probe failed {new.failures} times in a row: out of rotation"))
        return result, transitions

    def docker_health(self, status: str | None) -> list[Transition]:
        """Docker's HEALTHCHECK verdict, which counts as liveness only when no liveness probe is set."""
        if status == "unhealthy" and self.state("liveness") is None:
            return [Transition("restart", "docker-health", "Docker reports the container unhealthy")]
        return []
