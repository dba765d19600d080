"""The local HTTP gateway: loopback HTTP/1.1 in front of the functions' http triggers.

Requests are routed by method and path (backends/localfn/routes.py) and turned into API
Gateway payload 2.0 events (http_events.py); the runtime runs the function and gives back the
response. What the gateway answers itself, with API Gateway's `{"message": ...}` bodies:

    400  conflicting Content-Length values (RFC 9112 section 6.3); the connection is closed
    404  no route for this method and path
    413  a body over `max_body_bytes` (6 MB by default, Lambda's limit for a synchronous
         invoke), refused from its Content-Length before it is read, or while a chunked body
         is read; the connection is then closed

(a request with neither Content-Length nor chunked encoding has no body, as HTTP/1.1 says),
and from the runtime: 502 for a handler error, a crash, out of memory, a malformed response or
one over 6 MB, 504 for a timeout, 429 when the function's workers all stay busy.

It also answers Lambda's Invoke API, `POST /2015-03-31/functions/NAME/invocations`, so
`rtm-console` (or boto3 with endpoint_url set to the gateway) can invoke a local function in
whichever process hosts the runtime. Every path of Lambda's API (a dated first segment) needs
a Signature Version 4 signature with the runtime's key pair (backends/localfn/signing.py);
http-trigger routes stay open, as API Gateway's are.

Why a ThreadingHTTPServer: each request spends nearly all of its time waiting on a worker
process's pipe, and a thread blocked in a read releases the GIL, so a thread per connection
overlaps those waits as well as an event loop would, with the standard library's HTTP/1.1
parsing (keep-alive, Expect: 100-continue) instead of a hand-written one. The response is
sent as one write with TCP_NODELAY, so keep-alive requests never wait on Nagle's algorithm.
docs/benchmarks.md has the numbers behind this choice.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import urlsplit

from backends.localfn.http_events import HttpResponse, error_body, http_event
from backends.localfn.routes import Route, RouteTable
from backends.localfn.signing import LAMBDA_API_PATH

logger = logging.getLogger("rtm.localfn.gateway")

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invoke payload limit
INVOKE_PATH = "/2015-03-31/functions/{name}/invocations"
INVOKE_API = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
_JSON = (("content-type", "application/json"),)


class GatewayBackend(Protocol):
    """What the gateway needs from the runtime."""

    def routes(self) -> RouteTable: ...

    def serve_http(self, route: Route, event: dict, request_id: str) -> HttpResponse: ...

    def serve_lambda_api(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                         request_id: str) -> HttpResponse: ...


class BodyTooLarge(Exception):
    pass


class BadRequest(Exception):
    pass


def gateway_url(host: str, port: int) -> str:
    """The URL clients use for a listen address (every interface -> loopback)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def answer(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, _JSON, error_body(message))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rtm-localfn"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 75  # an idle keep-alive connection's thread ends after this

    server: _Server

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        if self._declared_length() > self.server.max_body_bytes:
            self._send(self._too_large(), close=True)
            self._linger()
            return False
        return super().handle_expect_100()

    def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body()
        except BodyTooLarge:
            self._send(self._too_large(), request_id, close=True)
            self._linger()
            return
        except BadRequest as exc:
            self._send(answer(HTTPStatus.BAD_REQUEST, str(exc)), request_id, close=True)
            return
        split = urlsplit(self.path)
        raw_path = split.path or "/"
        backend = self.server.backend
        if LAMBDA_API_PATH.match(raw_path):  # signed requests only (backends/localfn/signing.py)
            target = raw_path + (f"?{split.query}" if split.query else "")
            self._send(backend.serve_lambda_api(self.command, target, self.headers.items(), body, request_id), request_id)
            return
        found = backend.routes().match(self.command, raw_path)
        if found is None:
            self._send(answer(HTTPStatus.NOT_FOUND, "Not Found"), request_id)
            return
        route, parameters = found
        event = http_event(
            method=self.command, raw_path=raw_path, raw_query=split.query,
            headers=self.headers.items(), body=body, route=route, path_parameters=parameters,
            source_ip=self.client_address[0], request_id=request_id,
        )
        try:
            response = backend.serve_http(route, event, request_id)
        except Exception:  # a bug in the runtime must not kill the connection thread silently
            logger.exception("serving %s %s failed", self.command, raw_path)
            response = answer(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error")
        self._send(response, request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    # ------------------------------------------------------------------------------ bodies

    def _declared_length(self) -> int:
        value = self.headers.get("Content-Length")
        if value is None:
            return 0
        try:
            return int(value)
        except ValueError:
            return 0

    def _read_body(self) -> bytes:
        limit = self.server.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            if "Content-Length" in self.headers:  # RFC 9112 6.1: chunked wins, and the connection ends
                self.close_connection = True
            return self._read_chunked(limit)
        value = self._content_length()
        if value is None:
            return b""
        if not value.strip().isdigit():
            raise BadRequest(f"Content-Length {value!r} is not a number")
        length = int(value)
        if length > limit:
            raise BodyTooLarge()
        return self._read_exactly(length)

    def _content_length(self) -> str | None:
        """The one Content-Length; differing values (two headers, or a list) are refused as
        RFC 9112 section 6.3 says, since a proxy may have read the body by the other one."""
        values = {v.strip() for header in self.headers.get_all("Content-Length") or () for v in header.split(",")}
        if len(values) > 1:
            raise BadRequest(f"conflicting Content-Length values ({' and '.join(sorted(values))})")
        return values.pop() if values else None

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BadRequest("malformed chunked body") from exc
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BodyTooLarge()
            chunks.append(self._read_exactly(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise BadRequest("the body ended early")
        return data

    def _linger(self, seconds: float = 2.0, limit: int = 2 * MAX_BODY_BYTES) -> None:
        """Close gracefully after refusing a body the client is still sending: closing a socket
        with unread data makes the kernel send a reset, which can destroy the 413 before the
        client reads it. So: stop sending, then read and drop what arrives, for a bounded time."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(seconds)
            deadline = time.monotonic() + seconds
            drained = 0
            while drained < limit and time.monotonic() < deadline:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def _too_large(self) -> HttpResponse:
        limit_mb = self.server.max_body_bytes / (1024 * 1024)
        return answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"Request Entity Too Large: the limit is {limit_mb:g} MB")

    # ------------------------------------------------------------------------------ answers

    def _send(self, response: HttpResponse, request_id: str = "", close: bool = False) -> None:
        """The whole response in one write (no Nagle delay between headers and body)."""
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        if close:
            self.close_connection = True
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        names = set()
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
            names.add(name.lower())
        if "content-type" not in names and response.body:
            lines.append("content-type: application/octet-stream")
        lines.append(f"content-length: {len(response.body)}")
        lines.append(f"date: {formatdate(time.time(), usegmt=True)}")
        if request_id:
            lines.append(f"apigw-requestid: {request_id}")
        if self.close_connection:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        body = b"" if self.command == "HEAD" else response.body
        try:
            self.wfile.write(head + body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        logger.debug("%s %s", self.client_address[0], format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # wrk and browsers open many connections at once

    def handle_error(self, request: object, client_address: tuple) -> None:
        # The default prints a traceback to stderr, which would tear through the console's screen.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %s", client_address[0], error)
        else:
            logger.exception("the gateway failed serving %s", client_address[0])

    def __init__(self, address: tuple[str, int], backend: GatewayBackend, max_body_bytes: int) -> None:
        self.backend = backend
        self.max_body_bytes = max_body_bytes
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class Gateway:
    """The gateway's server and its thread."""

    def __init__(self, backend: GatewayBackend, host: str = "127.0.0.1", port: int = 8790,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._server = _Server((host, port), backend, max_body_bytes)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return gateway_url(*self.address)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="rtm-localfn-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
