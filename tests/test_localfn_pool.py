"""Worker processes: each invocation out of the host process, with the function's environment,
timeout and memory limit enforced and reported; warm reuse only where isolation holds."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from backends.localfn.pool import Throttled, WorkerPool
from localfn_support import deploy, process_exists, wait_until

FUNCTION = """
import os, time

COUNTER = {"calls": 0}

def handler(event, context):
    COUNTER["calls"] += 1
    action = event.get("action")
    print("action", action)
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "allocate":
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    elif action == "raise":
        raise ValueError("the handler failed")
    elif action == "exit":
        os._exit(7)
    elif action == "crash":
        os.kill(os.getpid(), 11)
    return {"pid": os.getpid(), "calls": COUNTER["calls"], "greeting": os.environ.get("GREETING"),
            "home": os.environ.get("HOME_SECRET"), "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "remaining_ms": context.get_remaining_time_in_millis()}
"""


def _busy(pool: WorkerPool) -> int:
    return sum(group.busy for group in pool.state())


@pytest.fixture
def pool():
    pool = WorkerPool(max_workers=2, queue_timeout=0.2)
    yield pool
    pool.close()


@pytest.fixture
def function(tmp_path: Path):
    return deploy(tmp_path / "data", tmp_path, "worker-test", FUNCTION, timeout="2s", memory="128Mi",
                  environment={"GREETING": "hi"})


def test_an_invocation_runs_in_another_process_with_the_function_environment_only(pool, function, monkeypatch) -> None:
    monkeypatch.setenv("HOME_SECRET", "the host's own variable")
    result = pool.invoke(function, {}, "request-1")
    assert result.outcome == "ok", result
    assert result.result["pid"] != os.getpid()
    assert result.result["greeting"] == "hi"
    assert result.result["home"] is None  # nothing of the host's environment leaks in
    assert result.result["function"] == "worker-test"
    assert 0 < result.result["remaining_ms"] <= 2000
    assert result.cold_start and result.init_seconds is not None
    assert result.log_lines == ("action None",)
    assert result.peak_rss_bytes and result.peak_rss_bytes > 1024 * 1024


def test_a_warm_worker_is_reused_for_the_next_invocation(pool, function) -> None:
    first = pool.invoke(function, {}, "r1")
    second = pool.invoke(function, {}, "r2")
    assert second.result["pid"] == first.result["pid"]
    assert second.result["calls"] == 2  # module state survives, as in a Lambda execution environment
    assert not second.cold_start


def test_a_handler_exception_is_an_error_and_the_worker_stays_warm(pool, function) -> None:
    failed = pool.invoke(function, {"action": "raise"}, "r1")
    assert failed.outcome == "error"
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "the handler failed"
    assert "[ERROR] ValueError: the handler failed" in failed.log_lines
    assert any('main.py", line' in frame for frame in failed.error["stackTrace"])
    after = pool.invoke(function, {}, "r2")
    assert after.outcome == "ok" and after.result["calls"] == 2


def test_a_handler_past_its_timeout_is_killed_and_reported(pool, function) -> None:
    warm = pool.invoke(function, {}, "r0")
    worker_pid = warm.result["pid"]
    result = pool.invoke(function, {"action": "sleep", "seconds": 30}, "r1")
    assert result.outcome == "timeout"
    assert result.error["errorType"] == "Sandbox.Timedout"
    assert result.log_lines[0] == "action sleep"  # printed before the kill, kept
    assert result.log_lines[-1].endswith("Task timed out after 2.00 seconds")
    assert not process_exists(worker_pid)
    fresh = pool.invoke(function, {}, "r2")
    assert fresh.outcome == "ok" and fresh.cold_start and fresh.result["pid"] != worker_pid


def test_allocating_past_the_memory_limit_is_stopped_and_reported_as_out_of_memory(pool, function) -> None:
    result = pool.invoke(function, {"action": "allocate"}, "r1")
    assert result.outcome == "oom", result
    assert result.error["errorType"] == "Runtime.OutOfMemory"
    assert "128 MB" in result.error["errorMessage"]
    assert not process_exists(result.worker_pid)  # never reused: its state cannot be trusted
    # It got close to its limit before being stopped, and no further.
    assert 64 * 1024 * 1024 < result.peak_rss_bytes < 200 * 1024 * 1024
    assert pool.invoke(function, {}, "r2").outcome == "ok"


def test_a_worker_that_exits_or_crashes_is_an_error_and_is_replaced(pool, function) -> None:
    exited = pool.invoke(function, {"action": "exit"}, "r1")
    assert exited.outcome == "error"
    assert "exited with status 7" in exited.error["errorMessage"]
    crashed = pool.invoke(function, {"action": "crash"}, "r2")
    assert crashed.outcome == "error"
    assert "SIGSEGV" in crashed.error["errorMessage"]
    assert pool.invoke(function, {}, "r3").outcome == "ok"


def test_a_worker_killed_from_outside_by_sigkill_is_reported_as_out_of_memory(pool, function) -> None:
    # The kernel's OOM killer sends SIGKILL; a SIGKILL nobody in the pool sent reads as that.
    results = []

    def call() -> None:
        results.append(pool.invoke(function, {"action": "sleep", "seconds": 1.5}, "r1"))

    warm = pool.invoke(function, {}, "r0")
    thread = threading.Thread(target=call)
    thread.start()
    wait_until(lambda: _busy(pool) == 1)  # the warm worker was taken for the call
    os.kill(warm.result["pid"], 9)
    thread.join()
    assert results[0].outcome == "oom"


def test_more_requests_than_workers_wait_then_are_throttled(pool, function) -> None:
    threads = [threading.Thread(target=pool.invoke, args=(function, {"action": "sleep", "seconds": 1}, f"r{i}"))
               for i in range(2)]
    for thread in threads:
        thread.start()
    wait_until(lambda: _busy(pool) == 2)
    with pytest.raises(Throttled):
        pool.invoke(function, {}, "r3")
    for thread in threads:
        thread.join()


def test_an_import_error_fails_the_invocation_with_lambdas_error_type(tmp_path: Path, pool) -> None:
    broken = deploy(tmp_path / "data", tmp_path, "broken", "import not_a_module\n")
    result = pool.invoke(broken, {}, "r1")
    assert result.outcome == "error"
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert "not_a_module" in result.error["errorMessage"]


def test_closing_the_pool_stops_every_worker(function) -> None:
    pool = WorkerPool(max_workers=2)
    pid = pool.invoke(function, {}, "r1").result["pid"]
    pool.close()
    assert not process_exists(pid)


def test_a_busy_worker_dies_with_its_host_process(tmp_path: Path) -> None:
    """A host killed with SIGKILL cannot stop its workers; the kernel must (parent-death signal)."""
    import subprocess
    import sys
    import textwrap

    deploy(tmp_path / "data", tmp_path, "sleeper", """
        import os, pathlib, time
        def handler(event, context):
            pathlib.Path(event["marker"]).write_text(str(os.getpid()))
            time.sleep(60)
    """, timeout="120s")
    marker = tmp_path / "running"
    host = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from backends.localfn.pool import WorkerPool
        from backends.localfn.store import FunctionStore
        function = FunctionStore({str(tmp_path / "data")!r}).get("sleeper")
        WorkerPool().invoke(function, {{"marker": {str(marker)!r}}}, "r1")
    """)])
    try:
        worker_pid = int(wait_until(lambda: marker.exists() and marker.read_text()))
        assert process_exists(worker_pid)  # busy in the handler
    finally:
        host.kill()
        host.wait()
    wait_until(lambda: not process_exists(worker_pid))


def test_requests_beyond_the_worker_limit_queue_and_are_served_in_turn(function) -> None:
    pool = WorkerPool(max_workers=1, queue_timeout=60)
    results = []
    try:
        callers = [threading.Thread(target=lambda i=i: results.append(
            pool.invoke(function, {"action": "sleep", "seconds": 0.2}, f"r{i}"))) for i in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    finally:
        pool.close()
    assert [r.outcome for r in results] == ["ok"] * 4
    assert len({r.result["pid"] for r in results}) == 1  # one worker, reused by each in turn


def test_idle_workers_are_stopped_after_the_idle_time(function) -> None:
    pool = WorkerPool(idle_seconds=0.0)
    try:
        pid = pool.invoke(function, {}, "r1").result["pid"]
        assert pool.worker_pids() == [pid]
        assert pool.reap_idle() == 1
        assert pool.worker_pids() == [] and not process_exists(pid)
    finally:
        pool.close()
