"""The exporter's HTTP server: /metrics, a landing page and probe endpoints, over HTTP or TLS.

Routes
- `/`         a landing page linking the others
- `/metrics`  the exposition (text format, or OpenMetrics when asked; gzip when accepted)
- `/health`   200 while the process serves (liveness)
- `/ready`    200 once every configured backend has been polled at least once, else 503
- `/startup`  200 once start-up has finished (specs read, poller running), else 503

With a web config, TLS (and client certificates) apply to every connection and basic auth to
`/` and `/metrics`. The three probe endpoints answer without credentials so a plain HTTP probe
(the seed's HealthCheck, a load balancer) can check rtm itself; they say nothing but their
status and never cost a password check. Which backends /ready waits for is on the landing
page, behind the same auth as /metrics. The `Server` header names the program, not Python.

Each connection is served by a thread of its own (keep-alive connections from Prometheus stay
open), at most `MAX_CONNECTIONS` at once: `connections.py` says which gives way when all are
taken (a newcomer may wait up to its SLOT_WAIT there, the only wait of the accept loop). The TLS
handshake runs in the connection's thread, so a slow or silent client never holds up the accept
loop by itself. The server runs in a background thread (`start()`), so the console can
embed it and the headless exporter can wait for a signal.
"""

from __future__ import annotations

import gzip
import html
import ipaddress
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from console.config import ListenAddress
from console.exporter.auth import BasicAuthChecker
from console.exporter.connections import Connection, ConnectionSlots
from console.exporter.exposition import RtmRegistry
from console.exporter.web_config import WebConfig

log = logging.getLogger("rtm.exporter")

MAX_CONNECTIONS = 64  # connections served at once, one thread each
REQUEST_TIMEOUT = 10.0  # seconds for a new connection's first bytes, a TLS handshake, or one read of a request
IDLE_TIMEOUT = 120.0  # seconds a keep-alive connection may wait for its next request (scrape intervals are shorter)
PROBE_PATHS = ("/health", "/ready", "/startup")


class ExporterServer:
    """Serve `registry` on `listen`. `ready()` answers /ready; `mark_started()` turns /startup on.

    `describe_not_ready()` (optional) says why /ready is 503, e.g. which backends are pending.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        listen: ListenAddress,
        web_config: WebConfig | None = None,
        ready: Callable[[], bool] = lambda: True,
        describe_not_ready: Callable[[], str] = lambda: "not ready",
        title: str = "rtm-console exporter",
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.registry = registry
        self.web_config = web_config or WebConfig()
        self.ready = ready
        self.describe_not_ready = describe_not_ready
        self.title = title
        self.auth = BasicAuthChecker(self.web_config.basic_auth_users)
        self.renders = SharedRender()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = ConnectionSlots(max_connections)
        self._httpd = _HTTPServer(listen, self)  # binds now: a busy port fails here, not later

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 in the configuration picks a free port)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def scheme(self) -> str:
        return "https" if self._httpd.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        host, port = self.address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if host != "::" else "::1"
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{port}"

    def start(self) -> None:
        """Serve in a daemon thread ("rtm-exporter-http")."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="rtm-exporter-http", daemon=True)
        self._thread.start()

    def mark_started(self) -> None:
        self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close the listening socket and the open connections."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout)
        self._httpd.server_close()
        self.connections.close_all()


