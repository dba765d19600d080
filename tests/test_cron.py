"""Schedules: Unix and AWS grammars, range checks, EventBridge conversion, next fire times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rtm.cron import next_fire, parse_schedule, to_eventbridge
from rtm.errors import SpecValueError

UTC = timezone.utc


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(text: str, start: datetime, count: int) -> list[datetime]:
    schedule, result, moment = parse_schedule(text), [], start
    for _ in range(count):
        moment = next_fire(schedule, moment)
        assert moment is not None
        result.append(moment)
    return result


# ------------------------------------------------------------------------------- parsing


def test_unix_fields_accept_stars_ranges_lists_steps_and_names() -> None:
    schedule = parse_schedule("*/15 9-17/4 1,15 JAN-MAR,dec mon-FRI")
    assert schedule.kind == "unix"
    assert schedule.minutes == {0, 15, 30, 45}
    assert schedule.hours == {9, 13, 17}
    assert schedule.days_of_month is not None and schedule.days_of_month.days == {1, 15}
    assert schedule.months == {1, 2, 3, 12}
    assert schedule.days_of_week is not None and schedule.days_of_week.weekdays == {1, 2, 3, 4, 5}
    assert schedule.either_day  # both day fields restricted


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun"])
def test_day_of_week_0_and_7_are_both_sunday(sunday: str) -> None:
    schedule = parse_schedule(f"0 0 * * {sunday}")
    assert schedule.days_of_week is not None and schedule.days_of_week.weekdays == {0}


def test_macros_expand_to_their_five_fields() -> None:
    daily = parse_schedule("@daily")
    assert daily.text == "@daily" and daily.fields == ("0", "0", "*", "*", "*")
    assert to_eventbridge(daily) == "cron(0 0 * * ? *)"


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("60 * * * *", 0, "minute 60 is out of range: the minute field takes 0-59"),
        ("0,5,61 * * * *", 4, "minute 61 is out of range"),
        ("0 24 * * *", 2, "hour 24 is out of range: the hour field takes 0-23"),
        ("0 0 0 * *", 4, "day-of-month 0 is out of range: the day-of-month field takes 1-31"),
        ("0 0 32 * *", 4, "day-of-month 32 is out of range"),
        ("0 0 1-32 * *", 6, "day-of-month 32 is out of range"),
        ("0 0 * 0 *", 6, "month 0 is out of range: the month field takes 1-12 or JAN-DEC"),
        ("0 0 * 13 *", 6, "month 13 is out of range"),
        ("0 0 * * 8", 8, "day-of-week 8 is out of range: the day-of-week field takes 0-7 or SUN-SAT"),
        ("0 0 * * 1-9", 10, "day-of-week 9 is out of range"),
        ("*/0 * * * *", 2, "step 0 is out of range: a minute step is 1-60"),
        ("0 */25 * * *", 4, "step 25 is out of range: a hour step is 1-24"),
        ("0 0 * * */8", 10, "step 8 is out of range"),
        ("99999999999 * * * *", 0, "out of range"),
    ],
)
def test_unix_range_errors_name_the_field_and_point_at_the_token(text: str, offset: int, words: str) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_schedule(text)
    assert caught.value.offset == offset
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("0 0 * *", 0, "a Unix schedule has 5 fields"),
        ("0 0 * * * 2024", 10, "this has 6"),
        ("5/10 * * * *", 1, "a step needs * or a range before it: write 5-59/10 or */10"),
        ("0 0 ? * *", 4, 'unexpected "?" in the day-of-month field'),
        ("0 0 L * *", 4, '"L" is not a number'),
        ("0 0 15W * *", 6, 'unexpected "W"'),
        ("5a * * * *", 1, 'unexpected "a"'),
        ("0 0 * * MON5", 11, 'unexpected "5"'),
        ("0 0 * * ٣", 8, 'unexpected "٣"'),
        ("0 0 * * MONDAY", 8, 'unknown day-of-week name "MONDAY"'),
        ("0 0 * FOO *", 6, 'unknown month name "FOO"'),
        ("30-10 * * * *", 0, 'the minute range "30-10" runs backwards'),
        ("1,,2 * * * *", 2, "empty item"),
        ("*/ * * * *", 1, 'the step after "/" in the minute field must be a whole number'),
        ("0 0 0 * 9", 4, "day-of-month 0"),  # the first mistake, left to right
        ("0 0 30 2 *", 4, "never fires: FEB never has day 30"),
        ("@reboot", 0, 'unknown macro "@reboot"'),
        ("", 0, "this has 0"),
    ],
)
def test_unix_grammar_errors(text: str, offset: int, words: str) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_schedule(text)
    assert caught.value.offset == offset
    assert words in caught.value.message


def test_unix_schedule_with_six_fields_is_told_about_the_aws_form() -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_schedule("0 0 * * ? *")
    assert "cron(...)" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "text",
    ["cron(0 10 * * ? *)", "cron(15 12 * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)",
     "cron(0/15 * * * ? *)", "cron(0/10 * ? * MON-FRI *)", "cron(0/5 8-17 ? * MON-FRI *)",
     "cron(0 9 ? * 2#1 *)", "cron(0 9 ? * 6L *)", "cron(0 9 L * ? *)", "cron(0 9 LW * ? *)",
     "cron(0 9 15W * ? *)", "cron(0 9 ? * L 2025-2030)", "cron(0 0 1/2 JAN,JUL ? 1970/10)",
     "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)",
     "rate(7 days)"],
)
def test_aws_forms_parse_and_pass_through_unchanged(text: str) -> None:
    schedule = parse_schedule(text)
    assert schedule.kind == ("aws_rate" if text.startswith("rate") else "aws_cron")
    assert to_eventbridge(schedule) == text


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("cron(60 0 * * ? *)", 5, "minute 60 is out of range"),
        ("cron(0 0 ? * 0 *)", 13, "the day-of-week field takes 1-7 or SUN-SAT (1 is Sunday)"),
        ("cron(0 0 ? * 8 *)", 13, "day-of-week 8 is out of range"),
        ("cron(0 0 * * ? 1969)", 15, "year 1969 is out of range: the year field takes 1970-2199"),
        ("cron(0 0 * * ? 2200)", 15, "year 2200 is out of range"),
        ("cron(0 0 * * * *)", 13, "? in exactly one of day-of-month and day-of-week"),
        ("cron(60 0 * * * *)", 5, "minute 60"),  # the first mistake, left to right
        ("cron(0 0 ? * ? *)", 13, "? in exactly one of day-of-month and day-of-week"),
        ("cron(0 0 * * *)", 5, "has 6 fields"),
        ("cron(0 0 ? * 3#6 *)", 15, "#1 to #5"),
        ("cron(0 0 ? * */2 *)", 14, 'AWS does not allow "/"'),
        ("cron(0 0 1,L * ? *)", 11, '"L" cannot be combined'),
        ("cron(0 0 32W * ? *)", 9, "day-of-month 32 is out of range"),
        ("cron(0 0 * * ? *", 15, 'must end with ")"'),
        ("rate(1 hours)", 7, "write rate(1 hour)"),
        ("rate(5 minute)", 7, "write rate(5 minutes)"),
        ("rate(0 minutes)", 5, "at least 1"),
        ("rate(1.5 hours)", 5, "whole number"),
        ("rate(5 mins)", 7, 'unknown unit "mins"'),
        ("rate(5 seconds)", 7, 'unknown unit "seconds"'),
        ("rate(5)", 5, "a number and a unit"),
    ],
)
def test_aws_errors_point_into_the_expression(text: str, offset: int, words: str) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_schedule(text)
    assert caught.value.offset == offset
    assert words in caught.value.message


# --------------------------------------------------------------------------- conversion


@pytest.mark.parametrize(
    ("unix", "aws"),
    [
        ("*/5 * * * *", "rate(5 minutes)"),
        ("*/1 * * * *", "rate(1 minute)"),
        ("*/30 * * * *", "rate(30 minutes)"),
        ("*/60 * * * *", "rate(1 hour)"),
        ("0 */2 * * *", "rate(2 hours)"),
        ("0 */1 * * *", "rate(1 hour)"),
        ("0 */24 * * *", "rate(1 day)"),
        ("0 0 * * *", "cron(0 0 * * ? *)"),
        ("0 9 * * 1-5", "cron(0 9 ? * MON-FRI *)"),
        ("0 9 * * 0", "cron(0 9 ? * SUN *)"),
        ("0 9 * * 7", "cron(0 9 ? * SUN *)"),
        ("0 9 * * 0,6", "cron(0 9 ? * SUN,SAT *)"),
        ("0 9 * * 1,3,5", "cron(0 9 ? * MON,WED,FRI *)"),
        ("*/7 * * * *", "cron(0/7 * * * ? *)"),             # 7 does not divide 60: not a rate
        ("30 */2 * * *", "cron(30 0/2 * * ? *)"),           # not on the hour: not a rate
        ("0 */5 * * *", "cron(0 0/5 * * ? *)"),             # 5 does not divide 24
        ("* * * * *", "cron(* * * * ? *)"),
        ("*/5 9-17 * * 1-5", "cron(0/5 9-17 ? * MON-FRI *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("0 0 */2 * *", "cron(0 0 1/2 * ? *)"),
        ("15,45 6 1,15 JAN-MAR,DEC *", "cron(15,45 6 1,15 1-3,12 ? *)"),
        ("0 9 1-31 * 1-5", "cron(0 9 * * ? *)"),            # either rule with every day: daily
        ("0 12 * * */2", "cron(0 12 ? * SUN,TUE,THU,SAT *)"),
    ],
)
def test_unix_to_eventbridge(unix: str, aws: str) -> None:
    assert to_eventbridge(parse_schedule(unix)) == aws


def test_both_day_fields_restricted_cannot_convert_and_says_how_to_split() -> None:
    with pytest.raises(SpecValueError) as caught:
        to_eventbridge(parse_schedule("0 9 1 * 1-5"))
    error = caught.value
    assert "both restricted" in error.message and "either" in error.message
    assert "AWS cannot express" in error.message
    assert error.hint == 'split it into two triggers: "0 9 1 * *" and "0 9 * * 1-5"'
    assert error.offset == 4


def test_star_step_day_with_weekday_means_both_and_cannot_convert() -> None:
    # Vixie cron: a day field starting with * makes the two day fields ANDed.
    with pytest.raises(SpecValueError) as caught:
        to_eventbridge(parse_schedule("0 9 */2 * 1-5"))
    assert "matching both" in caught.value.message


# ---------------------------------------------------------------------------- next fire


def test_next_fire_is_strictly_after() -> None:
    schedule = parse_schedule("0 12 * * *")
    assert next_fire(schedule, at(2024, 5, 1, 12, 0)) == at(2024, 5, 2, 12, 0)
    assert next_fire(schedule, at(2024, 5, 1, 11, 59) + timedelta(seconds=59.9)) == at(2024, 5, 1, 12)


def test_next_fire_crosses_month_and_year_boundaries() -> None:
    assert fires("30 23 31 * *", at(2024, 1, 31, 23, 30), 3) == [
        at(2024, 3, 31, 23, 30), at(2024, 5, 31, 23, 30), at(2024, 7, 31, 23, 30)]
    assert fires("0 0 1 1 *", at(2023, 12, 31, 23, 59), 2) == [at(2024, 1, 1), at(2025, 1, 1)]
    assert fires("59 23 * * *", at(2023, 12, 31, 23, 59), 1) == [at(2024, 1, 1, 23, 59)]


def test_february_29th_waits_for_a_leap_year() -> None:
    assert fires("0 0 29 2 *", at(2024, 3, 1), 2) == [at(2028, 2, 29), at(2032, 2, 29)]
    assert fires("0 0 29 2 *", at(2096, 3, 1), 1) == [at(2104, 2, 29)]  # 2100 is not a leap year


def test_both_day_fields_restricted_fire_on_either() -> None:
    # January 2024: the 1st is a Monday; Wednesdays are the 3rd, 10th, 17th ...
    assert fires("0 0 1,15 * 3", at(2023, 12, 31), 5) == [
        at(2024, 1, 1), at(2024, 1, 3), at(2024, 1, 10), at(2024, 1, 15), at(2024, 1, 17)]


def test_a_day_field_starting_with_star_makes_both_required() -> None:
    # */2 odd days AND Mondays: January 2024 Mondays are 1, 8, 15, 22, 29.
    assert fires("0 0 */2 * 1", at(2023, 12, 31), 3) == [at(2024, 1, 1), at(2024, 1, 15),
                                                          at(2024, 1, 29)]


def test_day_of_week_restriction_alone() -> None:
    assert fires("0 9 * * 1-5", at(2024, 1, 5, 10), 2) == [at(2024, 1, 8, 9), at(2024, 1, 9, 9)]


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("cron(0 10 ? * 6#3 *)", at(2024, 1, 1), at(2024, 1, 19, 10)),    # 3rd Friday
        ("cron(0 10 ? * FRI#3 *)", at(2024, 1, 20), at(2024, 2, 16, 10)),
        ("cron(0 10 ? * 6L *)", at(2024, 1, 1), at(2024, 1, 26, 10)),     # last Friday
        ("cron(0 10 ? * L *)", at(2024, 1, 1), at(2024, 1, 6, 10)),       # L alone: Saturday
        ("cron(0 10 L * ? *)", at(2024, 2, 1), at(2024, 2, 29, 10)),      # last day (leap)
        ("cron(0 10 LW * ? *)", at(2024, 3, 1), at(2024, 3, 29, 10)),     # Mar 31 is a Sunday
        ("cron(0 10 1W * ? *)", at(2024, 6, 1), at(2024, 6, 3, 10)),      # Jun 1 is a Saturday
        ("cron(0 10 15W * ? *)", at(2024, 6, 1), at(2024, 6, 14, 10)),    # Jun 15 is a Saturday
        ("cron(0 10 30W * ? *)", at(2024, 6, 1), at(2024, 6, 28, 10)),    # Jun 30 is a Sunday
        ("cron(0 9 ? * 2 *)", at(2024, 1, 1, 10), at(2024, 1, 8, 9)),     # AWS 2 is Monday
        ("cron(0 0 1 1 ? 2030)", at(2024, 1, 1), at(2030, 1, 1)),
        ("cron(0/20 * * * ? *)", at(2024, 1, 1, 0, 41), at(2024, 1, 1, 1, 0)),
    ],
)
def test_next_fire_of_aws_cron(text: str, after: datetime, expected: datetime) -> None:
    assert next_fire(parse_schedule(text), after) == expected


def test_rates_count_from_the_unix_epoch() -> None:
    assert fires("rate(5 minutes)", at(2024, 1, 1, 0, 3), 2) == [at(2024, 1, 1, 0, 5),
                                                                at(2024, 1, 1, 0, 10)]
    assert next_fire(parse_schedule("rate(1 hour)"), at(2024, 1, 1, 7)) == at(2024, 1, 1, 8)
    assert next_fire(parse_schedule("rate(1 day)"), at(2024, 1, 1, 7)) == at(2024, 1, 2)
    assert next_fire(parse_schedule("rate(7 days)"), at(1970, 1, 1)) == at(1970, 1, 8)


def test_a_schedule_that_never_fires_again_gives_none() -> None:
    assert next_fire(parse_schedule("cron(0 0 * * ? 2020)"), at(2024, 1, 1)) is None
    assert next_fire(parse_schedule("cron(0 0 31 2 ? *)"), at(2024, 1, 1)) is None


def test_next_fire_reads_other_timezones_and_answers_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    result = next_fire(parse_schedule("0 12 * * *"), datetime(2024, 5, 1, 13, 30, tzinfo=plus_two))
    assert result == at(2024, 5, 1, 12) and result.tzinfo == UTC


def test_next_fire_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(parse_schedule("* * * * *"), datetime(2024, 1, 1))


# ---------------------------------------------------------------------------- properties

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@st.composite
def unix_field(draw, low: int, high: int, names: list[str] | None = None, name_base: int = 0) -> str:
    def value(v: int) -> str:
        if names and low <= v - name_base < len(names) + low and draw(st.booleans()):
            return names[v - name_base]
        return str(v)

    form = draw(st.sampled_from(["star", "star_step", "single", "range", "range_step", "list"]))
    a = draw(st.integers(low, high))
    b = draw(st.integers(a, high))
    step = draw(st.integers(1, high - low + 1))
    if form == "star":
        return "*"
    if form == "star_step":
        return f"*/{step}"
    if form == "single":
        return value(a)
    if form == "range":
        return f"{value(a)}-{value(b)}"
    if form == "range_step":
        return f"{value(a)}-{value(b)}/{step}"
    others = draw(st.lists(st.integers(low, high), min_size=1, max_size=3))
    return ",".join(value(v) for v in [a, *others])


@st.composite
def unix_schedules(draw) -> str:
    minute = draw(unix_field(0, 59))
    hour = draw(unix_field(0, 23))
    dom = draw(unix_field(1, 31))
    month = draw(unix_field(1, 12, _MONTHS, 1))
    dow = draw(unix_field(0, 7, _DAYS, 0))
    if draw(st.booleans()):  # keep plenty of the convertible shapes
        dom, dow = draw(st.sampled_from([(dom, "*"), ("*", dow)]))
    return f"{minute} {hour} {dom} {month} {dow}"


@st.composite
def rate_shaped(draw) -> str:
    if draw(st.booleans()):
        return f"*/{draw(st.sampled_from([1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]))} * * * *"
    minute = draw(st.sampled_from(["0", "*/60", str(draw(st.integers(0, 59)))]))
    return f"{minute} */{draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24]))} * * *"


@settings(max_examples=80, deadline=None)
@given(unix_schedules() | rate_shaped(),
       st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                    timezones=st.just(UTC)))
def test_eventbridge_form_fires_at_the_same_instants_over_a_week(text: str, start: datetime) -> None:
    try:
        unix = parse_schedule(text)
        aws = parse_schedule(to_eventbridge(unix))
    except SpecValueError:
        assume(False)  # never fires, or has no AWS form (both tested above)
        return
    week_end = start + timedelta(days=7)

    def instants(schedule) -> list[datetime]:
        found, moment = [], start
        while True:
            moment = next_fire(schedule, moment)
            if moment is None or (moment > week_end and len(found) >= 3):
                return found
            found.append(moment)

    assert instants(unix) == instants(aws)


_token = st.text(alphabet=st.sampled_from(list("0123456789*/,-?LW#aMONJ٣")), min_size=1, max_size=5)
_field_lists = st.lists(_token, min_size=5, max_size=6).map(" ".join)


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list("0123456789*/,-? LW#cronate()JANMONmsuhdy\t")),
               max_size=24)
       | st.text(max_size=24)
       | _field_lists
       | _field_lists.map(lambda fields: f"cron({fields})"))
def test_random_text_raises_only_spec_value_errors(text: str) -> None:
    try:
        schedule = parse_schedule(text)
    except SpecValueError as error:
        assert 0 <= error.offset <= max(len(text) - 1, 0)
        return
    try:
        to_eventbridge(schedule)
    except SpecValueError:
        pass
