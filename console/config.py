"""rtm-console's configuration: one YAML file, environment variables and flags.

Where each setting comes from, highest first:

    command-line flag  >  RTM_* environment variable  >  config file  >  default

The file is `--config`, else `RTM_CONFIG`, else `$XDG_CONFIG_HOME/rtm-console/config.yaml`
(`~/.config/...` without XDG_CONFIG_HOME); a missing file at the default place means defaults,
a missing file that was named explicitly is an error. Every key is listed once, in `KEYS`, with
its type, default, environment variable and flag; docs/config.md documents each of them.

The file is validated like a spec: every problem is reported as `PATH:LINE:COL: error:
MESSAGE` with a hint where one helps (a misspelt key gets "did you mean ..."), and all
problems are reported together in one `ConfigError`. `load_config` returns a frozen `Config`
that also knows where each value came from; `render_config` prints it for `rtm-console config`
with secrets masked.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from console.datadir import APP_NAME, default_data_dir
from console.gate import MASK, is_secret_name, mask_secrets
from rtm.secrets import shell_join
from rtm import reader
from rtm.duration import parse_duration
from rtm.errors import SpecValueError

THEMES = ("dark", "light", "high-contrast")
FUNCTION_TARGETS = ("aws", "local", "auto")
MIN_REFRESH_SECONDS = 0.5
MIN_KIOSK_CYCLE_SECONDS = 1.0
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_LIBVIRT_URI = "qemu:///system"


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListenAddress:
    """A `HOST:PORT` to listen on. An empty host means every interface; port 0 means any."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsSettings:
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify: bool = True


@dataclass(frozen=True)
class DockerEndpoint:
    name: str
    host: str
    tls: TlsSettings | None = None


@dataclass(frozen=True)
class LibvirtConnection:
    name: str
    uri: str


@dataclass(frozen=True)
class DockerSettings:
    endpoints: tuple[DockerEndpoint, ...]


@dataclass(frozen=True)
class LibvirtSettings:
    uris: tuple[LibvirtConnection, ...]
    shutdown_timeout: float


@dataclass(frozen=True)
class AwsSettings:
    regions: tuple[str, ...]
    profiles: tuple[str, ...]
    endpoint_url: str | None
    role_arn: str | None


@dataclass(frozen=True)
class FunctionsSettings:
    target: Literal["aws", "local"]  # resolved: "auto" never appears here
    requested_target: str  # what was asked for: aws, local or auto
    target_reason: str  # why `target` is what it is
    gateway_listen: ListenAddress


@dataclass(frozen=True)
class ExporterSettings:
    listen: ListenAddress
    web_config: Path | None
    console_listen: ListenAddress | None


@dataclass(frozen=True)
class KioskSettings:
    enabled: bool
    cycle_interval: float  # seconds; 0 = stay on one pane
    lock: bool


@dataclass(frozen=True)
class LoadBalancerSettings:
    upstream_path: Path | None
    reload_command: tuple[str, ...] | None


@dataclass(frozen=True)
class AutoscalerSettings:
    tolerance: float


@dataclass(frozen=True)
class ConsoleSettings:
    shell: tuple[str, ...] = ("/bin/sh",)  # what `e` runs in a container
    shell_idle_timeout: float = 900.0  # seconds without a key or output before a shell closes; 0 = never


@dataclass(frozen=True)
class Source:
    """Where a value came from: a flag, an environment variable, the file (with line) or the
    default (with what it was derived from, e.g. DOCKER_HOST)."""

    kind: Literal["flag", "env", "file", "default"]
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "default":
            return f"default ({self.detail})" if self.detail else "default"
        return f"{self.kind} {self.detail}"


@dataclass(frozen=True)
class Config:
    refresh_interval: float
    theme: str
    specs_dir: Path
    data_dir: Path
    docker: DockerSettings
    libvirt: LibvirtSettings
    aws: AwsSettings
    functions: FunctionsSettings
    exporter: ExporterSettings
    kiosk: KioskSettings
    load_balancer: LoadBalancerSettings
    autoscaler: AutoscalerSettings
    file: Path | None  # the config file that was read, None when there was none
    file_source: str  # how the file was chosen, e.g. "flag --config", "default location"
    sources: Mapping[str, Source] = field(compare=False, repr=False)
    console: ConsoleSettings = ConsoleSettings()

    def get(self, key: str) -> Any:
        """A value by its dotted key, e.g. `config.get("exporter.listen")`."""
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

    def source(self, key: str) -> Source:
        return self.sources[key]


# --- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFinding:
    """One problem in the configuration. `line`/`column` count from 1 and are None for values
    that did not come from the file (environment variables, flags)."""

    path: str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.column}"
        text = f"{where}: error: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(Exception):
    def __init__(self, findings: list[ConfigFinding] | tuple[ConfigFinding, ...]) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(str(finding) for finding in self.findings))


class _Invalid(SpecValueError):
    """A value error that may point at a node inside the value (a list item, a nested key)."""

    def __init__(self, message: str, hint: str | None = None, offset: int = 0,
                 node: Node | None = None) -> None:
        super().__init__(message, hint, offset)
        self.node = node


@dataclass(frozen=True)
class _Context:
    """What a parser needs besides the node: where relative paths start and where ~ is."""

    base_dir: Path
    home: Path


# --- reading scalars ------------------------------------------------------------------------

