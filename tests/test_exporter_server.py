"""The exporter's HTTP server on loopback: routes, probes, gzip, TLS with client certificates,
basic auth. Certificates are made with the openssl command for each test session."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

import console.exporter.connections as connections_module
import console.exporter.server as server_module
from console.config import ListenAddress
from console.diagnostics import setup_debug_log
from console.exporter.assembly import ExporterStartError, build_registry, serve_exporter
from console.exporter.server import MAX_CONNECTIONS, ExporterServer, SharedRender
from console.exporter.web_config import load_web_config
from console.poller import Poller
from test_exporter_web_config import BcryptChecks
from test_gate import debug_log  # noqa: F401 - a fixture
from test_exporter_helpers import WAIT, ScriptedBackend, container, make_pki, wait_until

LOOPBACK = ListenAddress("127.0.0.1", 0)


def get(url_host: str, port: int, path: str, headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = (http.client.HTTPSConnection(url_host, port, context=context, timeout=10) if context
                  else http.client.HTTPConnection(url_host, port, timeout=10))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture
def poller():
    engine = ScriptedBackend("docker@scripted", "containers", [container("web-0")])
    engine.gate = threading.Event()  # the first poll waits until the test opens the gate
    poller = Poller([engine], interval=60)
    poller.engine = engine  # type: ignore[attr-defined]
    yield poller
    engine.gate.set()
    poller.stop()


def test_routes_probes_and_gzip(poller):
    server = ExporterServer(build_registry(poller), LOOPBACK, ready=poller.ready)
    server.start()
    host, port = server.address
    try:
        assert host == "127.0.0.1"  # loopback unless told otherwise
        assert get(host, port, "/startup")[0] == 503
        server.mark_started()
        assert get(host, port, "/startup")[0] == 200
        assert get(host, port, "/health")[0] == 200

        poller.start()
        status, _, body = get(host, port, "/ready")
        assert status == 503  # the backend's first poll has not ended
        poller.engine.gate.set()
        wait_until(poller.ready, "the first poll")
        assert get(host, port, "/ready")[0] == 200

        status, headers, body = get(host, port, "/")
        assert status == 200 and headers["content-type"].startswith("text/html") and b'href="/metrics"' in body
        status, headers, body = get(host, port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        assert b'rtm_container_cpu_usage_seconds_total{container="web-0"' in body
        status, headers, compressed = get(host, port, "/metrics", {"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip" and b"rtm_backend_up" in gzip.decompress(compressed)
        status, headers, body = get(host, port, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        assert headers["content-type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
        assert get(host, port, "/nothing-here")[0] == 404
    finally:
        server.stop()


def test_ready_answers_only_its_status_and_the_landing_page_behind_auth_names_the_backends(poller, tmp_path):
    hashed = bcrypt.hashpw(b"scrape-me", bcrypt.gensalt(4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  prometheus: {hashed}\n")
    exporter = serve_exporter(poller, LOOPBACK, web_config_path=tmp_path / "web.yml")
    try:
        host, port = exporter.server.address
        poller.start()
        assert get(host, port, "/ready")[::2] == (503, b"not ready\n")  # no backend names without credentials
        assert get(host, port, "/")[0] == 401
        status, _, body = get(host, port, "/", basic("prometheus", "scrape-me"))
        assert status == 200 and b"waiting for the first poll of docker@scripted" in body
    finally:
        exporter.stop()


def test_the_server_header_names_the_program_not_the_python_version(poller):
    server = ExporterServer(build_registry(poller), LOOPBACK)
    server.start()
    try:
        for path in ("/health", "/metrics", "/nothing-here"):
            assert get(*server.address, path)[1]["server"] == "rtm-console-exporter"
    finally:
        server.stop()


def test_control_characters_of_an_unauthenticated_request_line_are_escaped_in_the_debug_log(poller, tmp_path, debug_log):
    hashed = bcrypt.hashpw(b"scrape-me", bcrypt.gensalt(4)).decode()
    server = _serve_with(tmp_path, poller, f"basic_auth_users:\n  prometheus: {hashed}\n")
    log_path = setup_debug_log(tmp_path / "data")
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            # The escape sequence would set the title of the terminal that shows the log.
            client.sendall(b"GET /\x1b]0;owned\x07 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.1 401 ")
    finally:
        server.stop()
    wait_until(lambda: "owned" in log_path.read_text(), "the request in the debug log")
    logged = log_path.read_text()
    assert "\x1b" not in logged and "\x07" not in logged
    assert '"GET /\\x1b]0;owned\\x07 HTTP/1.1" 401' in logged


# ------------------------------------------------------------------------ connections


def test_idle_sockets_beyond_the_cap_hold_no_threads_and_a_keep_alive_scrape_still_works(poller):
    server = ExporterServer(build_registry(poller), LOOPBACK)
    server.start()
    host, port = server.address
    threads_before = threading.active_count()
    idle: list[socket.socket] = []
    try:
        for _ in range(220):  # connect and say nothing, as a client that keeps sockets open
            idle.append(socket.create_connection((host, port), timeout=10))
        wait_until(lambda: server.connections.evicted >= 220 - MAX_CONNECTIONS, "the surplus idle sockets to be closed")
        assert server.connections.open_count <= MAX_CONNECTIONS
        assert threading.active_count() - threads_before <= MAX_CONNECTIONS
        scraper = http.client.HTTPConnection(host, port, timeout=10)
        try:
            for _ in range(3):  # one connection, kept alive between scrapes
                scraper.request("GET", "/metrics")
                response = scraper.getresponse()
                assert response.status == 200 and b"rtm_backend_up" in response.read()
        finally:
            scraper.close()
        assert threading.active_count() - threads_before <= MAX_CONNECTIONS
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_a_silent_connection_and_an_idle_keep_alive_connection_are_closed_after_their_timeouts(poller, monkeypatch):
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 0.3)  # 10 s and 120 s in service
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT", 0.6)
    server = ExporterServer(build_registry(poller), LOOPBACK)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=WAIT) as silent:
            assert silent.recv(100) == b""  # closed by the server, having sent nothing
        with socket.create_connection(server.address, timeout=WAIT) as kept:
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"ok\n"):
                answer += kept.recv(1000)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert kept.recv(100) == b""  # kept open for the next request, then closed when idle
        with socket.create_connection(server.address, timeout=WAIT) as slow:
            slow.sendall(b"GET /health HT")  # a request that stops half-way
            assert slow.recv(100) == b""
        wait_until(lambda: server.connections.open_count == 0, "the connections to be released")
    finally:
        server.stop()


@contextlib.contextmanager
def _two_requests_under_way(poller: Poller, path: str) -> Iterator[tuple[ExporterServer, socket.socket]]:
    """An exporter with room for two connections, both in the middle of a request (their headers
    still to come); yields it and the first of them."""
    server = ExporterServer(build_registry(poller), LOOPBACK, max_connections=2)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=WAIT) as first, \
                socket.create_connection(server.address, timeout=WAIT) as second:
            for busy in (first, second):
                busy.sendall(f"GET {path} HTTP/1.1\r\n".encode())
            wait_until(lambda: server.connections.busy_count == 2, "both requests to begin")
            yield server, first
    finally:
        server.stop()


def test_a_new_connection_waits_for_a_request_under_way_to_end_instead_of_being_refused(poller):
    """A burst of scrapers beyond the limit: the newcomer is served once a scrape under way ends
    (its connection, idle again, makes room), not refused because all were busy when it came."""
    with _two_requests_under_way(poller, "/health") as (server, first):
        with socket.create_connection(server.address, timeout=WAIT) as third:
            third.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            first.sendall(b"Host: x\r\n\r\n")  # its scrape ends; the connection stays open, idle
            assert first.recv(100).startswith(b"HTTP/1.1 200 ")
            assert third.recv(100).startswith(b"HTTP/1.1 200 ")
        assert (server.connections.refused, server.connections.evicted) == (0, 1)


def test_a_connection_just_admitted_is_not_closed_to_make_room_before_its_first_request(monkeypatch):
    """Under a burst, a connection whose client has not yet had the time to send its request is
    not the one closed for the next newcomer (that scrape would fail); one that stays silent past
    the grace is, so a flood of silent sockets still cannot lock a scraper out."""
    monkeypatch.setattr(connections_module, "FRESH_GRACE", 30.0)
    monkeypatch.setattr(connections_module, "SLOT_WAIT", 0.05)
    slots = connections_module.ConnectionSlots(2)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        busy, fresh = slots.admit(pairs[0][0]), slots.admit(pairs[1][0])
        assert busy is not None and fresh is not None and slots.busy(busy)
        assert slots.admit(pairs[2][0]) is None  # nothing could be closed: refused, the fresh one kept
        assert not fresh.closing and (slots.evicted, slots.refused) == (0, 1)
        monkeypatch.setattr(connections_module, "FRESH_GRACE", 0.0)  # now it has stayed silent too long
        serving = threading.Thread(target=lambda: (wait_until(lambda: fresh.closing, "the eviction"), slots.release(fresh)))
        serving.start()  # what the connection's own thread does once its socket is shut
        assert slots.admit(pairs[2][0]) is not None and fresh.closing and slots.evicted == 1
        serving.join(WAIT)
    finally:
        for left, right in pairs:
            left.close()
            right.close()


def test_when_every_connection_stays_in_the_middle_of_a_request_a_new_one_gets_503(poller):
    with _two_requests_under_way(poller, "/metrics") as (server, first):
        with socket.create_connection(server.address, timeout=WAIT) as third:
            assert third.recv(100).startswith(b"HTTP/1.1 503 ")
        assert server.connections.refused == 1
        first.sendall(b"Host: x\r\nConnection: close\r\n\r\n")  # the busy ones are still served
        assert first.recv(100).startswith(b"HTTP/1.1 200 ")


def test_a_flood_of_wrong_passwords_runs_one_bcrypt_check_at_a_time_and_probes_run_none(poller, tmp_path, monkeypatch):
    hashed = bcrypt.hashpw(b"scrape-me", bcrypt.gensalt(4)).decode()
    server = _serve_with(tmp_path, poller, f"basic_auth_users:\n  prometheus: {hashed}\n")
    host, port = server.address
    checks = BcryptChecks(monkeypatch)
    statuses: list[int] = []
    guessers = [threading.Thread(target=lambda n=n: statuses.append(get(host, port, "/metrics", basic("prometheus", f"guess-{n}"))[0]))
                for n in range(40)]
    try:
        for thread in guessers:
            thread.start()
        probes = [get(host, port, path)[0] for path in ("/health", "/ready", "/startup") * 5]
        for thread in guessers:
            thread.join(60)
        assert statuses == [401] * 40 and set(probes) <= {200, 503}
        assert len(checks) == 40 and checks.most_at_once == 1  # the probes cost no check; guesses queue
        assert get(host, port, "/metrics", basic("prometheus", "scrape-me"))[0] == 200
        assert get(host, port, "/metrics", basic("prometheus", "scrape-me"))[0] == 200
        assert len(checks) == 41  # the second scrape came from the cache
    finally:
        server.stop()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_busy_port_is_a_start_error_for_people(poller):
    first = serve_exporter(poller, LOOPBACK)
    try:
        with pytest.raises(ExporterStartError, match="cannot listen on 127.0.0.1:.*another process uses it"):
            serve_exporter(poller, ListenAddress("127.0.0.1", first.server.address[1]))
    finally:
        first.stop()


# ------------------------------------------------------------------------ TLS, basic auth


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _client_context(pki: Path, cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert is not None:
        context.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
    return context


def _serve_with(tmp_path: Path, poller: Poller, text: str) -> ExporterServer:
    path = tmp_path / "web.yml"
    path.write_text(text)
    server = ExporterServer(build_registry(poller), LOOPBACK, load_web_config(path))
    server.start()
    return server


def _refused(host: str, port: int, path: str = "/metrics", **kwargs) -> bool:
    try:
        get(host, port, path, **kwargs)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


def test_tls_serves_https_and_refuses_plain_http(pki, tmp_path, poller):
    server = _serve_with(tmp_path, poller, f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n")
    host, port = server.address
    try:
        assert server.url.startswith("https://")
        status, _, body = get(host, port, "/metrics", context=_client_context(pki))
        assert status == 200 and b"rtm_backend_up" in body
        assert _refused(host, port)  # plain HTTP to the TLS port
        untrusting = ssl.create_default_context()  # does not trust the test CA
        assert _refused(host, port, context=untrusting)
    finally:
        server.stop()


def test_client_certificates_are_required_and_verified(pki, tmp_path, poller):
    server = _serve_with(tmp_path, poller, (
        f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
        f"  client_ca_file: {pki}/ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_allowed_sans: [scraper.example]\n"
    ))
    host, port = server.address
    try:
        assert get(host, port, "/metrics", context=_client_context(pki, "client"))[0] == 200
        assert _refused(host, port, context=_client_context(pki))  # no client certificate
        assert _refused(host, port, context=_client_context(pki, "rogue"))  # signed by another CA
        assert _refused(host, port, context=_client_context(pki, "other"))  # the CA's, but a SAN not allowed
    finally:
        server.stop()


def test_basic_auth_over_tls_accepts_the_right_credentials_and_refuses_others(pki, tmp_path, poller):
    hashed = bcrypt.hashpw(b"scrape-me", bcrypt.gensalt(4)).decode()
    server = _serve_with(tmp_path, poller, (
        f"tls_server_config:\n  cert_file: {pki}/server.crt\n  key_file: {pki}/server.key\n"
        f"basic_auth_users:\n  prometheus: {hashed}\n"
        "http_server_config:\n  headers: {X-Content-Type-Options: nosniff}\n"
    ))
    host, port = server.address
    context = _client_context(pki)

    try:
        status, headers, body = get(host, port, "/metrics", basic("prometheus", "scrape-me"), context=context)
        assert status == 200 and b"rtm_backend_up" in body
        assert headers["x-content-type-options"] == "nosniff"
        for wrong in (basic("prometheus", "nope"), basic("admin", "scrape-me"), {}):
            status, headers, body = get(host, port, "/metrics", wrong, context=context)
            assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
            assert b"rtm_" not in body
        assert get(host, port, "/", context=context)[0] == 401
        # Probe endpoints answer without credentials (they reveal only their status).
        assert get(host, port, "/health", context=context)[0] == 200
    finally:
        server.stop()


def test_scrapes_arriving_during_a_render_share_it():
    shared = SharedRender()
    started, release = threading.Event(), threading.Event()
    renders = []

    def render() -> bytes:
        renders.append(1)
        started.set()
        release.wait(20)
        return f"render {len(renders)}".encode()

    results: list[bytes] = []
    leader = threading.Thread(target=lambda: results.append(shared.get("text", render)))
    leader.start()
    assert started.wait(20)
    followers = [threading.Thread(target=lambda: results.append(shared.get("text", render))) for _ in range(5)]
    for thread in followers:
        thread.start()
    wait_until(lambda: shared.followers("text") == 5, "five scrapes waiting for the running render")
    release.set()
    for thread in (leader, *followers):
        thread.join(20)
    assert results == [b"render 1"] * 6 and len(renders) == 1
    # Nothing is kept: the next scrape renders afresh.
    assert shared.get("text", lambda: b"fresh") == b"fresh"


def test_a_failed_render_fails_its_followers_too():
    shared = SharedRender()
    started, release = threading.Event(), threading.Event()

    def broken() -> bytes:
        started.set()
        release.wait(20)
        raise RuntimeError("collector bug")

    errors: list[str] = []

    def scrape_once() -> None:
        try:
            shared.get("text", broken)
        except RuntimeError as exc:
            errors.append(str(exc))

    leader = threading.Thread(target=scrape_once)
    leader.start()
    assert started.wait(20)
    follower = threading.Thread(target=scrape_once)
    follower.start()
    wait_until(lambda: shared.followers("text") == 1, "the follower to wait")
    release.set()
    leader.join(20)
    follower.join(20)
    assert errors == ["collector bug", "collector bug"]
