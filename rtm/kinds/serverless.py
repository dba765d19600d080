"""ServerlessRuntime: a function with its runtime, handler, limits, environment and triggers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from rtm.cron import to_eventbridge
from rtm.errors import SpecValueError
from rtm.kinds.values import Duration, Memory, Schedule
from rtm.schema import BuildContext, FrozenMap, Where, did_you_mean, where_field

MIB = 1024 * 1024
ENVIRONMENT_LIMIT_BYTES = 4096

# Lambda runtimes and the day AWS deprecates them (None: no date announced).
# Sources: the Lambda runtimes page; python3.9 deprecated 2025-12-15.
LAMBDA_RUNTIMES: dict[str, date | None] = {
    "python3.8": date(2024, 10, 14),
    "python3.9": date(2025, 12, 15),
    "python3.10": date(2026, 10, 31),
    "python3.11": date(2026, 6, 30),
    "python3.12": None,
    "python3.13": None,
    "python3.14": None,
    "nodejs16.x": date(2024, 6, 12),
    "nodejs18.x": date(2025, 9, 1),
    "nodejs20.x": date(2026, 4, 30),
    "nodejs22.x": None,
    "nodejs24.x": None,
    "java11": None,
    "java17": None,
    "java21": None,
    "java25": None,
    "dotnet8": None,
    "ruby3.3": None,
    "ruby3.4": None,
    "provided.al2023": None,
    "provided.al2": date(2026, 6, 30),
}

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")


@dataclass(frozen=True)
class Trigger:
    type: Literal["http", "cron"]
    path: str | None = None
    method: str = "ANY"
    schedule: Schedule | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.type == "http":
            if not self.path:
                ctx.error(self.where, None, "an http trigger needs a path", 'add path: "/api/function"')
            elif not self.path.startswith("/"):
                ctx.error(self.where, "path", "an http trigger's path must start with /")
            if self.method.upper() not in HTTP_METHODS:
                ctx.error(self.where, "method", f'"{self.method}" is not an HTTP method', "one of " + ", ".join(HTTP_METHODS))
            if self.schedule is not None:
                ctx.error(self.where, "schedule", "schedule belongs to cron triggers")
        else:
            if self.schedule is None:
                ctx.error(self.where, None, "a cron trigger needs a schedule", 'add schedule: "0 0 * * *"')
            if self.path is not None:
                ctx.error(self.where, "path", "path belongs to http triggers")

    def describe(self) -> str:
        if self.type == "http":
            return f"http {self.method.upper()} {self.path}"
        return f"cron {self.schedule.text}"  # type: ignore[union-attr]


@dataclass(frozen=True)
class Vpc:
    security_groups: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        for name, prefix in (("security_groups", "sg-"), ("subnets", "subnet-")):
            for value in getattr(self, name):
                if not value.startswith(prefix):
                    ctx.error(self.where, name, f'"{value}" is not a {name[:-1].replace("_", " ")} id', f"ids start with {prefix}")
        if bool(self.security_groups) != bool(self.subnets):
            ctx.error(self.where, None, "a VPC configuration needs both subnets and security_groups")


@dataclass(frozen=True)
class ServerlessRuntime:
    runtime: str
    handler: str
    name: str | None = None
    timeout: Duration = 3.0
    memory: Memory = 128 * MIB
    environment: FrozenMap = FrozenMap()
    triggers: tuple[Trigger, ...] = ()
    vpc: Vpc | None = None
    code: str | None = None
    role_arn: str | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        check_runtime(self, ctx, ctx.today)
        if self.runtime.startswith("python") and not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", self.handler):
            ctx.error(self.where, "handler", f'"{self.handler}" is not a Python handler', "write module.function, e.g. main.handler")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            ctx.error(self.where, "name", f'"{self.name}" is not a valid function name', "at most 64 letters, digits, - and _")
        if not 1 <= self.timeout <= 900 or self.timeout != int(self.timeout):
            ctx.error(self.where, "timeout", "a function's timeout must be a whole number of seconds from 1 to 900 (15 minutes)")
        if self.memory % MIB or not 128 <= self.memory // MIB <= 10240:
            ctx.error(self.where, "memory", "a function's memory must be a whole number of Mi from 128Mi to 10240Mi", "Lambda sizes memory in MB (binary), e.g. 256Mi")
        size = environment_size(self.environment)
        if size > ENVIRONMENT_LIMIT_BYTES:
            ctx.warning(self.where, "environment", f"the environment takes {size} bytes, over Lambda's 4 KB limit", "move large values to a parameter store or the code package")
        seen: set[str] = set()
        for trigger in self.triggers:
            key = trigger.describe()
            if key in seen:
                ctx.error(trigger.where, None, f"the trigger {key} is listed twice")
            seen.add(key)
            if trigger.schedule is not None:
                try:
                    to_eventbridge(trigger.schedule)
                except SpecValueError as exc:
                    ctx.warning(trigger.where, "schedule", f"AWS cannot run this schedule: {exc.message}", exc.hint)

    @property
    def memory_mb(self) -> int:
        return self.memory // MIB


def check_runtime(spec: ServerlessRuntime, ctx: BuildContext, today: date) -> None:
    if spec.runtime not in LAMBDA_RUNTIMES:
        ctx.error(spec.where, "runtime", f'"{spec.runtime}" is not a Lambda runtime', did_you_mean(spec.runtime, [r for r, d in LAMBDA_RUNTIMES.items() if d is None or d > today]))
        return
    deprecated = LAMBDA_RUNTIMES[spec.runtime]
    if deprecated is not None and deprecated <= today:
        family = re.match(r"[a-z]+", spec.runtime).group()  # type: ignore[union-attr]
        supported = [r for r, d in LAMBDA_RUNTIMES.items() if r.startswith(family) and (d is None or d > today)]
        hint = f"use {supported[-1]}" if supported else "choose a supported runtime"
        ctx.error(spec.where, "runtime", f"{spec.runtime} was deprecated by AWS on {deprecated.isoformat()}; new functions on it are refused", hint)


def environment_size(environment: FrozenMap) -> int:
    """Lambda counts the keys and values of the environment towards its 4 KB limit."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
