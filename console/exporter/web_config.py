"""node_exporter's web configuration file (`--web.config.file`), read and checked.

The format is the Prometheus exporter-toolkit's, so a file written for node_exporter works here:

    tls_server_config:
      cert_file: server.crt          # relative paths start at the file's folder
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12
    basic_auth_users:
      prometheus: $2b$12$...          # bcrypt hashes (htpasswd -nBC 12 "" | tr -d ':')
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}

Every problem is reported with its position, all at once, in a `WebConfigError`. What Python's
TLS cannot do the way Go's does (client certificates accepted without verification, Go cipher
suite and curve names) is refused with an explanation rather than silently ignored: a security
setting that quietly does nothing is worse than an error.
"""

from __future__ import annotations

import difflib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rtm import reader

# Client authentication types of Go's crypto/tls that Python's ssl can honour.
CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go accepts these, but they take a client certificate without verifying it, which Python's
# ssl module cannot do (a certificate that is asked for is always verified).
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# The response headers exporter-toolkit lets a web config set, with their allowed values
# (None: any value).
EXTRA_HEADERS: Mapping[str, tuple[str, ...] | None] = MappingProxyType({
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
})
_HEADER_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed, as HTTP allows it
BCRYPT_HASH = re.compile(r"^\$2[aby]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")

TOP_LEVEL_KEYS = ("tls_server_config", "basic_auth_users", "http_server_config", "rate_limit")
TLS_KEYS = (
    "cert_file", "key_file", "cert", "key", "client_auth_type", "client_ca_file", "client_ca",
    "min_version", "max_version", "cipher_suites", "curve_preferences",
    "prefer_server_cipher_suites", "client_allowed_sans",
)
HTTP_KEYS = ("http2", "headers")


@dataclass(frozen=True)
class TlsServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_ca: str | None = None  # PEM text given inline
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True
    client_allowed_sans: tuple[str, ...] = ()

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context; raises ssl.SSLError / OSError if a file cannot be used."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.min_version]
        context.maximum_version = TLS_VERSIONS[self.max_version]
        if self.prefer_server_cipher_suites:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=str(self.client_ca_file))
        if self.client_ca is not None:
            context.load_verify_locations(cadata=self.client_ca)
        context.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        return context


@dataclass(frozen=True)
class WebConfig:
    """What a web config file asks for; the empty value means plain HTTP without auth."""

    tls: TlsServerConfig | None = None
    basic_auth_users: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    path: Path | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        return None if self.tls is None else self.tls.ssl_context()


class WebConfigError(Exception):
    """Every problem of a web config file, one `PATH:LINE:COL: error: MESSAGE (hint: ...)` a line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, node: Node | None, message: str, hint: str | None = None) -> None:
        where = self.path
        if node is not None:
            where += f":{node.start_mark.line + 1}:{node.start_mark.column + 1}"
        text = f"{where}: error: {message}"
        self.items.append(f"{text} (hint: {hint})" if hint else text)


def load_web_config(path: Path | str) -> WebConfig:
    """Read, check and return the web config at `path`; the files it names must be usable."""
    path = Path(path)
    try:
        text = reader.read_yaml_text(path, "the web config")  # a regular file of at most 16 MiB
    except OSError as exc:
        raise WebConfigError([str(reader.cannot_read(path, "the web config", exc))]) from None
    except reader.YamlFileError as exc:
        raise WebConfigError([str(exc)]) from None
    config = parse_web_config(text, str(path), base_dir=path.parent)
    config = WebConfig(config.tls, config.basic_auth_users, config.headers, path)
    if config.tls is not None:
        try:
            config.ssl_context()
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise WebConfigError([f"{path}: error: the TLS certificate, key or client CA cannot be used: {_ssl_reason(exc)}"]) from None
    return config


def parse_web_config(text: str, path: str = "<web config>", base_dir: Path = Path(".")) -> WebConfig:
    """Check the text of a web config (without opening the files it names)."""
    problems = _Problems(path)
    try:
        root = reader.compose_document(text, path)
    except reader.YamlFileError as exc:
        raise WebConfigError([str(exc)]) from None
    if root is None or (isinstance(root, ScalarNode) and root.value == ""):
        return WebConfig()
    sections = _mapping(root, problems, "the web config", TOP_LEVEL_KEYS)
    tls = users = None
    headers: dict[str, str] = {}
    if "rate_limit" in sections:
        key, _ = sections["rate_limit"]
        problems.add(key, "rate_limit is not supported by rtm-console", "remove it, or put a rate-limiting proxy in front")
    if "tls_server_config" in sections:
        tls = _tls(*sections["tls_server_config"], problems, base_dir)
    if "basic_auth_users" in sections:
        users = _users(sections["basic_auth_users"][1], problems)
    if "http_server_config" in sections:
        headers = _http(sections["http_server_config"][1], problems)
    if problems.items:
        raise WebConfigError(problems.items)
    return WebConfig(tls, MappingProxyType(users or {}), MappingProxyType(headers))


def _mapping(node: Node, problems: _Problems, what: str, known: tuple[str, ...]) -> dict[str, tuple[Node, Node]]:
    """key -> (key node, value node) of a mapping; unknown and repeated keys are problems."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, MappingNode):
        problems.add(node, f"{what} must be a mapping")
        return {}
    found: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if key not in known:
            close = [k for k in known if _similar(str(key), k)]
            problems.add(key_node, f"unknown key {key!r} in {what}", f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}")
        elif key in found:
            problems.add(key_node, f"{key} is given twice")
        else:
            found[key] = (key_node, value_node)
    return found


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.75