_STR_TAG = "tag:yaml.org,2002:str"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return {
        "tag:yaml.org,2002:null": "nothing (null)",
        "tag:yaml.org,2002:bool": "true/false",
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
        _STR_TAG: "text",
    }.get(node.tag, "a value")


def _scalar(node: Node, expected: str) -> Any:
    """The Python value of a scalar node, or an error naming what was expected."""
    if not isinstance(node, ScalarNode):
        raise _Invalid(f"expected {expected}, got {_describe(node)}")
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except (ValueError, yaml.YAMLError):
        return node.value  # e.g. 2024-13-45 looks like a date to YAML but is not one


def _text(node: Node, expected: str) -> str:
    value = _scalar(node, expected)
    if not isinstance(value, str):
        raise _Invalid(f"expected {expected}, got {_describe(node)}")
    if not value.strip():
        raise _Invalid(f"expected {expected}, got an empty string")
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
            raise _Invalid("missing ']' after the IPv6 address", offset=len(text))
        host, rest, port_at = text[1:close], text[close + 1:], close + 2
        if not rest.startswith(":"):
            raise _Invalid("expected ':PORT' after the IPv6 address", offset=close + 1)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"{host!r} is not an IPv6 address", offset=1) from None
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise _Invalid(
                f"{text!r} is not a listen address",
                f"write HOST:PORT, e.g. 127.0.0.1:{text if text.isdigit() else 9465}, "
                f"or :{text if text.isdigit() else 9465} for every interface",
            )
        if ":" in host:
            raise _Invalid("an IPv6 address must be written in brackets", "e.g. [::1]:9465")
        port_at = len(host) + 1
        if host and not _is_host(host):
            bad = next((i for i, ch in enumerate(host) if not (ch.isalnum() or ch in ".-")), 0)
            raise _Invalid(f"{host!r} is not a host name or IP address", offset=bad)
    if not port_text.isdigit():
        raise _Invalid(f"port {port_text!r} is not a number", offset=port_at)
    port = int(port_text)
    if port > 65535:
        raise _Invalid(f"port {port} is out of range (0-65535)", offset=port_at)
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
        raise _Invalid(f"{text!r} is not a Docker host address", hint)
    if scheme not in _DOCKER_SCHEMES:
        hint = "Docker's TCP addresses are written tcp://HOST:PORT" if scheme in ("http", "https") \
            else _did_you_mean(scheme, _DOCKER_SCHEMES) or "use unix://, tcp:// or ssh://"
        raise _Invalid(f"unknown Docker host scheme {scheme!r}", hint)
    after_scheme = len(scheme) + 3
    if scheme == "unix":
        if not rest.startswith("/"):
            raise _Invalid("unix:// needs an absolute socket path", "e.g. unix:///var/run/docker.sock",
                           offset=after_scheme)
        return text
    _check_netloc(text, after_scheme)
    return text


def _check_netloc(url: str, host_at: int) -> None:
    parts = urlsplit(url)
    if not parts.hostname:
        raise _Invalid(f"{url!r} names no host", offset=host_at)
    try:
        port = parts.port
    except ValueError:
        port_at = url.find(":", url.find(parts.hostname, host_at) + len(parts.hostname))
        raise _Invalid("the port is not a number in 1-65535", offset=max(port_at + 1, host_at)) from None
    if port == 0:
        raise _Invalid("the port is not a number in 1-65535", offset=url.rfind(":") + 1)


_LIBVIRT_URI = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?://")


def parse_libvirt_uri(text: str) -> str:
    """A libvirt connection URI: `DRIVER[+TRANSPORT]://[USER@][HOST]/PATH`."""
    if not _LIBVIRT_URI.match(text):
        raise _Invalid(f"{text!r} is not a libvirt URI", "e.g. qemu:///system or qemu+ssh://HOST/system")
    return text


def _endpoint_name(address: str) -> str:
    """The name an endpoint gets when none is given: its host, or "local" for this machine."""
    return urlsplit(address).hostname or "local"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- parsers: node -> value -----------------------------------------------------------------

Parser = Callable[[Node, _Context], Any]


def _duration(minimum: float, zero_allowed: bool = False) -> Parser:
    def parse(node: Node, ctx: _Context) -> float:
        value = _scalar(node, "a duration such as 2s or 0.5")
        seconds = parse_duration(value.strip() if isinstance(value, str) else value)
        if seconds < minimum and not (zero_allowed and seconds == 0):
            raise _Invalid(
                f"{_format_seconds(seconds)} is below the lower bound of {_format_seconds(minimum)}",
                "use 0 to turn it off" if zero_allowed else None,
            )
        return seconds

    return parse


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def _enum(choices: tuple[str, ...]) -> Parser:
    def parse(node: Node, ctx: _Context) -> str:
        value = _text(node, "one of " + ", ".join(choices))
        if value not in choices:
            hint = _did_you_mean(value, choices)
            raise _Invalid(f"{value!r} is not one of {', '.join(choices)}", hint)
        return value

    return parse


def _listen(node: Node, ctx: _Context) -> ListenAddress:
    value = _scalar(node, "a listen address such as 127.0.0.1:9465")
    if isinstance(value, int) and not isinstance(value, bool):
        raise _Invalid(f"{value} is not a listen address",
                       f"write HOST:PORT, e.g. 127.0.0.1:{value}, or :{value} for every interface")
    if not isinstance(value, str):
        raise _Invalid(f"expected a listen address such as 127.0.0.1:9465, got {_describe(node)}")
    return parse_listen_address(value)


