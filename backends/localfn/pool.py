"""Warm worker processes per function version, and the one way to run an invocation.

Isolation model (what is kept, what is not):

- Every invocation runs in a worker process, never in the host, and a worker runs one
  invocation at a time, with the function's environment, its timeout and its memory cap.
- A worker that finished an invocation normally (a result, or an exception the handler raised)
  is kept warm and reused for the same function version, as Lambda reuses an execution
  environment: module globals and /tmp survive between invocations of that version, nothing is
  shared between functions or versions.
- A worker that timed out, ran out of memory, crashed or called exit is never reused; the next
  invocation starts a fresh one (a cold start).
- At most `max_workers` workers per function version run at once; more requests wait up to
  `queue_timeout` for one to free up, then are refused with `Throttled` (HTTP 429).
- Workers idle longer than `idle_seconds` are stopped (`reap_idle`), so a quiet function costs
  no memory.
- On a redeploy (`set_current`), idle workers of the old version are stopped at once; busy ones
  finish their request and are stopped when they return. No request is dropped.

Workers are started from one long-lived thread ("rtm-localfn-spawn") rather than from the
request threads: the kernel's parent-death signal that kills orphaned workers fires when the
*thread* that started them ends, and request threads come and go.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from backends.localfn.containment import ContainmentFactory
from backends.localfn.process import WorkerProcess, WorkerResult
from backends.localfn.store import CodeVerifier, StoredCodeChanged, StoredFunction
from backends.localfn.worker import MAX_RESPONSE_BYTES

logger = logging.getLogger("rtm.localfn")

INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit on a function's init phase
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class Throttled(Exception):
    """No worker became free within the queue timeout (HTTP 429, like Lambda's throttling)."""


class PoolClosed(Exception):
    """The pool was closed: the runtime is stopping."""


@dataclass(frozen=True)
class GroupState:
    """What one function version's workers are doing, for describe and the functions pane."""

    name: str
    version: int
    idle: int
    busy: int
    current: bool


class _Group:
    def __init__(self, key: tuple[str, int], lock: threading.Lock) -> None:
        self.key = key
        self.idle: list[WorkerProcess] = []  # most recently used last: reused first, stays warm
        self.busy = 0  # running an invocation or starting
        # Requests waiting for a slot of this group. One condition per group, woken one at a
        # time: waking every waiter of every function on each release costs more than the
        # invocation itself when many connections queue.
        self.slot_free = threading.Condition(lock)


def worker_environment(function: StoredFunction, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: Lambda's variables, then the spec's (which win).

    Nothing of the host's environment is inherited (no credentials, no PYTHON* settings),
    except PATH, with the interpreter's own folder first so `python3` in a subprocess is the
    same interpreter.
    """
    definition = function.definition
    interpreter_dir = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{interpreter_dir}:{(base or os.environ).get('PATH') or DEFAULT_PATH}",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "_HANDLER": definition.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{definition.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": definition.name,
        "AWS_LAMBDA_FUNCTION_VERSION": str(function.version),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(definition.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{definition.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream(function),
        "RTM_LOCAL_RUNTIME": "1",
    }
    env.update(definition.environment_map)
    return env


def _log_stream(function: StoredFunction) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(function.deployed_at))
    return f"{day}/[{function.version}]local"


class WorkerPool:
    def __init__(
        self,
        *,
        max_workers: int = 8,
        idle_seconds: float = 300.0,
        queue_timeout: float = 30.0,
        init_timeout: float = INIT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        containment: str | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """`containment`: the kind of group each worker runs in ("cgroup2", "freezer", "session");
        None picks the best this host allows (backends/localfn/containment.py)."""
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        self.queue_timeout = queue_timeout
        self.init_timeout = init_timeout
        self.max_response_bytes = max_response_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)  # close() waits on it for busy workers
        self._groups: dict[tuple[str, int], _Group] = {}
        self._current: dict[str, int] | None = None  # name -> version served; None: all are
        self._running: set[WorkerProcess] = set()
        self._closed = False
        self.containment = ContainmentFactory(containment)
        self.verifier = CodeVerifier()  # a version's stored code is checked before a worker loads it
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtm-localfn-spawn")
        self.cold_starts = 0

    # ------------------------------------------------------------------------------ invoking

    def invoke(self, function: StoredFunction, event: Any, request_id: str) -> WorkerResult:
        """Run one invocation in a worker of this function version (warm if one is idle).

        Raises Throttled when every allowed worker stays busy for `queue_timeout`, and
        PoolClosed when the pool is closing.
        """
        group, worker = self._acquire(function.key)
        cold = worker is None
        if worker is None:
            try:
                self.verifier.check(function)
            except StoredCodeChanged as exc:
                self._release(group, None, reusable=False)
                logger.error("%s", exc)
                error = {"errorType": "Runtime.StoredCodeChanged", "errorMessage": str(exc), "stackTrace": []}
                return WorkerResult("error", error=error, cold_start=True,
                                    log_lines=(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                                               f"Runtime.StoredCodeChanged: {exc}",))
            try:
                worker = self._spawner.submit(self._start, function).result()
            except BaseException as exc:
                self._release(group, None, reusable=False)
                if self._closed:  # the spawner was shut down under us
                    raise PoolClosed("the local functions runtime is stopping") from exc
                raise
            with self._lock:
                self._running.add(worker)
            failure = worker.wait_ready(self.init_timeout)
            if failure is not None:
                self._release(group, worker, reusable=False)
                return failure
        try:
            result = worker.invoke(request_id, event, function.definition.timeout_seconds, cold_start=cold)
        except BaseException:
            self._release(group, worker, reusable=False)
            raise
        self._release(group, worker, reusable=result.outcome in ("ok", "error") and worker.alive())
        return result

    def _start(self, function: StoredFunction) -> WorkerProcess:
        definition = function.definition
        config = {
            "handler": definition.handler,
            "memory_bytes": definition.memory_bytes,
            "function_name": definition.name,
            "version": function.version,
            "log_stream": _log_stream(function),
            "max_response_bytes": self.max_response_bytes,
        }
        with self._lock:
            self.cold_starts += 1
        worker = WorkerProcess(config, worker_environment(function), function.code_dir,
                               containment=self.containment.new())
        worker.function_key = function.key
        return worker

    def _acquire(self, key: tuple[str, int]) -> tuple[_Group, WorkerProcess | None]:
        """A warm worker, or None with a slot reserved to start one."""
        deadline = self._clock() + self.queue_timeout
        stale: list[WorkerProcess] = []  # died while idle (killed from outside): cleaned up below
        try:
            with self._lock:
                while True:
                    if self._closed:
                        raise PoolClosed("the local functions runtime is stopping")
                    group = self._groups.get(key) or self._groups.setdefault(key, _Group(key, self._lock))
                    while group.idle:
                        worker = group.idle.pop()
                        if worker.alive():
                            group.busy += 1
                            self._running.add(worker)
                            return group, worker
                        stale.append(worker)
                    if group.busy < self.max_workers:
                        group.busy += 1
                        return group, None
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        group.slot_free.notify()  # a wake-up this waiter may have taken goes on
                        raise Throttled(f"function {key[0]} has {self.max_workers} invocations running; "
                                        f"none finished within {self.queue_timeout:g} s")
                    group.slot_free.wait(remaining)
        finally:
            for worker in stale:
                worker.kill()

    def _release(self, group: _Group, worker: WorkerProcess | None, reusable: bool) -> None:
        name, version = group.key
        with self._lock:
            group.busy -= 1
            self._running.discard(worker)  # type: ignore[arg-type]
            keep = reusable and worker is not None and not self._closed and self._is_current(name, version)
            if keep:
                group.idle.append(worker)  # type: ignore[arg-type]
            self._forget_if_empty(group)
            group.slot_free.notify()
            if self._closed:
                self._drained.notify_all()
        if worker is not None and not keep:
            worker.stop()

    def _is_current(self, name: str, version: int) -> bool:
        return self._current is None or self._current.get(name) == version

    def _forget_if_empty(self, group: _Group) -> None:
        if not group.idle and not group.busy and not self._is_current(*group.key):
            self._groups.pop(group.key, None)
            group.slot_free.notify_all()  # its waiters move on to the group that replaces it

    # ------------------------------------------------------------------------------ versions

    def set_current(self, versions: Mapping[str, int]) -> None:
        """The version of each function now served. Idle workers of any other version (or of a
        function no longer deployed) are stopped; busy ones are stopped when they finish."""
        retired: list[WorkerProcess] = []
        with self._lock:
            self._current = dict(versions)
            for group in list(self._groups.values()):
                name, version = group.key
                if versions.get(name) != version:
                    retired.extend(group.idle)
                    group.idle.clear()
                    self._forget_if_empty(group)
        for worker in retired:
            worker.stop()

    # ------------------------------------------------------------------------------ upkeep

    def reap_idle(self) -> int:
        """Stop workers idle for longer than `idle_seconds`; returns how many."""
        now = time.monotonic()
        expired: list[WorkerProcess] = []
        with self._lock:
            for group in list(self._groups.values()):
                keep = [w for w in group.idle if now - w.last_used < self.idle_seconds]
                expired.extend(w for w in group.idle if w not in keep)
                group.idle[:] = keep
                self._forget_if_empty(group)
        for worker in expired:
            worker.stop()
        return len(expired)

    def state(self) -> list[GroupState]:
        with self._lock:
            return [GroupState(name, version, len(g.idle), g.busy, self._is_current(name, version))
                    for (name, version), g in sorted(self._groups.items())]

    def worker_pids(self, key: tuple[str, int] | None = None) -> list[int]:
        """Process ids of the workers alive (idle or busy), of one function version or all."""
        with self._lock:
            workers = [*self._running, *(w for g in self._groups.values() for w in g.idle)]
            return sorted(w.pid for w in workers if key is None or w.function_key == key)

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new invocations, stop idle workers, and wait up to `timeout` for busy ones,
        which are killed when it passes."""
        with self._lock:
            self._closed = True
            idle = [w for g in self._groups.values() for w in g.idle]
            for group in self._groups.values():
                group.idle.clear()
                group.slot_free.notify_all()  # waiters see the pool closed
        for worker in idle:
            worker.stop(grace=0.5)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running and time.monotonic() < deadline:
                self._drained.wait(max(0.0, deadline - time.monotonic()))
            overdue = list(self._running)
        for worker in overdue:  # their requests end with an error result
            worker.interrupt()
        self._spawner.shutdown(wait=True)
