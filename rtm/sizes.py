"""The size grammars of the tuned tools themselves (not Kubernetes quantities).

- JVM (-Xmx, -Xms): whole number + optional k/m/g/t, any case, powers of 1024; bare = bytes.
- Redis (maxmemory, redis.conf): 1k = 1000, 1kb = 1024, 1m = 10^6, 1mb = 1024^2, 1g = 10^9,
  1gb = 1024^3, any case; bare digits or a "b" = bytes (Redis' memtoull).
- MySQL option sizes (query_cache_size, innodb_buffer_pool_size): whole number + optional
  K/M/G/T/P/E, any case, powers of 1024; bare = bytes.

So "256m" is 256 MiB to MySQL and the JVM, 256 000 000 bytes to Redis, and 0.256 to Kubernetes.
A YAML integer is a number of bytes in every grammar.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtm.errors import SpecValueError

_KIB = 1024
_MAX_DIGITS = 30  # 10^30 bytes is far beyond any machine


@dataclass(frozen=True)
class SizeGrammar:
    tool: str                    # "JVM", "Redis", "MySQL"
    units: dict[str, int]        # lower-case unit -> bytes; "" is bare bytes
    example: str
    help: str


JVM = SizeGrammar(
    tool="JVM",
    units={"": 1, "k": _KIB, "m": _KIB**2, "g": _KIB**3, "t": _KIB**4},
    example="2g",
    help="a whole number with an optional k, m, g or t (powers of 1024), as in -Xmx2g",
)
REDIS = SizeGrammar(
    tool="Redis",
    units={"": 1, "b": 1, "k": 1000, "kb": _KIB, "m": 1000**2, "mb": _KIB**2,
           "g": 1000**3, "gb": _KIB**3},
    example="1gb",
    help="1k = 1000, 1kb = 1024, 1m = 10^6, 1mb = 1024^2, 1g = 10^9, 1gb = 1024^3 bytes",
)
MYSQL = SizeGrammar(
    tool="MySQL",
    units={"": 1, "k": _KIB, "m": _KIB**2, "g": _KIB**3, "t": _KIB**4, "p": _KIB**5, "e": _KIB**6},
    example="256M",
    help="a whole number with an optional K, M, G or T (powers of 1024), as in 256M",
)

_JVM_FORMAT_UNITS = (("t", _KIB**4), ("g", _KIB**3), ("m", _KIB**2), ("k", _KIB))


def jvm_size_bytes(value: str | int) -> int:
    """Bytes of a JVM heap size such as "2g" (-Xmx2g = 2 x 1024^3)."""
    return parse_size(value, JVM)


def redis_size_bytes(value: str | int) -> int:
    """Bytes of a Redis memory size such as "1g" (10^9) or "1gb" (1024^3)."""
    return parse_size(value, REDIS)


def mysql_size_bytes(value: str | int) -> int:
    """Bytes of a MySQL option size such as "256M" (256 x 1024^2)."""
    return parse_size(value, MYSQL)


def format_jvm_size(n: int) -> str:
    """The -Xmx form of a byte count, in its largest exact unit: 2147483648 -> "2g"."""
    if n < 0:
        raise SpecValueError(f"{n} is not a JVM size: sizes cannot be negative")
    for letter, unit in _JVM_FORMAT_UNITS:
        if n and n % unit == 0:
            return f"{n // unit}{letter}"
    return str(n)


def parse_size(value: object, grammar: SizeGrammar) -> int:
    """Bytes of `value` read in `grammar`; SpecValueError with the offending offset otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecValueError(
            f"a {grammar.tool} size must be a whole number or a string such as "
            f'"{grammar.example}", not {type(value).__name__}', hint=grammar.help)
    if isinstance(value, int):
        if value < 0:
            raise _error(str(value), grammar, "sizes cannot be negative", 0)
        return value
    if isinstance(value, float):
        raise _error(repr(value), grammar, "it must be a whole number", 0)
    return _parse_text(value, grammar)


def _error(text: str, grammar: SizeGrammar, reason: str, offset: int) -> SpecValueError:
    return SpecValueError(f'"{text}" is not a {grammar.tool} size: {reason}',
                          hint=grammar.help, offset=offset)


def _parse_text(text: str, grammar: SizeGrammar) -> int:
    if text == "":
        raise _error(text, grammar, "it is empty", 0)
    for index, char in enumerate(text):
        if char.isspace():
            raise _error(text, grammar, "it contains a space", index)
    if text[0] == "-":
        raise _error(text, grammar, "sizes cannot be negative", 0)
    digits_end = 0
    while digits_end < len(text) and text[digits_end] in "0123456789":
        digits_end += 1
    if digits_end == 0:
        raise _error(text, grammar, f'it must start with a whole number, as in "{grammar.example}"', 0)
    if digits_end > _MAX_DIGITS:
        raise _error(text, grammar, "the number is too large", 0)
    unit = text[digits_end:]
    if unit.lower() in grammar.units:
        return int(text[:digits_end]) * grammar.units[unit.lower()]
    if unit[0] in ".,":
        raise _error(text, grammar, f"{grammar.tool} takes whole numbers only: use a smaller unit",
                     digits_end)
    # "2gb" for the JVM or MySQL: a real unit followed by a byte "b" those tools do not take.
    if unit[-1] in "bB" and unit[:-1].lower() in grammar.units:
        reason = f'write "{text[:-1]}": {grammar.tool} sizes have no "b"'
        raise _error(text, grammar, reason, len(text) - 1)
    raise _error(text, grammar, f'unknown unit "{unit}"', digits_end)