def _path(node: Node, ctx: _Context) -> Path:
    text = _text(node, "a path")
    if text == "~" or text.startswith("~/"):
        path = ctx.home / text[2:]
    else:
        path = Path(text).expanduser()
    return Path(os.path.normpath(ctx.base_dir / path))


def _bool(node: Node, ctx: _Context) -> bool:
    value = _scalar(node, "true or false")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUTHY + _FALSY:
        return value.strip().lower() in _TRUTHY
    raise _Invalid(f"expected true or false, got {_describe(node)}")


_TRUTHY = ("true", "yes", "on", "1")
_FALSY = ("false", "no", "off", "0")


def _fraction(node: Node, ctx: _Context) -> float:
    value = _scalar(node, "a number between 0 and 1")
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise _Invalid(f"expected a number between 0 and 1, got {_describe(node)}")
    if not 0 <= number < 1:
        raise _Invalid(f"{number:g} is outside 0 to 1 (exclusive)", "the usual value is 0.1 (10 %)")
    return number


def _url(node: Node, ctx: _Context) -> str:
    text = _text(node, "a URL such as http://127.0.0.1:5000")
    scheme = text.partition("://")[0]
    if scheme not in ("http", "https") or "://" not in text:
        raise _Invalid(f"{text!r} is not an http:// or https:// URL", "e.g. http://127.0.0.1:5000")
    _check_netloc(text, len(scheme) + 3)
    return text


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def _role_arn(node: Node, ctx: _Context) -> str:
    text = _text(node, "an IAM role ARN")
    if not _ROLE_ARN.match(text):
        raise _Invalid(f"{text!r} is not an IAM role ARN", "e.g. arn:aws:iam::123456789012:role/lambda-exec")
    return text


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def _region(text: str) -> str:
    if not _REGION.match(text):
        raise _Invalid(f"{text!r} is not an AWS region", "regions look like us-east-1 or eu-west-3")
    return text


def _profile(text: str) -> str:
    if any(ch.isspace() for ch in text):
        raise _Invalid(f"profile name {text!r} contains white space")
    return text


def _string_list(check: Callable[[str], str], what: str) -> Parser:
    """A list of strings; a single string is split on commas (the environment's form)."""

    def parse(node: Node, ctx: _Context) -> tuple[str, ...]:
        items: list[str] = []
        for item_node, text, offset in _list_items(node, what):
            try:
                items.append(check(text))
            except _Invalid as exc:
                raise _Invalid(exc.message, exc.hint, exc.offset + offset, item_node) from None
        return tuple(items)

    return parse


