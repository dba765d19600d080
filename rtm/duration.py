"""Durations: Go's time.ParseDuration grammar, plus bare numbers as seconds.

"500ms", "30s", "5m", "1h", combinations such as "1m30s" or "1h30m", decimals such as "1.5h",
and the units ns, us (also µs / μs), ms, s, m, h. Units are lower-case, as in Go. A YAML int or
float, or a string holding only a number, is a number of seconds. Negative durations are refused:
every duration in a spec (intervals, timeouts, cooldowns) is a length of time.
"""

from __future__ import annotations

import math
from fractions import Fraction

from rtm.errors import SpecValueError

_NS_PER_UNIT: dict[str, int] = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_HINT = "use s, m, h or ms (also us and ns), as in 30s, 500ms or 1m30s"
# Units people reach for that Go does not have, and what to write instead.
_INSTEAD = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "msec": "ms", "msecs": "ms", "millis": "ms",
    "d": "h (1 day = 24h)", "day": "h (1 day = 24h)", "days": "h (1 day = 24h)",
}
_DIGITS = frozenset("0123456789")
_MAX_DIGITS = 400  # longer numbers are no duration anyone means (and Python caps int parsing)


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`: "1m30s" -> 90.0, "500ms" -> 0.5, 30 -> 30.0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecValueError(
            f"a duration must be a number of seconds or a string such as 30s, "
            f"not {type(value).__name__}", hint=_HINT)
    if isinstance(value, (int, float)):
        seconds = _seconds(value, "that number")
        if not math.isfinite(seconds):
            raise _error(repr(value), "it is not a finite number", 0)
        if seconds < 0:
            raise _error(repr(value), "durations cannot be negative", 0)
        return seconds
    return _seconds(_parse_text(value), f'"{value}"')


def _seconds(amount: Fraction | int | float, what: str) -> float:
    try:
        return float(amount)
    except OverflowError:
        raise SpecValueError(f"{what} is too long to be a duration", hint=_HINT) from None


def format_duration(seconds: float) -> str:
    """The canonical short form: 30 -> "30s", 300 -> "5m", 5400 -> "1h30m", 0.5 -> "500ms"."""
    if not math.isfinite(seconds) or seconds < 0:
        raise SpecValueError(f"{seconds} is not a duration: it must be a finite, non-negative number")
    nanos = round(Fraction(seconds) * _NS_PER_UNIT["s"])
    if nanos == 0:
        return "0s"
    if nanos < _NS_PER_UNIT["s"]:
        unit = next(u for u in ("ms", "us", "ns") if nanos >= _NS_PER_UNIT[u])
        return _decimal(nanos, _NS_PER_UNIT[unit]) + unit
    hours, rest = divmod(nanos, _NS_PER_UNIT["h"])
    minutes, rest = divmod(rest, _NS_PER_UNIT["m"])
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(_decimal(rest, _NS_PER_UNIT["s"]) + "s" if rest else "")
    return "".join(parts)


def _decimal(nanos: int, unit: int) -> str:
    whole, fraction = divmod(nanos, unit)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _error(text: str, reason: str, offset: int, hint: str | None = _HINT) -> SpecValueError:
    return SpecValueError(f'"{text}" is not a duration: {reason}', hint=hint, offset=offset)


def _number_end(text: str, pos: int) -> int:
    """End of the number starting at `pos`: digits, optionally a point and more digits."""
    while pos < len(text) and text[pos] in _DIGITS:
        pos += 1
    if pos < len(text) and text[pos] == ".":
        pos += 1
        while pos < len(text) and text[pos] in _DIGITS:
            pos += 1
    return pos


def _parse_text(text: str) -> Fraction:
    if text == "":
        raise _error(text, "it is empty", 0)
    for index, char in enumerate(text):
        if char.isspace():
            raise _error(text, "it contains a space", index, hint="write it without spaces, as in 1m30s")
    if text[0] == "-":
        raise _error(text, "durations cannot be negative", 0, hint=None)
    if _number_end(text, 0) == len(text) and text != "." and len(text) <= _MAX_DIGITS:
        return Fraction(text)  # a bare number: seconds

    total = Fraction(0)
    pos = 0
    while pos < len(text):
        number_end = _number_end(text, pos)
        number = text[pos:number_end]
        if number in ("", "."):
            raise _missing_number(text, pos)
        if len(number) > _MAX_DIGITS:
            raise _error(text, "it is too long to be a duration", pos)
        unit_end = number_end
        while unit_end < len(text) and text[unit_end] not in _DIGITS and text[unit_end] != ".":
            unit_end += 1
        unit = text[number_end:unit_end]
        if unit == "":
            if number_end < len(text):  # "1.2.3s": the next character is a second point
                raise _error(text, 'unexpected "." (a number has only one decimal point)', number_end)
            raise _error(text, f'"{number}" has no unit', pos)
        if unit not in _NS_PER_UNIT:
            raise _unknown_unit(text, unit, number_end)
        total += Fraction(number) * _NS_PER_UNIT[unit]
        pos = unit_end
    return total / _NS_PER_UNIT["s"]


def _missing_number(text: str, pos: int) -> SpecValueError:
    if text[pos] == ".":
        return _error(text, '"." needs digits, as in 0.5s', pos)
    return _error(text, "a number must come before each unit, as in 30s", pos)


def _unknown_unit(text: str, unit: str, offset: int) -> SpecValueError:
    # Units are case-sensitive ("5M" is not 5m); otherwise suggest the usual spelling.
    instead = unit.lower() if unit.lower() in _NS_PER_UNIT else _INSTEAD.get(unit.lower())
    reason = f'unknown unit "{unit}"' + (f", write {instead}" if instead else "")
    return _error(text, reason, offset)