class SharedRender:
    """Scrapes that arrive while an identical one is being rendered wait for it and share its
    bytes, instead of each rendering the same state again (a burst of scrapers, or two
    Prometheus servers of an HA pair). No body is kept afterwards: a scrape never gets data
    older than the render that was running when it arrived (exposition.py keeps only the text
    of snapshots that are still their backend's newest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, _Flight] = {}

    def get(self, key: Any, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            flight = self._running.get(key)
            leader = flight is None
            if flight is None:
                flight = self._running[key] = _Flight()
            else:
                flight.followers += 1
        if leader:
            try:
                flight.result = render()
            except BaseException as exc:
                flight.error = exc
                raise
            finally:
                with self._lock:
                    del self._running[key]
                flight.done.set()
            return flight.result
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.result

    def followers(self, key: Any) -> int:
        """How many scrapes wait for the render of `key` running now (0 if none runs)."""
        with self._lock:
            flight = self._running.get(key)
            return flight.followers if flight else 0


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result = b""
        self.error: BaseException | None = None
        self.followers = 0


class _HTTPServer(HTTPServer):
    allow_reuse_address = True
    request_queue_size = 256  # many scrapers connecting at once must not be refused

    def __init__(self, listen: ListenAddress, exporter: ExporterServer) -> None:
        self.exporter = exporter
        self.ssl_context: ssl.SSLContext | None = exporter.web_config.ssl_context()
        self.address_family = _family(listen.host)
        super().__init__((listen.host, listen.port), _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            # "::" serves IPv4 too, as node_exporter's ":PORT" does.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # TCPServer's bind, not HTTPServer's: that one looks the host's name up in DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        connection = self.exporter.connections.admit(request)
        if connection is None:
            log.info("refused %s: all %d connections are in the middle of a request", client_address, self.exporter.connections.limit)
            if self.ssl_context is None:
                _send_unavailable(request)
            self.shutdown_request(request)
            return
        # A daemon thread per admitted connection, as ThreadingMixIn does (the slots bound how
        # many): a ThreadPoolExecutor's workers are joined at exit, so an idle keep-alive
        # connection would hold the process open for up to IDLE_TIMEOUT.
        threading.Thread(target=self._serve_connection, args=(connection, request, client_address),
                         name="rtm-exporter-connection", daemon=True).start()

    def _serve_connection(self, connection: Connection, request: Any, client_address: Any) -> None:
        sock = request
        try:
            if self.ssl_context is not None:
                sock = self._handshake(connection, request, client_address)
            if sock is not None:
                self.RequestHandlerClass(sock, client_address, self, connection)  # type: ignore[call-arg]
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.exporter.connections.release(connection)
            if sock is not None and sock is not request:
                sock.close()
            self.shutdown_request(request)

    def _handshake(self, connection: Connection, request: Any, client_address: Any) -> ssl.SSLSocket | None:
        """The TLS socket once the client has sent its first bytes and passed the checks, else None."""
        request.settimeout(REQUEST_TIMEOUT)
        try:
            if not request.recv(1, socket.MSG_PEEK) or not self.exporter.connections.busy(connection):
                return None
            secure = self.ssl_context.wrap_socket(request, server_side=True)  # type: ignore[union-attr]
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return None
        connection.sock = secure
        allowed = self.exporter.web_config.tls.client_allowed_sans if self.exporter.web_config.tls else ()
        if allowed and not _has_allowed_san(secure.getpeercert(), allowed):
            log.info("refused %s: its client certificate names none of client_allowed_sans", client_address)
            secure.close()
            return None
        return secure

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def _family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 address ("::" serves IPv4 too); "" means every IPv4 interface."""
    if host == "":
        return socket.AF_INET
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name: resolve to its first address
        return socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][0]


def _send_unavailable(request: socket.socket) -> None:
    """A 503 to a plain HTTP client that cannot be served now, without waiting on it."""
    try:
        request.setblocking(False)
        request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass


