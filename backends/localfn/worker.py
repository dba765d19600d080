"""The worker process: one function's handler, run one invocation at a time.

The pool starts this file as a script with the current interpreter in isolated mode
(`python -I worker.py CONFIG`), so neither rtm-console's folder nor PYTHON* variables leak into
the function, and it imports nothing of rtm-console: only the standard library and the
function's own code. Its environment is the function's (built by the pool), its working folder
and first import path the stored code, its stdout and stderr a log file the pool reads after
each invocation.

Protocol (binary frames on two inherited pipe descriptors: a 4-byte big-endian length, then a
JSON object):

    worker -> pool   {"ready": true, "init_seconds": s}  or  {"ready": false, "error": {...}}
    pool -> worker   {"request_id": ..., "event": ..., "timeout_ms": ...}
    worker -> pool   {"outcome": "ok", "result": ...}
                     {"outcome": "error" | "oom", "error": {"errorType", "errorMessage", "stackTrace"}}
                     each with "peak_rss_bytes" and "duration_seconds"

End of input (the pool closed the request pipe, or died) ends the worker.

Limits: the address space is capped with RLIMIT_AS before the handler module is imported, at the
interpreter's own size at that moment plus the function's memory, so an allocation past it fails
inside the worker with MemoryError, reported as "oom" (a reserve kept aside leaves room to
report it). The timeout is enforced by the pool, which kills the process. If the pool dies, the
kernel kills the worker (PR_SET_PDEATHSIG), so no handler keeps running without its host.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import struct
import sys
import time
import traceback
from typing import Any

HEADER = struct.Struct(">I")
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's limit on a synchronous invocation's response
_PR_SET_PDEATHSIG = 1
_RESERVE_BYTES = 1024 * 1024
_reserve: list[bytearray] = []


# ------------------------------------------------------------------------------ framing


def read_frame(fd: int) -> dict[str, Any] | None:
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    body = _read_exactly(fd, length)
    if body is None:
        return None
    return json.loads(body)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def write_frame(fd: int, message: dict[str, Any]) -> None:
    write_body(fd, encode(message))


def write_body(fd: int, body: bytes) -> None:
    data = memoryview(HEADER.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------ memory


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(key.encode() + b":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """The peak resident memory of one invocation: the kernel's high-water mark (VmHWM), reset
    before each invocation through /proc/self/clear_refs; where that file cannot be written, the
    process's lifetime peak (ru_maxrss) is all there is."""

    def __init__(self) -> None:
        try:
            self._clear_refs: int | None = os.open("/proc/self/clear_refs", os.O_WRONLY)
        except OSError:
            self._clear_refs = None

    def reset(self) -> None:
        if self._clear_refs is not None:
            try:
                os.write(self._clear_refs, b"5")
            except OSError:
                self._clear_refs = None

    def peak_bytes(self) -> int:
        kib = _status_kib("VmHWM") if self._clear_refs is not None else None
        if kib is None:
            kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib * 1024


def limit_address_space(memory_bytes: int) -> int:
    """Cap the address space at what is mapped now plus `memory_bytes`; returns the cap."""
    mapped_kib = _status_kib("VmSize") or 0
    cap = mapped_kib * 1024 + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def too_large_error(limit: int) -> dict[str, Any]:
    """Lambda's error for a result over the response payload limit."""
    return {"errorType": "Function.ResponseSizeTooLarge", "stackTrace": [],
            "errorMessage": f"Response payload size exceeded maximum allowed payload size ({limit} bytes)."}


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: an idle worker still ends when its request pipe closes
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _join_group(procs_file: str | None) -> None:
    """Enter the worker's cgroup before any function code runs, so every process it starts is
    in it (the pool also moves the worker there; whichever comes first wins)."""
    if not procs_file:
        return
    try:
        with open(procs_file, "w") as procs:
            procs.write(str(os.getpid()))
    except OSError:
        pass  # the pool reported it and falls back to the process group


# ------------------------------------------------------------------------------ the context


class LambdaContext:
    """What Lambda's Python runtime passes as the handler's second argument."""

    def __init__(self, config: dict[str, Any], request_id: str, timeout_ms: int) -> None:
        name = config["function_name"]
        self.function_name = name
        self.function_version = str(config["version"])
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{name}"
        self.memory_limit_in_mb = str(config["memory_bytes"] // (1024 * 1024))
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = config["log_stream"]
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback without this file's frames: the function's code is what people debug."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return [line.rstrip("\n") for line in traceback.format_list(frames)]


def error_object(exc: BaseException, error_type: str | None = None, message: str | None = None,
                 with_stack: bool = True) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc) if message is None else message,
        "stackTrace": _user_frames(exc) if with_stack else [],
    }


