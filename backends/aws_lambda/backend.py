"""One AWS location (profile + region) as a functions backend the poller can poll.

A poll lists the location's functions with the triggers rtm-console manages for them (rules
named and APIs tagged as ours: see triggers.py) and their CloudWatch metrics over the last 24
hours: invocations, errors, average / maximum / p95 duration. Where CloudWatch has no data
for a function (never invoked in the window, or moto), those fields are None rather than 0,
so "no data" is not mistaken for "no traffic".

Polls are cheap for AWS too: CloudWatch bills GetMetricData per metric requested and Lambda's
metrics have one-minute resolution, so the numbers are fetched at most once a minute however
often the poller asks (five metrics per function every 2 s would cost real money on a large
account); the triggers (two calls per managed rule or API) are read again every 30 s, when the
set of functions changes, or after this process applied or deleted something. Only the
function list itself is read on every poll. `get functions` and `describe` read everything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from backends.aws_lambda.client import AwsCallError, AwsClients, AwsLocation
from backends.aws_lambda.mapping import FUNCTION_TAG
from backends.aws_lambda.triggers import managed_api_items, managed_rules
from backends.base import Availability
from backends.records import DurationStats, FunctionInfo, KindSnapshot

METRICS_WINDOW_SECONDS = 24 * 3600
METRICS_REFRESH_SECONDS = 60.0
TRIGGERS_REFRESH_SECONDS = 30.0
_QUERIES_PER_CALL = 500  # GetMetricData's limit
_BASE_STATS = (("invocations", "Invocations", "Sum"), ("errors", "Errors", "Sum"),
               ("average", "Duration", "Average"), ("maximum", "Duration", "Maximum"))
_P95 = ("p95", "Duration", "p95")


@dataclass(frozen=True)
class FunctionMetrics:
    invocations: int | None
    errors: int | None
    duration: DurationStats | None


NO_METRICS = FunctionMetrics(None, None, None)


class LambdaBackend:
    """Backend protocol for one location; `name` is "lambda@<region>" or "lambda@<profile>/<region>"."""

    kind = "functions"

    def __init__(
        self,
        location: AwsLocation,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.clients = AwsClients(location)
        self.name = f"lambda@{location.label}"
        self.endpoint = location.endpoint
        self.read_only = read_only
        self.clock = clock  # wall clock: the metrics window, snapshot times
        self.monotonic = monotonic  # the caches' age
        self._percentiles = True  # cleared when the endpoint cannot compute p95 (moto)
        self._cached_metrics: tuple[float, dict[str, FunctionMetrics]] | None = None
        self._cached_triggers: tuple[float, frozenset[str], dict[str, tuple[str, ...]]] | None = None

    # Backend protocol

    def poll(self) -> KindSnapshot:
        started = time.monotonic()
        items = self.functions()
        return KindSnapshot("functions", self.name, items, self.clock(), time.monotonic() - started)

    def availability(self) -> Availability:
        return replace(self.clients.availability(), read_only=self.read_only)

    def close(self) -> None:
        self.clients.close()

    # listing

    def functions(self, *, fresh: bool = False) -> tuple[FunctionInfo, ...]:
        """The location's functions; triggers and metrics read recently unless `fresh`."""
        configurations = list(self.clients.pages("lambda", "list_functions", "Functions"))
        names = [c["FunctionName"] for c in configurations]
        triggers = self.triggers() if fresh else self.recent_triggers(names)
        metrics = self.metrics(names) if fresh else self.recent_metrics(names)
        return tuple(
            function_info(c, self.location.region, triggers.get(c["FunctionName"], ()), metrics.get(c["FunctionName"], NO_METRICS))
            for c in sorted(configurations, key=lambda c: c["FunctionName"])
        )

    def triggers(self) -> dict[str, tuple[str, ...]]:
        """function name -> its managed triggers, "http POST /x" and "cron cron(...)"."""
        found: dict[str, list[str]] = {}
        for item in managed_api_items(self.clients):
            function = item["Tags"][FUNCTION_TAG]
            routes = self.clients.pages("apigatewayv2", "get_routes", "Items", ApiId=item["ApiId"])
            found.setdefault(function, []).extend(f"http {r['RouteKey']}" for r in routes)
        for function, expressions in managed_rules(self.clients).items():
            found.setdefault(function, []).extend(f"cron {e}" for e in expressions)
        return {name: tuple(sorted(t, key=lambda text: (not text.startswith("http"), text))) for name, t in found.items()}

    def recent_triggers(self, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """`triggers`, reused for TRIGGERS_REFRESH_SECONDS while the set of functions stays."""
        now, current = self.monotonic(), frozenset(names)
        if self._cached_triggers is not None:
            fetched_at, known, cached = self._cached_triggers
            if now - fetched_at < TRIGGERS_REFRESH_SECONDS and known == current:
                return cached
        fresh = self.triggers()
        self._cached_triggers = (now, current, fresh)
        return fresh

    def forget_cached(self) -> None:
        """Called after this process changed functions or triggers: the next poll reads all."""
        self._cached_triggers = None
        self._cached_metrics = None

    def recent_metrics(self, names: Sequence[str]) -> dict[str, FunctionMetrics]:
        """`metrics`, reused for METRICS_REFRESH_SECONDS unless a function is new to it."""
        now = self.monotonic()
        if self._cached_metrics is not None:
            fetched_at, cached = self._cached_metrics
            if now - fetched_at < METRICS_REFRESH_SECONDS and set(names) <= set(cached):
                return cached
        fresh = self.metrics(names)
        self._cached_metrics = (now, fresh)
        return fresh

    def metrics(self, names: Sequence[str]) -> dict[str, FunctionMetrics]:
        """CloudWatch's numbers for each function over the last 24 hours."""
        if not names:
            return {}
        # End at the next whole minute: CloudWatch's end is exclusive, and data points carry
        # the time they were measured, which may be a moment ahead of this clock.
        end = datetime.fromtimestamp(self.clock(), timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(seconds=METRICS_WINDOW_SECONDS)
        values = self._metric_values(names, _BASE_STATS, start, end)
        if self._percentiles:
            try:
                values.update(self._metric_values(names, (_P95,), start, end))
            except AwsCallError:
                self._percentiles = False  # e.g. moto answers percentile queries with an error
        return {name: combine_metrics({key: values.get((index, key), ([], [])) for key in ("invocations", "errors", "average", "maximum", "p95")})
                for index, name in enumerate(names)}

    def _metric_values(self, names: Sequence[str], stats: Iterable[tuple[str, str, str]], start: datetime, end: datetime
                       ) -> dict[tuple[int, str], tuple[list[Any], list[float]]]:
        queries = []
        for index, name in enumerate(names):
            for key, metric, stat in stats:
                queries.append({
                    "Id": f"f{index}_{key}",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": name}]},
                        "Period": METRICS_WINDOW_SECONDS,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                })
        values: dict[tuple[int, str], tuple[list[Any], list[float]]] = {}
        for first in range(0, len(queries), _QUERIES_PER_CALL):
            batch = queries[first:first + _QUERIES_PER_CALL]
            for result in self.clients.pages("cloudwatch", "get_metric_data", "MetricDataResults", MetricDataQueries=batch, StartTime=start, EndTime=end):
                index, key = result["Id"][1:].split("_", 1)
                timestamps, numbers = values.setdefault((int(index), key), ([], []))
                timestamps.extend(result.get("Timestamps", []))
                numbers.extend(float(v) for v in result.get("Values", []))
        return values


def combine_metrics(series: dict[str, tuple[list[Any], list[float]]]) -> FunctionMetrics:
    """Fold the periods CloudWatch returned (usually one) into one set of numbers: sums add,
    the maximum and p95 take the largest period's value (an upper bound), the average is
    weighted by each period's invocations. Durations arrive in milliseconds."""
    _times, invocations = series["invocations"]
    if not invocations:
        return NO_METRICS
    total = int(sum(invocations))
    errors = int(sum(series["errors"][1]))
    average_times, averages = series["average"]
    maximums, p95s = series["maximum"][1], series["p95"][1]
    duration = None
    if averages and maximums:
        weights = dict(zip(series["invocations"][0], invocations))
        weighted = [(value, weights.get(when, 0.0)) for when, value in zip(average_times, averages)]
        weight = sum(w for _v, w in weighted)
        average = sum(v * w for v, w in weighted) / weight if weight else sum(averages) / len(averages)
        duration = DurationStats(average / 1000, max(maximums) / 1000, max(p95s) / 1000 if p95s else None)
    return FunctionMetrics(total, errors, duration)


def function_info(configuration: dict, region: str, triggers: tuple[str, ...], metrics: FunctionMetrics) -> FunctionInfo:
    return FunctionInfo(
        name=configuration["FunctionName"],
        target="aws",
        region=region,
        runtime=configuration.get("Runtime") or configuration.get("PackageType", "").lower() or "unknown",
        handler=configuration.get("Handler", ""),
        memory_mb=int(configuration.get("MemorySize", 0)),
        timeout_seconds=float(configuration.get("Timeout", 0)),
        last_modified=parse_last_modified(configuration.get("LastModified")),
        triggers=triggers,
        invocations=metrics.invocations,  # type: ignore[arg-type]  # None: CloudWatch has no data
        errors=metrics.errors,  # type: ignore[arg-type]
        duration=metrics.duration,
    )


_LAST_MODIFIED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def parse_last_modified(text: str | None) -> float | None:
    """Lambda's LastModified ("2024-05-01T10:00:00.000+0000"; moto writes nanoseconds and Z)
    as epoch seconds."""
    if not text:
        return None
    match = _LAST_MODIFIED.match(text)
    if not match:
        return None
    moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    fraction = float(f"0.{match.group(2)}") if match.group(2) else 0.0
    zone = match.group(3) or "Z"
    offset = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return moment.timestamp() + fraction - offset