def _list_items(node: Node, what: str) -> Iterator[tuple[Node, str, int]]:
    """(node, text, offset of the text inside the node) for each item of a list-or-CSV value."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            yield item, _text_at(item, what), 0
        return
    value = _scalar(node, f"a list of {what}")
    if value is None:
        return
    if not isinstance(value, str):
        raise _Invalid(f"expected a list of {what}, got {_describe(node)}")
    position = 0
    for piece in value.split(","):
        stripped = piece.strip()
        if stripped:
            yield node, stripped, position + piece.index(stripped)
        position += len(piece) + 1


def _text_at(node: Node, what: str) -> str:
    try:
        return _text(node, what)
    except _Invalid as exc:
        raise _Invalid(exc.message, exc.hint, exc.offset, node) from None


def _command(node: Node, ctx: _Context) -> tuple[str, ...]:
    if isinstance(node, SequenceNode):
        words = tuple(_text_at(item, "a command word") for item in node.value)
    else:
        text = _text(node, "a command")
        try:
            words = tuple(shlex.split(text))
        except ValueError as exc:
            raise _Invalid(f"cannot split the command: {exc}") from None
    if not words:
        raise _Invalid("the command is empty")
    return words


def _docker_endpoints(node: Node, ctx: _Context) -> tuple[DockerEndpoint, ...]:
    endpoints: list[tuple[DockerEndpoint, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            endpoints.append((_docker_endpoint(item, ctx), item))
    else:
        for item, text, offset in _list_items(node, "Docker host addresses"):
            endpoints.append((_located(lambda: _docker_from_address(text), item, offset), item))
    return _unique_names(_name_sockets(endpoints), "Docker endpoint")


def _name_sockets(endpoints: list[tuple[DockerEndpoint, Node]]) -> list[tuple[DockerEndpoint, Node]]:
    """One unnamed socket is "local"; several are named from their paths (the file name
    without `.sock`, with as many parent folders in front as make the names unique)."""
    unnamed = [i for i, (endpoint, node) in enumerate(endpoints) if endpoint.host.startswith("unix://")
               and endpoint.name == "local" and not (isinstance(node, MappingNode) and _has_key(node, "name"))]
    if len(unnamed) < 2:
        return endpoints
    paths = [[re.sub(r"[^A-Za-z0-9_.-]", "-", part).lstrip(".-") or "socket"
              for part in reversed(Path(endpoints[i][0].host[len("unix://"):].removesuffix(".sock")).parts[1:])]
             for i in unnamed]
    depth = 1
    while depth < max(len(parts) for parts in paths) and len({tuple(p[:depth]) for p in paths}) < len(paths):
        depth += 1
    renamed = list(endpoints)
    for i, parts in zip(unnamed, paths):
        endpoint, node = endpoints[i]
        renamed[i] = (DockerEndpoint("-".join(reversed(parts[:depth])), endpoint.host, endpoint.tls), node)
    return renamed


def _has_key(node: MappingNode, key: str) -> bool:
    return any(isinstance(k, ScalarNode) and k.value == key for k, _ in node.value)


def _docker_from_address(address: str) -> DockerEndpoint:
    return DockerEndpoint(_endpoint_name(address), parse_docker_host(address))


def _docker_endpoint(node: Node, ctx: _Context) -> DockerEndpoint:
    if isinstance(node, ScalarNode):
        text = _text_at(node, "a Docker host address")
        return _located(lambda: _docker_from_address(text), node, 0)
    entries = _mapping(node, ("name", "host", "tls"), "a Docker endpoint", required=("host",))
    host_node = entries["host"][1]
    host = _located(lambda: parse_docker_host(_text(host_node, "a Docker host address")), host_node, 0)
    name = _name_at(entries, host)
    tls = None
    if "tls" in entries:
        tls_key, tls_node = entries["tls"]
        tls = _tls(tls_node, ctx)
        if tls is not None and not host.startswith("tcp://"):
            raise _Invalid("tls applies to tcp:// hosts only", "remove it, or use a tcp:// host",
                           node=tls_key)
    return DockerEndpoint(name, host, tls)


def _tls(node: Node, ctx: _Context) -> TlsSettings | None:
    if isinstance(node, ScalarNode) and _scalar(node, "") is None:
        return None
    entries = _mapping(node, ("ca", "cert", "key", "verify"), "TLS settings")
    values: dict[str, Any] = {}
    for name, (_, value_node) in entries.items():
        parse = _bool if name == "verify" else _path
        values[name] = _located(lambda: parse(value_node, ctx), value_node, 0)
    if ("cert" in values) != ("key" in values):
        raise _Invalid("tls needs both cert and key, or neither", node=node)
    return TlsSettings(**values)


def _libvirt_uris(node: Node, ctx: _Context) -> tuple[LibvirtConnection, ...]:
    connections: list[tuple[LibvirtConnection, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                text = _text_at(item, "a libvirt URI")
                connections.append((_located(lambda: _libvirt_from_uri(text), item, 0), item))
                continue
            entries = _mapping(item, ("name", "uri"), "a libvirt connection", required=("uri",))
            uri_node = entries["uri"][1]
            uri = _located(lambda: parse_libvirt_uri(_text(uri_node, "a libvirt URI")), uri_node, 0)
            connections.append((LibvirtConnection(_name_at(entries, uri), uri), item))
    else:
        for item, text, offset in _list_items(node, "libvirt URIs"):
            connections.append((_located(lambda: _libvirt_from_uri(text), item, offset), item))
    return _unique_names(connections, "libvirt connection")


def _libvirt_from_uri(uri: str) -> LibvirtConnection:
    return LibvirtConnection(_endpoint_name(parse_libvirt_uri(uri)), uri)


def _name_at(entries: Mapping[str, tuple[Node, Node]], address: str) -> str:
    if "name" not in entries:
        return _endpoint_name(address)
    name_node = entries["name"][1]
    name = _text_at(name_node, "a name")
    if not _NAME.match(name):
        raise _Invalid(f"name {name!r} may only hold letters, digits, '.', '_' and '-'",
                       node=name_node)
    return name


def _unique_names(items: list[tuple[Any, Node]], what: str) -> tuple[Any, ...]:
    """The items, once each name is known to be unique; a clash points at the second one."""
    seen: set[str] = set()
    for item, node in items:
        if item.name in seen:
            raise _Invalid(f"two {what}s are named {item.name!r}",
                           "give each one its own name: with 'name:'", node=node)
        seen.add(item.name)
    return tuple(item for item, _ in items)


def _located(make: Callable[[], Any], node: Node, offset: int) -> Any:
    """Run `make`, pinning any value error it raises to `node` (plus `offset` characters)."""
    try:
        return make()
    except _Invalid as exc:
        if exc.node is not None:
            raise
        raise _Invalid(exc.message, exc.hint, exc.offset + offset, node) from None
    except SpecValueError as exc:
        raise _Invalid(exc.message, exc.hint, exc.offset + offset, node) from None


def _mapping(node: Node, allowed: tuple[str, ...], what: str,
             required: tuple[str, ...] = ()) -> dict[str, tuple[Node, Node]]:
    """The entries of a mapping node by key, checking names, duplicates and required keys."""
    if not isinstance(node, MappingNode):
        raise _Invalid(f"expected {what} (a mapping with {', '.join(allowed)}), got {_describe(node)}",
                       node=node)
    entries: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node, "a key") if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str):
            raise _Invalid("keys must be names", node=key_node)
        if key not in allowed:
            raise _Invalid(f"unknown key {key!r} in {what}",
                           _did_you_mean(key, allowed) or "known keys: " + ", ".join(allowed),
                           node=key_node)
        if key in entries:
            raise _Invalid(f"duplicate key {key!r}", node=key_node)
        entries[key] = (key_node, value_node)
    for key in required:
        if key not in entries:
            raise _Invalid(f"{what} needs '{key}'", node=node)
    return entries


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


# --- the keys -------------------------------------------------------------------------------


Default = Callable[[Mapping[str, str]], tuple[Any, str]]  # env -> (raw value, what it came from)


@dataclass(frozen=True)
class Key:
    """One setting: its dotted name, parser, default, flag and description."""

    name: str
    parse: Parser
    default: Default
    flag: str | None
    doc: str
    optional: bool = False
    unit: str | None = None

    @property
    def env(self) -> str:
        return "RTM_" + self.name.upper().replace(".", "_")


def _fixed(value: Any) -> Default:
    return lambda env: (value, "")


def _from_env(name: str, fallback: Any, fallback_note: str = "") -> Default:
    return lambda env: (env[name], name) if env.get(name) else (fallback, fallback_note)


def _noted(env: Mapping[str, str], name: str) -> str:
    """Name the variable a default was derived from, when it was set."""
    return name if env.get(name) else ""


def _xdg_config_home(env: Mapping[str, str]) -> Path:
    configured = env.get("XDG_CONFIG_HOME", "")
    if configured and os.path.isabs(configured):
        return Path(configured)
    return _home(env) / ".config"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _default_docker(env: Mapping[str, str]) -> tuple[Any, str]:
    host = env.get("DOCKER_HOST", "")
    if host:
        endpoint: dict[str, Any] = {"name": _endpoint_name(host), "host": host}
        if host.startswith("tcp://") and env.get("DOCKER_TLS_VERIFY", "") not in ("", "0"):
            certs = Path(env.get("DOCKER_CERT_PATH") or _home(env) / ".docker")
            endpoint["tls"] = {"ca": str(certs / "ca.pem"), "cert": str(certs / "cert.pem"),
                               "key": str(certs / "key.pem"), "verify": True}
        return [endpoint], "DOCKER_HOST"
    context = _docker_context_host(env)
    if context:
        return [{"name": _endpoint_name(context[1]), "host": context[1]}], f"docker context {context[0]}"
    return [{"name": "local", "host": DEFAULT_DOCKER_HOST}], ""


def _docker_context_host(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(context name, host) of the current `docker context`, when it is not the default one."""
    import hashlib
    import json

    docker_config = Path(env.get("DOCKER_CONFIG") or _home(env) / ".docker")
    name = env.get("DOCKER_CONTEXT", "")
    try:
        if not name:
            name = json.loads((docker_config / "config.json").read_text()).get("currentContext", "")
        if not name or name == "default":
            return None
        digest = hashlib.sha256(name.encode()).hexdigest()
        meta = json.loads((docker_config / "contexts" / "meta" / digest / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (name, host) if isinstance(host, str) and host else None


def _default_libvirt(env: Mapping[str, str]) -> tuple[Any, str]:
    uri = env.get("LIBVIRT_DEFAULT_URI", "")
    if uri:
        return [uri], "LIBVIRT_DEFAULT_URI"
    return [DEFAULT_LIBVIRT_URI], ""


def _default_regions(env: Mapping[str, str]) -> tuple[Any, str]:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return [env[name]], name
    return [], "each profile's own region, else us-east-1"


KEYS: tuple[Key, ...] = (
    Key("refresh_interval", _duration(MIN_REFRESH_SECONDS), _fixed(2.0), "--refresh",
        "How often backends are polled (lower bound 0.5 s).", unit="s"),
    Key("theme", _enum(THEMES), _fixed("dark"), "--theme",
        "Console colours: dark, light or high-contrast."),
    Key("specs_dir", _path,
        lambda env: (str(_xdg_config_home(env) / APP_NAME / "specs"), _noted(env, "XDG_CONFIG_HOME")),
        "--specs", "Folder of spec files the console, exporter and agent read."),
    Key("data_dir", _path,
        lambda env: (str(default_data_dir(env)), _noted(env, "XDG_STATE_HOME")),
        "--data-dir", "Folder for the audit and event logs, history, function store and lock."),
    Key("docker.endpoints", _docker_endpoints, _default_docker, "--docker-host",
        "Docker engines: a list of {name, host, tls}."),
    Key("libvirt.uris", _libvirt_uris, _default_libvirt, "--libvirt-uri",
        "libvirt hosts: a list of {name, uri}."),
    Key("libvirt.shutdown_timeout", _duration(0), _fixed(60.0), None,
        "How long a graceful VM shutdown may take before the VM is forced off.", unit="s"),
    Key("aws.regions", _string_list(_region, "AWS regions"), _default_regions, "--aws-region",
        "AWS regions to manage functions in."),
    Key("aws.profiles", _string_list(_profile, "AWS profile names"),
        _from_env("AWS_PROFILE", [], "the default credential chain"), "--aws-profile",
        "AWS profiles (from ~/.aws) to use."),
    Key("aws.endpoint_url", _url, _from_env("AWS_ENDPOINT_URL", None), "--aws-endpoint-url",
        "Send AWS calls to this endpoint (moto, LocalStack) instead of AWS.", optional=True),
    Key("aws.role_arn", _role_arn, _fixed(None), None,
        "Execution role for functions whose spec names none.", optional=True),
    Key("functions.target", _enum(FUNCTION_TARGETS), _fixed("auto"), "--functions-target",
        "Where functions run: aws, local, or auto."),
    Key("functions.gateway_listen", _listen, _fixed("127.0.0.1:8790"), "--gateway-listen",
        "Address of the local functions runtime's HTTP gateway."),
    Key("exporter.listen", _listen, _fixed("127.0.0.1:9465"), "--listen",
        "Address the headless exporter and agent serve metrics on."),
    Key("exporter.web_config", _path, _fixed(None), "--web-config",
        "node_exporter-style web configuration (TLS, basic auth) for the metrics endpoint.",
        optional=True),
    Key("exporter.console_listen", _listen, _fixed(None), "--metrics-listen",
        "Serve metrics from the interactive console too, on this address.", optional=True),
    Key("kiosk.enabled", _bool, _fixed(False), "--kiosk", "Start the console read-only."),
    Key("kiosk.cycle_interval", _duration(MIN_KIOSK_CYCLE_SECONDS, zero_allowed=True), _fixed(0.0),
        "--kiosk-cycle", "In kiosk mode, move to the next pane this often (0 = stay).", unit="s"),
    Key("kiosk.lock", _bool, _fixed(False), "--kiosk-lock",
        "In kiosk mode, the console cannot be quit from the keyboard."),
    Key("load_balancer.upstream_path", _path, _fixed(None), "--upstream-path",
        "Where the nginx upstream block of ready replicas is written.", optional=True),
    Key("load_balancer.reload_command", _command, _fixed(None), "--upstream-reload",
        "Command run after the upstream file changes, e.g. nginx -s reload.", optional=True),
    Key("console.shell", _command, _fixed(("/bin/sh",)), None,
        "The shell `e` opens in a container (a command line, or a list of words)."),
    Key("console.shell_idle_timeout", _duration(0.0, zero_allowed=True), _fixed(900.0), None,
        "Close a container shell or VM console after this long without a key or output (0 = never).", unit="s"),
    Key("autoscaler.tolerance", _fraction, _fixed(0.1), None,
        "Relative change below which the autoscaler keeps the replica count."),
)
KEYS_BY_NAME: Mapping[str, Key] = MappingProxyType({key.name: key for key in KEYS})


def _schema() -> dict[str, Any]:
    """The file's shape: section -> {name -> Key}, or name -> Key at the top level."""
    tree: dict[str, Any] = {}
    for key in KEYS:
        *sections, leaf = key.name.split(".")
        branch = tree
        for section in sections:
            branch = branch.setdefault(section, {})
        branch[leaf] = key
    return tree


_SCHEMA = _schema()


# --- loading --------------------------------------------------------------------------------


def config_file_path(path: Path | str | None, env: Mapping[str, str]) -> tuple[Path, str, bool]:
    """(the config file, how it was chosen, whether it must exist)."""
    if path is not None:
        return Path(path).expanduser(), "flag --config", True
    if env.get("RTM_CONFIG"):
        return Path(env["RTM_CONFIG"]).expanduser(), "env RTM_CONFIG", True
    return _xdg_config_home(env) / APP_NAME / "config.yaml", "default location", False


@dataclass
class _Layer:
    """A value offered for a key by one source, not yet parsed."""

    node: Node
    source: Source
    ctx: _Context
    label: str  # where to point findings that have no line (an env var, a flag)
    key_node: Node | None = None  # the key in the file, for file values


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | str | None = None,
) -> Config:
    """The effective configuration. `flags` maps dotted keys (`"exporter.listen"`) to the
    values given on the command line; None values mean "not given" (so boolean flags need
    `default=None` in argparse, or a `--kiosk` left off would override the file). Strings are
    parsed like environment values; typed values (bool, numbers, lists, Path) are taken as is.
    `path` is `--config`. `KEYS_BY_NAME[key].flag` is the flag's documented name.

    Raises ConfigError listing every problem found, in the file and in the environment.
    """
    flags = flags or {}
    env = os.environ if env is None else env
    findings: list[ConfigFinding] = []
    unknown_flags = [name for name in flags if name not in KEYS_BY_NAME]
    if unknown_flags:
        raise ValueError(f"not configuration keys: {', '.join(unknown_flags)}")
    home = _home(env)
    cwd_ctx = _Context(Path.cwd(), home)

    file_path, file_source, must_exist = config_file_path(path, env)
    file_layers, file_found = _read_file(file_path, must_exist, home, findings)

    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for key in KEYS:
        layers = []
        if flags.get(key.name) is not None:
            layers.append(_Layer(_node_from_python(flags[key.name]), Source("flag", key.flag or key.name),
                                 cwd_ctx, f"{key.flag or key.name} (command line)"))
        if env.get(key.env):
            layers.append(_Layer(ScalarNode(_STR_TAG, env[key.env]), Source("env", key.env),
                                 cwd_ctx, f"{key.env} (environment)"))
        if key.name in file_layers:
            layers.append(file_layers[key.name])
        raw_default, note = key.default(env)
        default_label = f"{note} (environment)" if note in env else f"default of {key.name}"
        layers.append(_Layer(_node_from_python(raw_default), Source("default", note), cwd_ctx,
                             default_label))
        # Every offered value is checked, so a bad line in the file is reported even while a
        # flag overrides it; the first (highest) valid layer wins.
        chosen = False
        for layer in layers:
            value = _parse_layer(key, layer, str(file_path), findings)
            if value is not _BAD and not chosen:
                values[key.name], sources[key.name] = value, layer.source
                chosen = True
    if findings:
        # File problems in file order, then those from the environment and the command line.
        findings.sort(key=lambda f: (f.line is None, f.path if f.line else "", f.line or 0, f.column or 0))
        raise ConfigError(findings)
    return _build(values, sources, env, file_path if file_found else None, file_source)


_BAD = object()


def _parse_layer(key: Key, layer: _Layer, file_path: str, findings: list[ConfigFinding]) -> Any:
    node = layer.node
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        if key.optional:
            return None
        findings.append(_finding(layer, file_path, key, _Invalid(
            f"{key.name} needs a value", "remove the line to use the default"), node))
        return _BAD
    try:
        return key.parse(node, layer.ctx)
    except _Invalid as exc:
        findings.append(_finding(layer, file_path, key, exc, exc.node or node))
    except SpecValueError as exc:
        findings.append(_finding(layer, file_path, key, exc, node))
    return _BAD


def _finding(layer: _Layer, file_path: str, key: Key, exc: SpecValueError, node: Node) -> ConfigFinding:
    message = f"{key.name}: {exc.message}"
    if layer.source.kind != "file" or node.start_mark is None:
        return ConfigFinding(layer.label, None, None, message, exc.hint, key.name)
    mark = node.start_mark
    quote = 1 if isinstance(node, ScalarNode) and node.style in ("'", '"') else 0
    offset = exc.offset if isinstance(node, ScalarNode) and node.style in (None, "", "'", '"') else 0
    return ConfigFinding(file_path, mark.line + 1, mark.column + 1 + quote + offset, message,
                         exc.hint, key.name)


def _node_from_python(value: Any) -> Node:
    if isinstance(value, str):
        return ScalarNode(_STR_TAG, value)
    return yaml.compose(yaml.safe_dump(_to_plain(value)))


def _to_plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, ListenAddress):
        return str(value)
    return value