def _log_error(error: dict[str, Any], exc: BaseException | None = None) -> None:
    """As Lambda's runtime logs an unhandled error: a [ERROR] line, then the traceback."""
    print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
    if exc is not None and error["stackTrace"]:
        print("Traceback (most recent call last):", file=sys.stderr)
        print("\n".join(error["stackTrace"]), file=sys.stderr)
        print("".join(traceback.format_exception_only(exc)).rstrip("\n"), file=sys.stderr)


def _report(exc: BaseException, error_type: str | None = None, message: str | None = None,
            with_stack: bool = True) -> dict[str, Any]:
    error = error_object(exc, error_type, message, with_stack)
    _log_error(error, exc)
    return error


def _flush_logs() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


# ------------------------------------------------------------------------------ main loop


def _load_handler(spec: str) -> Any:
    module_name, _, function_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except MemoryError:
        raise
    except Exception as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    requests, responses = int(config["request_fd"]), int(config["response_fd"])
    _die_with_parent(int(config["parent_pid"]))
    _join_group(config.get("cgroup_procs"))
    # Terminal signals are for the host: it stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # a killed worker still leaves its last lines
    peak = PeakMemory()
    _reserve.append(bytearray(_RESERVE_BYTES))  # freed on MemoryError: room to report it
    started = time.monotonic()
    os.chdir(config["code_dir"])
    # As on Lambda: the code first, then the function's own PYTHONPATH (which -I ignored).
    extra = [os.path.join(config["code_dir"], p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:0] = [config["code_dir"], *extra]
    limit_address_space(int(config["memory_bytes"]))
    out_of_memory = f"the function's memory ({int(config['memory_bytes']) // (1024 * 1024)} MB) is used up"
    try:
        handler = _load_handler(config["handler"])
    except MemoryError as exc:
        _reserve.clear()
        failure = {"outcome": "oom", "error": _report(exc, "Runtime.OutOfMemory", out_of_memory)}
    except _InitError as exc:
        failure = {"outcome": "error", "error": _report(exc, exc.error_type, with_stack=False)}
    except BaseException as exc:  # module-level code raised or exited
        failure = {"outcome": "error", "error": _report(exc, "Runtime.InitError")}
    else:
        failure = None
    if failure is not None:
        _flush_logs()
        write_frame(responses, {"ready": False, **failure})
        return 1
    write_frame(responses, {"ready": True, "init_seconds": time.monotonic() - started})

    while True:
        request = read_frame(requests)
        if request is None:
            return 0
        peak.reset()
        began = time.monotonic()
        context = LambdaContext(config, request["request_id"], int(request["timeout_ms"]))
        keep_going = True
        try:
            response: dict[str, Any] = {"outcome": "ok", "result": handler(request["event"], context)}
        except MemoryError as exc:
            _reserve.clear()  # room to log and report
            response = {"outcome": "oom", "error": _report(exc, "Runtime.OutOfMemory", out_of_memory)}
            keep_going = False  # the interpreter's state after MemoryError cannot be trusted
        except Exception as exc:
            response = {"outcome": "error", "error": _report(exc)}
        except BaseException as exc:  # sys.exit() and the like end the execution environment
            response = {"outcome": "error", "error": _report(exc, "Runtime.ExitError", f"the function called exit ({exc!r})")}
            keep_going = False
        response["duration_seconds"] = time.monotonic() - began
        _flush_logs()
        response["peak_rss_bytes"] = peak.peak_bytes()
        try:
            body = encode(response)
        except (TypeError, ValueError) as exc:  # Lambda, too, must serialise the result as JSON
            error = _report(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}", with_stack=False)
            _flush_logs()
            body = encode({**response, "outcome": "error", "result": None, "error": error})
        limit = int(config.get("max_response_bytes", MAX_RESPONSE_BYTES))
        if response["outcome"] == "ok" and len(body) > limit and len(encode({"r": response["result"]})) - 6 > limit:
            error = too_large_error(limit)
            _log_error(error)
            _flush_logs()
            body = encode({**response, "outcome": "error", "result": None, "error": error})
        write_body(responses, body)
        if not keep_going:
            return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
