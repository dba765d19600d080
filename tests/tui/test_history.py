"""History of containers and VMs for the details' sparklines: kept for the rows in sight and the
selected one only (a fleet of 200 containers keeps about a screenful), at most 60 samples
each, with network and disk rates from the cumulative counters; shown as sparklines in the
details of a container."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backends.records import FrozenDict, KindSnapshot
from console.poller import PollState
from console.tui.sparkline_history import ResourceHistory
from console.tui.screens.details import DetailsScreen
from tui.conftest import recorded_app, show_pane, wait_for

SIZE = (140, 30)


def _web0(app):
    return next(c for c in app.state.backends["docker@local"].snapshot.items if c.name == "web-0")


def test_samples_are_capped_and_rates_come_from_the_counters() -> None:
    history = ResourceHistory(points=60)
    base = dataclasses.replace(
        _recorded_container(), cpu_ratio=0.25, net_rx_bytes=1000, net_tx_bytes=0, block_read_bytes=0, block_write_bytes=0)
    for step in range(100):
        record = dataclasses.replace(base, net_rx_bytes=1000 + 2048 * step, block_write_bytes=512 * step)
        history.add("docker@local/x", record, 1000.0 + 2 * step)
    series = history.series("docker@local/x")
    assert len(series["cpu"]) == 60 and series["cpu"][-1] == 25.0
    assert series["network"][-1] == 1024.0 and series["disk"][-1] == 256.0  # bytes per second over 2 s
    history.keep_only(frozenset())
    assert history.series("docker@local/x") == {} and len(history) == 0


def _recorded_container():
    from tui.conftest import recorded_states

    state = recorded_states()[-1]
    return next(c for c in state.backends["docker@local"].snapshot.items if c.name == "web-0")


def _fleet(state: PollState, count: int, version: int) -> PollState:
    backend = state.backends["docker@local"]
    template = _recorded_container()
    items = tuple(dataclasses.replace(template, id=f"{index:064x}", name=f"fleet-{index:03d}") for index in range(count))
    snapshot = KindSnapshot("containers", backend.name, items, backend.snapshot.taken_at + version, 0.0)
    backends = dict(state.backends)
    backends["docker@local"] = dataclasses.replace(backend, snapshot=snapshot)
    return PollState(FrozenDict(backends), version)


async def test_only_the_rows_in_sight_keep_a_history(tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = await show_pane(pilot, app, "containers")
        for version in range(app.state.version + 1, app.state.version + 4):
            app.services.source.publish(_fleet(app.state, 200, version))
            await pilot.pause(0.2)
        assert await wait_for(pilot, lambda: len(table.all_rows) == 200)
        app.services.source.publish(_fleet(app.state, 200, app.state.version + 1))
        assert await wait_for(pilot, lambda: len(app.resource_history) > 0)
        in_sight = len(table.rows_in_view())
        assert 0 < len(app.resource_history) <= in_sight + 1 < 200
        await pilot.press("1")  # the Containers pane left the screen: its rows keep no history
        await pilot.pause(0.2)
        app.services.source.publish(_fleet(app.state, 200, app.state.version + 1))
        assert await wait_for(pilot, lambda: len(app.resource_history) == 0)


async def _details_with_history(pilot) -> None:
    app = pilot.app
    table = await show_pane(pilot, app, "containers")
    row = next(r for r in table.all_rows if r.name == "web-0")
    table.select_key(row.key)
    web0 = _web0(app)
    start = app.state.backends["docker@local"].snapshot.taken_at
    for step in range(60):  # two minutes of a replica warming up, then settling
        busy = min(step, 30) / 30
        record = dataclasses.replace(
            web0, cpu_ratio=0.02 + 0.4 * busy * (1 + (step % 5) / 10), memory_working_set_bytes=int((8 + 24 * busy) * 2**20),
            net_rx_bytes=web0.net_rx_bytes + 4096 * step * step, block_write_bytes=web0.block_write_bytes + 8192 * step)
        app.resource_history.add(row.key, record, start + 2 * (step + 1))
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: isinstance(app.screen, DetailsScreen) and app.screen.is_mounted)
    await app.workers.wait_for_complete()  # the tabs asked of the backend have their answers
    await pilot.pause()


def test_details_history_snapshot(snap_compare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path)
    assert snap_compare(app, terminal_size=(120, 30), run_before=_details_with_history)