def _read_file(path: Path, must_exist: bool, home: Path,
               findings: list[ConfigFinding]) -> tuple[dict[str, _Layer], bool]:
    try:
        text = reader.read_text(path)  # a regular file of at most 16 MiB: no hang on a FIFO
    except FileNotFoundError:
        if must_exist:
            findings.append(ConfigFinding(str(path), None, None, "config file not found"))
        return {}, False
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(ConfigFinding(str(path), None, None, f"cannot read the config file: {exc}"))
        return {}, False
    try:
        root = reader.compose(text)  # nesting is capped: deep nesting is a finding, not a RecursionError
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        findings.append(ConfigFinding(str(path), line, column, f"invalid YAML: {problem}"))
        return {}, True
    except yaml.YAMLError as exc:  # e.g. a character YAML does not allow
        findings.append(ConfigFinding(str(path), None, None, f"invalid YAML: {exc}"))
        return {}, True
    layers: dict[str, _Layer] = {}
    if root is None:
        return layers, True  # an empty file: every key keeps its default
    ctx = _Context(path.resolve().parent, home)
    _collect(root, _SCHEMA, "", path, ctx, layers, findings)
    return layers, True


def _collect(node: Node, schema: Mapping[str, Any], prefix: str, path: Path, ctx: _Context,
             layers: dict[str, _Layer], findings: list[ConfigFinding]) -> None:
    """Walk a mapping of the file against the schema, recording each key's value node."""
    where = prefix.rstrip(".") or "the config file"
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null" and prefix:
        return  # `docker:` with nothing under it: an empty section
    if not isinstance(node, MappingNode):
        findings.append(_file_finding(path, node, f"{where}: expected a mapping of settings, "
                                                  f"got {_describe(node)}"))
        return
    seen: set[str] = set()
    all_names = [key.name for key in KEYS]
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, ScalarNode) else None
        if not isinstance(name, str):
            findings.append(_file_finding(path, key_node, f"{where}: keys must be names"))
            continue
        dotted = prefix + name
        if name in seen:
            findings.append(_file_finding(path, key_node, f"duplicate key {dotted!r}",
                                          "each key may appear once; remove one of them"))
            continue
        seen.add(name)
        entry = schema.get(name)
        if entry is None:
            hint = _did_you_mean(name, list(schema)) or _did_you_mean(dotted, all_names) or \
                _placed_elsewhere(name, all_names)
            findings.append(_file_finding(path, key_node, f"unknown key {dotted!r}", hint))
        elif isinstance(entry, dict):
            _collect(value_node, entry, dotted + ".", path, ctx, layers, findings)
        else:
            line = key_node.start_mark.line + 1
            layers[entry.name] = _Layer(value_node, Source("file", f"{path}:{line}"), ctx,
                                        str(path), key_node)