def _string(node: Node, problems: _Problems, what: str) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag not in ("tag:yaml.org,2002:str",) or not node.value.strip():
        problems.add(node, f"{what} must be non-empty text")
        return None
    return node.value.strip()


def _bool(node: Node, problems: _Problems, what: str) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return node.value.lower() in ("true", "yes", "on")
    problems.add(node, f"{what} must be true or false")
    return None


def _file(node: Node, problems: _Problems, what: str, base_dir: Path) -> Path | None:
    text = _string(node, problems, what)
    if text is None:
        return None
    return base_dir / Path(text).expanduser()  # an absolute path stays as it is


def _tls(section: Node, node: Node, problems: _Problems, base_dir: Path) -> TlsServerConfig | None:
    """`section` is the tls_server_config key (what missing keys are reported at), `node` its value."""
    keys = _mapping(node, problems, "tls_server_config", TLS_KEYS)
    if not keys:
        return None  # an empty section, as exporter-toolkit: TLS stays off
    before = len(problems.items)
    for inline, file_key in (("cert", "cert_file"), ("key", "key_file")):
        if inline in keys:
            problems.add(keys[inline][0], f"an inline {inline} is not supported", f"put the PEM text in a file and name it with {file_key}")
    for go_only in ("cipher_suites", "curve_preferences"):
        if go_only in keys:
            problems.add(keys[go_only][0], f"{go_only} takes Go's names, which rtm-console cannot map to OpenSSL's",
                         "remove it: Python's TLS defaults (TLS 1.2+, forward-secret AEAD ciphers) apply")
    cert_file = _file(keys["cert_file"][1], problems, "cert_file", base_dir) if "cert_file" in keys else None
    key_file = _file(keys["key_file"][1], problems, "key_file", base_dir) if "key_file" in keys else None
    if "cert_file" not in keys and "cert" not in keys:
        problems.add(section, "tls_server_config needs cert_file", "the server certificate (PEM)")
    if "key_file" not in keys and "key" not in keys:
        problems.add(section, "tls_server_config needs key_file", "the server's private key (PEM)")
    client_auth = "NoClientCert"
    if "client_auth_type" in keys:
        value_node = keys["client_auth_type"][1]
        value = _string(value_node, problems, "client_auth_type")
        if value in UNVERIFIED_CLIENT_AUTH:
            problems.add(value_node, f"{value} (a client certificate taken without verification) is not supported",
                         "use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file")
        elif value is not None and value not in CLIENT_AUTH_TYPES:
            problems.add(value_node, f"unknown client_auth_type {value!r}", f"one of {', '.join(CLIENT_AUTH_TYPES)}")
        elif value is not None:
            client_auth = value
    client_ca_file = _file(keys["client_ca_file"][1], problems, "client_ca_file", base_dir) if "client_ca_file" in keys else None
    client_ca = _string(keys["client_ca"][1], problems, "client_ca") if "client_ca" in keys else None
    has_ca = client_ca_file is not None or client_ca is not None
    if has_ca and client_auth == "NoClientCert":
        where = keys.get("client_ca_file", keys.get("client_ca"))[0]  # type: ignore[index]
        problems.add(where, "a client CA is configured but client_auth_type does not ask for client certificates",
                     "set client_auth_type: RequireAndVerifyClientCert")
    if client_auth != "NoClientCert" and not has_ca:
        problems.add(keys["client_auth_type"][1], f"{client_auth} needs client_ca_file to verify client certificates against")
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        versions[name] = default
        if name in keys:
            value = _string(keys[name][1], problems, name)
            if value is not None and value not in TLS_VERSIONS:
                problems.add(keys[name][1], f"unknown TLS version {value!r}", f"one of {', '.join(TLS_VERSIONS)}")
            elif value is not None:
                versions[name] = value
    if TLS_VERSIONS[versions["min_version"]] > TLS_VERSIONS[versions["max_version"]]:
        problems.add(keys.get("min_version", (section,))[0], "min_version is above max_version")
    prefer = True
    if "prefer_server_cipher_suites" in keys:
        prefer = _bool(keys["prefer_server_cipher_suites"][1], problems, "prefer_server_cipher_suites") is not False
    sans: tuple[str, ...] = ()
    if "client_allowed_sans" in keys:
        sans = _string_list(keys["client_allowed_sans"][1], problems, "client_allowed_sans")
        if client_auth != "RequireAndVerifyClientCert":
            problems.add(keys["client_allowed_sans"][0], "client_allowed_sans needs client_auth_type: RequireAndVerifyClientCert",
                         "otherwise a client may send no certificate and there is nothing to match")
    if len(problems.items) > before or cert_file is None or key_file is None:
        return None
    return TlsServerConfig(cert_file, key_file, client_auth, client_ca_file, client_ca,
                           versions["min_version"], versions["max_version"], prefer, sans)


