"""Durations: Go's grammar, bare numbers as seconds, and the canonical short form."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtm.duration import format_duration, parse_duration
from rtm.errors import SpecValueError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1m30s", 90.0),
     ("1h30m", 5400.0), ("1h0m5s", 3605.0), ("1.5h", 5400.0), (".5s", 0.5), ("1.s", 1.0),
     ("250us", 0.00025), ("250µs", 0.00025), ("250μs", 0.00025), ("100ns", 1e-7),
     ("2h45m30.5s", 9930.5), ("0", 0.0), ("0s", 0.0),
     # bare numbers, from YAML or quoted, are seconds
     ("30", 30.0), ("1.5", 1.5), (30, 30.0), (0.25, 0.25), (0, 0.0)],
)
def test_durations_parse_to_seconds(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "offset", "words", "hint_words"),
    [
        ("", 0, "it is empty", "use s, m, h or ms"),
        ("-5s", 0, "cannot be negative", None),
        ("30sec", 2, 'unknown unit "sec", write s', "use s, m, h or ms"),
        ("2mins", 1, 'unknown unit "mins", write m', "use s, m, h or ms"),
        ("1d", 1, 'unknown unit "d", write h (1 day = 24h)', "use s, m, h or ms"),
        ("5M", 1, 'unknown unit "M", write m', "use s, m, h or ms"),
        ("1h30", 2, '"30" has no unit', "use s, m, h or ms"),
        ("s", 0, "a number must come before each unit", "use s, m, h or ms"),
        (".s", 0, '"." needs digits', "use s, m, h or ms"),
        ("1.2.3s", 3, "only one decimal point", "use s, m, h or ms"),
        ("1h 30m", 2, "contains a space", "without spaces"),
        (-1, 0, "cannot be negative", "use s, m, h or ms"),
        (float("inf"), 0, "not a finite number", "use s, m, h or ms"),
    ],
)
def test_bad_durations_point_at_the_first_wrong_character(
    value: str | float, offset: int, words: str, hint_words: str | None
) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_duration(value)
    assert caught.value.offset == offset
    assert words in caught.value.message
    if hint_words is None:
        assert caught.value.hint is None
    else:
        assert hint_words in caught.value.hint


@pytest.mark.parametrize("value", ["9" * 400 + "h", "9" * 5000, 10**400, 10**5000],
                         ids=["400-digits-h", "5000-digits", "int-400-digits", "int-5000-digits"])
def test_absurdly_long_durations_are_refused_cleanly(value: str | int) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_duration(value)
    assert "too long" in caught.value.message


@pytest.mark.parametrize("value", [True, False, None, ["30s"]])
def test_non_durations_are_refused(value: object) -> None:
    with pytest.raises(SpecValueError):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30s"), (300, "5m"), (5400, "1h30m"), (0.5, "500ms"), (0, "0s"), (3600, "1h"),
     (3605, "1h5s"), (90.5, "1m30.5s"), (1.5, "1.5s"), (0.0015, "1.5ms"), (2e-5, "20us"),
     (1e-9, "1ns"), (86400, "24h"), (0.1 + 0.2, "300ms")],
)
def test_format_duration_gives_the_short_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_format_duration_refuses_what_is_not_a_length_of_time(seconds: float) -> None:
    with pytest.raises(SpecValueError):
        format_duration(seconds)


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_gives_back_the_same_nanoseconds(nanos: int) -> None:
    seconds = float(Fraction(nanos, 10**9))
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=999),
                          st.sampled_from(["h", "m", "s", "ms", "us", "ns"])), min_size=1, max_size=4))
def test_combined_durations_add_up(parts: list[tuple[int, str]]) -> None:
    nanos_per = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
    text = "".join(f"{count}{unit}" for count, unit in parts)
    expected = Fraction(sum(count * nanos_per[unit] for count, unit in parts), 10**9)
    assert parse_duration(text) == float(expected)


@given(st.text(max_size=10))
def test_random_text_raises_only_spec_value_errors(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except SpecValueError as error:
        assert 0 <= error.offset <= max(len(text) - 1, 0)
