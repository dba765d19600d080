"""Secrets in what rtm-console prints and logs: names and values that must be masked.

Used by the audit log, `render` (environment variables of containers and functions) and
`config`. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
_SECRET_WORDS = frozenset({"key", "authorization", "cookie", "pwd"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),  # JSON web tokens
    re.compile(r"\b(ghp|gho|ghu|ghs|github_pat|glpat|xox[abpr])[_-][A-Za-z0-9_-]{10,}"),
    re.compile(r"^(Bearer|Basic)\s+\S+", re.IGNORECASE),
)
# A long unbroken run of mixed-case letters and digits reads as a generated secret (an AWS
# secret key, an API key). Lower-case hex (digests, ids) and UUIDs are left readable.
_RANDOM_LOOKING = re.compile(r"^[A-Za-z0-9+/=_-]{24,}$")
_ASSIGNMENT = re.compile(r"^(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:\s]*:)([^/@\s]+)(@)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """True for names such as password, db_password, apiKey, AWS_SECRET_ACCESS_KEY, tls.key."""
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_SUBSTRINGS):
        return True
    words = re.split(r"[^a-z0-9]+", _CAMEL_BOUNDARY.sub("_", name).lower())
    return any(word in _SECRET_WORDS for word in words)


def looks_secret(value: str) -> bool:
    """True for values that are secrets whatever they are called: private keys, access key ids,
    tokens, and long random-looking strings."""
    if any(pattern.search(value) for pattern in _SECRET_PATTERNS):
        return True
    return bool(
        _RANDOM_LOOKING.match(value)
        and not value.startswith(("/", "./", "~"))  # paths are not secrets
        and re.search(r"[a-z]", value)
        and re.search(r"[A-Z]", value)
        and re.search(r"[0-9]", value)
    )


def mask_secrets(value: Any, name: str | None = None) -> Any:
    """A copy of `value` with secrets replaced by `***`.

    Masked: values under secret-looking names (at any depth, so `environment.DB_PASSWORD` too),
    `NAME=value` strings whose name is secret (`--password=x`, Docker-style environment lists),
    passwords inside URLs, and values that look secret by themselves.
    """
    if name is not None and is_secret_name(name) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return _mask_string(value)
    return value


def _mask_string(value: str) -> str:
    assignment = _ASSIGNMENT.match(value)
    if assignment and is_secret_name(assignment.group(1)):
        return f"{assignment.group(1)}={MASK}"
    if looks_secret(value):
        return MASK
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), value)
