"""One worker process as the pool sees it: start it, run invocations on it, kill it.

The worker (backends/localfn/worker.py) runs as `python -I worker.py CONFIG` with the current
interpreter. Two pipes carry requests and results; its stdout and stderr go to an unlinked
temporary file opened with O_APPEND, which the pool reads and empties after each invocation, so
each invocation's log lines are exactly what was printed since the previous one ended (the
first invocation also gets what the module printed while being imported, as on Lambda). A
worker killed on a timeout keeps the lines it printed before the kill: it writes line-buffered.

Outcomes are decided here: the worker's own report ("ok", "error", "oom" for MemoryError), or,
when the worker does not report: "timeout" when the deadline passed (the worker is SIGKILLed),
"oom" when it died of SIGKILL nobody here sent (the kernel's OOM killer) or its last words
name a failed allocation, and "error" for any other death (a crash, os._exit). A frame larger
than the response limit allows ends the worker with Lambda's Function.ResponseSizeTooLarge.

Each worker runs in a group of its own (backends/localfn/containment.py): however the worker
ends, the whole group is killed, so nothing the handler started outlives it, and the worker is
reaped.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backends.localfn.containment import Containment
from backends.localfn.worker import HEADER, MAX_RESPONSE_BYTES, encode, too_large_error

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
Outcome = Literal["ok", "error", "timeout", "oom"]

MAX_LOG_LINES = 100
MAX_LOG_LINE_CHARS = 1000
_MAX_LOG_READ = 256 * 1024  # only the tail of a flood of output is kept
_FRAME_MARGIN = 1024 * 1024
_OOM_WORDS = ("MemoryError", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class WorkerResult:
    outcome: Outcome
    result: Any = None  # the handler's return value (outcome "ok")
    error: Mapping[str, Any] | None = None  # {"errorType", "errorMessage", "stackTrace"}
    duration_seconds: float = 0.0  # the handler's run (or until the kill)
    peak_rss_bytes: int | None = None
    log_lines: tuple[str, ...] = ()
    cold_start: bool = False
    init_seconds: float | None = None
    worker_pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class WorkerGone(Exception):
    """The worker's pipe closed: it exited or was killed."""


class FrameTooLarge(Exception):
    """The worker sent more than a response may hold."""


