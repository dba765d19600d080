"""The tuned tools' own size grammars: JVM, Redis and MySQL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtm.errors import SpecValueError
from rtm.sizes import format_jvm_size, jvm_size_bytes, mysql_size_bytes, redis_size_bytes

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("text", "n"),
    [("2g", 2 * GIB), ("2G", 2 * GIB), ("512m", 512 * MIB), ("512M", 512 * MIB), ("64k", 64 * KIB),
     ("64K", 64 * KIB), ("1t", TIB), ("1T", TIB), ("4096", 4096), (1073741824, GIB), ("0", 0)],
)
def test_jvm_sizes_are_powers_of_1024(text: str | int, n: int) -> None:
    assert jvm_size_bytes(text) == n


@pytest.mark.parametrize(
    ("text", "n"),
    [("1k", 1000), ("1kb", 1024), ("1m", 10**6), ("1mb", MIB), ("1g", 10**9), ("1gb", GIB),
     ("1G", 10**9), ("1GB", GIB), ("1Gb", GIB), ("2MB", 2 * MIB), ("100", 100), ("100b", 100),
     (4096, 4096)],
)
def test_redis_sizes_distinguish_k_from_kb(text: str | int, n: int) -> None:
    assert redis_size_bytes(text) == n


@pytest.mark.parametrize(
    ("text", "n"),
    [("256m", 256 * MIB), ("256M", 256 * MIB), ("16K", 16 * KIB), ("16k", 16 * KIB), ("1G", GIB),
     ("2T", 2 * TIB), ("1048576", MIB), (8 * MIB, 8 * MIB)],
)
def test_mysql_sizes_are_powers_of_1024(text: str | int, n: int) -> None:
    assert mysql_size_bytes(text) == n


def test_the_same_text_means_different_amounts_in_each_tool() -> None:
    # The reason these are not Kubernetes quantities, where "256m" would be 0.256.
    assert jvm_size_bytes("256m") == mysql_size_bytes("256m") == 256 * MIB
    assert redis_size_bytes("256m") == 256 * 10**6


@pytest.mark.parametrize(
    ("parse", "value", "offset", "words"),
    [
        (jvm_size_bytes, "2gb", 2, 'write "2g": JVM sizes have no "b"'),
        (jvm_size_bytes, "1.5g", 1, "whole numbers only"),
        (jvm_size_bytes, "2Gi", 1, 'unknown unit "Gi"'),
        (jvm_size_bytes, "-1g", 0, "cannot be negative"),
        (jvm_size_bytes, "g", 0, "must start with a whole number"),
        (jvm_size_bytes, "", 0, "it is empty"),
        (jvm_size_bytes, "2 g", 1, "contains a space"),
        (jvm_size_bytes, 2.5, 0, "whole number"),
        (jvm_size_bytes, -5, 0, "cannot be negative"),
        (redis_size_bytes, "1tb", 1, 'unknown unit "tb"'),
        (redis_size_bytes, "1.5gb", 1, "whole numbers only"),
        (redis_size_bytes, "1gib", 1, 'unknown unit "gib"'),
        (mysql_size_bytes, "256MB", 4, 'write "256M": MySQL sizes have no "b"'),
        (mysql_size_bytes, "256Mi", 3, 'unknown unit "Mi"'),
    ],
)
def test_bad_sizes_point_at_the_first_wrong_character(parse, value, offset: int, words: str) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse(value)
    assert caught.value.offset == offset
    assert words in caught.value.message
    assert caught.value.hint  # each grammar explains itself


@pytest.mark.parametrize("parse", [jvm_size_bytes, redis_size_bytes, mysql_size_bytes])
@pytest.mark.parametrize("value", [True, None, ["1g"]])
def test_non_sizes_are_refused(parse, value: object) -> None:
    with pytest.raises(SpecValueError):
        parse(value)


@pytest.mark.parametrize(
    ("n", "text"),
    [(2147483648, "2g"), (1536 * MIB, "1536m"), (TIB, "1t"), (3 * KIB, "3k"), (1000, "1000"),
     (0, "0"), (GIB + KIB, "1048577k")],
)
def test_format_jvm_size_uses_the_largest_exact_unit(n: int, text: str) -> None:
    assert format_jvm_size(n) == text


def test_format_jvm_size_refuses_negative() -> None:
    with pytest.raises(SpecValueError):
        format_jvm_size(-1)


@given(st.integers(min_value=0, max_value=2**50))
def test_format_jvm_size_round_trips(n: int) -> None:
    assert jvm_size_bytes(format_jvm_size(n)) == n


@given(st.text(max_size=10))
def test_random_text_raises_only_spec_value_errors(text: str) -> None:
    for parse in (jvm_size_bytes, redis_size_bytes, mysql_size_bytes):
        try:
            assert parse(text) >= 0
        except SpecValueError as error:
            assert 0 <= error.offset <= max(len(text) - 1, 0)


@pytest.mark.parametrize("parse", [jvm_size_bytes, redis_size_bytes, mysql_size_bytes])
def test_absurdly_long_numbers_are_refused_cleanly(parse) -> None:
    with pytest.raises(SpecValueError) as caught:
        parse("9" * 5000 + "k")
    assert "too large" in caught.value.message
