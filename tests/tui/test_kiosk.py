"""Kiosk mode: every key binding pressed and every palette command run, on every pane, and
nothing changed: the audit log holds only refusals, the data and specs folders are unchanged,
the VMs of the sandbox are as they were, and the locked console is still running."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from textual.binding import Binding

from console.datadir import read_jsonl
from console.gate import AUDIT_LOG_NAME
from console.tui.app import PANES
from console.tui.panes.resource import ResourcePane
from console.tui.screens.help import HelpScreen
from tui.conftest import host_backend, libvirt_sandbox, recorded_app, wait_for

SIZE = (120, 40)
SPECS = Path("tests/tui/fixtures/specs")
NOT_COMPARED = {AUDIT_LOG_NAME}  # the one file kiosk mode writes: its refusals


def _fingerprint(*folders: Path) -> dict[str, str]:
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in NOT_COMPARED:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _vms() -> list[tuple[str, str]]:
    reader = libvirt_sandbox(read_only=True)
    try:
        return sorted((vm.name, vm.state) for vm in reader.list_vms())
    finally:
        reader.close()


def _keys(bindings: list) -> list[str]:
    keys = []
    for binding in bindings:
        if isinstance(binding, Binding):
            keys += [key.strip() for key in binding.key.split(",")]
        else:  # (key, action, description) tuples
            keys.append(binding[0])
    return keys


async def _close_screens(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    while len(pilot.app.screen_stack) > 1:
        pilot.app.pop_screen()
        await pilot.pause()


async def test_kiosk_refuses_every_change_from_every_key_and_command(live_console, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    data = tmp_path / "data"
    data.mkdir()
    vms_before = _vms()
    console = live_console([host_backend(data), libvirt_sandbox(read_only=True)],
                           mode="kiosk", kiosk_lock=True, specs=specs)
    app = console.app
    before = _fingerprint(data, specs)
    pressed: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.pane("nodes").table.rows_shown)
        for pane_id, _, key in PANES:
            await pilot.press(key)
            await pilot.pause()
            pane = app.pane(pane_id)
            if isinstance(pane, ResourcePane):
                await wait_for(pilot, lambda: pane.table.rows_shown or pane_id in ("containers", "functions", "events"))
                pane.table.focus()
            else:
                pane.open_file(next(f for f in pane.files if f.path.name == "web.yaml"))
                await pilot.pause()
            # The console's own keys and palette once (on the first pane); each pane's keys and
            # its row commands on every pane.
            first = pane_id == PANES[0][0]
            console_keys = _keys(app.BINDINGS) if first else []
            for key_name in console_keys + _keys(type(pane).BINDINGS):
                if key_name in [str(k) for _, _, k in PANES]:
                    continue  # switching panes is covered by the outer loop
                await pilot.press(key_name)
                pressed.append(f"{pane_id}:{key_name}")
                await _close_screens(pilot)
                assert app.is_running, f"{key_name} quit the locked kiosk"
                await pilot.press(key)  # back to the pane under test
                if isinstance(pane, ResourcePane):
                    pane.table.focus()
            commands = list(app.get_system_commands(app.screen))
            if not first:
                commands = [c for c in commands if c.help.endswith("through the action gate") or "(Enter)" in c.help
                            or c.title in ("Save spec", "New spec", "Apply spec")]
            for command in commands:
                result = command.callback()
                if hasattr(result, "__await__"):
                    await result
                pressed.append(f"{pane_id}:palette:{command.title}")
                await _close_screens(pilot)
                assert app.is_running, f"{command.title} quit the locked kiosk"
                await pilot.press(key)
        await app.workers.wait_for_complete()
    audit = read_jsonl(console.data_dir / AUDIT_LOG_NAME)
    assert audit, "the change keys never reached the gate"
    assert {record["result"] for record in audit} == {"refused"}
    assert {record["error"] for record in audit} == {"refused_read_only"}
    refused = {record["action"] for record in audit}
    assert {"node.cordon", "node.uncordon", "spec.save", "resource.start", "resource.stop",
            "resource.restart"} <= refused
    assert _fingerprint(data, specs) == before
    assert not (data / "cordons.json").exists()
    assert _vms() == vms_before
    assert any(p.endswith(":q") for p in pressed) and any(p.endswith("palette:Show Events") for p in pressed)
    assert not any("palette:Quit" in p for p in pressed)  # a locked kiosk offers no Quit


async def test_kiosk_cycles_through_the_panes_but_not_under_a_dialog(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, mode="kiosk", cycle_interval=1.0)
    turns: list[str] = []  # the cycle's ticks, counted around the app's own method
    cycle = app._cycle_pane

    def counted_cycle() -> None:
        turns.append(app.active_pane)
        cycle()

    app._cycle_pane = counted_cycle  # the interval is set on mount, from this attribute
    async with app.run_test(size=SIZE) as pilot:
        # The first tick found the Nodes pane (under load it may come before a first look).
        assert await wait_for(pilot, lambda: turns, timeout=20)
        assert turns[0] == "nodes"
        assert await wait_for(pilot, lambda: app.active_pane == "containers", timeout=20)
        assert await wait_for(pilot, lambda: app.active_pane == "vms", timeout=20)
        await pilot.press("question_mark")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        under_help, ticks = app.active_pane, len(turns)
        assert await wait_for(pilot, lambda: len(turns) >= ticks + 2, timeout=20)  # two turns under the help
        assert app.active_pane == under_help  # the help stays over the pane it was opened on


async def test_the_kiosk_cycle_shows_the_alerts_pane_after_the_events(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, mode="kiosk", cycle_interval=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        assert await wait_for(pilot, lambda: app.active_pane == "alerts", timeout=20)
        assert await wait_for(pilot, lambda: app.pane("alerts").table.rows_shown)  # the recording's two backends down


async def test_a_pane_shown_while_the_one_before_was_still_being_built_stays_shown(tmp_path: Path) -> None:
    """The kiosk's cycle (or keys typed fast) shows the next pane while the last one is still
    being built; the last one's handler, when it ends, must not pull the view back to it."""
    app = recorded_app(tmp_path, mode="kiosk")
    shown: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.watch(app.tabs, "active", lambda pane: shown.append(pane), init=False)
        app.action_show_pane("containers")
        app.action_show_pane("vms")  # before the Containers pane's handler has run
        await pilot.pause()
        assert await wait_for(pilot, lambda: app.focused is not None and app.pane("vms") in app.focused.ancestors)
        for _ in range(5):  # more messages handled: nothing moves the view back
            await pilot.pause()
        assert app.active_pane == "vms" and shown == ["containers", "vms"]


async def test_a_locked_kiosk_offers_no_quit_key_in_its_footer_or_help(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, mode="kiosk", kiosk_lock=True)
    async with app.run_test(size=SIZE) as pilot:
        in_help = [description for _, keys in app.binding_sections() for _, description in keys]
        in_footer = [active.binding.description for active in app.screen.active_bindings.values() if active.binding.show]
        assert "Quit" not in in_help and "Quit" not in in_footer
        assert "Help" in in_help and "Help" in in_footer  # the others are still offered
        await pilot.press("q", "ctrl+q", "ctrl+c", "question_mark")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))  # the keys were read
        assert app.is_running
