"""Kubernetes resource quantities (apimachinery `resource.Quantity`).

Grammar, as quantity.go documents it:

    <quantity>     ::= <signedNumber><suffix>
    <signedNumber> ::= <number> | "+"<number> | "-"<number>
    <number>       ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>       ::= <binarySI> | <decimalSI> | <decimalExponent>
    <binarySI>     ::= Ki | Mi | Gi | Ti | Pi | Ei                (powers of 1024)
    <decimalSI>    ::= n | u | m | "" | k | M | G | T | P | E      (powers of 1000)
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>  (whole exponent)

Values follow ParseQuantity: a non-zero value finer than one nano is rounded away from zero to
the next nano ("0.9n" is 1n), and a binary-suffixed value is capped at 2^63-1 ("9Ei").

Three deliberate differences from the Go scanner, all on inputs no one means:
- A number needs at least one digit. Go's scanner also reads ".", "-", "Mi" or "k" as zero;
  the documented grammar above does not, and neither do we.
- Exponents beyond +/-1000 are refused (Go wraps them through an int32).
- Whitespace is refused, as ParseQuantity does; the JSON decoder in front of it would trim it.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from rtm.errors import SpecValueError

DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}

MAX_EXPONENT = 1000
MAX_DIGITS = 1000  # longer numbers are no amount anyone means (and Python caps int parsing)
_BINARY_CAP = 2**63 - 1
INT64_MAX = 2**63 - 1
# The engines' API fields are signed 64-bit: Docker's NanoCpus (1 CPU = 1e9) and Memory (bytes),
# libvirt's memory in KiB. Larger amounts are refused at validate instead of failing at apply.
MAX_CPU_MILLIS = INT64_MAX // 10**6
MAX_MEMORY_BYTES = INT64_MAX
_NANO = 10**9
_DIGITS = frozenset("0123456789")

_SUFFIX_HELP = (
    "suffixes: n u m k M G T P E (powers of 1000), Ki Mi Gi Ti Pi Ei (powers of 1024), "
    "or an exponent such as e3 / E-3"
)
_PREFIX_NAMES = {
    "n": "nano", "u": "micro", "m": "milli", "k": "kilo", "M": "mega", "G": "giga",
    "T": "tera", "P": "peta", "E": "exa",
}
_BINARY_NAMES = {"Ki": "kibi", "Mi": "mebi", "Gi": "gibi", "Ti": "tebi", "Pi": "pebi", "Ei": "exbi"}


def parse_quantity(value: str | int | float) -> Fraction:
    """The exact value of a quantity, from a string or a YAML int/float."""
    return _parse(quantity_text(value))


def quantity_text(value: object) -> str:
    """The string a YAML scalar stands for: ints as written, floats by their shortest repr."""
    if isinstance(value, bool):
        raise SpecValueError(
            f"{str(value).lower()} is not a quantity: write a number such as 500m or 1Gi",
            hint="a YAML true/false is a boolean, not an amount",
        )
    if isinstance(value, int):
        if abs(value) >= 10**MAX_DIGITS:
            raise SpecValueError(f"that number is too large to be a quantity (over {MAX_DIGITS} digits)")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecValueError(f"{value} is not a quantity: it is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return value
    raise SpecValueError(
        f"a quantity must be a number or a string such as 500m or 1Gi, not {type(value).__name__}"
    )


@functools.lru_cache(maxsize=4096, typed=True)  # an inventory repeats a few sizes thousands of times
def cpu_millis(value: str | int | float) -> int:
    """A CPU amount in millicores, rounded up like Kubernetes' MilliValue ("0.5" -> 500)."""
    millis = math.ceil(_non_negative(value, "a CPU amount") * 1000)
    if millis > MAX_CPU_MILLIS:
        raise SpecValueError(
            f'"{quantity_text(value)}" is more CPU than an engine can be given (at most {MAX_CPU_MILLIS // 1000:,} CPUs)',
            hint="Docker counts CPUs in billionths in a 64-bit field; write the CPUs the workload needs, such as 2 or 500m",
        )
    return millis


@functools.lru_cache(maxsize=4096, typed=True)
def memory_bytes(value: str | int | float) -> int:
    """A memory amount in bytes, rounded up to a whole byte ("512Mi" -> 536870912)."""
    amount = math.ceil(_non_negative(value, "a memory amount", cap_binary=False))
    if amount > MAX_MEMORY_BYTES:
        raise SpecValueError(
            f'"{quantity_text(value)}" is more memory than an engine can be given (at most {MAX_MEMORY_BYTES:,} bytes, just under 8Ei)',
            hint="the engines count memory in a 64-bit field; write the memory the workload needs, such as 512Mi or 4Gi",
        )
    return amount


