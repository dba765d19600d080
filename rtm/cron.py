"""Schedules: 5-field Unix cron, and AWS EventBridge's cron(...) and rate(...).

Unix (Vixie cron): `minute hour day-of-month month day-of-week`, each field `*`, numbers, names
(JAN-DEC, SUN-SAT), ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`; day-of-week 0-7 with 0
and 7 both Sunday; the macros @yearly @annually @monthly @weekly @daily @midnight @hourly. When
both day fields are restricted (neither starts with `*`), a day matching either one fires; when
one starts with `*`, a day must match both (Vixie's DOM_STAR / DOW_STAR rule).

AWS: `cron(minute hour day-of-month month day-of-week year)` with day-of-week 1-7 = SUN-SAT, `?`
in exactly one day field, `L`/`LW`/`15W` in day-of-month, `L`/`5L`/`3#2` in day-of-week, `a/n`
steps, years 1970-2199; and `rate(N unit)` with minute(s)/hour(s)/day(s), singular only for 1.

All times are UTC. `next_fire` counts rate schedules from the Unix epoch, so `rate(5 minutes)`
fires at :00, :05, :10 ... (EventBridge itself counts from when the rule was created).
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, NoReturn

from rtm.errors import SpecValueError

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
UNIX_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
AWS_FIELDS = (*UNIX_FIELDS, "year")
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_GREGORIAN_CYCLE_YEARS = 400  # the calendar repeats: nothing in 400 years means never
_ALL_WEEKDAYS = frozenset(range(7))
_ALL_MONTH_DAYS = frozenset(range(1, 32))
_LONGEST_MONTH = {m: calendar.monthrange(2000, m)[1] for m in range(1, 13)}  # 2000: Feb has 29


@dataclass(frozen=True)
class DaysOfMonth:
    """A day-of-month field: plain days, or AWS's L (last), LW (last weekday), nW (nearest weekday)."""
    days: frozenset[int] = frozenset()
    last: bool = False
    last_weekday: bool = False
    nearest_weekday: int | None = None

    def matches(self, day: date) -> bool:
        length = calendar.monthrange(day.year, day.month)[1]
        if day.day in self.days or (self.last and day.day == length):
            return True
        if self.last_weekday:
            return day == _weekday_near(date(day.year, day.month, length))
        if self.nearest_weekday is not None and self.nearest_weekday <= length:
            return day == _weekday_near(date(day.year, day.month, self.nearest_weekday))
        return False


@dataclass(frozen=True)
class DaysOfWeek:
    """A day-of-week field, 0 = Sunday ... 6 = Saturday. AWS's `3#2` (the 2nd Tuesday) sets
    `nth`; `6L` (the month's last Friday) sets `last`; both apply to a single weekday."""
    weekdays: frozenset[int] = _ALL_WEEKDAYS
    nth: int = 0
    last: bool = False

    def matches(self, day: date) -> bool:
        if (day.weekday() + 1) % 7 not in self.weekdays:
            return False
        if self.nth:
            return (day.day - 1) // 7 + 1 == self.nth
        if self.last:
            return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
        return True


@dataclass(frozen=True)
class Schedule:
    kind: str                                   # "unix" | "aws_cron" | "aws_rate"
    text: str                                   # as written
    fields: tuple[str, ...] = ()                # cron fields as written (macros expanded)
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days_of_month: DaysOfMonth | None = None    # None: AWS "?", the other day field decides
    months: frozenset[int] = frozenset()
    days_of_week: DaysOfWeek | None = None
    years: frozenset[int] | None = None         # AWS only; None: every year
    either_day: bool = False                    # Unix with both day fields restricted
    rate_count: int = 0                         # aws_rate: every rate_count rate_units
    rate_unit: str = ""                         # "minute" | "hour" | "day"

    def fires_on(self, day: date) -> bool:
        """Whether the schedule fires at some time on `day` (its year, month and day rules)."""
        if self.years is not None and day.year not in self.years:
            return False
        if day.month not in self.months:
            return False
        by_month_day = self.days_of_month.matches(day) if self.days_of_month else True
        by_weekday = self.days_of_week.matches(day) if self.days_of_week else True
        return (by_month_day or by_weekday) if self.either_day else (by_month_day and by_weekday)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    allowed: str                                # for messages: "0-59", "1-12 or JAN-DEC"
    names: tuple[str, ...] = ()                 # names[i] is the value low_name + i
    low_name: int = 0
    max_step: int = 0


