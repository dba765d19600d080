"""What a horizontal autoscaler remembers between evaluations, as an immutable value.

Two kinds of entries, both timestamped in epoch seconds:
- recommendations: the unstabilized replica count each evaluation proposed (stabilization
  windows look back over them);
- scaling events: each executed change `from_replicas -> to_replicas` (cooldowns and rate
  policies look back over them).

The JSON form (`to_json` / `from_json`, or `to_text` / `from_text` for a file) is:

    {"format": "rtm-autoscaler-history", "version": 1,
     "recommendations": [{"time": 1700000000.0, "replicas": 3}, ...],
     "events": [{"time": 1700000000.0, "from_replicas": 2, "to_replicas": 3}, ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

FORMAT_NAME = "rtm-autoscaler-history"
FORMAT_VERSION = 1


class HistoryFormatError(ValueError):
    """A stored history that cannot be read back (wrong format, version or field)."""


@dataclass(frozen=True)
class Recommendation:
    time: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    time: float
    from_replicas: int
    to_replicas: int

    @property
    def change(self) -> int:
        """Positive for a scale-up, negative for a scale-down."""
        return self.to_replicas - self.from_replicas

    @property
    def direction(self) -> str:
        return "scale_up" if self.change > 0 else "scale_down"


@dataclass(frozen=True)
class History:
    recommendations: tuple[Recommendation, ...] = ()
    events: tuple[ScaleEvent, ...] = ()

    # --- recording (each returns a new History) -------------------------------------------

    def record_recommendation(self, time: float, replicas: int) -> History:
        entry = Recommendation(float(time), int(replicas))
        return History(self.recommendations + (entry,), self.events)

    def record_event(self, time: float, from_replicas: int, to_replicas: int) -> History:
        """Record an executed scaling. A call that changes nothing records nothing."""
        if from_replicas == to_replicas:
            return self
        entry = ScaleEvent(float(time), int(from_replicas), int(to_replicas))
        return History(self.recommendations, self.events + (entry,))

    # --- reading ----------------------------------------------------------------------------

    def last_event(self) -> ScaleEvent | None:
        return max(self.events, key=lambda event: event.time, default=None)

    def recommendations_after(self, cutoff: float) -> list[int]:
        """Recommended counts strictly newer than `cutoff` (the HPA's `timestamp.After`)."""
        return [rec.replicas for rec in self.recommendations if rec.time > cutoff]

    def net_change_after(self, cutoff: float) -> int:
        """Replicas added minus replicas removed by events strictly newer than `cutoff`."""
        return sum(event.change for event in self.events if event.time > cutoff)

    # --- pruning ----------------------------------------------------------------------------

    def pruned(self, now: float, horizon: float) -> History:
        """Drop entries no decision at `now` or later can read: those at or before
        `now - horizon`. The newest recommendation and the newest event are always kept, so a
        history that has been used never looks brand new (a fresh one is seeded with the
        current count, which would hold back the next scale-down)."""
        cutoff = now - horizon

        def keep(entries: tuple[Any, ...]) -> tuple[Any, ...]:
            newest = max(entries, key=lambda entry: entry.time, default=None)
            return tuple(e for e in entries if e.time > cutoff or e is newest)

        return History(keep(self.recommendations), keep(self.events))

    # --- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "recommendations": [
                {"time": rec.time, "replicas": rec.replicas} for rec in self.recommendations
            ],
            "events": [
                {"time": e.time, "from_replicas": e.from_replicas, "to_replicas": e.to_replicas}
                for e in self.events
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> History:
        if not isinstance(data, Mapping):
            raise HistoryFormatError("an autoscaler history is a JSON object")
        if data.get("format") != FORMAT_NAME:
            raise HistoryFormatError(
                f'not an autoscaler history (expected "format": "{FORMAT_NAME}")'
            )
        if data.get("version") != FORMAT_VERSION:
            raise HistoryFormatError(
                f"unsupported autoscaler history version {data.get('version')!r} "
                f"(this version reads {FORMAT_VERSION})"
            )
        recommendations = tuple(
            Recommendation(_time(entry, "recommendations"), _count(entry, "replicas"))
            for entry in _entries(data, "recommendations")
        )
        events = tuple(
            ScaleEvent(
                _time(entry, "events"),
                _count(entry, "from_replicas"),
                _count(entry, "to_replicas"),
            )
            for entry in _entries(data, "events")
        )
        return cls(recommendations, events)

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_text(cls, text: str) -> History:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise HistoryFormatError(
                f"autoscaler history is not valid JSON: {error.msg} "
                f"at line {error.lineno} column {error.colno}"
            ) from None
        return cls.from_json(data)


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise HistoryFormatError(f'"{key}" must be a list of objects')
    return entries


def _time(entry: Mapping[str, Any], where: str) -> float:
    value = entry.get("time")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HistoryFormatError(f'every entry of "{where}" needs a numeric "time"')
    return float(value)


def _count(entry: Mapping[str, Any], key: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HistoryFormatError(f'"{key}" must be a replica count (a whole number >= 0)')
    return value
