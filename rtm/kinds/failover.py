"""FailoverStrategy: how failures are detected, how replicas recover, how traffic is balanced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtm.kinds.values import Duration
from rtm.schema import BuildContext, Where, where_field


@dataclass(frozen=True)
class Detection:
    """Checked every `interval`; no answer within `timeout` is a failure; `retries` in a row declare it failed.

    Unlike a probe, the timeout may exceed the interval: it bounds one check's wait, not its period.
    """

    timeout: Duration = 30.0
    retries: int = 3
    interval: Duration = 10.0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.retries < 1:
            ctx.error(self.where, "retries", "retries must be at least 1")
        if self.interval <= 0 or self.timeout <= 0:
            ctx.error(self.where, "interval" if self.interval <= 0 else "timeout", "detection times must be above zero")


@dataclass(frozen=True)
class Recovery:
    auto_restart: bool = True
    max_restart_attempts: int = 3
    restart_delay: Duration = 30.0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.max_restart_attempts < 0:
            ctx.error(self.where, "max_restart_attempts", "max_restart_attempts cannot be negative")


@dataclass(frozen=True)
class LoadBalancing:
    algorithm: Literal["round_robin", "least_connections", "weighted_round_robin", "ip_hash"] = "round_robin"
    health_check: bool = True
    failover_timeout: Duration = 60.0
    where: Where = where_field()


@dataclass(frozen=True)
class FailoverStrategy:
    detection: Detection = Detection()
    recovery: Recovery = Recovery()
    load_balancing: LoadBalancing = LoadBalancing()
    where: Where = where_field()