_MINUTE = _Field("minute", 0, 59, "0-59", max_step=60)
_HOUR = _Field("hour", 0, 23, "0-23", max_step=24)
_DAY = _Field("day-of-month", 1, 31, "1-31", max_step=31)
_MONTH = _Field("month", 1, 12, "1-12 or JAN-DEC", MONTH_NAMES, 1, max_step=12)
_UNIX_WEEKDAY = _Field("day-of-week", 0, 7, "0-7 or SUN-SAT (0 and 7 are Sunday)", DAY_NAMES, 0,
                       max_step=7)
_AWS_WEEKDAY = _Field("day-of-week", 1, 7, "1-7 or SUN-SAT (1 is Sunday)", DAY_NAMES, 1, max_step=7)
_YEAR = _Field("year", 1970, 2199, "1970-2199", max_step=230)


# ----------------------------------------------------------------------------------- parsing


def parse_schedule(text: str) -> Schedule:
    """Parse a Unix, AWS cron(...) or AWS rate(...) schedule; SpecValueError on a mistake."""
    if not isinstance(text, str):
        raise SpecValueError(f"a schedule must be a string such as \"0 9 * * 1-5\", not "
                             f"{type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith("rate("):
        return _parse_rate(text)
    if stripped.startswith("cron("):
        return _parse_aws_cron(text)
    return _parse_unix(text)


def _error(text: str, reason: str, offset: int, hint: str | None = None) -> SpecValueError:
    return SpecValueError(f'"{text}" is not a valid schedule: {reason}', hint=hint, offset=offset)


def _spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[str, int]]:
    """The whitespace-separated words of text[start:end] with their offsets in `text`."""
    stop = len(text) if end is None else end
    return [(m.group(), m.start()) for m in re.compile(r"\S+").finditer(text, start, stop)]


def _parse_unix(text: str) -> Schedule:
    words = _spans(text)
    if len(words) == 1 and words[0][0].startswith("@"):
        return _parse_macro(text, *words[0])
    if len(words) != 5:
        hint = None
        if len(words) == 6:
            hint = "6 fields with a year are AWS's form: write it as cron(...)"
        offset = words[5][1] if len(words) > 5 else 0
        raise _error(text, f"a Unix schedule has 5 fields ({' '.join(UNIX_FIELDS)}), this has "
                           f"{len(words)}", offset, hint)
    minutes, hours, days, months, weekdays = (
        _parse_list(text, word, at, field, aws=False)
        for (word, at), field in zip(words, (_MINUTE, _HOUR, _DAY, _MONTH, _UNIX_WEEKDAY)))
    dom, dow = words[2][0], words[4][0]
    schedule = Schedule(
        kind="unix", text=text, fields=tuple(word for word, _ in words),
        minutes=minutes, hours=hours, days_of_month=DaysOfMonth(days=days), months=months,
        days_of_week=DaysOfWeek(weekdays=frozenset(day % 7 for day in weekdays)),  # 7 is Sunday
        either_day=not dom.startswith("*") and not dow.startswith("*"),
    )
    if not schedule.either_day:
        _check_days_exist(schedule, words[2][1])
    return schedule


def _parse_macro(text: str, word: str, offset: int) -> Schedule:
    if word not in _MACROS:
        hint = "@reboot has no time to fire at" if word == "@reboot" else None
        raise _error(text, f'unknown macro "{word}" (known: {", ".join(_MACROS)})', offset, hint)
    return replace(_parse_unix(_MACROS[word]), text=text)


def _check_days_exist(schedule: Schedule, offset: int) -> None:
    """Refuse "0 0 30 2 *": a day of the month that none of the months has never comes."""
    days = schedule.days_of_month.days if schedule.days_of_month else frozenset()
    if days and not any(day <= _LONGEST_MONTH[m] for m in schedule.months for day in days):
        months = ", ".join(MONTH_NAMES[m - 1] for m in sorted(schedule.months))
        raise _error(schedule.text, f"it never fires: {months} never has day {min(days)}", offset)


def _parse_list(text: str, field_text: str, offset: int, field: _Field, *, aws: bool) -> frozenset[int]:
    values: set[int] = set()
    for item in field_text.split(","):
        if item == "":
            raise _error(text, f"the {field.name} field has an empty item between commas", offset)
        values |= _parse_item(text, item, offset, field, aws)
        offset += len(item) + 1
    return frozenset(values)


def _parse_item(text: str, item: str, offset: int, field: _Field, aws: bool) -> set[int]:
    """One list item: `*`, `a`, `a-b`, each optionally `/step` (AWS also allows `a/step`)."""
    base, slash, step_text = item.partition("/")
    step = _parse_step(text, step_text, offset + len(base), field) if slash else 1
    if base == "*":
        return set(range(field.low, field.high + 1, step))
    first, dash, second = base.partition("-")
    low = _parse_value(text, first, offset, field, aws)
    high = low
    if dash:
        high = _parse_value(text, second, offset + len(first) + 1, field, aws)
        if high < low:
            raise _error(text, f'the {field.name} range "{base}" runs backwards: the smaller value '
                               "comes first", offset)
    elif slash:
        if not aws:
            raise _error(text, f"a step needs * or a range before it: write {first}-{field.high}/"
                               f"{step_text} or */{step_text}", offset + len(base))
        high = field.high  # AWS "5/10": from 5 to the end
    return set(range(low, high + 1, step))


def _parse_value(text: str, token: str, offset: int, field: _Field, aws: bool) -> int:
    if token == "":
        raise _error(text, f"a number is missing in the {field.name} field", offset,
                     f"the {field.name} field takes {field.allowed}")
    if all(c in "0123456789" for c in token):
        value = int(token) if len(token) <= 9 else field.high + 1  # long digit runs: out of range
        if not field.low <= value <= field.high:
            raise _error(text, f"{field.name} {token} is out of range: the {field.name} field takes "
                               f"{field.allowed}", offset)
        return value
    if token.isascii() and token.isalpha():
        if token.upper() in field.names:
            return field.names.index(token.upper()) + field.low_name
        return _unknown_word(text, token, offset, field, aws)
    # The first character that breaks the number (or the name) the token starts with.
    if token[0] in "0123456789":
        bad = next(i for i, c in enumerate(token) if c not in "0123456789")
    else:
        bad = next((i for i, c in enumerate(token) if not (c.isascii() and c.isalpha())), 0)
    hint = None
    if not aws and token[bad] in "?#LW":
        hint = "?, L, W and # are AWS cron syntax; a Unix schedule writes * for any day"
    raise _error(text, f'unexpected "{token[bad]}" in the {field.name} field', offset + bad,
                 hint or f"the {field.name} field takes {field.allowed}")


def _unknown_word(text: str, token: str, offset: int, field: _Field, aws: bool) -> NoReturn:
    if not field.names:
        hint = "L and W are AWS cron syntax" if token.upper() in ("L", "W", "LW") and not aws else None
        raise _error(text, f'"{token}" is not a number: the {field.name} field takes {field.allowed}',
                     offset, hint)
    short = token[:3].upper()
    hint = f"write {short}" if short in field.names else f"names: {', '.join(field.names)}"
    raise _error(text, f'unknown {field.name} name "{token}"', offset, hint)


def _parse_step(text: str, token: str, slash_at: int, field: _Field) -> int:
    """The step after the "/" at `slash_at`."""
    if token == "" or not all(c in "0123456789" for c in token):
        raise _error(text, f'the step after "/" in the {field.name} field must be a whole number',
                     slash_at if token == "" else slash_at + 1)
    step = int(token) if len(token) <= 9 else field.max_step + 1
    if not 1 <= step <= field.max_step:
        raise _error(text, f"step {token} is out of range: a {field.name} step is 1-{field.max_step}",
                     slash_at + 1)
    return step


# ---------------------------------------------------------------------------- AWS forms


def _inner(text: str, keyword: str) -> tuple[int, int]:
    """Offsets of what is inside `keyword(...)`."""
    start = text.index(keyword) + len(keyword) + 1
    end = len(text.rstrip())
    if not text.rstrip().endswith(")"):
        raise _error(text, f'{keyword}(...) must end with ")"', end - 1)
    return start, end - 1


def _parse_aws_cron(text: str) -> Schedule:
    start, end = _inner(text, "cron")
    words = _spans(text, start, end)
    if len(words) != 6:
        hint = "a 5-field Unix schedule is written without cron(...)" if len(words) == 5 else None
        raise _error(text, f"AWS cron(...) has 6 fields ({' '.join(AWS_FIELDS)}), this has "
                           f"{len(words)}", words[6][1] if len(words) > 6 else start, hint)
    (minute, m_at), (hour, h_at), (dom, dom_at), (month, mon_at), (dow, dow_at), (year, y_at) = words
    schedule = Schedule(  # keyword arguments run in order: the first mistake is reported
        kind="aws_cron", text=text, fields=tuple(word for word, _ in words),
        minutes=_parse_list(text, minute, m_at, _MINUTE, aws=True),
        hours=_parse_list(text, hour, h_at, _HOUR, aws=True),
        days_of_month=None if dom == "?" else _parse_aws_days_of_month(text, dom, dom_at),
        months=_parse_list(text, month, mon_at, _MONTH, aws=True),
        days_of_week=None if dow == "?" else _parse_aws_days_of_week(text, dow, dow_at),
        years=None if year == "*" else _parse_list(text, year, y_at, _YEAR, aws=True),
    )
    if (dom == "?") == (dow == "?"):
        raise _error(text, "AWS needs ? in exactly one of day-of-month and day-of-week", dow_at,
                     "e.g. cron(0 9 ? * MON-FRI *) or cron(0 0 1 * ? *)")
    return schedule


def _parse_aws_days_of_month(text: str, token: str, offset: int) -> DaysOfMonth:
    if token == "L":
        return DaysOfMonth(last=True)
    if token == "LW":
        return DaysOfMonth(last_weekday=True)
    if token.endswith("W") and token[:-1].isdigit():
        return DaysOfMonth(nearest_weekday=_parse_value(text, token[:-1], offset, _DAY, True))
    special = next((i for i, c in enumerate(token) if c in "LW?"), None)
    if special is not None:
        raise _error(text, f'"{token[special]}" cannot be combined with other day-of-month values',
                     offset + special, "write L, LW or a day with W (15W) alone, or ? alone")
    return DaysOfMonth(days=_parse_list(text, token, offset, _DAY, aws=True))


def _parse_aws_days_of_week(text: str, token: str, offset: int) -> DaysOfWeek:
    if token == "L":
        return DaysOfWeek(weekdays=frozenset({6}))  # the last day of the week: Saturday
    day, hash_mark, nth = token.partition("#")
    if hash_mark:
        weekday = _parse_value(text, day, offset, _AWS_WEEKDAY, True) - 1
        if nth not in ("1", "2", "3", "4", "5"):
            raise _error(text, f'"#{nth}" must be #1 to #5 (which such weekday of the month)',
                         offset + len(day) + 1)
        return DaysOfWeek(weekdays=frozenset({weekday}), nth=int(nth))
    if token.endswith("L") and len(token) > 1 and "," not in token and "-" not in token:
        weekday = _parse_value(text, token[:-1], offset, _AWS_WEEKDAY, True) - 1
        return DaysOfWeek(weekdays=frozenset({weekday}), last=True)
    special = next((i for i, c in enumerate(token) if c in "/?"), None)
    if special is not None:
        raise _error(text, f'AWS does not allow "{token[special]}" here in the day-of-week field',
                     offset + special, "the day-of-week field takes 1-7 or SUN-SAT, ranges, "
                                       "lists, L, 5L or 3#2")
    values = _parse_list(text, token, offset, _AWS_WEEKDAY, aws=True)
    return DaysOfWeek(weekdays=frozenset(v - 1 for v in values))


def _parse_rate(text: str) -> Schedule:
    start, end = _inner(text, "rate")
    words = _spans(text, start, end)
    if len(words) != 2:
        raise _error(text, "rate(...) takes a number and a unit, as in rate(5 minutes)", start)
    (count_text, count_at), (unit, unit_at) = words
    if not all(c in "0123456789" for c in count_text) or len(count_text) > 9 or int(count_text) < 1:
        raise _error(text, f'"{count_text}" must be a whole number of at least 1', count_at,
                     "e.g. rate(5 minutes), rate(1 hour)")
    count = int(count_text)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in RATE_UNITS:
        raise _error(text, f'unknown unit "{unit}": rate takes minutes, hours or days', unit_at)
    if count == 1 and unit != singular:
        raise _error(text, f'write rate(1 {singular}): AWS wants the singular for 1', unit_at)
    if count != 1 and unit == singular:
        raise _error(text, f"write rate({count} {singular}s): AWS wants the plural above 1", unit_at)
    return Schedule(kind="aws_rate", text=text, rate_count=count, rate_unit=singular)


# ------------------------------------------------------------------------ EventBridge form


def to_eventbridge(schedule: Schedule) -> str:
    """The EventBridge expression firing at the same instants; AWS forms come back unchanged.

    A plain `*/N` minute step (every other field `*`, N dividing 60) becomes rate(N minutes),
    `0 */N * * *` (N dividing 24) rate(N hours) (`*/60` is hourly, `0 */24` daily: rate(1 hour),
    rate(1 day)); everything else becomes cron(...), with day-of-week
    numbers turned into names (AWS counts SUN as 1, Unix as 0). A Unix schedule restricting both
    day fields has no AWS form and raises SpecValueError.
    """
    if schedule.kind != "unix":
        return schedule.text
    rate = _as_rate(schedule)
    if rate:
        return rate
    dom_text, dow_text = _aws_day_fields(schedule)
    fields = (
        _render(schedule.minutes, _MINUTE),
        _render(schedule.hours, _HOUR),
        dom_text,
        _render(schedule.months, _MONTH),
        dow_text,
        "*",
    )
    return f"cron({' '.join(fields)})"


def _rate_text(count: int, unit: str) -> str:
    return f"rate({count} {unit}{'' if count == 1 else 's'})"


def _as_rate(schedule: Schedule) -> str | None:
    minute, hour, dom, month, dow = schedule.fields
    if (dom, month, dow) != ("*", "*", "*"):
        return None
    minute_step, hour_step = _plain_step(minute), _plain_step(hour)
    if hour == "*" and minute_step and 60 % minute_step == 0:
        return _rate_text(minute_step, "minute") if minute_step < 60 else _rate_text(1, "hour")
    if schedule.minutes == {0} and hour_step and 24 % hour_step == 0:
        return _rate_text(hour_step, "hour") if hour_step < 24 else _rate_text(1, "day")
    return None


def _plain_step(field_text: str) -> int | None:
    """N for a field written exactly "*/N"."""
    match = re.fullmatch(r"\*/([0-9]+)", field_text)
    return int(match.group(1)) if match else None


def _aws_day_fields(schedule: Schedule) -> tuple[str, str]:
    """The AWS day-of-month and day-of-week fields; one of them is "?"."""
    assert schedule.days_of_month is not None and schedule.days_of_week is not None
    days, weekdays = schedule.days_of_month.days, schedule.days_of_week.weekdays
    every_day_of_month, every_weekday = days == _ALL_MONTH_DAYS, weekdays == _ALL_WEEKDAYS
    if schedule.either_day and (every_day_of_month or every_weekday):
        return "*", "?"
    if not schedule.either_day and every_weekday:
        return _render(days, _DAY), "?"
    if not schedule.either_day and every_day_of_month:
        return "?", _render_weekdays(weekdays)
    minute, hour, dom, month, dow = schedule.fields
    offset = _spans(schedule.text)[2][1]
    if schedule.either_day:
        raise SpecValueError(
            f'"{schedule.text}" has no EventBridge form: day-of-month ({dom}) and day-of-week '
            f"({dow}) are both restricted, and in Unix cron that means a day matching either one "
            "fires; AWS cannot express that (one of its two day fields must be ?)",
            hint=f'split it into two triggers: "{minute} {hour} {dom} {month} *" and '
                 f'"{minute} {hour} * {month} {dow}"', offset=offset)
    raise SpecValueError(
        f'"{schedule.text}" has no EventBridge form: Unix cron fires only on days matching both '
        f"day-of-month ({dom}) and day-of-week ({dow}) because one starts with *, and AWS cannot "
        "restrict both", hint="restrict only one of the two day fields", offset=offset)


def _render(values: frozenset[int], field: _Field) -> str:
    """A compact AWS field for a set: *, start/step, or a list of values and ranges."""
    ordered = sorted(values)
    if ordered == list(range(field.low, field.high + 1)):
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], field.high + 1, step)):
            return f"{ordered[0]}/{step}"
    return _ranges(ordered, str)


