"""The local functions runtime: the gateway, the cron scheduler and the worker pool, hosted by
one process (the console while it is open, or the agent) for as long as that process runs.

It serves what the store holds: on every request it checks the store's index (one stat) and,
when a deploy or delete changed it, from any process, switches to the new routes, schedules and
versions at once. Requests already running finish on the version they started on; later ones
get the new version (backends/localfn/pool.py drains the old workers).

Every invocation, whatever triggered it (HTTP, cron, the Invoke API, `invoke()`), goes through
`invoke()`, which runs it in a worker and appends its record to the invocation log.

Only one process may host the runtime of a data folder at a time: `start()` takes the store's
host lock (backends/localfn/hosting.py) and raises RuntimeAlreadyHosted when another process
has it. Deciding whether this process should host at all (the agent's lock) is the caller's
job; `host_state()` tells anyone who hosts now.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from urllib.parse import unquote
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from backends.localfn.http_events import HttpResponse, InvalidResponse, http_response, scheduled_event
from backends.localfn.gateway import INVOKE_API, MAX_BODY_BYTES, Gateway, answer
from backends.localfn.hosting import HostLock, HostState, read_host_state
from backends.localfn.invocations import InvocationLog, InvocationRecord, InvocationWriter
from backends.localfn.pool import PoolClosed, Throttled, WorkerPool
from backends.localfn.process import WorkerResult
from backends.localfn.routes import Route, RouteTable
from backends.localfn.cron_triggers import CronJob, CronScheduler, utc_now
from backends.localfn.signing import AuthFailure, KeyPair, ensure_key_pair, verify
from backends.localfn.store import FunctionNotFound, FunctionStore, StoredFunction
from backends.localfn.worker import MAX_RESPONSE_BYTES

logger = logging.getLogger("rtm.localfn")

_LOG_TAIL_BYTES = 4096  # what Lambda returns in X-Amz-Log-Result


class GatewayAddressInUse(OSError):
    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"the local functions gateway cannot listen on {host}:{port}: {cause.strerror}; "
                                      "set functions.gateway_listen to a free address (port 0 picks one)")


@dataclass(frozen=True)
class Invocation:
    record: InvocationRecord
    result: WorkerResult


@dataclass(frozen=True)
class _Served:
    """What is being served, swapped as a whole when the store changes."""

    stamp: tuple[int, int, int] | None
    functions: Mapping[str, StoredFunction]
    routes: RouteTable


class LocalFunctionsRuntime:
    def __init__(
        self,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 8790,
        *,
        role: str = "console",
        max_body_bytes: int = MAX_BODY_BYTES,
        max_workers: int = 8,
        idle_seconds: float = 300.0,
        queue_timeout: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        containment: str | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.store = FunctionStore(data_dir)
        self.host, self.port = host, port
        self.max_body_bytes = max_body_bytes
        self.pool = WorkerPool(max_workers=max_workers, idle_seconds=idle_seconds, queue_timeout=queue_timeout,
                               containment=containment, max_response_bytes=max_response_bytes)
        self.log = InvocationLog(self.store.root)
        self._writer = InvocationWriter(self.store.root)
        self._host_lock = HostLock(self.store.root, role)
        self._clock = clock
        self.scheduler = CronScheduler(self._fire_cron, clock=clock, on_tick=self._upkeep)
        self._gateway: Gateway | None = None
        self._served = _Served(None, {}, RouteTable())
        self._refresh_lock = threading.Lock()
        self._started = False
        self._key: KeyPair | None = None
        self.throttles = 0

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take the host lock, listen, and start firing cron triggers.

        Raises RuntimeAlreadyHosted (another process hosts this store) or GatewayAddressInUse.
        """
        if self._started:
            return
        self._host_lock.acquire()
        try:
            self._key = ensure_key_pair(self.store.root)
        except (OSError, ValueError):
            self._host_lock.release()
            raise
        try:
            self._gateway = Gateway(self, self.host, self.port, self.max_body_bytes)
        except OSError as exc:
            self._host_lock.release()
            raise GatewayAddressInUse(self.host, self.port, exc) from exc
        self._gateway.start()
        self._host_lock.publish(self._gateway.url)
        self._refresh(force=True)
        self.scheduler.start()
        self._started = True
        logger.info("local functions runtime serving at %s", self._gateway.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and firing, let running invocations finish (killed after `timeout`),
        stop every worker, and give up the host lock."""
        if not self._started:
            return
        self._started = False
        self.scheduler.stop()
        if self._gateway is not None:
            self._gateway.stop()
        self.pool.close(timeout)
        self._writer.close()
        self._host_lock.release()

    def __enter__(self) -> LocalFunctionsRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str | None:
        return self._gateway.url if self._gateway is not None and self._started else None

    def host_state(self) -> HostState:
        """Who hosts this data folder's runtime now (this process, another one, or nobody)."""
        return read_host_state(self.store.root)

    # ------------------------------------------------------------------------------ serving

    def routes(self) -> RouteTable:
        return self._refresh().routes

    def functions(self) -> Mapping[str, StoredFunction]:
        return self._refresh().functions

    def _refresh(self, force: bool = False) -> _Served:
        served = self._served
        stamp = self.store.stamp()
        if stamp == served.stamp and not force:
            return served
        with self._refresh_lock:
            if self._served.stamp == stamp and not force:
                return self._served
            try:
                functions = self.store.current()
            except (OSError, ValueError, KeyError) as exc:  # a damaged index: keep serving the last good one
                logger.error("cannot read the function store's index: %s", exc)
                return self._served
            routes = RouteTable(Route(t.method, t.path, name)  # type: ignore[arg-type]
                                for name, f in functions.items() for t in f.definition.http_triggers())
            self._served = _Served(stamp, functions, routes)
            self.pool.set_current({name: f.version for name, f in functions.items()})
            self.scheduler.set_jobs(
                CronJob(name, t.schedule, f"{name}-cron-{index}")  # type: ignore[arg-type]
                for name, f in functions.items() for index, t in enumerate(f.definition.cron_triggers(), 1))
            return self._served

    def _upkeep(self) -> None:
        self._refresh()
        self.pool.reap_idle()

    def invoke(self, name: str, event: Any, trigger: str = "invoke", request_id: str | None = None,
               function: StoredFunction | None = None) -> Invocation:
        """Run the function's current version once and record it. Raises FunctionNotFound,
        Throttled or PoolClosed."""
        if function is None:
            function = self._refresh().functions.get(name)
            if function is None:
                raise FunctionNotFound(name)
        request_id = request_id or str(uuid.uuid4())
        started = time.time()
        try:
            result = self.pool.invoke(function, event, request_id)
        except Throttled:
            self.throttles += 1
            raise
        record = self._record(function, trigger, request_id, started, result)
        return Invocation(record, result)

    def _record(self, function: StoredFunction, trigger: str, request_id: str, started: float,
                result: WorkerResult, status_code: int | None = None, error: str | None = None) -> InvocationRecord:
        if error is None and result.error:
            error = f"{result.error.get('errorType')}: {result.error.get('errorMessage')}"
        record = InvocationRecord(
            request_id=request_id, function=function.name, version=function.version, trigger=trigger,
            started_at=started, duration_seconds=result.duration_seconds, outcome=result.outcome,
            status_code=status_code, error=error, peak_memory_bytes=result.peak_rss_bytes,
            memory_limit_bytes=function.definition.memory_bytes, cold_start=result.cold_start,
            init_seconds=result.init_seconds, log_lines=result.log_lines,
        )
        try:
            self._writer.append(record)
        except OSError as exc:  # a full disk must not fail the request itself
            logger.error("cannot record invocation %s of %s: %s", request_id, function.name, exc)
        return record

    # --- HTTP triggers ---

    def serve_http(self, route: Route, event: dict, request_id: str) -> HttpResponse:
        function = self._served.functions.get(route.function)
        if function is None:  # deleted between routing and now
            return answer(HTTPStatus.NOT_FOUND, "Not Found")
        started = time.time()
        try:
            result = self.pool.invoke(function, event, request_id)
        except Throttled:
            self.throttles += 1
            return answer(HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests")
        except PoolClosed:
            return answer(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable: the runtime is stopping")
        error = None
        if result.outcome == "ok":
            try:
                response = http_response(result.result)
            except InvalidResponse as exc:
                error = f"malformed proxy response: {exc}"
                response = answer(HTTPStatus.BAD_GATEWAY, "Internal Server Error")
        elif result.outcome == "timeout":
            response = answer(HTTPStatus.GATEWAY_TIMEOUT, "Endpoint request timed out")
        else:
            response = answer(HTTPStatus.BAD_GATEWAY, "Internal Server Error")
        self._record(function, f"http {route.key}", request_id, started, result, response.status, error)
        return response

    # --- Lambda's API: signed requests only ---

    def serve_lambda_api(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                         request_id: str) -> HttpResponse:
        """A request to a path of Lambda's API: checked for its signature, then Invoke is served."""
        if self._key is None:
            return _lambda_error(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceException", "the runtime is starting", typed=False)
        try:
            verify(method, target, headers, body, self._key, now=self._clock)
        except AuthFailure as failure:
            return _lambda_error(HTTPStatus.FORBIDDEN, failure.error_type, failure.message, typed=False)
        invoke = INVOKE_API.match(target.partition("?")[0])
        if invoke is None or method != "POST":
            return _lambda_error(HTTPStatus.NOT_FOUND, "UnknownOperationException",
                                 f"{method} {target.partition('?')[0]}: the local runtime answers Invoke only "
                                 "(use rtm-console get, describe and apply for the rest)", typed=False)
        named = {name.lower(): value for name, value in headers}
        return self.serve_invoke(
            unquote(invoke.group(1)), body, request_id,
            asynchronous=named.get("x-amz-invocation-type", "RequestResponse") == "Event",
            log_tail=named.get("x-amz-log-type", "None") == "Tail")

    def serve_invoke(self, name: str, payload: bytes, request_id: str, asynchronous: bool,
                     log_tail: bool) -> HttpResponse:
        function = self._refresh().functions.get(name)
        if function is None:
            return _lambda_error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException",
                                 f"Function not found: arn:aws:lambda:local:000000000000:function:{name}")
        try:
            event = json.loads(payload) if payload.strip() else {}
        except ValueError as exc:
            return _lambda_error(HTTPStatus.BAD_REQUEST, "InvalidRequestContentException",
                                 f"Could not parse request body into json: {exc}")
        if asynchronous:
            threading.Thread(target=self._invoke_quietly, args=(function, event, "invoke (event)", request_id),
                             name="rtm-localfn-event", daemon=True).start()
            return HttpResponse(HTTPStatus.ACCEPTED, (("x-amzn-requestid", request_id),), b"")
        try:
            invocation = self.invoke(name, event, "invoke", request_id, function)
        except Throttled:
            return _lambda_error(HTTPStatus.TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.")
        except PoolClosed:
            return _lambda_error(HTTPStatus.SERVICE_UNAVAILABLE, "ServiceException", "the runtime is stopping")
        result = invocation.result
        headers = [("content-type", "application/json"), ("x-amzn-requestid", request_id),
                   ("x-amz-executed-version", str(function.version))]
        if result.outcome == "ok":
            body = json.dumps(result.result).encode("utf-8")
        else:
            headers.append(("x-amz-function-error", "Unhandled"))
            body = json.dumps(dict(result.error or {})).encode("utf-8")
        if log_tail:
            tail = "\n".join(result.log_lines).encode("utf-8")[-_LOG_TAIL_BYTES:]
            headers.append(("x-amz-log-result", base64.b64encode(tail).decode("ascii")))
        return HttpResponse(HTTPStatus.OK, tuple(headers), body)

    def _invoke_quietly(self, function: StoredFunction, event: Any, trigger: str, request_id: str) -> None:
        try:
            self.invoke(function.name, event, trigger, request_id, function)
        except (Throttled, PoolClosed) as exc:
            logger.warning("%s of %s was dropped: %s", trigger, function.name, exc)

    # --- cron triggers ---

    def _fire_cron(self, job: CronJob, scheduled_for: datetime) -> None:
        function = self._served.functions.get(job.function)
        if function is None:
            return
        request_id = str(uuid.uuid4())
        event = scheduled_event(job.rule_name, scheduled_for, request_id)
        # Each firing runs on its own thread: a slow function never delays another schedule.
        threading.Thread(target=self._invoke_quietly, args=(function, event, job.trigger, request_id),
                         name=f"rtm-localfn-cron:{job.function}", daemon=True).start()


def _lambda_error(status: int, error_type: str, message: str, typed: bool = True) -> HttpResponse:
    body = json.dumps({"Type": "User", "message": message} if typed else {"message": message}).encode("utf-8")
    return HttpResponse(status, (("content-type", "application/json"), ("x-amzn-errortype", error_type)), body)