def format_cpu(millis: int) -> str:
    """The canonical quantity for a number of millicores: 500 -> "500m", 2000 -> "2"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_memory(n: int) -> str:
    """The canonical quantity for a number of bytes: the largest exact binary suffix
    ("512Mi", "4Gi"), else the largest exact decimal one ("1500k"), else plain bytes."""
    if n == 0:
        return "0"
    for suffix, power in sorted(BINARY_SUFFIXES.items(), key=lambda item: -item[1]):
        if n % (1 << power) == 0:
            return f"{n >> power}{suffix}"
    for suffix, exponent in sorted(DECIMAL_SUFFIXES.items(), key=lambda item: -item[1]):
        if exponent > 0 and n % 10**exponent == 0:
            return f"{n // 10**exponent}{suffix}"
    return str(n)


def _non_negative(value: str | int | float, what: str, cap_binary: bool = True) -> Fraction:
    amount = _parse(quantity_text(value), cap_binary)
    if amount < 0:
        raise SpecValueError(
            f'"{quantity_text(value)}" is negative: {what} cannot be below zero',
            hint="resources are requested or limited in positive amounts",
        )
    return amount


def _error(text: str, reason: str, offset: int, hint: str | None = _SUFFIX_HELP) -> SpecValueError:
    return SpecValueError(f'"{text}" is not a quantity: {reason}', hint=hint, offset=offset)


def _skip_digits(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _DIGITS:
        pos += 1
    return pos


def _parse(text: str, cap_binary: bool = True) -> Fraction:
    if text == "":
        raise _error(text, "it is empty", 0, hint="write an amount such as 500m, 0.5 or 1Gi")
    for index, char in enumerate(text):
        if char.isspace():
            raise _error(text, "it contains a space", index, hint="remove the spaces")

    start = 1 if text[0] in "+-" else 0
    int_end = _skip_digits(text, start)
    frac_start = frac_end = int_end
    if int_end < len(text) and text[int_end] == ".":
        frac_start = int_end + 1
        frac_end = _skip_digits(text, frac_start)
    if int_end == start and frac_end == frac_start:
        raise _missing_number(text, start)

    multiplier, binary = _interpret_suffix(text, frac_end)
    digits = text[start:int_end] + text[frac_start:frac_end]
    if len(digits) > MAX_DIGITS:
        raise _error(text, f"it has more than {MAX_DIGITS} digits", start, hint=None)
    magnitude = Fraction(int(digits), 10 ** (frac_end - frac_start)) * multiplier
    if (magnitude * _NANO).denominator != 1:
        magnitude = Fraction(math.ceil(magnitude * _NANO), _NANO)  # round up to the next nano
    if cap_binary and binary and magnitude > _BINARY_CAP:
        magnitude = Fraction(_BINARY_CAP)
    return -magnitude if text[0] == "-" else magnitude


def _missing_number(text: str, start: int) -> SpecValueError:
    rest = text[start:]
    if rest == "":
        return _error(text, "a sign needs a number after it", 0, hint=None)
    if rest[0] == ".":
        return _error(text, '"." needs digits, as in 0.5 or .5', start, hint=None)
    if rest in DECIMAL_SUFFIXES or rest in BINARY_SUFFIXES:
        return _error(text, f'a number must come before the suffix "{rest}", as in 512{rest}', start)
    return _error(text, "a quantity starts with a number, as in 500m, 0.5 or 1Gi", start)


def _interpret_suffix(text: str, start: int) -> tuple[Fraction, bool]:
    """The multiplier of the suffix starting at `start`, and whether it is binary."""
    suffix = text[start:]
    if suffix in DECIMAL_SUFFIXES:
        return Fraction(10) ** DECIMAL_SUFFIXES[suffix], False
    if suffix in BINARY_SUFFIXES:
        return Fraction(2 ** BINARY_SUFFIXES[suffix]), True
    exponent = _exponent(text, start)
    if exponent is not None:
        return Fraction(10) ** exponent, False
    raise _suffix_error(text, start)


def _exponent(text: str, start: int) -> int | None:
    """The exponent of an e/E suffix that runs to the end of `text`, or None."""
    suffix = text[start:]
    if len(suffix) < 2 or suffix[0] not in "eE":
        return None
    digits_at = 2 if suffix[1] in "+-" else 1
    if digits_at == len(suffix) or any(c not in _DIGITS for c in suffix[digits_at:]):
        return None
    exponent = int(suffix[1:]) if len(suffix) < 10 else MAX_EXPONENT + 1
    if abs(exponent) > MAX_EXPONENT:
        raise _error(text, f"the exponent is too large (at most {MAX_EXPONENT} either way)", start)
    return exponent


def _suffix_error(text: str, start: int) -> SpecValueError:
    """Explain why the suffix at `start` is not one, pointing at its first wrong character."""
    suffix = text[start:]
    explained = _byte_unit_error(text, start) or _case_error(text, start)
    if explained:
        return explained
    if suffix[0] == "i":
        return _error(text, '"i" alone is not a suffix: binary suffixes are Ki Mi Gi Ti Pi Ei', start)
    if suffix[0] == "e" or (suffix[0] == "E" and suffix[1] in "+-0123456789"):
        return _exponent_error(text, start)
    # The longest valid suffix at the front, then the first character that cannot follow it.
    known = [s for s in (*DECIMAL_SUFFIXES, *BINARY_SUFFIXES) if s and suffix.startswith(s)]
    head = max(known, key=len, default="")
    offset = start + len(head)
    char = text[offset]
    if char == ".":
        reason = "the suffix must come last" if head else "a number has only one decimal point"
        return _error(text, f'unexpected "." ({reason})', offset, hint=None)
    if char in "+-":
        return _error(text, f'unexpected "{char}": a sign may only come first', offset, hint=None)
    if head:
        return _error(text, f'unexpected "{char}" after the suffix "{head}": the suffix must come last',
                      offset)
    return _error(text, f'unknown suffix "{suffix}"', offset)


def _exponent_error(text: str, start: int) -> SpecValueError:
    suffix = text[start:]
    pos = start + 1
    if pos < len(text) and text[pos] in "+-":
        pos += 1
    end = _skip_digits(text, pos)
    if end > pos:
        return _error(text, f'unexpected "{text[end]}": an exponent is a whole number', end)
    if suffix == "e":
        reason = 'an exponent needs digits, as in 1e3 (the exa suffix is upper-case "E")'
    else:
        reason = f'the exponent "{suffix}" needs digits, as in 1e3 or 1E-3'
    return _error(text, reason, start)


_LOWERED_SUFFIXES = {s.lower() for s in (*DECIMAL_SUFFIXES, *BINARY_SUFFIXES) if s}


def _byte_unit_error(text: str, start: int) -> SpecValueError | None:
    """"1GB", "512MiB", "1kb": Kubernetes has no byte unit."""
    suffix = text[start:]
    unit = suffix[:-1]
    if suffix[-1] not in "bB" or (unit and unit.lower() not in _LOWERED_SUFFIXES):
        return None
    number = text[:start]
    if not unit:
        advice = f"write plain bytes: {number}"
    else:
        letter = "k" if unit[0] in "kK" else unit[0].upper()
        binary = "Ki" if letter == "k" else f"{letter}i"
        advice = f"write {number}{binary} (binary) or {number}{letter} (decimal)"
    # Point at the "B" when what precedes it is a real suffix ("512MiB"), else at the unit.
    unit_is_right = unit in BINARY_SUFFIXES or unit in DECIMAL_SUFFIXES and unit != "m"
    offset = start + len(unit) if unit_is_right else start
    return _error(text, f'quantities have no byte unit "{suffix}": {advice}', offset)


def _case_error(text: str, start: int) -> SpecValueError | None:
    """"1K", "0.1mi", "1g": a real suffix written in the wrong case."""
    suffix = text[start:]
    lower = suffix.lower()
    if suffix == "e" or lower not in _LOWERED_SUFFIXES:
        return None
    if len(suffix) == 2:
        canonical = suffix[0].upper() + "i"
        wrong = start + (0 if suffix[0] != canonical[0] else 1)
        return _error(text, f'the {_BINARY_NAMES[canonical]} suffix is written "{canonical}" '
                            f'(upper-case {canonical[0]}, lower-case i)', wrong)
    if lower in ("n", "u"):
        return _error(text, f'the {_PREFIX_NAMES[lower]} suffix is lower-case "{lower}"', start)
    if lower == "k":
        return _error(text, 'the kilo suffix is lower-case "k" (decimal) or "Ki" (binary)', start)
    upper = suffix.upper()
    return _error(text, f'the {_PREFIX_NAMES[upper]} suffix is upper-case "{upper}" (decimal) or '
                        f'"{upper}i" (binary)', start)
