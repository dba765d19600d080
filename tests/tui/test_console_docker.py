"""The Containers pane against the test setup's Docker engine: a container of the test's own
shows up, and stop, start, restart, exec, logs and delete run through the gate for real."""

from __future__ import annotations

import os

import pytest
from textual.widgets import TabbedContent

from console.supervisor.autoscaler import history_path
from console.tui.screens.details import DetailsScreen
from console.tui.screens.dialogs import ConfirmScreen, OutputScreen, TextPromptScreen
from rtm.autoscaling import History
from tui.conftest import host_backend, screen_text, wait_for

pytestmark = pytest.mark.docker
SIZE = (140, 40)


@pytest.fixture
def container(docker_client, test_image, test_labels, run_id):
    """A BusyBox container that prints a line and sleeps; removed afterwards."""
    created = docker_client.containers.run(
        test_image, ["sh", "-c", "echo hello-from-the-test; exec sleep 600"], name=f"{run_id}-tui",
        labels=test_labels, detach=True, init=True,
    )
    yield created
    try:
        created.remove(force=True)
    except Exception:  # the test deleted it already
        pass


def _docker_console(live_console):
    from backends.docker import make_docker_backends

    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]])
    return live_console([host_backend(), *backends], handlers=handlers)


def _row(app, name: str):
    return next((row for row in app.pane("containers").table.all_rows if row.name == name), None)


async def _select(pilot, app, name: str) -> None:
    await pilot.press("2")
    assert await wait_for(pilot, lambda: _row(app, name) is not None, timeout=30)
    pane = app.pane("containers")
    pane.table.select_key(_row(app, name).key)
    pane.table.focus()


async def _confirmed(pilot, app, key: str) -> None:
    """Press an action's key and answer its question yes."""
    await pilot.press(key)
    assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")


async def open_logs(pilot, app, name: str) -> DetailsScreen:
    """Select the container, open its details and show the Logs tab."""
    await _select(pilot, app, name)
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen))
    app.screen.query_one(TabbedContent).active = "tab-logs"
    return app.screen


async def test_stop_start_and_restart_a_container_through_the_gate(live_console, container) -> None:
    console = _docker_console(live_console)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        await pilot.press("o")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.question == f"Stop container/{container.name}?"
        await pilot.press("y")
        assert await wait_for(pilot, lambda: _row(app, container.name).cells[1] == "exited", timeout=30)
        await pilot.press("s")
        assert await wait_for(pilot, lambda: _row(app, container.name).cells[1] == "running", timeout=30)
        await _confirmed(pilot, app, "R")
        assert await wait_for(pilot, lambda: len(console.audit()) == 3, timeout=30)
    assert [(r["action"], r["result"]) for r in console.audit()] == [
        ("resource.stop", "ok"), ("resource.start", "ok"), ("resource.restart", "ok")]


async def test_a_container_stopped_from_the_containers_pane_shows_in_the_event_log_and_events_pane(
        live_console, container) -> None:
    from console.eventlog import EventLog

    console = _docker_console(live_console)
    app = console.app
    events = EventLog.in_data_dir(console.data_dir)
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        await pilot.press("o")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: _row(app, container.name).cells[1] == "exited", timeout=30)
        await pilot.press("6")

        def stop_row():
            return next((row for row in app.pane("events").table.all_rows if row.cells[1] == "stop"), None)

        assert await wait_for(pilot, lambda: stop_row() is not None, timeout=30)
        assert stop_row().cells[3] == f"container/{container.name}"
    assert [(e.kind, e.target) for e in events.read()] == [("stop", f"container/{container.name}")]


async def test_exec_runs_a_command_and_shows_its_output(live_console, container) -> None:
    console = _docker_console(live_console)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press(*"echo $((6*7))", "enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, OutputScreen), timeout=30)
        assert app.screen.result.exit_code == 0 and app.screen.result.output.strip() == "42"
    record = console.audit()[-1]
    assert (record["action"], record["params"]["command"], record["result"]) == ("container.exec", "echo $((6*7))", "ok")


async def test_details_show_inspect_describe_and_following_logs(live_console, container) -> None:
    console = _docker_console(live_console)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, app, container.name)
        logs = screen.query_one("#logs")
        assert await wait_for(pilot, lambda: any("hello-from-the-test" in line.text for line in logs.lines), timeout=30)
        describe = screen.query_one("#describe")
        assert await wait_for(pilot, lambda: "asking the backend" not in str(describe.render()), timeout=30)
        await pilot.press("escape")


async def test_delete_asks_naming_the_container_then_removes_it(live_console, container, docker_client) -> None:
    import docker

    console = _docker_console(live_console)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        await pilot.press("ctrl+d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert container.name in app.screen.question
        await pilot.press("y")
        assert await wait_for(pilot, lambda: _row(app, container.name) is None, timeout=30)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)
    assert console.audit()[-1]["action"] == "resource.delete" and console.audit()[-1]["result"] == "ok"


