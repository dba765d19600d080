"""Grammars of configuration values: YAML nodes and environment strings -> typed values.

A parser takes a node and a `ParseContext` and returns a value or raises `InvalidValue` with the
offset of the offending character (and, for a value inside a list or mapping, its node), so
the loader can point at the exact line and column.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from console.config.settings import ListenAddress
from rtm import reader
from rtm.duration import parse_duration
from rtm.errors import SpecValueError


class InvalidValue(SpecValueError):
    """A value error that may point at a node inside the value (a list item, a nested key)."""

    def __init__(self, message: str, hint: str | None = None, offset: int = 0,
                 node: Node | None = None) -> None:
        super().__init__(message, hint, offset)
        self.node = node


@dataclass(frozen=True)
class ParseContext:
    """What a parser needs besides the node: where relative paths start and where ~ is."""

    base_dir: Path
    home: Path


# --- reading scalars ------------------------------------------------------------------------

STR_TAG = reader.STR_TAG


def describe_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        "tag:yaml.org,2002:null": "nothing (null)",
        "tag:yaml.org,2002:bool": "true/false",
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
        STR_TAG: "text",
    }.get(node.tag, "a value")


def scalar(node: Node, expected: str) -> Any:
    """The Python value of a scalar node, or an error naming what was expected."""
    if not isinstance(node, ScalarNode):
        raise InvalidValue(f"expected {expected}, got {describe_node(node)}")
    try:
        return reader.scalar_value(node)  # as the spec reader reads scalars
    except (ValueError, yaml.YAMLError):
        return node.value  # e.g. 2024-13-45 looks like a date to YAML but is not one


def text_value(node: Node, expected: str) -> str:
    value = scalar(node, expected)
    if not isinstance(value, str):
        raise InvalidValue(f"expected {expected}, got {describe_node(node)}")
    if not value.strip():
        raise InvalidValue(f"expected {expected}, got an empty string")
    return value.strip()


_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


def parse_listen_address(text: str) -> ListenAddress:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface). Errors carry the offset of the
    offending character."""
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InvalidValue("missing ']' after the IPv6 address", offset=len(text))
        host, rest, port_at = text[1:close], text[close + 1:], close + 2
        if not rest.startswith(":"):
            raise InvalidValue("expected ':PORT' after the IPv6 address", offset=close + 1)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidValue(f"{host!r} is not an IPv6 address", offset=1) from None
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise InvalidValue(
                f"{text!r} is not a listen address",
                f"write HOST:PORT, e.g. 127.0.0.1:{text if text.isdigit() else 9465}, "
                f"or :{text if text.isdigit() else 9465} for every interface",
            )
        if ":" in host:
            raise InvalidValue("an IPv6 address must be written in brackets", "e.g. [::1]:9465")
        port_at = len(host) + 1
        if host and not _is_host(host):
            bad = next((i for i, ch in enumerate(host) if not (ch.isalnum() or ch in ".-")), 0)
            raise InvalidValue(f"{host!r} is not a host name or IP address", offset=bad)
    if not port_text.isdigit():
        raise InvalidValue(f"port {port_text!r} is not a number", offset=port_at)
    port = int(port_text)
    if port > 65535:
        raise InvalidValue(f"port {port} is out of range (0-65535)", offset=port_at)
    return ListenAddress(host, port)