class WorkerProcess:
    """A started worker. Not thread-safe: the pool hands it to one request at a time."""

    def __init__(self, config: Mapping[str, Any], environment: Mapping[str, str], code_dir: Path,
                 python: str = sys.executable, containment: Containment | None = None) -> None:
        self.containment = containment or Containment()
        # Beyond the payload limit, room for the error and the frame's other fields.
        self.max_frame_bytes = int(config.get("max_response_bytes", MAX_RESPONSE_BYTES)) + _FRAME_MARGIN
        request_read, self._requests = os.pipe()
        self._responses, response_write = os.pipe()
        log = tempfile.TemporaryFile(prefix="rtm-worker-", buffering=0)
        self._log_fd = os.dup(log.fileno())
        log.close()
        fcntl.fcntl(self._log_fd, fcntl.F_SETFL, fcntl.fcntl(self._log_fd, fcntl.F_GETFL) | os.O_APPEND)
        full_config = {**config, "request_fd": request_read, "response_fd": response_write,
                       "parent_pid": os.getpid(), "code_dir": str(code_dir),
                       "cgroup_procs": self.containment.procs_file}
        try:
            self.process = subprocess.Popen(
                [python, "-I", str(WORKER_SCRIPT), json.dumps(full_config)],
                stdin=subprocess.DEVNULL, stdout=self._log_fd, stderr=self._log_fd,
                pass_fds=(request_read, response_write), env={**environment, **self.containment.environment}, cwd=code_dir,
                start_new_session=True,  # Ctrl+C in the host's terminal is not the function's business
            )
        except BaseException:
            for fd in (self._requests, self._responses, self._log_fd):
                os.close(fd)
            self.containment.remove()
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
        self.containment.join(self.process.pid)  # the worker also joins itself before running function code
        self.started = time.monotonic()
        self.pid = self.process.pid
        self.init_seconds: float | None = None
        self.invocations = 0
        self.last_used = self.started
        self.function_key: tuple[str, int] | None = None  # set by the pool
        self._killed_by_us = False
        self._closed = False

    # ------------------------------------------------------------------------------ lifecycle

    def wait_ready(self, timeout: float) -> WorkerResult | None:
        """Wait for the handler module to be imported. None when ready, else the failure."""
        began = time.monotonic()
        try:
            message = self._read_frame(began + timeout)
        except TimeoutError:
            return self._killed("timeout", began, f"Init timed out after {timeout:.2f} seconds")
        except WorkerGone:
            return self._died(began)
        if message.get("ready"):
            self.init_seconds = float(message.get("init_seconds", time.monotonic() - began))
            return None
        self.wait_exit(2.0)
        return WorkerResult(message.get("outcome", "error"), error=message.get("error"),
                            duration_seconds=time.monotonic() - began, log_lines=self.take_logs(),
                            cold_start=True, worker_pid=self.pid)

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def stop(self, grace: float = 1.0) -> None:
        """Ask the worker to end (end of input), then kill it if it does not within `grace`."""
        if self._closed:
            return
        try:
            os.close(self._requests)
        except OSError:
            pass
        self._requests = -1
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_fds()

    def kill(self) -> None:
        self._terminate()
        self._close_fds()

    def interrupt(self) -> None:
        """Kill the worker and every process it started, from another thread; the thread running
        its invocation sees it die and reports the outcome (descriptors are left to that thread)."""
        if self.process.poll() is None:
            self._killed_by_us = True
        self.containment.kill()

    def _terminate(self) -> None:
        self.interrupt()
        self.wait_exit(5.0)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _close_fds(self) -> None:
        """The worker's end: whatever it started is killed, then its descriptors are closed."""
        if self._closed:
            return
        self._closed = True
        self.containment.kill()  # children outlive a worker that exited or crashed
        self.wait_exit(5.0)  # reaped: no zombie is left behind
        self.containment.remove()
        for fd in (self._requests, self._responses, self._log_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ------------------------------------------------------------------------------ invoking

    def invoke(self, request_id: str, event: Any, timeout: float, cold_start: bool) -> WorkerResult:
        """Run one invocation. After an outcome other than ok/error the worker is dead."""
        began = time.monotonic()
        self.invocations += 1
        self.last_used = began
        body = encode({"request_id": request_id, "event": event, "timeout_ms": int(timeout * 1000)})
        try:
            self._write(HEADER.pack(len(body)) + body)
            message = self._read_frame(began + timeout)
        except TimeoutError:
            return self._killed("timeout", began, f"Task timed out after {timeout:.2f} seconds", cold_start)
        except WorkerGone:
            return self._died(began, cold_start)
        except FrameTooLarge:  # the worker's own check was bypassed: it cannot be trusted further
            refused = too_large_error(self.max_frame_bytes - _FRAME_MARGIN)
            return self._killed("error", began, refused["errorMessage"], cold_start, refused["errorType"])
        self.last_used = time.monotonic()
        return WorkerResult(
            outcome=message["outcome"],
            result=message.get("result"),
            error=message.get("error"),
            duration_seconds=float(message.get("duration_seconds", self.last_used - began)),
            peak_rss_bytes=message.get("peak_rss_bytes"),
            log_lines=self.take_logs(),
            cold_start=cold_start,
            init_seconds=self.init_seconds if cold_start else None,
            worker_pid=self.pid,
        )

    def _killed(self, outcome: Outcome, began: float, message: str, cold_start: bool = True,
                error_type: str = "Sandbox.Timedout") -> WorkerResult:
        peak = _peak_rss_of(self.pid)
        duration = time.monotonic() - began
        self._terminate()
        lines = (*self.take_logs(), f"{_utc_now()} {message}")
        self._close_fds()
        error = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
        return WorkerResult(outcome, error=error, duration_seconds=duration, peak_rss_bytes=peak,
                            log_lines=lines[-MAX_LOG_LINES:], cold_start=cold_start,
                            init_seconds=self.init_seconds if cold_start else None, worker_pid=self.pid)

    def _died(self, began: float, cold_start: bool = True) -> WorkerResult:
        """The worker ended without reporting: decide between out of memory and a crash."""
        duration = time.monotonic() - began
        status = self.wait_exit(5.0)
        if status is None:
            self._terminate()
            status = self.process.returncode
        lines = self.take_logs()
        self._close_fds()
        killed_by = -status if status is not None and status < 0 else None
        if (killed_by == signal.SIGKILL and not self._killed_by_us) or any(
                word in line for line in lines[-20:] for word in _OOM_WORDS):
            outcome: Outcome = "oom"
            error_type, message = "Runtime.OutOfMemory", "the worker ran out of memory and was killed"
        else:
            outcome = "error"
            error_type = "Runtime.ExitError"
            if killed_by is not None:
                message = f"the worker was killed by {signal.Signals(killed_by).name}"
            else:
                message = f"the worker exited with status {status} before returning a result"
        error = {"errorType": error_type, "errorMessage": message, "stackTrace": []}
        return WorkerResult(outcome, error=error, duration_seconds=duration,
                            log_lines=(*lines, f"{_utc_now()} {error_type}: {message}")[-MAX_LOG_LINES:],
                            cold_start=cold_start, init_seconds=self.init_seconds if cold_start else None,
                            worker_pid=self.pid)

    # ------------------------------------------------------------------------------ logs

    def take_logs(self) -> tuple[str, ...]:
        """What the worker printed since the last call, as lines (the tail of a flood)."""
        if self._closed:
            return ()
        size = os.fstat(self._log_fd).st_size
        if size == 0:
            return ()
        start = max(0, size - _MAX_LOG_READ)
        data = os.pread(self._log_fd, size - start, start)
        os.ftruncate(self._log_fd, 0)  # O_APPEND: the worker's next line lands at the start
        lines = data.decode("utf-8", "replace").splitlines()
        if start:
            lines = lines[1:]  # the first line was cut by the tail
        return tuple(_clip(line) for line in lines[-MAX_LOG_LINES:])

    # ------------------------------------------------------------------------------ pipes

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._requests, view):]
        except (BrokenPipeError, OSError) as exc:
            raise WorkerGone() from exc

    def _read_frame(self, deadline: float) -> dict[str, Any]:
        header = self._read_exactly(HEADER.size, deadline)
        (length,) = HEADER.unpack(header)
        if length > self.max_frame_bytes:
            raise FrameTooLarge()
        return json.loads(self._read_exactly(length, deadline))

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        poller = select.poll()
        poller.register(self._responses, select.POLLIN)
        chunks: list[bytes] = []
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            if not poller.poll(remaining * 1000):
                continue
            chunk = os.read(self._responses, min(size, 1 << 20))
            if not chunk:
                raise WorkerGone()
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LOG_LINE_CHARS else line[: MAX_LOG_LINE_CHARS - 1] + "…"


def _peak_rss_of(pid: int) -> int | None:
    """The process's peak resident memory since its last reset (VmHWM), read before a kill."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