async def test_kiosk_refuses_every_container_action_and_the_container_keeps_running(live_console, container) -> None:
    from backends.docker import make_docker_backends

    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]], read_only=True)
    console = live_console([host_backend(), *backends], handlers=handlers, mode="kiosk")
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        for key in ("o", "s", "R", "ctrl+d"):
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press(*"touch /tmp/kiosk-was-here", "enter")
        assert await wait_for(pilot, lambda: len(console.audit()) == 5, timeout=30)
    assert {(r["result"], r["error"]) for r in console.audit()} == {("refused", "refused_read_only")}
    assert sorted(r["action"] for r in console.audit()) == [
        "container.exec", "resource.delete", "resource.restart", "resource.start", "resource.stop"]
    container.reload()
    assert container.status == "running"
    assert container.exec_run(["test", "-e", "/tmp/kiosk-was-here"]).exit_code == 1


WORKLOAD_SPEC = """\
name: {name}
ContainerRuntime:
  base_image: "{image}"
  command: ["sleep", "600"]
  security: {{user: "1000:1000"}}
  resources:
    limits: {{cpu: "200m", memory: "64Mi"}}
    requests: {{cpu: "100m", memory: "16Mi"}}
AutoScalingPolicy:
  horizontal:
    min_replicas: 1
    max_replicas: 3
    target_cpu_utilization: 50
"""


async def test_apply_a_spec_then_execute_a_scaling_decision(live_console, tmp_path, docker_client, test_image, run_id) -> None:
    from textual.widgets import Select

    from backends.docker import make_docker_backends

    name = f"tui{run_id.replace('-', '')[-10:]}"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "web.yaml").write_text(WORKLOAD_SPEC.format(name=name, image=test_image))
    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]])
    console = live_console([host_backend(), *backends], handlers=handlers, specs=specs)
    app = console.app
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await pilot.pause()
            pane = app.pane("specs")
            pane.open_file(next(f for f in pane.files if f.path.name == "web.yaml" and not f.sample))
            assert await wait_for(pilot, lambda: pane.last_result is not None and pane.last_result.ok)
            await pilot.press("f6")
            assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=30)
            assert "create" in app.screen.detail and f"{name}-0" in app.screen.detail
            await pilot.press("y")
            await pilot.press("2")
            assert await wait_for(pilot, lambda: _row(app, f"{name}-0") is not None, timeout=60)
            await pilot.press("H")
            assert await wait_for(pilot, lambda: hasattr(app.screen, "decision"))
            screen = app.screen
            index = next(i for i, s in enumerate(screen.workloads) if s.document.name == name)
            screen.query_one("#workload", Select).value = index
            await pilot.pause()
            screen.query_one("#replicas").value = "1"
            screen.query_one("#cpu").value = "150"
            screen.action_evaluate()
            assert screen.decision.direction == "scale_up" and screen.decision.target_replicas == 3
            assert not screen.query_one("#execute").disabled
            await pilot.click("#execute")
            assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert app.screen.question == f"Scale workload/{name} from 1 to 3 replicas?"
            await pilot.press("y")
            assert await wait_for(pilot, lambda: any(r["action"] == "workload.scale" for r in console.audit()), timeout=90)
            # Recorded where the autoscaler keeps its history: its cooldown starts now, and the
            # screen, evaluated again, says so.
            history_file = history_path(console.data_dir, name)
            assert await wait_for(pilot, lambda: history_file.exists())
            last = History.from_text(history_file.read_text()).last_event()
            assert (last.from_replicas, last.to_replicas) == (1, 3)
            assert await wait_for(pilot, lambda: screen.decision.direction == "no_scale")
            assert "ScaleUpCooldown" in screen.decision.reason
            assert "last scaling 1 -> 3" in " ".join(screen_text(app).split())
        names = {c.name for c in docker_client.containers.list(filters={"name": name})}
        assert names == {f"{name}-0", f"{name}-1", f"{name}-2"}
        actions = [(r["action"], r["result"]) for r in console.audit()]
        assert actions == [("workload.apply", "started"), ("workload.apply", "ok"), ("workload.scale", "ok")]
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)


@pytest.fixture
def screenful_of_containers(docker_client, test_image, test_labels, run_id):
    """More sleeping containers than a short terminal shows at once."""
    made = [docker_client.containers.run(test_image, ["sleep", "600"], name=f"{run_id}-view-{index:02d}",
                                         labels=test_labels, detach=True, init=True) for index in range(14)]
    yield made
    for container in made:
        container.remove(force=True)