def _is_host(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        return False  # looks like an IPv4 address but is not one (e.g. 127.0.0.256)
    return bool(_HOSTNAME.match(host))


_DOCKER_SCHEMES = ("unix", "tcp", "ssh")


def parse_docker_host(text: str) -> str:
    """A Docker engine address: `unix:///PATH`, `tcp://HOST[:PORT]` or `ssh://[USER@]HOST[:PORT]`."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        hint = f"did you mean unix://{text}?" if text.startswith("/") else \
            "write unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST"
        raise InvalidValue(f"{text!r} is not a Docker host address", hint)
    if scheme not in _DOCKER_SCHEMES:
        hint = "Docker's TCP addresses are written tcp://HOST:PORT" if scheme in ("http", "https") \
            else did_you_mean(scheme, _DOCKER_SCHEMES) or "use unix://, tcp:// or ssh://"
        raise InvalidValue(f"unknown Docker host scheme {scheme!r}", hint)
    after_scheme = len(scheme) + 3
    if scheme == "unix":
        if not rest.startswith("/"):
            raise InvalidValue("unix:// needs an absolute socket path", "e.g. unix:///var/run/docker.sock",
                           offset=after_scheme)
        return text
    _check_netloc(text, after_scheme)
    return text


def _check_netloc(url: str, host_at: int) -> None:
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidValue(f"{url!r} names no host", offset=host_at)
    try:
        port = parts.port
    except ValueError:
        port_at = url.find(":", url.find(parts.hostname, host_at) + len(parts.hostname))
        raise InvalidValue("the port is not a number in 1-65535", offset=max(port_at + 1, host_at)) from None
    if port == 0:
        raise InvalidValue("the port is not a number in 1-65535", offset=url.rfind(":") + 1)


def _matching(pattern: str, what: str, hint: str) -> Callable[[str], str]:
    """A check that a text matches `pattern`: the text, else `'TEXT' is not WHAT` with the hint."""
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.match(text):
            raise InvalidValue(f"{text!r} is not {what}", hint)
        return text

    return check


# DRIVER[+TRANSPORT]://[USER@][HOST]/PATH
parse_libvirt_uri = _matching(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?://", "a libvirt URI", "e.g. qemu:///system or qemu+ssh://HOST/system")


def endpoint_name(address: str) -> str:
    """The name an endpoint gets when none is given: its host, or "local" for this machine."""
    return urlsplit(address).hostname or "local"


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- parsers: node -> value -----------------------------------------------------------------

Parser = Callable[[Node, ParseContext], Any]


def duration(minimum: float, zero_allowed: bool = False) -> Parser:
    def parse(node: Node, ctx: ParseContext) -> float:
        value = scalar(node, "a duration such as 2s or 0.5")
        seconds = parse_duration(value.strip() if isinstance(value, str) else value)
        if seconds < minimum and not (zero_allowed and seconds == 0):
            raise InvalidValue(
                f"{_format_seconds(seconds)} is below the lower bound of {_format_seconds(minimum)}",
                "use 0 to turn it off" if zero_allowed else None,
            )
        return seconds

    return parse


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def choice(choices: tuple[str, ...]) -> Parser:
    def parse(node: Node, ctx: ParseContext) -> str:
        value = text_value(node, "one of " + ", ".join(choices))
        if value not in choices:
            hint = did_you_mean(value, choices)
            raise InvalidValue(f"{value!r} is not one of {', '.join(choices)}", hint)
        return value

    return parse


def listen_address(node: Node, ctx: ParseContext) -> ListenAddress:
    value = scalar(node, "a listen address such as 127.0.0.1:9465")
    if isinstance(value, int) and not isinstance(value, bool):
        raise InvalidValue(f"{value} is not a listen address",
                       f"write HOST:PORT, e.g. 127.0.0.1:{value}, or :{value} for every interface")
    if not isinstance(value, str):
        raise InvalidValue(f"expected a listen address such as 127.0.0.1:9465, got {describe_node(node)}")
    return parse_listen_address(value)


def path_value(node: Node, ctx: ParseContext) -> Path:
    text = text_value(node, "a path")
    if text == "~" or text.startswith("~/"):
        path = ctx.home / text[2:]
    else:
        path = Path(text).expanduser()
    return Path(os.path.normpath(ctx.base_dir / path))


def boolean(node: Node, ctx: ParseContext) -> bool:
    value = scalar(node, "true or false")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUTHY + _FALSY:
        return value.strip().lower() in _TRUTHY
    raise InvalidValue(f"expected true or false, got {describe_node(node)}")


_TRUTHY = ("true", "yes", "on", "1")
_FALSY = ("false", "no", "off", "0")


def fraction(node: Node, ctx: ParseContext) -> float:
    value = scalar(node, "a number between 0 and 1")
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise InvalidValue(f"expected a number between 0 and 1, got {describe_node(node)}")
    if not 0 <= number < 1:
        raise InvalidValue(f"{number:g} is outside 0 to 1 (exclusive)", "the usual value is 0.1 (10 %)")
    return number


def http_url(node: Node, ctx: ParseContext) -> str:
    text = text_value(node, "a URL such as http://127.0.0.1:5000")
    scheme = text.partition("://")[0]
    if scheme not in ("http", "https") or "://" not in text:
        raise InvalidValue(f"{text!r} is not an http:// or https:// URL", "e.g. http://127.0.0.1:5000")
    _check_netloc(text, len(scheme) + 3)
    return text


_ROLE_ARN = _matching(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", "an IAM role ARN",
                      "e.g. arn:aws:iam::123456789012:role/lambda-exec")


def role_arn(node: Node, ctx: ParseContext) -> str:
    return _ROLE_ARN(text_value(node, "an IAM role ARN"))


aws_region = _matching(r"^[a-z]{2}(-[a-z]+)+-\d+$", "an AWS region", "regions look like us-east-1 or eu-west-3")


def aws_profile(text: str) -> str:
    if any(ch.isspace() for ch in text):
        raise InvalidValue(f"profile name {text!r} contains white space")
    return text


def string_list(check: Callable[[str], str], what: str) -> Parser:
    """A list of strings; a single string is split on commas (the environment's form)."""

    def parse(node: Node, ctx: ParseContext) -> tuple[str, ...]:
        items: list[str] = []
        for item_node, text, offset in list_items(node, what):
            try:
                items.append(check(text))
            except InvalidValue as exc:
                raise InvalidValue(exc.message, exc.hint, exc.offset + offset, item_node) from None
        return tuple(items)

    return parse


def list_items(node: Node, what: str) -> Iterator[tuple[Node, str, int]]:
    """(node, text, offset of the text inside the node) for each item of a list-or-CSV value."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            yield item, text_at(item, what), 0
        return
    value = scalar(node, f"a list of {what}")
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidValue(f"expected a list of {what}, got {describe_node(node)}")
    position = 0
    for piece in value.split(","):
        stripped = piece.strip()
        if stripped:
            yield node, stripped, position + piece.index(stripped)
        position += len(piece) + 1


def text_at(node: Node, what: str) -> str:
    try:
        return text_value(node, what)
    except InvalidValue as exc:
        raise InvalidValue(exc.message, exc.hint, exc.offset, node) from None


def command(node: Node, ctx: ParseContext) -> tuple[str, ...]:
    if isinstance(node, SequenceNode):
        words = tuple(text_at(item, "a command word") for item in node.value)
    else:
        text = text_value(node, "a command")
        try:
            words = tuple(shlex.split(text))
        except ValueError as exc:
            raise InvalidValue(f"cannot split the command: {exc}") from None
    if not words:
        raise InvalidValue("the command is empty")
    return words


def located(make: Callable[[], Any], node: Node, offset: int) -> Any:
    """Run `make`, pinning any value error it raises to `node` (plus `offset` characters)."""
    try:
        return make()
    except InvalidValue as exc:
        if exc.node is not None:
            raise
        raise InvalidValue(exc.message, exc.hint, exc.offset + offset, node) from None
    except SpecValueError as exc:
        raise InvalidValue(exc.message, exc.hint, exc.offset + offset, node) from None


def mapping_entries(node: Node, allowed: tuple[str, ...], what: str,
             required: tuple[str, ...] = ()) -> dict[str, tuple[Node, Node]]:
    """The entries of a mapping node by key, checking names, duplicates and required keys."""
    if not isinstance(node, MappingNode):
        raise InvalidValue(f"expected {what} (a mapping with {', '.join(allowed)}), got {describe_node(node)}",
                       node=node)
    entries: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = scalar(key_node, "a key") if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str):
            raise InvalidValue("keys must be names", node=key_node)
        if key not in allowed:
            raise InvalidValue(f"unknown key {key!r} in {what}",
                           did_you_mean(key, allowed) or "known keys: " + ", ".join(allowed),
                           node=key_node)
        if key in entries:
            raise InvalidValue(f"duplicate key {key!r}", node=key_node)
        entries[key] = (key_node, value_node)
    for key in required:
        if key not in entries:
            raise InvalidValue(f"{what} needs '{key}'", node=node)
    return entries


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
