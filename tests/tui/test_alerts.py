"""Alerts in the console: a workload above its CPU target against the test setup's Docker
engine shows in the header, the Alerts pane and its container's row within a refresh; a
silence goes through the gate (audited, refused in kiosk mode) and lives in the data folder;
a console that does not run the control loops writes no alert events."""

from __future__ import annotations

import json
import os

import pytest

from console.datadir import read_jsonl
from console.exporter.firing import AlertWatch
from console.tui.screens.dialogs import TextPromptScreen
from tui.conftest import host_backend, screen_text, wait_for

pytestmark = pytest.mark.docker
SIZE = (140, 40)
def _docker_console(live_console, specs, mode="interactive"):
    from backends.docker import make_docker_backends

    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]], read_only=mode == "kiosk")
    return live_console([host_backend(), *backends], handlers=handlers, specs=specs, mode=mode)


def _alert_row(app, subject: str):
    return next((row for row in app.pane("alerts").table.all_rows if row.name == subject), None)


async def test_a_workload_above_its_cpu_target_is_shown_and_can_be_silenced(live_console, hot_workload) -> None:
    name, specs, container = hot_workload
    console = _docker_console(live_console, specs)
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        assert await wait_for(pilot, lambda: _alert_row(app, name) is not None, timeout=40)
        row = _alert_row(app, name)
        assert row.cells[0] == "RtmWorkloadCpuAboveTarget" and row.cells[4] == "50%" and row.cells[6] == "firing"
        assert "1 ALERT" in screen_text(app)
        await pilot.press("2")
        containers = app.pane("containers").table
        assert await wait_for(pilot, lambda: any(r.name == container.name and r.cells[1] == "running ALERT"
                                                 for r in containers.all_rows), timeout=20)
        await pilot.press("7")
        app.pane("alerts").table.select_key(row.key)
        await pilot.press("S")
        assert await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press(*"30m", "enter")
        assert await wait_for(pilot, lambda: _alert_row(app, name).cells[6].startswith("silenced until"), timeout=20)
        assert "no alerts (1 silenced)" in screen_text(app)
    record = console.audit()[-1]
    assert (record["action"], record["target"], record["result"]) == (
        "alert.silence", f"alert/RtmWorkloadCpuAboveTarget/{name}", "ok")
    silences = json.loads((console.data_dir / "silences.json").read_text())
    assert list(silences) == [f"RtmWorkloadCpuAboveTarget/{name}"]
    # This console runs no control loops: it showed the alert but wrote no event for it.
    assert not [e for e in read_jsonl(console.data_dir / "events.jsonl") if e["kind"].startswith("alert_")]


async def test_kiosk_shows_the_alert_and_refuses_to_silence_it(live_console, hot_workload) -> None:
    name, specs, _container = hot_workload
    console = _docker_console(live_console, specs, mode="kiosk")
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        assert await wait_for(pilot, lambda: _alert_row(app, name) is not None, timeout=40)
        app.pane("alerts").table.select_key(_alert_row(app, name).key)
        await pilot.press("S")
        assert await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
        await pilot.press(*"1h", "enter")
        assert await wait_for(pilot, lambda: len(console.audit()) == 1, timeout=20)
        assert _alert_row(app, name).cells[6] == "firing"
    assert (console.audit()[0]["action"], console.audit()[0]["result"]) == ("alert.silence", "refused")
    assert not (console.data_dir / "silences.json").exists()


async def test_the_loop_running_console_writes_firing_once(live_console, hot_workload, tmp_path) -> None:
    name, specs, _container = hot_workload
    console = _docker_console(live_console, specs)
    writer = AlertWatch(specs, console.data_dir, console.app.services.events, write_events=True)
    watched: list[int] = []  # the states the writer has looked at

    def watch(state) -> None:
        writer.update(state)
        watched.append(state.version)

    console.poller.subscribe(watch)
    events = console.data_dir / "events.jsonl"

    def firing():
        return [e for e in read_jsonl(events) if e["kind"] == "alert_firing"] if events.exists() else []

    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: firing(), timeout=40)
        looked = len(watched)
        # Three more polls looked at by the writer: the alert keeps firing, and is not written again.
        assert await wait_for(pilot, lambda: len(watched) >= looked + 3, timeout=40)
    assert [(e["target"], e["details"]["alert"]) for e in firing()] == [(name, "RtmWorkloadCpuAboveTarget")]


async def test_help_and_palette_list_the_alerts_pane_and_its_keys(tmp_path) -> None:
    from console.tui.screens.help import HelpScreen
    from tui.conftest import recorded_app

    app = recorded_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        await pilot.pause()
        sections = dict(app.binding_sections())
        assert ("7", "Alerts") in sections["Console"] and ("S", "Silence") in sections["Alerts pane"]
        await pilot.press("2")
        await pilot.pause()
        assert ("e", "Shell") in dict(app.binding_sections())["Containers pane"]
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Show Alerts" in titles
        await pilot.press("question_mark")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Shell" in screen_text(app)