def _render_weekdays(weekdays: frozenset[int]) -> str:
    return _ranges(sorted(weekdays), lambda day: DAY_NAMES[day])


def _ranges(ordered: list[int], name: Callable[[int], str]) -> str:
    """"1,2,3,5" -> "1-3,5" (runs of three or more become ranges)."""
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{name(run[0])}-{name(run[-1])}")
        else:
            parts.extend(name(value) for value in run)
    return ",".join(parts)


# ----------------------------------------------------------------------------- next fire


def next_fire(schedule: Schedule, after: datetime) -> datetime | None:
    """The first instant strictly after `after` at which the schedule fires, in UTC.

    `after` must be timezone-aware. Rate schedules count from the Unix epoch. None when the
    schedule never fires again (an AWS year range in the past, or a day that never comes).
    """
    if after.tzinfo is None:
        raise ValueError("next_fire needs a timezone-aware datetime (e.g. tzinfo=timezone.utc)")
    after = after.astimezone(timezone.utc)
    if schedule.kind == "aws_rate":
        period = timedelta(seconds=schedule.rate_count * RATE_UNITS[schedule.rate_unit])
        return EPOCH + ((after - EPOCH) // period + 1) * period
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return _next_cron_fire(schedule, start)


def _next_cron_fire(schedule: Schedule, start: datetime) -> datetime | None:
    hours, minutes = sorted(schedule.hours), sorted(schedule.minutes)
    last_year = min(start.year + _GREGORIAN_CYCLE_YEARS, 9998)
    if schedule.years is not None:
        last_year = min(last_year, max(schedule.years))
    day, earliest = start.date(), start.time()
    while day.year <= last_year:
        if schedule.years is not None and day.year not in schedule.years:
            day, earliest = date(day.year + 1, 1, 1), time()
            continue
        if day.month not in schedule.months:
            day, earliest = _first_of_next_month(day), time()
            continue
        if schedule.fires_on(day):
            fire = _first_time_at_or_after(hours, minutes, earliest)
            if fire is not None:
                return datetime.combine(day, fire, tzinfo=timezone.utc)
        day, earliest = day + timedelta(days=1), time()
    return None


def _first_time_at_or_after(hours: list[int], minutes: list[int], earliest: time) -> time | None:
    index = bisect_left(hours, earliest.hour)
    if index < len(hours) and hours[index] == earliest.hour:
        later_minute = bisect_left(minutes, earliest.minute)
        if later_minute < len(minutes):
            return time(earliest.hour, minutes[later_minute])
        index += 1
    return time(hours[index], minutes[0]) if index < len(hours) else None


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _weekday_near(day: date) -> date:
    """The weekday nearest to `day` within its month (Quartz's W rule)."""
    length = calendar.monthrange(day.year, day.month)[1]
    if day.weekday() == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - timedelta(days=1) if day.day > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + timedelta(days=1) if day.day < length else day - timedelta(days=2)
    return day
