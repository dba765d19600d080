"""The console over the test setup's real 3-node Docker Swarm (zones b/a/a): the header names the
cluster, Enter on a task's row shows its slot's history with Swarm's error text, and a shell or
exec on a task goes through the engine of its node, or says which endpoint to add."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static, TabbedContent

from backends.docker.swarm.observer import SwarmStatus
from backends.docker.swarm.tasks import slot_history
from console.tui.screens.details import DetailsScreen
from console.tui.screens.dialogs import ConfirmScreen, OutputScreen, TextPromptScreen
from console.tui.widgets.status_header import StatusHeader, cluster_words, header_text
from tui.conftest import wait_for
from tui.test_tmux import _exit_status, _start, audit_records, select_row, terminals  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.docker
SIZE = (160, 40)
ZONE_A = 'SchedulingPolicy:\n  constraints:\n    - {type: "node_affinity", key: "zone", operator: "In", values: ["a"]}\n'


def engines(swarm: dict[str, Any], *workers: int) -> list[Any]:
    """The manager as docker@n1 and the chosen workers (1, 2) as docker@n2, docker@n3."""
    from backends.docker.settings import DockerEndpoint

    chosen = [DockerEndpoint("n1", swarm["manager"])]
    chosen += [DockerEndpoint(f"n{index + 1}", swarm["workers"][index - 1]) for index in workers]
    return chosen


def swarm_console(live_console: Any, swarm: dict[str, Any], *workers: int, mode: str = "interactive") -> Any:
    from backends.docker import make_docker_backends

    backends, handlers = make_docker_backends(engines(swarm, *workers))
    return live_console(backends, handlers=handlers, mode=mode)


@pytest.fixture
def service(swarm: dict[str, Any], run_id: str, tmp_path: Path) -> Iterator[Any]:
    """service(suffix, script, extra=...) applies a one-replica workload running `sh -c SCRIPT` to
    the cluster (as `rtm-console apply` does) and returns its name; removed afterwards."""
    from backends.docker import make_docker_handlers
    from rtm.documents import load_text

    setup = make_docker_handlers(engines(swarm))
    made: list[str] = []

    def apply(suffix: str, script: str, extra: str = "") -> str:
        name = f"q3-{run_id}-{suffix}"
        text = f"""name: {name}