def _placed_elsewhere(name: str, all_names: list[str]) -> str | None:
    matches = [full for full in all_names if full.rsplit(".", 1)[-1] == name]
    return f"did you mean '{matches[0]}'?" if len(matches) == 1 else None


def _file_finding(path: Path, node: Node, message: str, hint: str | None = None) -> ConfigFinding:
    mark = node.start_mark
    return ConfigFinding(str(path), mark.line + 1, mark.column + 1, message, hint)


def _build(values: dict[str, Any], sources: dict[str, Source], env: Mapping[str, str],
           file: Path | None, file_source: str) -> Config:
    aws = AwsSettings(values["aws.regions"], values["aws.profiles"], values["aws.endpoint_url"],
                      values["aws.role_arn"])
    target, reason = resolve_functions_target(values["functions.target"], aws, sources, env)
    return Config(
        refresh_interval=values["refresh_interval"],
        theme=values["theme"],
        specs_dir=values["specs_dir"],
        data_dir=values["data_dir"],
        docker=DockerSettings(values["docker.endpoints"]),
        libvirt=LibvirtSettings(values["libvirt.uris"], values["libvirt.shutdown_timeout"]),
        aws=aws,
        functions=FunctionsSettings(target, values["functions.target"], reason,
                                    values["functions.gateway_listen"]),
        exporter=ExporterSettings(values["exporter.listen"], values["exporter.web_config"],
                                  values["exporter.console_listen"]),
        kiosk=KioskSettings(values["kiosk.enabled"], values["kiosk.cycle_interval"],
                            values["kiosk.lock"]),
        load_balancer=LoadBalancerSettings(values["load_balancer.upstream_path"],
                                           values["load_balancer.reload_command"]),
        autoscaler=AutoscalerSettings(values["autoscaler.tolerance"]),
        console=ConsoleSettings(values["console.shell"], values["console.shell_idle_timeout"]),
        file=file,
        file_source=file_source,
        sources=MappingProxyType(dict(sources)),
    )