async def test_the_engine_reads_the_statistics_of_the_rows_in_sight(live_console, screenful_of_containers) -> None:
    """An idle console over many containers reads a screenful of cgroups per refresh: the
    engine's focus follows the rows on screen as the table scrolls, and goes when the table
    is sorted by CPU (the order needs every row) or the pane is left."""
    console = _docker_console(live_console)
    app = console.app
    engine = next(backend for backend in app.services.backends.values() if backend.kind == "containers")
    names = {container.name for container in screenful_of_containers}

    def focus_matches_view() -> bool:
        in_view = {row.key.rsplit("/", 1)[-1] for row in app.pane("containers").table.rows_in_view()}
        return engine._focus is not None and bool(in_view) and engine._focus == in_view

    async with app.run_test(size=(120, 16)) as pilot:
        await pilot.press("2")
        table = app.pane("containers").table
        assert await wait_for(pilot, lambda: names <= {row.name for row in table.all_rows}, timeout=30)
        assert await wait_for(pilot, focus_matches_view)
        running = sum(1 for row in table.all_rows if "running" in row.cells)
        assert len(engine._focus) < running  # a screenful, not the whole engine
        first_view = engine._focus
        table.scroll_end(animate=False)
        assert await wait_for(pilot, lambda: focus_matches_view() and engine._focus != first_view)
        table.sort_by(3)  # CPU
        assert await wait_for(pilot, lambda: engine._focus is None)
        table.sort_by(0)  # NAME
        assert await wait_for(pilot, focus_matches_view)
        await pilot.press("1")
        assert await wait_for(pilot, lambda: engine._focus is None)


async def test_a_shell_in_a_stopped_container_is_not_opened_and_says_why(live_console, container) -> None:
    container.stop(timeout=1)
    console = _docker_console(live_console)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _select(pilot, app, container.name)
        assert await wait_for(pilot, lambda: _row(app, container.name).cells[1] == "exited", timeout=30)
        await pilot.press("e")
        expected = f"container/{container.name} is exited: start it first (s)."
        assert await wait_for(pilot, lambda: expected in [note.message for note in app._notifications])
    assert console.audit() == []  # nothing was attempted


async def test_apply_of_a_host_level_capability_asks_with_the_reason_declined_creates_nothing(
        live_console, tmp_path, docker_client, test_image, run_id) -> None:
    from backends.docker import make_docker_backends

    name = f"cap{run_id.replace('-', '')[-10:]}"
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = WORKLOAD_SPEC.format(name=name, image=test_image).replace(
        'security: {user: "1000:1000"}', 'security: {user: "1000:1000", capabilities: ["SYS_ADMIN"]}')
    (specs / "risky.yaml").write_text(spec)
    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]])
    console = live_console([host_backend(), *backends], handlers=handlers, specs=specs)
    app = console.app
    reason = f"ContainerRuntime/{name}: confirm first: {specs / 'risky.yaml'}:5:48: capability SYS_ADMIN lets the container"
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await pilot.pause()
            pane = app.pane("specs")
            pane.open_file(next(f for f in pane.files if f.path.name == "risky.yaml"))
            assert await wait_for(pilot, lambda: pane.last_result is not None and pane.last_result.ok)
            for answer in ("n", "y"):
                await pilot.press("f6")
                assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=30)
                assert reason in app.screen.detail and "capability SYS_ADMIN lets the container" in app.screen.detail
                await pilot.press(answer)
                if answer == "n":
                    assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
                    assert docker_client.containers.list(all=True, filters={"name": name}) == []
            assert await wait_for(pilot, lambda: any(r["result"] == "ok" for r in console.audit()), timeout=60)
        assert {c.name for c in docker_client.containers.list(filters={"name": name})} == {f"{name}-0"}
        [started, done] = console.audit()
        assert (started["result"], done["result"]) == ("started", "ok")
        assert "capability SYS_ADMIN" in done["params"]["confirmed"][0]
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)


async def test_a_replica_restarted_from_the_console_counts_for_its_workload(live_console, docker_client, test_image, test_labels, run_id) -> None:
    from console.eventlog import EventLog
    from console.exporter.event_counts import EventCounter

    workload = f"{run_id}-restarted"
    replica = docker_client.containers.run(test_image, ["sleep", "600"], name=f"{workload}-0", detach=True, init=True,
                                           labels={**test_labels, "rtm.workload": workload, "rtm.replica": "0"})
    try:
        console = _docker_console(live_console)
        app = console.app
        async with app.run_test(size=SIZE) as pilot:
            await _select(pilot, app, replica.name)
            await _confirmed(pilot, app, "R")
            assert await wait_for(pilot, lambda: len(console.audit()) == 1, timeout=30)
        log = EventLog.in_data_dir(console.data_dir)
        (restart,) = [e for e in log.read() if e.kind == "restart"]
        assert restart.workload == workload
        assert EventCounter(log).totals().restarts == {workload: 1}  # rtm_workload_restarts_total{workload=...}
    finally:
        replica.remove(force=True)
