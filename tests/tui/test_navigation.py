"""The `:` jump against real backends (this host, libvirt's test driver): keys typed right behind
it are not lost.

A terminal hands the console what the operator typed in bursts (over SSH `:vm test`, Enter and
`e` often arrive in one read), so the tests post a whole burst of keys to the app at once, the
way its terminal driver does, before the app has handled the first. Pilot's `press` waits until
the app is idle after every key, which hides the problem, so it is used only for the slow typist.
"""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input

from console.tui import typeahead
from console.tui.screens.dialogs import TextPromptScreen
from tui.conftest import host_backend, libvirt_sandbox, wait_for

SIZE = (120, 40)
DOCUMENTED_MAX_HOLD = typeahead.MAX_HOLD  # docs/console.md: "at most two seconds"


@pytest.fixture(autouse=True)
def _no_release_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys held while the focus moves are let go after MAX_HOLD whatever happens: here that
    would hide a hold whose condition never comes true, so the keys must be let go by it."""
    monkeypatch.setattr(typeahead, "MAX_HOLD", 600.0)
CHARACTERS = {"colon": ":", "slash": "/", "space": " "}


def typed_in_one_burst(app, *keys: str) -> None:
    """Every key queued on the app at once, as a terminal read of several bytes delivers them."""
    for key in keys:
        app.post_message(events.Key(key, CHARACTERS.get(key, key if len(key) == 1 else None)))


def _jump_keys(text: str) -> list[str]:
    return ["colon", *("space" if c == " " else c for c in text), "enter"]


async def _ready(pilot, app) -> None:
    assert await wait_for(pilot, lambda: app.pane("nodes").table.all_rows)
    assert await wait_for(pilot, lambda: app.pane("vms").table.is_mounted)  # built after the first paint


async def test_a_key_typed_right_after_the_jump_acts_on_the_row_jumped_to(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()], mode="kiosk")
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        typed_in_one_burst(app, *_jump_keys("vm test"), "e")  # e: the VM's serial console
        assert await wait_for(pilot, lambda: console.audit())
        assert [(r["action"], r["target"], r["result"]) for r in console.audit()] == [
            ("vm.console", "vm/test", "refused")]  # kiosk mode: refused, but it reached the VMs pane
        assert app.active_pane == "vms" and app.pane("vms").table.selected_row().name == "test"
        assert not isinstance(app.screen, TextPromptScreen)


async def test_a_filter_typed_right_after_the_jump_filters_the_pane_jumped_to(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        typed_in_one_burst(app, *_jump_keys("vm test"), "slash", *"tes")
        box = app.pane("vms").query_one(Input)
        assert await wait_for(pilot, lambda: box.value == "tes")
        assert app.focused is box and app.active_pane == "vms"
        assert app.pane("nodes").query_one(Input).value == ""


async def test_the_prompt_gets_every_key_typed_right_after_colon(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        typed_in_one_burst(app, *_jump_keys("vm test"))  # none of it may reach the Nodes pane
        assert await wait_for(pilot, lambda: app.active_pane == "vms")
        assert app.pane("vms").table.selected_row().name == "test"
        assert app.focused is app.pane("vms").table
        assert app.screen is app.screen_stack[0] and console.audit() == []  # no dialog, nothing run


async def test_keys_typed_right_after_a_pane_key_go_to_that_pane(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        typed_in_one_burst(app, "3", "slash", *"tes")  # t alone would be the next theme
        box = app.pane("vms").query_one(Input)
        assert await wait_for(pilot, lambda: box.value == "tes")
        assert app.focused is box and app.theme == "dark"
        assert app.pane("nodes").query_one(Input).value == ""


async def _escape_then_filter(live_console):
    """`:vm`, Esc, `/zz` in one burst: the prompt is left, and the Nodes pane's filter gets zz."""
    console = live_console([host_backend(), libvirt_sandbox()])
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        typed_in_one_burst(app, "colon", *"vm", "escape", "slash", *"zz")
        box = app.pane("nodes").query_one(Input)
        assert await wait_for(pilot, lambda: box.value == "zz")
        assert app.active_pane == "nodes" and app.focused is box
    return app


async def test_escape_then_keys_typed_at_once_go_back_to_the_pane(live_console) -> None:
    await _escape_then_filter(live_console)


async def test_a_slow_typist_jumps_and_filters_with_pilot(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    app = console.app
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot, app)
        await pilot.press(*_jump_keys("vm test"), "slash", *"tes")
        box = app.pane("vms").query_one(Input)
        assert await wait_for(pilot, lambda: box.value == "tes")
        assert app.focused is box


async def test_held_keys_go_on_when_the_focus_never_arrives_simulated(live_console, monkeypatch) -> None:
    """Simulated: the prompt never reports its answer, so the hold's condition never comes true;
    after MAX_HOLD the keys still go on, in order, to whatever has the focus."""
    assert DOCUMENTED_MAX_HOLD == 2.0
    monkeypatch.setattr(typeahead, "MAX_HOLD", DOCUMENTED_MAX_HOLD)
    monkeypatch.setattr(TextPromptScreen, "_answered", lambda self: None)
    app = await _escape_then_filter(live_console)
    assert not app.holding_keys