def resolve_functions_target(
    requested: str, aws: AwsSettings, sources: Mapping[str, Source], env: Mapping[str, str]
) -> tuple[Literal["aws", "local"], str]:
    """`auto` means AWS when an AWS account or endpoint is configured, else the local runtime.

    Returns the target and, for people, why.
    """
    if requested in ("aws", "local"):
        return requested, f"set to {requested}"  # type: ignore[return-value]
    if aws.endpoint_url:
        return "aws", f"auto: aws.endpoint_url is set ({sources['aws.endpoint_url']})"
    if aws.profiles:
        return "aws", f"auto: AWS profile {aws.profiles[0]!r} is configured ({sources['aws.profiles']})"
    if env.get("AWS_ACCESS_KEY_ID"):
        return "aws", "auto: AWS_ACCESS_KEY_ID is set in the environment"
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or _home(env) / ".aws" / "credentials")
    if credentials.is_file():
        return "aws", f"auto: AWS credentials file {credentials} exists"
    return "local", "auto: no AWS endpoint, profile or credentials are configured"


SANDBOX_LIBVIRT_URI = "test:///default"


def sandboxed(config: Config) -> Config:
    """What `--sandbox` puts in effect: libvirt's test driver and the local functions runtime."""
    sandbox = Source("flag", "--sandbox")
    sources = {**config.sources, "libvirt.uris": sandbox, "functions.target": sandbox}
    return replace(
        config,
        libvirt=replace(config.libvirt, uris=(LibvirtConnection("sandbox", SANDBOX_LIBVIRT_URI),)),  # libvirt@sandbox
        functions=replace(config.functions, target="local", target_reason="--sandbox: the embedded local runtime"),
        sources=MappingProxyType(sources),
    )


