"""The console against real backends: this host through psutil, libvirt's test driver (the
VM sandbox) and a libvirt URI nobody answers. Every pane, the navigation keys, the palette,
the `:` prompt, pause, themes, details and the gated actions that exist today."""

from __future__ import annotations

import re
import socket

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import Input, Sparkline, TabbedContent

from console.tui.screens.details import DetailsScreen
from console.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.placement_preview import PlacementScreen
from console.tui.screens.scaling import ScalingScreen
from console.tui.widgets.status_header import StatusHeader, header_text
from tui.conftest import host_backend, libvirt_sandbox, screen_text, show_pane, wait_for

HOSTNAME = socket.gethostname()
SIZE = (120, 40)


def _rows(app, pane: str) -> list:
    return list(app.pane(pane).table.rows_shown)


def _header(app) -> str:
    return header_text(app.query_one(StatusHeader).info).plain


async def _open_screen(pilot, app, key: str, kind: type):
    """Press `key` and return the screen it opens once that screen has mounted (it fills
    itself in on mount)."""
    await pilot.press(key)
    assert await wait_for(pilot, lambda: isinstance(app.screen, kind) and app.screen.is_mounted)
    return app.screen


def _first_hit(palette: CommandPalette) -> str | None:
    """The palette's highlighted first hit, if its list shows one."""
    hits = palette.query_one(CommandList)
    if hits.highlighted != 0 or not hits.option_count:
        return None
    return hits.get_option_at_index(0).hit.text


async def test_nodes_pane_shows_this_host_with_live_numbers_and_sparklines(live_console, tmp_path) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        row = _rows(console.app, "nodes")[0]
        assert row.name == HOSTNAME
        assert "host up" in _header(console.app)
        # CPU needs two polls; the sparklines fill as polls arrive.
        assert await wait_for(pilot, lambda: len(console.app.query_one("#spark-cpu", Sparkline).data or []) >= 2)
        assert _rows(console.app, "nodes")[0].cells[2].endswith("%")


