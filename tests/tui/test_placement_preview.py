"""The placement preview on a 5,000-node inventory, driven with Textual's Pilot: both lists draw
only the rows in sight, the find field (Ctrl+F) brings any node into view, End reaches the last
one, and the totals and kube-scheduler reasons are there without scrolling."""

from __future__ import annotations

from pathlib import Path

from console.tui.screens.planning_common import RowList
from tui.conftest import host_backend, screen_text, wait_for

SIZE = (160, 40)
NODES = 5_000
REPLICAS = 2 * NODES  # two 1-CPU replicas fill each 2-CPU node; node-00000 has 1 CPU: one fits nowhere


def write_specs(folder: Path) -> Path:
    folder.mkdir()
    nodes = "".join(f"  - {{id: node-{index:05d}, zone: zone-{'ab'[index % 2]}, cpu: \"{1 if index == 0 else 2}\", memory: 4Gi}}\n"
                    for index in range(NODES))
    (folder / "nodes.yaml").write_text("Nodes:\n" + nodes)
    (folder / "big.yaml").write_text(
        f"name: big\nreplicas: {REPLICAS}\nContainerRuntime:\n  base_image: alpine:3.18\n"
        "  resources: {requests: {cpu: \"1\", memory: 1Gi}}\n"
    )
    return folder


def shown(app) -> str:
    return " ".join(screen_text(app).split())


async def open_preview(pilot, app):
    await pilot.press("P")
    assert await wait_for(pilot, lambda: getattr(app.screen, "result", None) is not None and "placed" in shown(app))
    return app.screen


async def test_a_node_far_down_5000_is_found_by_its_id_with_its_replicas(live_console, tmp_path) -> None:
    console = live_console([host_backend()], specs=write_specs(tmp_path / "specs"))
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await open_preview(pilot, console.app)
        assert "node-04321" not in shown(console.app)
        await pilot.press("ctrl+f", *"NODE-04321", "enter")
        assert await wait_for(pilot, lambda: "node-04321" in shown(console.app))
        text = shown(console.app)
        assert "Nodes matching 'NODE-04321': 1 of 5000" in text
        assert f"Replicas on nodes matching 'NODE-04321': 2 of {REPLICAS}" in text
        assert "node-04321 ░░░░░░░░░░░░ 0/2 ██████░░░░░░ 2.0GiB 2" in text  # its 2 replicas took all CPU, half the memory
        assert console.app.focused is screen.query_one("#capacity", RowList)


async def test_end_shows_the_last_node_and_home_the_first(live_console, tmp_path) -> None:
    console = live_console([host_backend()], specs=write_specs(tmp_path / "specs"))
    async with console.app.run_test(size=SIZE) as pilot:
        await open_preview(pilot, console.app)
        await pilot.press("ctrl+f", "enter", "end")  # an empty find keeps every node; Enter goes to the list
        assert await wait_for(pilot, lambda: "node-04999" in shown(console.app))
        assert "node-00000 ░" not in shown(console.app)  # the first node's capacity row has gone by
        await pilot.press("home")
        assert await wait_for(pilot, lambda: "node-00000 ░" in shown(console.app))


async def test_totals_and_the_unschedulable_replica_are_on_screen_without_scrolling(live_console, tmp_path) -> None:
    console = live_console([host_backend()], specs=write_specs(tmp_path / "specs"))
    async with console.app.run_test(size=SIZE) as pilot:
        await open_preview(pilot, console.app)
        text = shown(console.app)
        assert f"{REPLICAS - 1} of {REPLICAS} placed" in text
        assert "5000 nodes (0 cordoned), 5000 holding replicas; free after placing: CPU 0 of 9999" in text
        assert "unschedulable: 0/5000 nodes are available: 5000 Insufficient cpu." in text
        await pilot.press("ctrl+f", *"unsched")
        assert await wait_for(pilot, lambda: f"Replicas on nodes matching 'unsched': 1 of {REPLICAS}" in shown(console.app))
        assert f"{REPLICAS - 1} unschedulable" in shown(console.app)  # the replica's row, by its number


async def test_opening_5000_nodes_draws_only_the_rows_in_sight(live_console, tmp_path) -> None:
    console = live_console([host_backend()], specs=write_specs(tmp_path / "specs"))
    async with console.app.run_test(size=SIZE) as pilot:
        screen = await open_preview(pilot, console.app)
        capacity, placements = screen.query_one("#capacity", RowList), screen.query_one("#placements", RowList)
        assert len(capacity.rows) == NODES and len(placements.rows) == REPLICAS
        in_sight = capacity.size.height
        # A few refreshes while the screen settles, each drawing at most the rows in sight.
        assert 0 < capacity.rows_drawn <= 5 * in_sight < NODES
        assert 0 < placements.rows_drawn <= 5 * in_sight < REPLICAS