replicas: 1
ContainerRuntime:
  base_image: "{os.environ.get('RTM_TEST_IMAGE', 'rtm-busybox:1.0')}"
  command: ["sh", "-c", "{script}"]
  security: {{user: "1000:1000"}}
{extra}"""
        document = load_text(text, str(tmp_path / f"{name}.yaml")).documents[0]
        setup.handler.apply(document, tmp_path, setup.handler.plan(document, tmp_path), lambda _line: None)
        made.append(name)
        return name

    yield apply
    for name in made:
        setup.handler.delete(name)
    for backend in setup.backends:
        backend.close()


def running_task(swarm: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((t for t in swarm["api"].tasks(filters={"service": name, "desired-state": "running"})
                 if t["Status"]["State"] == "running"), None)


def rows_named(app: Any, name: str) -> list[Any]:
    return [row for row in app.pane("containers").table.all_rows if row.name == name]


async def select(pilot: Any, app: Any, name: str, timeout: float = 60) -> Any:
    await pilot.press("2")
    assert await wait_for(pilot, lambda: len(rows_named(app, name)) == 1, timeout=timeout), f"no row {name}"
    row = rows_named(app, name)[0]
    app.pane("containers").table.select_key(row.key)
    app.pane("containers").table.focus()
    return row


def header(app: Any) -> str:
    return header_text(app.query_one(StatusHeader).info).plain


def notes(app: Any) -> list[str]:
    return [note.message for note in app._notifications]


# ------------------------------------------------------------------------------ the header


@pytest.mark.parametrize("mode", ["interactive", "kiosk"])
async def test_the_header_names_the_swarm_cluster_beside_the_engines(live_console, swarm, mode) -> None:
    app = swarm_console(live_console, swarm, mode=mode).app
    expected = f"swarm docker@n1 {swarm['node_count']} nodes"
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: expected in header(app), timeout=60)
        assert "docker@n1 up" in header(app)
        assert "(1 down)" not in header(app)  # every node of the test swarm is ready


async def test_no_swarm_no_cluster_in_the_header(live_console) -> None:
    from backends.docker import make_docker_backends

    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]])  # the test setup's standalone engine
    app = live_console(backends, handlers=handlers).app
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: f"{backends[0].name} up" in header(app), timeout=60)
        assert "swarm" not in header(app)


def test_a_cluster_counts_the_nodes_that_are_not_ready() -> None:
    status = SwarmStatus("docker@n1", (), (("rtm-sw1", "active", "ready"), ("rtm-sw2", "active", "down"),
                                            ("rtm-sw3", "drain", "ready")), ())
    assert cluster_words(status) == "swarm docker@n1 3 nodes (1 down)"
    assert cluster_words(SwarmStatus("docker@n1", (), (("rtm-sw1", "active", "ready"),), ())) == "swarm docker@n1 1 node"


# ------------------------------------------------------------------------------ task history


async def test_enter_on_a_failed_task_shows_its_slots_history_with_swarms_error(live_console, swarm, service) -> None:
    recovery = "FailoverStrategy:\n  recovery: {auto_restart: true, max_restart_attempts: 2, restart_delay: 1s}\n"
    name = service("fails", "exit 3", recovery)
    api = swarm["api"]
    assert wait_until(lambda: len([t for t in api.tasks(filters={"service": name}) if t["Status"]["State"] == "failed"]) == 3)
    app = swarm_console(live_console, swarm).app
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, app, f"{name}.1")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        screen = app.screen
        assert screen.query_one(TabbedContent).active == "tab-task-history"  # the history comes first
        history = screen.query_one("#task-history", Static)
        assert await wait_for(pilot, lambda: "newest first" in str(history.content), timeout=30)
        text = str(history.content)
        assert f"{name}.1: 3 tasks Swarm keeps for this slot, newest first" in text
        lines = [line for line in text.splitlines() if "task: non-zero exit (3)" in line]
        assert len(lines) == 3 and all(" shutdown " in line and " failed " in line and " 3 " in line for line in lines)
        assert all(len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", line)) == 2 for line in lines)  # created, state since
        ids = [t["ID"][:12] for t in sorted(api.tasks(filters={"service": name}), key=lambda t: t["CreatedAt"], reverse=True)]
        assert [line.split()[0] for line in lines] == ids  # newest first
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, DetailsScreen))
    manager = next(b for b in app.services.backends.values() if b.name == "docker@n1")
    calls = []
    real_call = manager.client.call
    here = threading.current_thread()  # the console's poller and loops share the client: their calls are not counted

    def counted(fn):
        if threading.current_thread() is here:
            calls.append(fn)
        return real_call(fn)

    manager.client.call = counted  # counts the engine calls, still made for real
    assert [t.id[:12] for t in slot_history(manager, name, 1)] == ids and len(calls) == 3


def wait_until(condition: Any, timeout: float = 90) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


# ------------------------------------------------------------------------------ shell and exec


async def test_shell_and_exec_on_a_task_whose_node_has_no_engine_say_which_endpoint_to_add(live_console, swarm, service) -> None:
    name = service("far", "echo far-$(hostname); exec sleep 600", ZONE_A)
    assert wait_until(lambda: running_task(swarm, name) is not None)
    node = next(n["Description"]["Hostname"] for n in swarm["api"].nodes() if n["ID"] == running_task(swarm, name)["NodeID"])
    address = os.environ["RTM_TEST_SWARM_ADDRESSES"].split(",")[swarm["hostnames"].index(node)]
    console = swarm_console(live_console, swarm)  # the manager alone: the task's worker has no endpoint
    app = console.app
    expected = (f"{name}.1 is a Swarm task on node {node}, whose engine is not configured: "
                f"add the engine of node {node} ({address}) as a Docker endpoint for its stats, exec and shell")
    async with app.run_test(size=SIZE) as pilot:
        row = await select(pilot, app, f"{name}.1")
        assert row.cells[1] == "running" and row.backend == "docker@n1" and f"/{node}" in row.key  # its state, no engine row
        assert row.cells[3] == "-" and app._find_record("containers", row).labels["rtm.swarm.cluster"] == "docker@n1"
        await pilot.press("e")
        assert await wait_for(pilot, lambda: expected in notes(app))
        app.clear_notifications()
        await pilot.press("x")
        assert await wait_for(pilot, lambda: expected in notes(app))
        assert not isinstance(app.screen, TextPromptScreen)
        await pilot.press("enter")  # the history says it too, for the statistics
        assert await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        history = app.screen.query_one("#task-history", Static)
        assert await wait_for(pilot, lambda: expected in str(history.content), timeout=30)
        app.screen.query_one(TabbedContent).active = "tab-logs"  # the service's logs
        logs = app.screen.query_one("#logs")
        container_id = running_task(swarm, name)["Status"]["ContainerStatus"]["ContainerID"]
        assert await wait_for(pilot, lambda: any(f"far-{container_id[:12]}" in line.text for line in logs.lines), timeout=30)
    assert console.audit() == []  # nothing was attempted


async def test_exec_on_a_task_runs_in_its_container_through_the_engine_of_its_node(live_console, swarm, service) -> None:
    name = service("near", "echo near-$(hostname); exec sleep 600", ZONE_A)
    assert wait_until(lambda: running_task(swarm, name) is not None)
    task = running_task(swarm, name)
    container_id = task["Status"]["ContainerStatus"]["ContainerID"]
    console = swarm_console(live_console, swarm, 1, 2)  # both zone-a workers configured
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        # One row for the task: its worker engine's, with the task's name and statistics.
        await pilot.press("2")
        assert await wait_for(pilot, lambda: any(r.cells[3] != "-" for r in rows_named(app, f"{name}.1")), timeout=60)
        row = await select(pilot, app, f"{name}.1")
        assert row.backend in ("docker@n2", "docker@n3") and row.key == f"{row.backend}/{container_id}"
        assert not [r for r in app.pane("containers").table.all_rows if container_id in r.key and r is not row]
        await pilot.press("x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press(*"hostname", "enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, OutputScreen), timeout=30)
        assert app.screen.result.exit_code == 0 and app.screen.result.output.strip() == container_id[:12]
        await pilot.press("escape")
        await pilot.press("enter")  # its details: the task's history, and its container's logs through its engine
        assert await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
        app.screen.query_one(TabbedContent).active = "tab-logs"
        logs = app.screen.query_one("#logs")
        assert await wait_for(pilot, lambda: any(f"near-{container_id[:12]}" in line.text for line in logs.lines), timeout=30)
        await pilot.press("escape")
    record = console.audit()[-1]
    assert (record["action"], record["target"], record["result"]) == ("container.exec", f"container/{name}.1", "ok")


def test_a_shell_in_a_task_opens_on_the_engine_of_its_node_in_a_real_terminal(terminals, tmp_path, swarm, service) -> None:  # noqa: F811
    name = service("shell", "exec sleep 600", ZONE_A)
    assert wait_until(lambda: running_task(swarm, name) is not None)
    container_id = running_task(swarm, name)["Status"]["ContainerStatus"]["ContainerID"]
    every = ", ".join([swarm["manager"], *swarm["workers"]])
    terminal = _start(tmp_path, docker_endpoint=every, size=(160, 40))
    terminals.append(terminal)
    terminal.wait_for("docker@n1-docker 3 nodes")  # the header names the cluster
    terminal.keys("2")
    # The task's row has statistics once the engine of its node lists its container: before, it
    # is the manager's task row, and a shell would be refused for want of that engine.
    terminal.wait_for_line(f"{name}.1", "%")
    select_row(terminal, "2", "co", f"{name}.1", then=("e",))  # typed in one burst, as an operator would
    terminal.wait_for(f"shell in container/{name}.1 on docker@n")
    terminal.wait_for("$")
    terminal.keys("echo in-$(hostname)", "Enter")
    terminal.wait_for(f"in-{container_id[:12]}")  # the task's own container, on its worker's engine
    terminal.keys("exit", "Enter")
    terminal.wait_for("e Shell")
    terminal.keys("q")
    assert _exit_status(terminal) == 0
    (record,) = [r for r in audit_records(tmp_path) if r["action"] == "container.shell"]
    assert record["result"] == "ok" and record["target"] == f"container/{name}.1"


async def test_lifecycle_keys_on_a_task_point_at_the_workload_and_leave_the_task_running(live_console, swarm, service) -> None:
    name = service("life", "exec sleep 600", ZONE_A)
    assert wait_until(lambda: running_task(swarm, name) is not None)
    task = running_task(swarm, name)
    console = swarm_console(live_console, swarm, 1, 2)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        # The task's row as its worker engine lists it (with statistics): the row a container key acts on.
        assert await wait_for(pilot, lambda: any(r.cells[3] != "-" for r in rows_named(app, f"{name}.1")), timeout=60)
        await select(pilot, app, f"{name}.1")
        for key in ("o", "R", "ctrl+d"):  # stop, restart, delete
            app.clear_notifications()
            await pilot.press(key)
            assert await wait_for(pilot, lambda: any("Scale or delete the workload" in str(n.message) for n in app._notifications))
            assert not isinstance(app.screen, ConfirmScreen)
    assert console.audit() == []  # nothing was asked of any engine
    assert running_task(swarm, name)["ID"] == task["ID"]  # the task runs on, untouched