async def test_number_keys_and_tab_clicks_switch_panes(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        tabs = console.app.query_one(TabbedContent)
        for key, pane in zip("234561", ("containers", "vms", "functions", "specs", "events", "nodes")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == pane
        await pilot.click("#--content-tab-vms")
        await pilot.pause()
        assert tabs.active == "vms"


async def test_hidden_panes_poll_less_often_and_a_shown_pane_refreshes(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        states = lambda: console.poller.latest().backends  # noqa: E731
        assert states()["libvirt@sandbox"].interval > states()["host"].interval
        await pilot.press("3")
        await pilot.pause()
        assert states()["libvirt@sandbox"].interval == states()["host"].interval


async def test_an_unreachable_backend_is_shown_in_its_pane_with_address_cause_and_hint(live_console) -> None:
    pytest.importorskip("libvirt")
    from backends.libvirt import LibvirtBackend

    gone = LibvirtBackend("qemu+tcp://127.0.0.1:1/system", name="lab")
    console = live_console([host_backend(), gone])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        banner = console.app.pane("vms").query_one(".banner")
        assert await wait_for(pilot, lambda: "unreachable" in str(banner.render()))
        text = str(banner.render())
        assert "qemu+tcp://127.0.0.1:1/system" in text and "refused" in text.lower() and "try:" in text
        assert "DOWN" in _header(console.app)
        await pilot.press("1")  # the other panes keep working
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))


async def test_vms_pane_lists_the_sandbox_domains(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert await wait_for(pilot, lambda: any(r.name == "test" for r in _rows(console.app, "vms")))
        assert "(sandbox)" in _header(console.app)


async def test_filter_keeps_matching_rows_and_escape_clears_it(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert await wait_for(pilot, lambda: _rows(console.app, "vms"))
        await pilot.press("slash", *"no-such-vm")
        box = console.app.pane("vms").query_one(Input)
        # Every key typed has reached the filter box (keys behind / may be held until it has
        # the focus) before the rows are looked at.
        assert await wait_for(pilot, lambda: box.value == "no-such-vm")
        await pilot.pause()
        assert _rows(console.app, "vms") == []
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: box.value == "")
        await pilot.pause()
        assert [r.name for r in _rows(console.app, "vms")] == ["test"]


async def test_clicking_a_header_sorts_and_a_second_click_reverses(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        assert await wait_for(pilot, lambda: _rows(console.app, "vms"))
        # A second VM so there is an order to see: the test driver defines one on request.
        backend = console.app.services.backends["libvirt@sandbox"]
        backend.connection.call(lambda conn: conn.defineXML(
            "<domain type='test'><name>alpha</name><memory>1048576</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os></domain>"), "define a second domain")
        console.poller.refresh_now()
        assert await wait_for(pilot, lambda: len(_rows(console.app, "vms")) == 2)
        table = console.app.pane("vms").table
        table.sort_by(0)
        await pilot.pause()
        assert [r.name for r in _rows(console.app, "vms")] == ["alpha", "test"]
        table.sort_by(0)
        await pilot.pause()
        assert [r.name for r in _rows(console.app, "vms")] == ["test", "alpha"]
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["test", "alpha"]  # on screen too


async def test_enter_opens_the_details_of_the_selected_row(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        console.app.pane("nodes").table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(console.app.screen, DetailsScreen)
        assert HOSTNAME in str(console.app.screen.query_one("#inspect").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(console.app.screen, DetailsScreen)


async def test_help_lists_every_binding_of_the_console_and_the_pane(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(console.app.screen, HelpScreen)
        described = {description for _, rows in console.app.screen.sections for _, description in rows}
        for wanted in ("Nodes", "Events", "Help", "Jump", "Pause", "Refresh", "Theme", "Placement",
                       "Scaling", "Quit", "Filter", "Cordon", "Uncordon"):
            assert wanted in described
        await pilot.press("escape")


async def test_the_palette_lists_every_action_and_runs_them(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        titles = [command.title for command in console.app.get_system_commands(console.app.screen)]
        for wanted in ("Show Nodes", "Show Events", "Jump to a pane or resource", "Filter the table",
                       "Pause or resume the display", "Refresh now", "Theme: light", "Placement preview",
                       "Scaling decisions", "Show key bindings", f"Cordon {HOSTNAME}", "Save spec", "Quit"):
            assert wanted in titles
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(console.app.screen, CommandPalette))
        await pilot.press(*"Show Events")
        # The palette searches as it is typed into: Enter runs the first hit once the search for
        # the whole text has shown it.
        assert await wait_for(pilot, lambda: _first_hit(console.app.screen) == "Show Events")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: console.app.query_one(TabbedContent).active == "events")


async def test_colon_prompt_jumps_to_panes_and_resources(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        await pilot.press("colon")
        await pilot.pause()
        assert isinstance(console.app.screen, TextPromptScreen)
        await pilot.press(*"vm", "enter")
        await pilot.pause()
        assert console.app.query_one(TabbedContent).active == "vms"
        await pilot.press("1")
        assert await wait_for(pilot, lambda: console.app.pane("vms").table.all_rows)
        assert console.app.jump("test")  # a bare name: found in the VMs pane
        await pilot.pause()
        assert console.app.query_one(TabbedContent).active == "vms"
        assert console.app.pane("vms").table.selected_row().name == "test"
        assert not console.app.jump("container/nothing-like-this")


async def test_pause_freezes_the_screen_while_polling_goes_on(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        await pilot.press("p")
        await pilot.pause()
        assert "PAUSED" in _header(console.app)
        shown = console.app.state.version
        polls = console.poller.latest().backends["host"].polls
        assert await wait_for(pilot, lambda: console.poller.latest().backends["host"].polls >= polls + 2)
        assert console.app.pane("nodes").table.rows_shown  # still showing the rows of before
        assert console.app.pane("nodes")._state.version <= shown + 2  # no rebuild while paused
        await pilot.press("p")
        await pilot.pause()
        assert "PAUSED" not in _header(console.app)


async def test_theme_key_and_palette_switch_themes(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        assert console.app.theme == "dark"
        await pilot.press("t")
        assert console.app.theme == "light"
        await pilot.press("t")
        assert console.app.theme == "high-contrast"
        assert console.app.query_one("#spec-editor").theme == "vscode_dark"


async def test_cordon_and_uncordon_go_through_the_gate_and_show_in_the_pane(live_console, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    console = live_console([host_backend(data)])
    async with console.app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes"))
        console.app.pane("nodes").table.focus()
        await pilot.press("c")
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes")[0].cells[1].startswith("Cordoned"))
        assert console.app.services.cordons.is_cordoned(HOSTNAME)
        await pilot.press("u")
        assert await wait_for(pilot, lambda: _rows(console.app, "nodes")[0].cells[1].startswith("Ready"))
        audit = console.audit()
        assert [(r["action"], r["target"], r["result"]) for r in audit] == [
            ("node.cordon", f"node/{HOSTNAME}", "ok"),
            ("node.uncordon", f"node/{HOSTNAME}", "ok"),
        ]


async def test_stopping_a_vm_asks_first_naming_it_and_no_leaves_it_running(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await show_pane(pilot, console.app, "vms")
        await pilot.press("o")
        assert await wait_for(pilot, lambda: isinstance(console.app.screen, ConfirmScreen))
        assert "vm/test" in console.app.screen.question
        await pilot.press("n")
        assert await wait_for(pilot, lambda: console.audit())
        assert console.audit()[-1]["result"] == "refused" and console.audit()[-1]["error"] == "not_confirmed"
        # Two more polls shown: the second began after the answer, so it shows what "no" left.
        polls = console.app.state.backends["libvirt@sandbox"].polls
        console.poller.refresh_now()
        assert await wait_for(pilot, lambda: console.app.state.backends["libvirt@sandbox"].polls >= polls + 2)
        assert _rows(console.app, "vms")[0].cells[1] == "running"


async def test_restarting_a_vm_asks_then_runs_through_the_gate(live_console) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await show_pane(pilot, console.app, "vms")
        await pilot.press("R")
        assert await wait_for(pilot, lambda: isinstance(console.app.screen, ConfirmScreen))
        assert console.app.screen.question == "Restart vm/test?"
        await pilot.press("y")
        assert await wait_for(pilot, lambda: console.audit())
        record = console.audit()[-1]
        assert (record["action"], record["target"], record["result"]) == ("resource.restart", "vm/test", "ok")
        assert record["params"] == {"backend": "libvirt@sandbox"}


async def test_a_failed_action_says_why_in_one_line_naming_the_debug_log(live_console, debug_log) -> None:
    console = live_console([host_backend(), libvirt_sandbox()])
    async with console.app.run_test(size=SIZE) as pilot:
        await show_pane(pilot, console.app, "vms")
        await pilot.press("s")  # start a VM that is already running
        assert await wait_for(pilot, lambda: console.app._notifications)
        notification = list(console.app._notifications)[-1]
        assert notification.severity == "error"
        assert "already running" in notification.message and str(debug_log) in notification.message
        assert "Traceback" not in notification.message and "\n" not in notification.message
        assert "Traceback" in debug_log.read_text()  # the details are in the log
        assert console.audit()[-1]["result"] == "failed"


async def test_actions_without_a_backend_to_carry_them_are_not_offered(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        pane = console.app.pane("containers")
        for verb in ("start", "stop", "restart", "delete"):
            assert pane.check_action("resource", (verb,)) is False
        assert console.app.pane("nodes").check_action("resource", ("cordon",)) is True


async def test_placement_preview_places_the_sample_workload_on_the_sample_nodes(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await _open_screen(pilot, console.app, "P", PlacementScreen)
        assert screen.result is not None
        assert all(p.node is not None for p in screen.result.placements)
        screen.query_one("#replicas").value = "4000"
        screen.action_preview()
        await pilot.pause()
        shown = " ".join(screen_text(console.app).split())
        assert "unschedulable: 0/12 nodes are available" in shown
        assert "node-04" in shown and "░" in shown  # capacity bars of the nodes
        await pilot.press("escape")


async def test_scaling_screen_shows_proposals_decision_and_reason(live_console) -> None:
    console = live_console([host_backend()])
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await _open_screen(pilot, console.app, "H", ScalingScreen)
        screen.query_one("#cpu").value = "140"
        screen.query_one("#memory").value = "40"
        screen.action_evaluate()
        await pilot.pause()
        decision = screen.decision
        assert decision.direction == "scale_up" and decision.proposals["cpu"] == 4
        assert decision.target_replicas == 4
        shown = " ".join(screen_text(console.app).split())
        assert "scale_up 2 -> 4" in shown and "FailedGetResourceMetric" not in shown
        assert "4 replicas" in shown  # the cpu metric's proposal
        assert screen.query_one("#execute").disabled  # no containers backend carries workload.scale
        assert "Vertical recommendation" in shown and "no usage samples" in shown


async def test_the_scaling_screen_counts_the_autoscaler_s_cooldown(live_console) -> None:
    import time

    from console.supervisor.autoscaler import history_path, save_history
    from rtm.autoscaling import History

    console = live_console([host_backend()])
    # The autoscaler scaled the sample workload 2 -> 3 twenty seconds ago (its cooldown is 60 s).
    scaled_at = time.time() - 20
    save_history(history_path(console.data_dir, "web"),
                 History().record_recommendation(scaled_at, 3).record_event(scaled_at, 2, 3))
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await _open_screen(pilot, console.app, "H", ScalingScreen)
        assert screen.workloads[0].document.name == "web"
        screen.query_one("#replicas").value = "3"
        screen.query_one("#cpu").value = "140"
        screen.action_evaluate()
        await pilot.pause()
        assert screen.decision.direction == "no_scale" and screen.decision.target_replicas == 3
        shown = " ".join(screen_text(console.app).split())
        assert "ScaleUpCooldown: the last scaling event (2 -> 3) was 2" in shown and "(scale_up_cooldown 60s)" in shown
        assert re.search(r"history: 1 recommendation\(s\) stored, last scaling 2 -> 3, 2\ds ago", shown)


async def test_the_scaling_screen_says_when_the_stored_history_cannot_be_read(live_console) -> None:
    from console.supervisor.autoscaler import history_path

    console = live_console([host_backend()])
    damaged = history_path(console.data_dir, "web")
    damaged.parent.mkdir(parents=True)
    damaged.write_text("{not json")
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await _open_screen(pilot, console.app, "H", ScalingScreen)
        screen.query_one("#cpu").value = "140"
        screen.action_evaluate()
        await pilot.pause()
        assert screen.decision.direction == "scale_up"  # decided without it
        shown = " ".join(screen_text(console.app).split())
        assert "cannot be read" in shown and "as a fresh autoscaler" in shown
    assert damaged.read_text() == "{not json"  # left for the operator to look at


@pytest.fixture
def local_functions(tmp_path):
    """The local functions runtime serving the sample function from a data folder of its own."""
    from backends.localfn import make_local_backends, make_local_runtime
    from console.config import load_config
    from rtm.documents import load_file
    from tui.conftest import SAMPLES

    data = tmp_path / "functions-data"
    config = load_config({"data_dir": str(data), "functions.gateway_listen": "127.0.0.1:0"}, env={"HOME": str(tmp_path)})
    backends, handlers = make_local_backends(config)
    handler = handlers["function"]
    sample = SAMPLES / "serverless-runtime.yaml"
    for document in load_file(sample).documents:
        handler.apply(document, sample.parent, handler.plan(document, sample.parent), progress=lambda line: None)
    runtime = make_local_runtime(config, role="console")
    runtime.start()
    handler.attach_runtime(runtime)
    yield backends, handlers
    handler.attach_runtime(None)
    runtime.stop()


async def test_invoking_a_function_shows_its_result(live_console, local_functions) -> None:
    import json

    from console.tui.screens.dialogs import OutputScreen

    backends, handlers = local_functions
    console = live_console([host_backend(), *backends], handlers=handlers)
    async with console.app.run_test(size=SIZE) as pilot:
        await show_pane(pilot, console.app, "functions")
        await pilot.press("i")
        assert await wait_for(pilot, lambda: isinstance(console.app.screen, TextPromptScreen))
        await pilot.press(*'{"body": "{\\"name\\": \\"ops\\"}"}', "enter")
        assert await wait_for(pilot, lambda: isinstance(console.app.screen, OutputScreen), timeout=30)
        result = console.app.screen.result
        assert result["status"] == "ok", result
        assert "ops" in json.dumps(result["result"])
    record = console.audit()[-1]
    assert (record["action"], record["target"], record["result"]) == ("function.invoke", "function/hello", "ok")
