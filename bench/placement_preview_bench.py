"""Placement preview benchmark: time to a preview of a 5,000-node inventory in the console.

1. Time to a preview: the console's placement screen (Textual, headless at 160x48) opened on a
   specs folder holding the 5,000-node inventory of bench/schedule_cli_bench.py and a workload
   of `--replicas` replicas, from finding the specs to the preview's summary on screen; the
   median of `--rounds`. Then how many rows the two lists drew (they draw the rows in sight).
2. Finding a node: the find field given the id of the last node, to its row on screen.
3. References in the same run: a bare Textual DataTable holding the same 5,000 node rows (the
   same cells), from start to its first paint; and `rtm-console schedule --json` on the same
   files as a fresh process (interpreter start included), which places without drawing.

Goal: a preview within 1 s. The exit status is 1 when it is missed.

Usage (from the repository root):
    .venv/bin/python bench/placement_preview_bench.py [--nodes 5000] [--replicas 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from schedule_cli_bench import (
    POLICY,
    inventory_yaml,
    run_cli,
    time_to_preview,
    workload_yaml,
)

GOAL_SECONDS = 1.0
SIZE = (160, 48)


def find_last_node(folder: Path, last_node: str) -> tuple[float, int, int]:
    """Seconds from typing the last node's id in the find field to its row on screen, and the
    rows each list drew from opening the screen to then."""
    from textual.app import App

    from console.tui.planning import find_specs
    from console.tui.screens.placement_preview import PlacementScreen
    from console.tui.screens.planning_common import RowList

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(PlacementScreen(find_specs([("bench", folder)]), []))

    async def run() -> tuple[float, int, int]:
        async with Host().run_test(size=SIZE) as pilot:
            while pilot.app.screen.query("#capacity") and not pilot.app.screen.query_one("#capacity", RowList).rows:
                await pilot.pause()
            await pilot.pause()
            capacity = pilot.app.screen.query_one("#capacity", RowList)
            placements = pilot.app.screen.query_one("#placements", RowList)
            start = time.perf_counter()
            pilot.app.screen.query_one("#find").value = last_node
            while not (len(capacity.rows) == 1 and capacity.rows[0][0].startswith(last_node)):
                await pilot.pause()
            await pilot.pause()  # the repaint
            return time.perf_counter() - start, capacity.rows_drawn, placements.rows_drawn

    return asyncio.run(run())


def bare_datatable(rows: list[tuple]) -> float:
    """Seconds from starting an app holding one DataTable with `rows` to its first paint."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("NODE", "CPU FREE", "MEMORY FREE", "REPLICAS")
            table.add_rows(rows)

    async def run() -> float:
        start = time.perf_counter()
        async with Bare().run_test(size=SIZE) as pilot:
            await pilot.pause()
            return time.perf_counter() - start

    return asyncio.run(run())


def node_rows(folder: Path, replicas: int) -> list[tuple]:
    """The preview's node rows for the folder's inventory and workload (what the DataTable holds)."""
    from console.tui.planning import (
        client_keys,
        find_specs,
        nodes_from_inventory,
        requirements_for,
    )
    from console.tui.screens.placement_preview import capacity_rows
    from rtm.scheduling import schedule

    catalog = find_specs([("bench", folder)])
    nodes = nodes_from_inventory(catalog.inventories[0].document.nodes or ())
    result = schedule(nodes, requirements_for(catalog.workloads[0].document), replicas, "round_robin",
                      clients=client_keys(replicas))
    return [row for _node, row in capacity_rows(result, nodes)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--replicas", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each measure; the median is reported")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rtm-preview-bench-") as tmp:
        folder = Path(tmp)
        specs = folder / "specs"
        specs.mkdir()
        (specs / "nodes.yaml").write_text(inventory_yaml(args.nodes))
        (specs / "web.yaml").write_text(workload_yaml(args.replicas))
        (folder / "nodes.yaml").write_text((specs / "nodes.yaml").read_text())
        (folder / "policy.yaml").write_text(POLICY)

        previews = [time_to_preview(specs) for _ in range(args.rounds)]
        preview = statistics.median(seconds for seconds, _ in previews)
        summary = previews[0][1]
        found, capacity_drawn, placements_drawn = find_last_node(specs, f"node-{args.nodes - 1:05d}")
        rows = node_rows(specs, args.replicas)
        bare = statistics.median(bare_datatable(rows) for _ in range(args.rounds))
        cli = statistics.median(run_cli(folder, "round_robin", args.replicas, pure_python=False) for _ in range(args.rounds))

    print(f"placement preview: {args.nodes} nodes, {args.replicas} replicas, headless {SIZE[0]}x{SIZE[1]}, "
          f"medians of {args.rounds}\n({summary})\n")
    print(f"{'measure':<52}{'seconds':>9}{'ratio':>8}")
    print(f"{'time to the preview (finding the specs included)':<52}{preview:>9.2f}{1:>8.2f}")
    print(f"{'reference: bare DataTable with the same node rows':<52}{bare:>9.2f}{bare / preview:>8.2f}")
    print(f"{'reference: rtm-console schedule --json (new process)':<52}{cli:>9.2f}{cli / preview:>8.2f}")
    print(f"{'finding the last node (find field to its row)':<52}{found:>9.2f}")
    print(f"\nrows drawn until then: {capacity_drawn} of {args.nodes} node rows, {placements_drawn} of "
          f"{args.replicas} replica rows")
    met = preview <= GOAL_SECONDS
    print(f"goal: a preview within {GOAL_SECONDS:g} s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
