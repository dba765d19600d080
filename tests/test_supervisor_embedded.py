"""An interactive console runs the control loops only when no agent holds the lock; a kiosk
console never does."""

from __future__ import annotations

import argparse

from console.context import open_context
from console.datadir import FileLock, agent_lock_path, lock_holder
from console.supervisor.embedded import EmbeddedLoops


def _ctx(tmp_path, mode):
    env = {"RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path),
           "RTM_SPECS_DIR": str(tmp_path / "specs"), "DOCKER_HOST": "unix:///nonexistent.sock"}
    return open_context(argparse.Namespace(), mode, env=env)


def test_console_runs_the_loops_when_no_agent_holds_the_lock(tmp_path):
    ctx = _ctx(tmp_path, "interactive")
    loops = EmbeddedLoops(ctx)
    try:
        assert loops.start()
        holder = lock_holder(agent_lock_path(tmp_path / "data"))
        assert holder["role"] == "console"  # an agent started now refuses and names the console
        assert not FileLock(agent_lock_path(tmp_path / "data")).acquire()
    finally:
        loops.stop()
    assert lock_holder(agent_lock_path(tmp_path / "data")) is None


def test_console_leaves_the_loops_to_a_running_agent(tmp_path):
    ctx = _ctx(tmp_path, "interactive")
    (tmp_path / "data").mkdir(exist_ok=True)
    agent = FileLock(agent_lock_path(tmp_path / "data"), role="agent")
    assert agent.acquire()
    try:
        loops = EmbeddedLoops(ctx)
        assert not loops.start()
        assert loops.holder()["role"] == "agent"
    finally:
        agent.release()


def test_kiosk_console_never_runs_the_loops(tmp_path):
    loops = EmbeddedLoops(_ctx(tmp_path, "kiosk"))
    assert not loops.start()
    assert lock_holder(agent_lock_path(tmp_path / "data")) is None
