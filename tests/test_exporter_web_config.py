"""node_exporter's web config format: what is accepted, and the errors people get."""

from __future__ import annotations

import threading

import bcrypt
import pytest

import console.exporter.auth as auth_module
from console.exporter.auth import CACHE_SIZE, BasicAuthChecker, parse_basic
from console.exporter.web_config import WebConfigError, load_web_config, parse_web_config


def errors_of(text: str) -> list[str]:
    with pytest.raises(WebConfigError) as error:
        parse_web_config(text, "web.yml")
    return list(error.value.problems)


def test_a_node_exporter_web_config_is_read_with_paths_relative_to_its_folder(tmp_path):
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
    config = parse_web_config(
        "tls_server_config:\n"
        "  cert_file: certs/server.crt\n"
        "  key_file: /etc/keys/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: ca.crt\n"
        "  min_version: TLS13\n"
        "basic_auth_users:\n"
        f"  prometheus: {hashed}\n"
        "http_server_config:\n"
        "  http2: true\n"
        "  headers:\n"
        "    X-Frame-Options: deny\n",
        "web.yml",
        base_dir=tmp_path,
    )
    assert config.tls is not None
    assert config.tls.cert_file == tmp_path / "certs" / "server.crt"
    assert str(config.tls.key_file) == "/etc/keys/server.key"
    assert config.tls.client_ca_file == tmp_path / "ca.crt"
    assert config.tls.client_auth_type == "RequireAndVerifyClientCert"
    assert config.tls.min_version == "TLS13"
    assert dict(config.basic_auth_users) == {"prometheus": hashed}
    assert dict(config.headers) == {"X-Frame-Options": "deny"}


def test_an_empty_file_means_plain_http():
    config = parse_web_config("", "web.yml")
    assert config.tls is None and not config.basic_auth_users


def test_every_problem_is_reported_with_its_position_at_once():
    problems = errors_of(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  client_ca_file: ca.crt\n"
        "basic_auth_users:\n"
        "  alice: plain-password\n"
        "http_server_config:\n"
        "  htp2: true\n"
    )
    text = "\n".join(problems)
    assert "web.yml:1:1: error: tls_server_config needs key_file" in text
    assert "web.yml:3:3: error: a client CA is configured but client_auth_type does not ask for client certificates" in text
    assert "web.yml:5:10: error: the password of 'alice' is not a bcrypt hash" in text
    assert "web.yml:7:3: error: unknown key 'htp2' in http_server_config (hint: did you mean http2?)" in text
    assert len(problems) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
         "RequireAnyClientCert (a client certificate taken without verification) is not supported"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         "cipher_suites takes Go's names"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n", "unknown TLS version 'TLS14'"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyClientCertIfGiven\n",
         "VerifyClientCertIfGiven needs client_ca_file"),
        ("rate_limit: {burst: 5, interval: 1s}\n", "rate_limit is not supported"),
        ("basic_auth_users: [alice]\n", "basic_auth_users must be a mapping"),
        ("http_server_config:\n  headers: {X-Powered-By: me}\n", "unknown key 'X-Powered-By' in headers"),
        ("tls_server_config: [\n", "invalid YAML"),
    ],
)
def test_refusals_name_the_problem(text, expected):
    assert any(expected in problem for problem in errors_of(text)), errors_of(text)


def test_a_header_value_with_a_line_break_is_refused_at_its_position():
    # Sent as it is, the value would end the header and add a Set-Cookie header of its own.
    problems = errors_of('http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nSet-Cookie: x=1"\n')
    assert problems == [
        "web.yml:3:30: error: the Content-Security-Policy header holds a control character ('\\r' at character 2) "
        "(hint: a header value is one line of text: remove line breaks and other control characters)"
    ]


def test_loading_checks_that_the_certificate_files_can_be_used(tmp_path):
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    with pytest.raises(WebConfigError, match="the TLS certificate, key or client CA cannot be used"):
        load_web_config(path)
    with pytest.raises(WebConfigError, match="cannot read the web config"):
        load_web_config(tmp_path / "absent.yml")


def test_basic_auth_accepts_the_right_password_only():
    checker = BasicAuthChecker({"prometheus": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()})
    assert checker.check(_basic("prometheus", "s3cret"))
    assert checker.check(_basic("prometheus", "s3cret"))  # from the cache this time
    assert not checker.check(_basic("prometheus", "wrong"))
    assert not checker.check(_basic("nobody", "s3cret"))
    assert not checker.check(None)
    assert not checker.check("Bearer abc")
    assert not checker.check("Basic !!!not-base64")


def test_only_successful_checks_are_cached_so_wrong_guesses_cannot_push_the_scraper_out(monkeypatch):
    checks = BcryptChecks(monkeypatch)
    checker = BasicAuthChecker({"prometheus": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()})
    assert checker.check(_basic("prometheus", "s3cret")) and len(checks) == 1
    for guess in range(CACHE_SIZE + 10):  # more distinct wrong passwords than the cache holds
        assert not checker.check(_basic("prometheus", f"guess-{guess}"))
    assert not checker.check(_basic("prometheus", "guess-0"))  # a failure is checked again, never cached
    assert len(checks) == 1 + CACHE_SIZE + 10 + 1
    assert checker.check(_basic("prometheus", "s3cret"))
    assert len(checks) == 1 + CACHE_SIZE + 10 + 1  # the scraper's credentials are still cached


class BcryptChecks:
    """Wraps the real bcrypt.checkpw as the checker calls it: which passwords were checked, and
    how many checks ran at once at the most."""

    def __init__(self, monkeypatch) -> None:
        self.passwords: list[bytes] = []
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()
        self._real = bcrypt.checkpw
        monkeypatch.setattr(auth_module.bcrypt, "checkpw", self._check)

    def __len__(self) -> int:
        return len(self.passwords)

    def _check(self, password: bytes, hashed: bytes) -> bool:
        with self._lock:
            self.passwords.append(password)
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            return self._real(password, hashed)
        finally:
            with self._lock:
                self._running -= 1


def test_parse_basic_keeps_colons_in_the_password():
    assert parse_basic(_basic("user", "pa:ss")) == ("user", "pa:ss")


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
