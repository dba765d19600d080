"""Kubernetes quantity grammar: apimachinery's own test cases, our messages, and properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtm.errors import SpecValueError
from rtm.quantity import (
    BINARY_SUFFIXES,
    DECIMAL_SUFFIXES,
    MAX_CPU_MILLIS,
    cpu_millis,
    format_cpu,
    format_memory,
    memory_bytes,
    parse_quantity,
)

F = Fraction

# Cases from apimachinery's quantity_test.go (TestQuantityParse), with their exact values.
VALID = [
    ("0", F(0)), ("0n", F(0)), ("0Ki", F(0)), ("0M", F(0)),
    ("1", F(1)), ("9", F(9)),
    ("1Ki", F(1024)), ("8Ki", F(8 * 1024)), ("7Mi", F(7 * 2**20)), ("6Gi", F(6 * 2**30)),
    ("5Ti", F(5 * 2**40)), ("4Pi", F(4 * 2**50)), ("3Ei", F(3 * 2**60)),
    ("5n", F(5, 10**9)), ("4u", F(4, 10**6)), ("3m", F(3, 1000)), ("8k", F(8000)),
    ("50k", F(50000)), ("7M", F(7 * 10**6)), ("6G", F(6 * 10**9)), ("5T", F(5 * 10**12)),
    ("2P", F(2 * 10**15)), ("1E", F(10**18)), ("12E", F(12 * 10**18)),
    ("1E-3", F(1, 1000)), ("1e3", F(1000)), ("1E6", F(10**6)), ("1e9", F(10**9)),
    ("1E18", F(10**18)), ("1e14", F(10**14)),
    ("100.035k", F(100035)), ("0.001", F(1, 1000)), ("0.0005k", F(1, 2)), ("0.5", F(1, 2)),
    ("0.00050k", F(1, 2)), ("0.5e0", F(1, 2)), ("0.5e-1", F(1, 20)), ("10.035M", F(10035000)),
    ("1.2e3", F(1200)), ("1.3E+6", F(1300000)), ("1.40e9", F(14 * 10**8)),
    ("1.7E18", F(17 * 10**17)), ("9.01", F(901, 100)), ("7.123456M", F(7123456)),
    ("2.5P", F(25 * 10**14)), ("1.01E", F(101 * 10**16)),
    ("100.035Ki", F(10243584, 100)), ("0.5Mi", F(2**19)), ("0.05Gi", F(536870912, 10)),
    (".001", F(1, 1000)), (".0001k", F(1, 10)), ("1.", F(1)), ("1.G", F(10**9)),
    # values finer than a nano round away from zero to the next nano
    ("3.001n", F(4, 10**9)), ("1.1E-9", F(2, 10**9)), ("0.0000000001", F(1, 10**9)),
    ("0.5e-9", F(1, 10**9)), ("0.9n", F(1, 10**9)), ("0.00000012345", F(124, 10**9)),
    ("0.000000000001Ki", F(2, 10**9)),
    # binary quantities are capped at 2^63-1
    ("9Ei", F(2**63 - 1)), ("9223372036854775807Ki", F(2**63 - 1)),
]


@pytest.mark.parametrize(("text", "value"), VALID)
def test_kubernetes_valid_quantities_have_their_exact_value(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value
    assert parse_quantity("+" + text) == value
    assert parse_quantity("-" + text) == -value


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("", 0, "it is empty"),
        ("1.1.M", 3, "only one decimal point"),
        ("1+1.0M", 1, "a sign may only come first"),
        ("0.1mi", 3, 'the mebi suffix is written "Mi"'),
        ("0.1am", 3, 'unknown suffix "am"'),
        ("aoeu", 0, "starts with a number"),
        (".5i", 2, '"i" alone is not a suffix'),
        ("1i", 1, '"i" alone is not a suffix'),
        ("-3.01i", 5, '"i" alone is not a suffix'),
        ("-3.01e-", 5, "needs digits"),
        (" 1", 0, "contains a space"),
        ("1 ", 1, "contains a space"),
        ("1K", 1, 'the kilo suffix is lower-case "k" (decimal) or "Ki" (binary)'),
        ("1KI", 2, 'the kibi suffix is written "Ki"'),
        ("2g", 1, 'the giga suffix is upper-case "G" (decimal) or "Gi" (binary)'),
        ("1e", 1, 'the exa suffix is upper-case "E"'),
        ("1e3x", 3, "an exponent is a whole number"),
        ("1Mi5", 3, 'after the suffix "Mi"'),
        ("1k.5", 2, "the suffix must come last"),
        ("512MiB", 5, "write 512Mi (binary) or 512M (decimal)"),
        ("1GB", 2, "write 1Gi (binary) or 1G (decimal)"),
        ("1KB", 1, "write 1Ki (binary) or 1k (decimal)"),
        ("1e1001", 1, "the exponent is too large"),
        # the documented grammar needs a digit; Go's scanner would read these as zero
        (".", 0, '"." needs digits'),
        ("-", 0, "a sign needs a number"),
        ("Mi", 0, 'a number must come before the suffix "Mi"'),
    ],
)
def test_invalid_quantities_point_at_the_first_wrong_character(text: str, offset: int, words: str) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_quantity(text)
    assert caught.value.offset == offset
    assert words in caught.value.message
    assert caught.value.message.startswith(f'"{text}" is not a quantity: ')


def test_upper_case_k_message_reads_as_documented() -> None:
    with pytest.raises(SpecValueError) as caught:
        parse_quantity("1K")
    assert caught.value.message == (
        '"1K" is not a quantity: the kilo suffix is lower-case "k" (decimal) or "Ki" (binary)')


@pytest.mark.parametrize(("value", "expected"), [(1, F(1)), (2, F(2)), (0.5, F(1, 2)),
                                                 (0.1, F(1, 10)), (1e-3, F(1, 1000)), (-4, F(-4))])
def test_yaml_numbers_are_read_as_written(value: int | float, expected: Fraction) -> None:
    # YAML `cpu: 0.5` arrives as a float; its shortest repr "0.5" is what the user wrote.
    assert parse_quantity(value) == expected


@pytest.mark.parametrize("value", [True, False, None, [1], float("inf"), float("nan")])
def test_non_quantities_from_yaml_are_refused(value: object) -> None:
    with pytest.raises(SpecValueError):
        parse_quantity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "millis"),
    [("0.5", 500), ("500m", 500), (0.5, 500), ("1000m", 1000), (1, 1000), ("2", 2000),
     ("1.5", 1500), ("1n", 1), ("0.1m", 1), ("1001u", 2), ("0", 0), ("1e-3", 1), ("1k", 1_000_000)],
)
def test_cpu_millis_rounds_up_to_the_next_milli(value: str | float, millis: int) -> None:
    assert cpu_millis(value) == millis


@pytest.mark.parametrize(
    ("value", "n"),
    [("512Mi", 536870912), ("1G", 10**9), ("1Gi", 2**30), ("0.5Ki", 512), ("1.5", 2), ("1m", 1),
     (1024, 1024), ("128974848", 128974848), ("129e6", 129000000), ("123Mi", 128974848)],
)
def test_memory_bytes_rounds_up_to_whole_bytes(value: str | int, n: int) -> None:
    assert memory_bytes(value) == n


@pytest.mark.parametrize("convert", [cpu_millis, memory_bytes])
def test_negative_resources_are_refused_with_a_reason(convert) -> None:
    assert parse_quantity("-1") == -1  # the grammar itself allows a sign
    with pytest.raises(SpecValueError) as caught:
        convert("-500m")
    assert "cannot be below zero" in caught.value.message


@pytest.mark.parametrize(("millis", "text"), [(500, "500m"), (2000, "2"), (1500, "1500m"), (0, "0"),
                                              (1, "1m")])
def test_format_cpu(millis: int, text: str) -> None:
    assert format_cpu(millis) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(536870912, "512Mi"), (4 * 2**30, "4Gi"), (1024, "1Ki"), (1536 * 2**20, "1536Mi"),
     (10**9, "1G"), (1_500_000, "1500k"), (1000, "1k"), (999, "999"), (0, "0"), (2**60, "1Ei"),
     (1024000, "1000Ki")],
)
def test_format_memory_prefers_the_largest_exact_binary_suffix(n: int, text: str) -> None:
    assert format_memory(n) == text


# ------------------------------------------------------------------------------ properties


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_format_memory_round_trips(n: int) -> None:
    assert memory_bytes(format_memory(n)) == n


@given(st.integers(min_value=0, max_value=MAX_CPU_MILLIS))
def test_format_cpu_round_trips(millis: int) -> None:
    assert cpu_millis(format_cpu(millis)) == millis


@pytest.mark.parametrize(
    ("value", "parse", "expected"),
    [("1e30", cpu_millis, "more CPU than an engine can be given"),
     (f"{MAX_CPU_MILLIS + 1}m", cpu_millis, "more CPU"),
     ("8Ei", memory_bytes, "more memory than an engine can be given"),
     ("99999999999999999999Ei", memory_bytes, "more memory"),
     ("1e19", memory_bytes, "more memory")],
)
def test_amounts_over_the_engines_64_bit_fields_are_refused(value: str, parse, expected: str) -> None:
    """Docker's NanoCpus and Memory are int64: "1e30" used to pass and fail at Docker, and a huge
    Ei memory was silently clamped to 2^63-1."""
    with pytest.raises(SpecValueError) as caught:
        parse(value)
    assert expected in caught.value.message


def test_the_largest_amounts_the_engines_take_still_pass() -> None:
    assert cpu_millis(f"{MAX_CPU_MILLIS}m") == MAX_CPU_MILLIS
    assert memory_bytes(str(2**63 - 1)) == 2**63 - 1
    assert memory_bytes("7Ei") == 7 * 2**60


_SUFFIXES = [s for s in DECIMAL_SUFFIXES] + list(BINARY_SUFFIXES)
_digits = st.text("0123456789", max_size=6)


@st.composite
def grammar_quantities(draw) -> tuple[str, Fraction]:
    """A string from the documented grammar, and its value computed independently (Decimal)."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole, fraction = draw(_digits), draw(_digits)
    form = draw(st.sampled_from(["int", "point", "trailing", "leading"]))
    if form == "int" or not fraction and not whole:
        whole = whole or "0"
        number = whole
    elif form == "leading":
        number = "." + (fraction or "0")
    elif form == "trailing":
        number = (whole or "0") + "."
    else:
        number = f"{whole or '0'}.{fraction or '0'}"
    kind = draw(st.sampled_from(["suffix", "exponent"]))
    cap = None
    if kind == "suffix":
        suffix = draw(st.sampled_from(_SUFFIXES))
        if suffix in BINARY_SUFFIXES:
            scale, cap = F(2) ** BINARY_SUFFIXES[suffix], F(2**63 - 1)  # Kubernetes caps binary
        else:
            scale = F(10) ** DECIMAL_SUFFIXES[suffix]
    else:
        exponent = draw(st.integers(min_value=-20, max_value=20))
        letter = draw(st.sampled_from("eE"))
        plus = draw(st.sampled_from(["", "+"])) if exponent >= 0 else ""
        suffix = f"{letter}{plus}{exponent}"
        scale = F(10) ** exponent
    magnitude = F(Decimal(number.rstrip(".") or "0")) * scale
    if cap is not None:
        magnitude = min(magnitude, cap)
    return f"{sign}{number}{suffix}", (-magnitude if sign == "-" else magnitude)