# --- showing the configuration --------------------------------------------------------------


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) for each simple value inside `value`, lists indexed."""
    if is_dataclass(value) and not isinstance(value, ListenAddress):
        for item in fields(value):
            yield from _leaves(f"{name}.{item.name}", getattr(value, item.name))
    elif isinstance(value, tuple) and value and is_dataclass(value[0]):
        for index, item in enumerate(value):
            yield from _leaves(f"{name}[{index}]", item)
    else:
        yield name, value


def _masked(name: str, value: Any) -> Any:
    leaf = name.rsplit(".", 1)[-1]
    if value is not None and is_secret_name(leaf):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return tuple(mask_secrets(list(value)))  # a command: `-u user:pass`, `-H "X-Api-Key: ..."`
    return value


def _show(value: Any, unit: str | None) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return shell_join([str(item) for item in value]) if value else "(none)"
    if isinstance(value, float) and unit:
        return f"{value:g} {unit}"
    return str(value)


def _rows(config: Config) -> Iterator[tuple[str, str, str]]:
    for key in KEYS:
        source = str(config.source(key.name))
        value = config.get(key.name)
        if key.name == "functions.target":
            yield key.name, f"{value} ({config.functions.target_reason})", source
            continue
        for name, leaf in _leaves(key.name, value):
            yield name, _show(_masked(name, leaf), key.unit), source


def render_config(config: Config) -> str:
    """The effective configuration for `rtm-console config`: each key, value and source."""
    if config.file is not None:
        header = f"config file: {config.file} ({config.file_source})"
    else:
        header = f"config file: none found ({config.file_source}); using defaults"
    rows = list(_rows(config))
    name_width = max(len(name) for name, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 48)
    lines = [header, ""]
    lines += [f"{name:<{name_width}}  {value:<{value_width}}  {source}" for name, value, source in rows]
    return "\n".join(lines) + "\n"


def config_as_json(config: Config) -> dict[str, Any]:
    """The effective configuration as JSON-ready data (for `rtm-console config --json`).

    `{"file": PATH|null, "file_source": ..., "settings": {KEY: {"value": ..., "source": ...}}}`;
    `functions.target` also carries `requested` and `reason`. Secrets are masked.
    """
    settings: dict[str, Any] = {}
    for key in KEYS:
        entry: dict[str, Any] = {
            "value": _json_value(key.name, config.get(key.name)),
            "source": str(config.source(key.name)),
        }
        if key.name == "functions.target":
            entry["requested"] = config.functions.requested_target
            entry["reason"] = config.functions.target_reason
        settings[key.name] = entry
    return {
        "file": str(config.file) if config.file is not None else None,
        "file_source": config.file_source,
        "settings": settings,
    }


def _json_value(name: str, value: Any) -> Any:
    value = _masked(name, value)
    if isinstance(value, (Path, ListenAddress)):
        return str(value)
    if is_dataclass(value):
        return {item.name: _json_value(item.name, getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple):
        return [_json_value(name, item) for item in value]
    return value


def flags_from_args(args: Any) -> dict[str, Any]:
    """The configuration keys given on the command line (argparse's namespace), by dotted key."""
    flags = {}
    for key in KEYS:
        if key.flag is not None:
            value = getattr(args, key.flag.lstrip("-").replace("-", "_"), None)
            if value is not None:
                flags[key.name] = value
    return flags
