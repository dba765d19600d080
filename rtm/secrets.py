"""Secrets in what rtm-console prints and logs: names and values that must be masked.

The one rule for every output: the audit log, `render` and `describe` (environment variables,
commands, health checks of containers and functions) and `config`. A value is masked when its
name reads like a credential (`DB_PASSWORD`, `API_TOKEN`, `MY_CREDS`, `TLS_KEY`, `apiKey`), when
it looks like one by itself (a private key, an AWS access key id, a JSON web token), and inside
commands: the password of `curl -u user:password`, the value of `-H "X-Api-Key: ..."`, of
`--password VALUE` and of `--password=VALUE`, and the password in a URL. Pure: no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
_SECRET_WORDS = frozenset({"key", "authorization", "cookie", "pwd", "creds", "cred", "pass", "pw"})
# curl's and wget's options whose value is `user:password` (only the password is masked).
_USER_PASSWORD_OPTIONS = frozenset({"-u", "--user", "-U", "--proxy-user", "--http-user"})
_MASK_STAND_IN = "RTMMASKEDVALUE"  # shell-safe while quoting, replaced by MASK after
_SHELL_OPERATOR = re.compile(r"^[();<>|&]+$")  # `&&`, `||`, `;`, `|`: written bare
_HEADER = re.compile(r"^([A-Za-z0-9-]+):\s*(\S.*)$", re.DOTALL)
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
    `Name: value` headers whose name is secret, passwords inside URLs, values that look secret
    by themselves, and in a list of words (a command) the value after an option that takes a
    secret (`--password x`, `-u user:x`).
    """
    if name is not None and is_secret_name(name) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, str) for item in value):
            return mask_command(value)
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return _mask_string(value)
    return value


def mask_command(words: Sequence[str]) -> list[str]:
    """The words of a command with the secrets they carry masked."""
    masked: list[str] = []
    for index, word in enumerate(words):
        option = words[index - 1] if index else ""
        if option in _USER_PASSWORD_OPTIONS and ":" in word:
            masked.append(word.split(":", 1)[0] + ":" + MASK)
        elif option.startswith("-") and "=" not in option and is_secret_name(option.lstrip("-")):
            masked.append(MASK)
        else:
            masked.append(_mask_string(word))
    return masked


def _mask_string(value: str) -> str:
    assignment = _ASSIGNMENT.match(value)
    if assignment and is_secret_name(assignment.group(1)):
        return f"{assignment.group(1)}={MASK}"
    header = _HEADER.match(value)
    if header and is_secret_name(header.group(1)):
        return f"{header.group(1)}: {MASK}"
    if looks_secret(value):
        return MASK
    value = _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), value)
    return _mask_shell_words(value) if " " in value else value


def _mask_shell_words(text: str) -> str:
    """A command written as one string (`sh -c "curl -u a:b ..."`), its secrets masked."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, ""
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: not a command
        return text
    if len(words) < 2:
        return text
    masked = mask_command(words)
    return shell_join(masked) if masked != words else text


def shell_join(words: Sequence[str]) -> str:
    """Words as a shell command line, quoted where needed, the mask left bare (a quoted '***'
    would read as a literal value)."""
    quoted = (word if _SHELL_OPERATOR.match(word) else shlex.quote(word.replace(MASK, _MASK_STAND_IN)) for word in words)
    return " ".join(quoted).replace(_MASK_STAND_IN, MASK)