def _string_list(node: Node, problems: _Problems, what: str) -> tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        problems.add(node, f"{what} must be a list")
        return ()
    items = [_string(item, problems, f"each item of {what}") for item in node.value]
    return tuple(item for item in items if item is not None)


def _users(node: Node, problems: _Problems) -> dict[str, str]:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, MappingNode):
        problems.add(node, "basic_auth_users must be a mapping of user name to bcrypt hash")
        return {}
    users: dict[str, str] = {}
    for key_node, value_node in node.value:
        user = key_node.value if isinstance(key_node, ScalarNode) else ""
        if not user or ":" in user:
            problems.add(key_node, f"{user!r} is not a usable user name", "non-empty, without ':'")
            continue
        if user in users:
            problems.add(key_node, f"user {user!r} is given twice")
            continue
        hashed = value_node.value.strip() if isinstance(value_node, ScalarNode) else ""
        if not BCRYPT_HASH.match(hashed):
            problems.add(value_node, f"the password of {user!r} is not a bcrypt hash",
                         "store a hash, not the password: htpasswd -nBC 10 \"\" | tr -d ':\\n', or python -c 'import bcrypt; print(bcrypt.hashpw(b\"PASSWORD\", bcrypt.gensalt()).decode())'")
            continue
        users[user] = hashed
    return users


def _http(node: Node, problems: _Problems) -> dict[str, str]:
    keys = _mapping(node, problems, "http_server_config", HTTP_KEYS)
    if "http2" in keys:
        _bool(keys["http2"][1], problems, "http2")  # accepted for compatibility: HTTP/1.1 is served
    headers: dict[str, str] = {}
    if "headers" in keys:
        for name, (key_node, value_node) in _mapping(keys["headers"][1], problems, "headers", tuple(EXTRA_HEADERS)).items():
            value = _string(value_node, problems, name)
            allowed = EXTRA_HEADERS[name]
            control = _HEADER_CONTROL_CHAR.search(value or "")
            if value is not None and control:
                # Sent as it is, a line break would end the header and start another one.
                problems.add(value_node, f"the {name} header holds a control character ({control.group()!r} at character {control.start() + 1})",
                             "a header value is one line of text: remove line breaks and other control characters")
            elif value is not None and allowed is not None and value not in allowed:
                problems.add(value_node, f"{name} must be one of {', '.join(allowed)}")
            elif value is not None:
                headers[name] = value
    return headers


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)
    return str(exc)


def describe(config: WebConfig) -> str:
    """One line for the start-up message: what the web config turned on."""
    parts = []
    if config.tls is not None:
        parts.append(f"TLS ({config.tls.min_version}+, client certificates: {config.tls.client_auth_type})")
    if config.basic_auth_users:
        parts.append(f"basic auth ({len(config.basic_auth_users)} user{'s' if len(config.basic_auth_users) != 1 else ''})")
    return ", ".join(parts) or "plain HTTP, no authentication"
