"""End to end in tmux at 120x40 against the test setup's Docker engine: a workload above its CPU
target shows RtmWorkloadCpuAboveTarget; `e` on its container opens a shell in which typed
commands run, and `exit` comes back to the Containers pane; kiosk mode refuses the shell, and
both attempts are audited."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.test_tmux import _exit_status, _start, audit_records, select_row, terminals  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.docker

def test_alert_then_shell_in_the_container_and_back(terminals, tmp_path: Path, hot_workload) -> None:  # noqa: F811
    workload, _specs, container = hot_workload
    terminal = _start(tmp_path, docker_endpoint=os.environ["DOCKER_HOST"], size=(120, 40))
    terminals.append(terminal)
    terminal.wait_for("host up")
    terminal.keys("7")
    screen = terminal.wait_for("RtmWorkloadCpuAboveTarget")
    assert workload in screen and "1 ALERT" in screen
    select_row(terminal, "2", "co", container.name, then=("e",))
    terminal.wait_for(f"shell in container/{container.name}")
    terminal.wait_for(" #", "$")  # the shell's prompt (capture-pane drops its trailing space)
    terminal.keys("echo shell-$((6*7))", "Enter")
    terminal.wait_for("shell-42")
    terminal.keys("exit", "Enter")
    screen = terminal.wait_for("e Shell")  # the Containers pane's keys again
    assert container.name in screen and "shell-42" not in screen
    terminal.keys("q")
    assert _exit_status(terminal) == 0
    (record,) = [r for r in audit_records(tmp_path) if r["action"] == "container.shell"]
    assert record["result"] == "ok" and record["target"] == f"container/{container.name}"
    assert record["user"] and record["origin"] and record["params"]["shell"] == "/bin/sh"


def test_kiosk_refuses_the_shell(terminals, tmp_path: Path, hot_workload) -> None:  # noqa: F811
    _workload, _specs, container = hot_workload
    terminal = _start(tmp_path, docker_endpoint=os.environ["DOCKER_HOST"], size=(120, 40), args="--kiosk")
    terminals.append(terminal)
    terminal.wait_for("KIOSK")
    select_row(terminal, "2", "co", container.name, then=("e",))  # e typed right behind the jump's Enter
    terminal.wait_for_toast("kiosk mode is read-only")
    assert "shell in container" not in terminal.screen()
    terminal.keys("q")
    assert [(r["action"], r["result"]) for r in audit_records(tmp_path)] == [("container.shell", "refused")]
