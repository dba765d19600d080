"""`apply`, `delete`, `get`, `describe`, `logs` and `invoke` for functions on the local runtime.

The handler works on the store in the data folder, so it works the same in any process: the
CLI stores a new version and whichever process hosts the runtime (the console or the agent)
serves it on its next request. `plan` compares the spec with the current version field by
field, the code by its hash; `apply` stores a new version only when something differs.

Invoking goes to the runtime in this process when it hosts one, otherwise to the hosting
process's gateway through Lambda's Invoke API; with nobody hosting, it says so.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.base import Availability, BackendUnavailable
from backends.handlers import ApplyError, Change
from backends.localfn.definition import (
    CodeError,
    FunctionDefinition,
    check_runtime,
    definition_from_spec,
    function_name,
    locate_code,
)
from backends.localfn.gateway import INVOKE_PATH
from backends.localfn.hosting import HostState, read_host_state
from backends.localfn.invocations import InvocationLog, InvocationRecord
from backends.localfn.routes import Route, RouteTable
from backends.localfn.signing import LAMBDA_API_PATH, KeyPair, credentials_path, read_key_pair, sign
from backends.localfn.store import CodeVerifier, FunctionStore, StoredFunction
from backends.records import FunctionInfo
from rtm.cron import next_fire, parse_schedule
from rtm.kinds.serverless import ServerlessRuntime
from rtm.secrets import mask_secrets

if TYPE_CHECKING:
    from backends.localfn.functions_host import LocalFunctionsRuntime
    from rtm.documents import Document


class RouteConflict(ValueError):
    """An http trigger claims requests another function's route already serves."""


class NotHosted(RuntimeError):
    """Nobody hosts the runtime, so nothing can be invoked."""


