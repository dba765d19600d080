"""The events a local function receives and how its answer becomes an HTTP response.

HTTP requests become API Gateway HTTP API events in payload format 2.0: header names in lower
case with repeated headers joined by commas, cookies in their own list, query parameters joined
the same way, path parameters from the route, and the body as text when it is UTF-8, else
base64 with `isBase64Encoded: true`.

The handler's result is read as API Gateway reads a 2.0 proxy response: a dict with
`statusCode` gives the status, `headers`, `cookies` (each a Set-Cookie header) and `body`
(base64-decoded when `isBase64Encoded`); any other JSON value is answered 200 with
content-type application/json and the value, JSON-encoded, as the body. A malformed response
(a status that is not a number from 100 to 599, a body that is not a string) is the
function's error: `InvalidResponse`, answered 502.

Cron triggers send EventBridge's "Scheduled Event".
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from backends.localfn.routes import Route

ACCOUNT_ID = "000000000000"
REGION = "local"
API_ID = "local"


class InvalidResponse(ValueError):
    """The handler's result is not a valid proxy response."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def http_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route: Route,
    path_parameters: Mapping[str, str],
    source_ip: str,
    request_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway payload 2.0 event for one request."""
    now = time.time() if now is None else now
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": joined.get("host", "localhost"),
            "domainPrefix": joined.get("host", "localhost").split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _joined_query(raw_query)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _joined_query(raw_query: str) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def http_response(result: Any) -> HttpResponse:
    """The HTTP response for a handler's result (payload format 2.0 rules)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = json.dumps(result).encode("utf-8")
        return HttpResponse(200, (("content-type", "application/json"),), body)
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status (100-599)")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise InvalidResponse("headers must be an object of header names to values")
    for name, value in raw_headers.items():
        if not _is_token(str(name)) or any(c in str(value) for c in "\r\n"):
            raise InvalidResponse(f"header {name!r} is not a valid HTTP header")
        headers.append((str(name), _header_text(value)))
    for cookie in result.get("cookies") or ():
        if any(c in str(cookie) for c in "\r\n"):
            raise InvalidResponse("a cookie holds a line break")
        headers.append(("set-cookie", str(cookie)))
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise InvalidResponse(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidResponse(f"isBase64Encoded is true but the body is not base64: {exc}") from exc
    else:
        payload = body.encode("utf-8")
    return HttpResponse(status, tuple(headers), payload)


def _is_token(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def scheduled_event(rule_name: str, fired_at: datetime, request_id: str) -> dict[str, Any]:
    """EventBridge's Scheduled Event, as a cron trigger delivers it."""
    moment = fired_at.astimezone(timezone.utc).replace(microsecond=0)
    return {
        "version": "0",
        "id": request_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.isoformat().replace("+00:00", "Z"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def error_body(message: str) -> bytes:
    """API Gateway's error body shape: {"message": ...}."""
    return json.dumps({"message": message}).encode("utf-8")