def _has_allowed_san(cert: Mapping[str, Any] | None, allowed: tuple[str, ...]) -> bool:
    names = {value for kind, value in (cert or {}).get("subjectAltName", ()) if kind in ("DNS", "email", "IP Address", "URI")}
    return any(name in names for name in allowed)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    server_version = "rtm-console-exporter"
    timeout = REQUEST_TIMEOUT
    # Headers and body leave in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK (40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def __init__(self, request: Any, client_address: Any, server: _HTTPServer, slot: Connection) -> None:
        self.slot = slot
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return self.server_version  # the base class adds Python's version

    def handle(self) -> None:
        """Requests one after another on this connection, while the client keeps it open."""
        wait = REQUEST_TIMEOUT
        while self._next_request_arrives(wait):
            wait = IDLE_TIMEOUT
            self.handle_one_request()
            if self.close_connection:
                return

    def _next_request_arrives(self, timeout: float) -> bool:
        """Wait, idle, for the first bytes of a request; False if the connection should end."""
        slots = self.server.exporter.connections
        slots.idle(self.slot)
        try:
            self.connection.settimeout(timeout)
            arrived = bool(self.rfile.peek(1))  # type: ignore[attr-defined]
            self.connection.settimeout(REQUEST_TIMEOUT)
        except (OSError, ValueError):  # timed out, reset, or closed to make room
            return False
        return arrived and slots.busy(self.slot)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        exporter = self.server.exporter
        path = urlsplit(self.path).path
        if path not in PROBE_PATHS and exporter.auth.enabled and not exporter.auth.check(self.headers.get("Authorization")):
            self._reply(401, b"Unauthorized\n", "text/plain; charset=utf-8", send_body,
                        {"WWW-Authenticate": 'Basic realm="rtm-console exporter", charset="UTF-8"'})
            return
        if path == "/metrics":
            self._metrics(send_body)
        elif path == "/health":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8", send_body)
        elif path == "/ready":
            ok = exporter.ready()
            self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n", "text/plain; charset=utf-8", send_body)
        elif path == "/startup":
            ok = exporter.started
            self._reply(200 if ok else 503, b"started\n" if ok else b"starting\n", "text/plain; charset=utf-8", send_body)
        elif path == "/":
            self._reply(200, _landing_page(exporter).encode(), "text/html; charset=utf-8", send_body)
        else:
            self._reply(404, b"Not found: try /metrics\n", "text/plain; charset=utf-8", send_body)

    def _metrics(self, send_body: bool) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        compress = "gzip" in self.headers.get("Accept-Encoding", "")
        try:
            body = self.server.exporter.renders.get((content_type, compress), lambda: self._render(encoder, content_type, compress))
        except Exception:  # a bug in a collector: say so in the response, keep serving
            log.exception("collecting metrics failed")
            self._reply(500, b"collecting metrics failed; see the log\n", "text/plain; charset=utf-8", send_body)
            return
        self._reply(200, body, content_type, send_body, {"Content-Encoding": "gzip"} if compress else None)

    def _render(self, encoder: Callable[[CollectorRegistry], bytes], content_type: str, compress: bool) -> bytes:
        registry = self.server.exporter.registry
        body = registry.exposition(encoder, content_type) if isinstance(registry, RtmRegistry) else encoder(registry)
        return gzip.compress(body, compresslevel=1) if compress else body  # level 1: fast, scrapes are frequent

    def _reply(self, status: int, body: bytes, content_type: str, send_body: bool, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.exporter.web_config.headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


def _landing_page(exporter: ExporterServer) -> str:
    """Links to the routes, and what the probes would say with their reasons (the backends
    /ready waits for), which the probes themselves keep to people who may scrape."""
    title = html.escape(exporter.title)
    readiness = "ready" if exporter.ready() else exporter.describe_not_ready()
    start = "started" if exporter.started else "starting"
    links = "".join(
        f'<li><a href="{path}">{path}</a> {html.escape(text)}</li>'
        for path, text in (
            ("/metrics", "metrics"),
            ("/health", "alive"),
            ("/ready", "every backend polled at least once"),
            ("/startup", "start-up finished"),
        )
    )
    return (
        f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
        f"<body><h1>{title}</h1><ul>{links}</ul>"
        f"<p>Readiness: {html.escape(readiness)}</p><p>Start-up: {start}</p></body></html>\n"
    )