class LocalFunctionsHandler:
    resource = "function"
    runtime_kind = "ServerlessRuntime"

    def __init__(self, data_dir: Path | str, gateway_url: str, runtime: LocalFunctionsRuntime | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.store = FunctionStore(data_dir)
        self.log = InvocationLog(self.store.root)
        self.gateway_url = gateway_url.rstrip("/")  # the configured address, for render and plan
        self.runtime = runtime
        self._clock = clock
        self._verifier = CodeVerifier()

    def attach_runtime(self, runtime: LocalFunctionsRuntime | None) -> None:
        """The runtime this process hosts (or None when it stops hosting)."""
        self.runtime = runtime

    def host_state(self) -> HostState:
        return read_host_state(self.store.root)

    # ------------------------------------------------------------------------------ render

    def render(self, document: Document, base_dir: Path) -> dict[str, Any]:
        """What the local runtime would store and serve; reads the code, contacts nothing."""
        spec, definition, code = self._prepare(document, base_dir)
        return {
            "target": "local",
            "function": {
                **definition.to_json(),
                "environment": mask_secrets(definition.environment_map),
                "memory_mb": definition.memory_mb,
                "code": {"path": str(code.path), "kind": code.kind, "size_bytes": code.size_bytes},
            },
            "routes": [{"route": f"{t.method} {t.path}", "url": self.gateway_url + (t.path or "")}
                       for t in definition.http_triggers()],
            "schedules": [{"schedule": t.schedule, "rule": f"{definition.name}-cron-{index}"}
                          for index, t in enumerate(definition.cron_triggers(), 1)],
            "notes": self._notes(spec),
        }

    def _prepare(self, document: Document, base_dir: Path) -> tuple[ServerlessRuntime, FunctionDefinition, Any]:
        spec: ServerlessRuntime = document.get("ServerlessRuntime")
        name = function_name(spec, document.name)
        check_runtime(spec.runtime)
        code = locate_code(spec, base_dir)
        definition = definition_from_spec(spec, name, code)
        for trigger in definition.http_triggers():
            if LAMBDA_API_PATH.match(trigger.path or ""):
                raise RouteConflict(f"the path {trigger.path} is reserved for Lambda's API on the local gateway "
                                    "(a first segment that is a date, as in /2015-03-31/)")
        return spec, definition, code

    def _notes(self, spec: ServerlessRuntime) -> list[str]:
        notes = []
        runtime_note = check_runtime(spec.runtime)
        if runtime_note:
            notes.append(runtime_note)
        if spec.vpc is not None:
            notes.append("vpc settings do not apply to the local runtime")
        if spec.role_arn:
            notes.append("role_arn does not apply to the local runtime")
        return notes

    # ------------------------------------------------------------------------------ plan / apply

    def plan(self, document: Document, base_dir: Path) -> list[Change]:
        spec, definition, _code = self._prepare(document, base_dir)
        self._check_routes(definition)
        resource = f"function/{definition.name}"
        note = "; ".join(self._notes(spec))
        live = self.store.current().get(definition.name)
        if live is None:
            return [Change("create", resource, note=note)]
        diff = tuple(_shown(field, old, new) for field, old, new in live.definition.differences(definition))
        if not self._verifier.intact(live):  # compared with what is really stored
            diff = (*(d for d in diff if d[0] != "code"), ("code", f"{live.definition.code_sha256[:12]} (stored copy changed)",
                                                          definition.code_sha256[:12]))
        if not diff:
            return [Change("unchanged", resource, note=f"version {live.version}")]
        return [Change("update", resource, diff, note="; ".join(
            n for n in (f"stores version {live.version + 1}; requests in flight finish on version {live.version}", note) if n))]

    def apply(self, document: Document, base_dir: Path, changes: list[Change],
              progress: Callable[[str], None]) -> list[str]:
        try:
            _spec, definition, code = self._prepare(document, base_dir)
            self._check_routes(definition)
        except (ValueError, OSError) as exc:
            raise ApplyError([], f"prepare function/{_name_of(document)}", str(exc)) from exc
        live = self.store.current().get(definition.name)
        if live is not None and not live.definition.differences(definition) and self._verifier.intact(live):
            return [f"function/{definition.name} unchanged (version {live.version})"]
        progress(f"storing function/{definition.name} from {code.path}")
        try:
            stored = self.store.deploy(definition, code)
        except (CodeError, OSError) as exc:
            raise ApplyError([], f"store function/{definition.name}", str(exc),
                             "check the code folder and the data folder's free space and permissions") from exc
        lines = [f"stored function/{stored.name} version {stored.version} (code {stored.definition.code_sha256[:12]})"]
        for trigger in stored.definition.http_triggers():
            lines.append(f"route {trigger.method} {trigger.path} -> {self._served_url()}{trigger.path}")
        now = self._clock()
        for trigger in stored.definition.cron_triggers():
            upcoming = next_fire(parse_schedule(trigger.schedule or ""), now)
            lines.append(f"schedule {trigger.schedule}, next {_iso(upcoming) if upcoming else 'never'}")
        lines.append(self.host_state().describe())
        return lines

    def _check_routes(self, definition: FunctionDefinition) -> None:
        others = RouteTable(Route(t.method, t.path or "", f.name)
                            for f in self.store.current().values() for t in f.definition.http_triggers())
        mine = [Route(t.method, t.path or "", definition.name) for t in definition.http_triggers()]
        conflicts = others.conflicts(definition.name, mine)
        if conflicts:
            new, old = conflicts[0]
            raise RouteConflict(f"route {new.key} would take requests that function {old.function} serves ({old.key})")

    def _served_url(self) -> str:
        state = self.host_state()
        return (state.url if state.hosted and state.url else self.gateway_url).rstrip("/")

    # ------------------------------------------------------------------------------ delete

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        count = self.store.delete(name)
        return [f"deleted function/{name} ({count} stored version{'s' if count != 1 else ''})"]

    # ------------------------------------------------------------------------------ reading

    def list(self) -> Sequence[FunctionInfo]:
        try:
            functions = self.store.current()
            self.log.refresh()
        except (OSError, ValueError) as exc:
            raise _unavailable(self.gateway_url, exc) from exc
        return [self._info(stored) for stored in functions.values()]

    def _info(self, stored: StoredFunction) -> FunctionInfo:
        definition = stored.definition
        stats = self.log.stats(stored.name)
        return FunctionInfo(
            name=stored.name, target="local", region=None, runtime=definition.runtime,
            handler=definition.handler, memory_mb=definition.memory_mb,
            timeout_seconds=definition.timeout_seconds, last_modified=stored.deployed_at,
            triggers=tuple(t.describe() for t in definition.triggers),
            invocations=stats.invocations, errors=stats.errors, duration=stats.duration,
            duration_histogram=stats.histogram, version=str(stored.version),
            timeouts=stats.timeouts, out_of_memory=stats.out_of_memory,
        )

    def describe(self, name: str) -> dict[str, Any]:
        stored = self.store.get(name)
        self.log.refresh()
        definition = stored.definition
        state = self.host_state()
        base_url = (state.url if state.hosted and state.url else self.gateway_url).rstrip("/")
        now = self._clock()
        stats = self.log.stats(name)
        details: dict[str, Any] = {
            "name": name,
            "target": "local",
            "version": stored.version,
            "deployed_at": _iso(datetime.fromtimestamp(stored.deployed_at, timezone.utc)),
            "runtime": definition.runtime,
            "interpreter": check_runtime(definition.runtime) or definition.runtime,
            "handler": definition.handler,
            "timeout_seconds": definition.timeout_seconds,
            "memory_mb": definition.memory_mb,
            "environment": mask_secrets(definition.environment_map),
            "code": {"sha256": definition.code_sha256, "stored_at": str(stored.code_dir), "deployed_from": stored.source,
                     "intact": self._verifier.intact(stored)},
            "routes": [{"route": f"{t.method} {t.path}", "url": base_url + (t.path or "")}
                       for t in definition.http_triggers()],
            "schedules": [{"schedule": t.schedule,
                           "next_fire": _iso(upcoming) if (upcoming := next_fire(parse_schedule(t.schedule or ""), now)) else None}
                          for t in definition.cron_triggers()],
            "hosting": {**state.to_json(), "summary": state.describe()},
            "versions": [{"version": v.version, "deployed_at": _iso(datetime.fromtimestamp(v.deployed_at, timezone.utc)),
                          "code_sha256": v.definition.code_sha256} for v in self.store.versions(name)],
            "stats": {
                "invocations": stats.invocations, "errors": stats.errors, "timeouts": stats.timeouts,
                "out_of_memory": stats.out_of_memory, "cold_starts": stats.cold_starts,
                "last_invoked": _iso(datetime.fromtimestamp(stats.last_invoked, timezone.utc)) if stats.last_invoked else None,
                "duration": None if stats.duration is None else {
                    "average_seconds": stats.duration.average_seconds,
                    "maximum_seconds": stats.duration.maximum_seconds,
                    "p95_seconds": stats.duration.p95_seconds,
                },
            },
            "recent_invocations": [_record_json(r) for r in self.log.recent(name, 10)],
        }
        if self.runtime is not None:
            details["workers"] = [
                {"version": g.version, "idle": g.idle, "busy": g.busy, "current": g.current}
                for g in self.runtime.pool.state() if g.name == name
            ]
        return details

    def logs(self, name: str, follow: bool = False, tail: int | None = 50,
             poll_interval: float = 0.5) -> Iterator[str]:
        """Log lines of recent invocations, Lambda style (START, the lines, END, REPORT);
        with `follow`, keeps yielding new invocations' lines."""
        self.store.get(name)
        self.log.refresh()
        records = list(reversed(self.log.recent(name, limit=10_000)))
        lines = [line for record in records for line in _log_lines(record)]
        yield from (lines[-tail:] if tail else lines)
        seen = {r.request_id for r in records}
        while follow:
            time.sleep(poll_interval)
            self.log.refresh()
            for record in reversed(self.log.recent(name, limit=50)):
                if record.request_id not in seen:
                    seen.add(record.request_id)
                    yield from _log_lines(record)

    # ------------------------------------------------------------------------------ invoke

    def invoke(self, name: str, payload: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Invoke a function once (as Lambda's RequestResponse invoke) and return
        {"request_id", "status": "ok"|"error"|"timeout"|"oom", "result" or "error", "log_tail"}.

        Raises FunctionNotFound, NotHosted, or BackendUnavailable when the host cannot be reached.
        """
        stored = self.store.get(name)
        event = {} if payload is None else payload
        if self.runtime is not None and self.runtime.url is not None:
            invocation = self.runtime.invoke(name, event)
            result = invocation.result
            return {"request_id": invocation.record.request_id, "status": result.outcome,
                    **({"result": result.result} if result.ok else {"error": dict(result.error or {})}),
                    "log_tail": list(result.log_lines)}
        state = self.host_state()
        if not state.hosted or not state.url:
            raise NotHosted("the local functions runtime is not running: open the console or start the agent, then invoke again")
        key = read_key_pair(self.store.root)
        if key is None:
            raise NotHosted(f"the runtime's key pair ({credentials_path(self.store.root)}) is missing or unreadable: "
                            "restart the console or agent that hosts the runtime, which creates it")
        return _invoke_over_http(state.url, name, event, timeout or stored.definition.timeout_seconds + 10, key)


def _invoke_over_http(base_url: str, name: str, event: Any, timeout: float, key: KeyPair) -> dict[str, Any]:
    """Lambda's Invoke API on the hosting process's gateway, signed as boto3 signs it."""
    url = base_url.rstrip("/") + INVOKE_PATH.format(name=urllib.parse.quote(name, safe=""))
    body = json.dumps(event).encode("utf-8")
    headers = sign("POST", url, {"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"}, body, key)
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body, headers = response.read(), response.headers
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise BackendUnavailable(_availability(base_url, "unreachable", f"the gateway answered {exc.code}: {detail}")) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise BackendUnavailable(_availability(base_url, "unreachable", str(getattr(exc, "reason", exc)))) from exc
    data = json.loads(body) if body else None
    tail = base64.b64decode(headers.get("X-Amz-Log-Result", "")).decode("utf-8", "replace").splitlines()
    error = headers.get("X-Amz-Function-Error")
    if error:
        kind = {"Sandbox.Timedout": "timeout", "Runtime.OutOfMemory": "oom"}.get((data or {}).get("errorType"), "error")
        return {"request_id": headers.get("x-amzn-requestid"), "status": kind, "error": data, "log_tail": tail}
    return {"request_id": headers.get("x-amzn-requestid"), "status": "ok", "result": data, "log_tail": tail}


def _availability(endpoint: str, state: str, cause: str) -> Availability:
    return Availability("local-functions", endpoint, state, cause=cause,  # type: ignore[arg-type]
                        hint="check that the console or agent hosting the runtime is running", sandbox=True)


def _unavailable(endpoint: str, exc: Exception) -> BackendUnavailable:
    return BackendUnavailable(_availability(endpoint, "unreachable", f"cannot read the function store: {exc}"))


def _shown(field: str, old: Any, new: Any) -> tuple[str, Any, Any]:
    if field == "code_sha256":
        return "code", old[:12], new[:12]
    if field == "environment":
        return field, mask_secrets(old), mask_secrets(new)
    return field, old, new


def _name_of(document: Document) -> str:
    spec = document.get("ServerlessRuntime")
    return document.name or getattr(spec, "name", None) or "?"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _record_json(record: InvocationRecord) -> dict[str, Any]:
    data = record.to_json()
    data["started_at"] = _iso(datetime.fromtimestamp(record.started_at, timezone.utc))
    return data


def _log_lines(record: InvocationRecord) -> list[str]:
    started = _iso(datetime.fromtimestamp(record.started_at, timezone.utc))
    report = (f"REPORT RequestId: {record.request_id}\tDuration: {record.duration_seconds * 1000:.2f} ms\t"
              f"Memory Size: {(record.memory_limit_bytes or 0) // (1024 * 1024)} MB")
    if record.peak_memory_bytes:
        report += f"\tMax Memory Used: {record.peak_memory_bytes // (1024 * 1024)} MB"
    if record.init_seconds is not None:
        report += f"\tInit Duration: {record.init_seconds * 1000:.2f} ms"
    if record.outcome != "ok":
        report += f"\tStatus: {record.outcome}"
    return [f"{started} START RequestId: {record.request_id} Version: {record.version} ({record.trigger})",
            *record.log_lines, f"END RequestId: {record.request_id}", report]