@given(grammar_quantities())
def test_every_grammar_string_parses_to_its_value(case: tuple[str, Fraction]) -> None:
    text, value = case
    parsed = parse_quantity(text)
    nano = F(1, 10**9)
    if (value / nano).denominator == 1:
        assert parsed == value
    else:  # finer than a nano: rounded away from zero by less than one nano
        assert abs(parsed) > abs(value) and abs(parsed) - abs(value) < nano


@given(grammar_quantities(), grammar_quantities())
def test_cpu_millis_is_monotone(first: tuple[str, Fraction], second: tuple[str, Fraction]) -> None:
    (low, _), (high, _) = sorted([first, second], key=lambda case: case[1])
    if 0 <= parse_quantity(low) and parse_quantity(high) * 1000 <= MAX_CPU_MILLIS:
        assert cpu_millis(low) <= cpu_millis(high)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("0123456789.+-eEinumkKMGTPB i\tx٣")), max_size=12)
       | st.text(max_size=12))
def test_random_text_raises_only_spec_value_errors_inside_the_string(text: str) -> None:
    try:
        parse_quantity(text)
    except SpecValueError as error:
        assert 0 <= error.offset <= max(len(text) - 1, 0)


@pytest.mark.parametrize("value", ["9" * 5000, 10**5000, "1e" + "9" * 5000],
                         ids=["digits", "yaml-int", "exponent"])
def test_absurdly_long_numbers_are_refused_cleanly(value: str | int) -> None:
    with pytest.raises(SpecValueError):
        parse_quantity(value)
