"""A handler's child processes end with its worker: on a crash, a timeout, a recycle, a redeploy
and a shutdown, even when they started a new session or double-forked, in each kind of group
this host offers (cgroup v2's cgroup.kill, the v1 freezer, the process group with a sweep)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from backends.localfn.containment import ContainmentFactory
from backends.localfn.pool import WorkerPool
from localfn_support import deploy, process_exists, wait_until

SPAWNER = """
import json, os, subprocess, sys, time

ESCAPE = '''
import os, sys, time
if os.fork():
    os._exit(0)          # double fork: the grandchild is re-parented away from the worker
os.setsid()              # and in a session of its own
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(300)
'''

def handler(event, context):
    record = event["record"]
    subprocess.Popen([sys.executable, "-c", ESCAPE, record + ".daemon"])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    while not os.path.exists(record + ".daemon") or not open(record + ".daemon").read():
        time.sleep(0.01)
    with open(record, "w") as out:
        json.dump({"worker": os.getpid(), "child": child.pid, "daemon": int(open(record + ".daemon").read())}, out)
    if event.get("then") == "crash":
        os._exit(3)
    if event.get("then") == "hang":
        time.sleep(60)
    return "started"
"""

KINDS = ["cgroup2", "freezer", "session"]


def _pids(record: Path) -> dict[str, int]:
    return json.loads(record.read_text())


def _all_gone(pids: dict[str, int]) -> None:
    wait_until(lambda: not any(process_exists(pid) for pid in pids.values()), timeout=10)
    assert not Path(f"/proc/{pids['worker']}").exists()  # the worker was reaped, not left a zombie


@pytest.fixture(params=KINDS)
def pool(request):
    pool = WorkerPool(max_workers=2, idle_seconds=300, containment=request.param)
    assert pool.containment.kind == request.param
    yield pool
    pool.close()


@pytest.fixture
def function(tmp_path: Path):
    return deploy(tmp_path / "data", tmp_path, "spawner", SPAWNER, timeout="2s")


def _invoke(pool: WorkerPool, function, tmp_path: Path, then: str = ""):
    record = tmp_path / f"pids-{uuid.uuid4().hex[:6]}.json"
    result = pool.invoke(function, {"record": str(record), "then": then}, str(uuid.uuid4()))
    return result, _pids(record)


def test_children_end_when_the_worker_crashes(pool, function, tmp_path) -> None:
    result, pids = _invoke(pool, function, tmp_path, "crash")
    assert result.outcome == "error" and "status 3" in result.error["errorMessage"]
    _all_gone(pids)


def test_children_end_when_the_worker_times_out(pool, function, tmp_path) -> None:
    result, pids = _invoke(pool, function, tmp_path, "hang")
    assert result.outcome == "timeout"
    _all_gone(pids)


def test_children_end_when_an_idle_worker_is_recycled(pool, function, tmp_path) -> None:
    result, pids = _invoke(pool, function, tmp_path)
    assert result.outcome == "ok" and process_exists(pids["daemon"])  # they live while the worker does
    pool.idle_seconds = 0
    assert pool.reap_idle() == 1
    _all_gone(pids)


def test_children_end_on_a_redeploy(pool, function, tmp_path) -> None:
    result, pids = _invoke(pool, function, tmp_path)
    assert result.outcome == "ok"
    pool.set_current({function.name: function.version + 1})
    _all_gone(pids)


def test_children_end_when_the_pool_shuts_down(pool, function, tmp_path) -> None:
    result, pids = _invoke(pool, function, tmp_path)
    assert result.outcome == "ok"
    pool.close()
    _all_gone(pids)


def test_the_best_group_this_host_allows_is_chosen_by_trying() -> None:
    chosen = ContainmentFactory().kind
    assert chosen in KINDS
    if os.geteuid() == 0 and Path("/sys/fs/cgroup").is_dir():
        assert chosen != "session"  # root on Linux with cgroups mounted gets a real cgroup


HOST = """
import sys
from backends.localfn.pool import WorkerPool
from backends.localfn.store import FunctionStore
kind, data, record = sys.argv[1:4]
pool = WorkerPool(containment=kind)
pool.invoke(FunctionStore(data).get("spawner"), {"record": record}, "request-1")
print("invoked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("kind", ["cgroup2", "freezer"])
def test_groups_left_by_a_killed_host_are_swept_by_the_next_one(kind, function, tmp_path) -> None:
    record = tmp_path / "pids.json"
    host = subprocess.Popen([sys.executable, "-c", HOST, kind, str(tmp_path / "data"), str(record)],
                            cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "invoked"
        pids = _pids(record)
        host.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel ends its worker only
        host.wait()
        wait_until(lambda: not process_exists(pids["worker"]), timeout=10)
        assert process_exists(pids["child"]) and process_exists(pids["daemon"])  # escaped, for now
        assert ContainmentFactory(kind).kind == kind  # the next pool on this machine
        wait_until(lambda: not process_exists(pids["child"]) and not process_exists(pids["daemon"]), timeout=10)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
