"""Failover state machines for a FailoverStrategy; time is passed in.

`Detector` decides that something (a replica, an engine) has failed: it is checked every
`interval`, a check with no answer within `timeout` counts as a failure, and `retries`
consecutive failures declare it failed; one success declares it healthy again.

`RestartBudget` decides what to do about a failed replica: restart it after `restart_delay`,
doubling the delay after each attempt (capped at 5 minutes, as the kubelet's back-off), at most
`max_restart_attempts` times; after that the replica is given up and replaced. Ten minutes of
clean running forgive the past attempts, as the kubelet resets its back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

MAX_BACKOFF_SECONDS = 300.0
RESET_AFTER_SECONDS = 600.0


@dataclass(frozen=True)
class Detector:
    interval: float
    timeout: float
    retries: int
    failures: int = 0
    failed: bool = False
    last_check: float | None = None

    def due(self, now: float) -> bool:
        return self.last_check is None or now >= self.last_check + self.interval

    def record(self, ok: bool, now: float) -> tuple[Detector, Literal["failed", "recovered"] | None]:
        """Feed one check (ok=False for an error or no answer within `timeout`)."""
        if ok:
            return replace(self, failures=0, failed=False, last_check=now), ("recovered" if self.failed else None)
        failures = self.failures + 1
        failed = failures >= self.retries
        change = "failed" if failed and not self.failed else None
        return replace(self, failures=failures, failed=failed, last_check=now), change


@dataclass(frozen=True)
class RestartDecision:
    action: Literal["restart", "give_up", "disabled"]
    at: float  # when to act (restart: after the delay)
    attempt: int  # 1-based attempt number for restarts
    message: str


@dataclass(frozen=True)
class RestartBudget:
    auto_restart: bool
    max_attempts: int
    restart_delay: float
    attempts: int = 0
    last_restart: float | None = None

    def delay(self, attempt: int) -> float:
        """restart_delay, then doubling per attempt, capped at five minutes."""
        return min(self.restart_delay * (2 ** (attempt - 1)), max(MAX_BACKOFF_SECONDS, self.restart_delay))

    def on_failure(self, now: float) -> tuple[RestartBudget, RestartDecision]:
        budget = self
        if budget.last_restart is not None and now - budget.last_restart >= RESET_AFTER_SECONDS:
            budget = replace(budget, attempts=0)  # ran cleanly long enough: the past is forgiven
        if not budget.auto_restart:
            return budget, RestartDecision("disabled", now, 0, "auto_restart is off: the replica is left as it is")
        if budget.attempts >= budget.max_attempts:
            message = f"gave up after {budget.attempts} restart attempts: the replica is replaced"
            return budget, RestartDecision("give_up", now, budget.attempts, message)
        attempt = budget.attempts + 1
        delay = budget.delay(attempt)
        decision = RestartDecision("restart", now + delay, attempt, f"restart {attempt}/{budget.max_attempts} in {delay:g}s")
        return replace(budget, attempts=attempt, last_restart=now + delay), decision
