"""Pictures of every pane at 80x24 and 160x48 in the dark and light themes.

Rendered from the recorded backend snapshots (fixtures/*-recorded.json, made by
fixtures/record_snapshots.py from the real backends) and a hand-written event log
(fixtures/events-handmade.jsonl), with frozen clocks, so a picture changes only when what the
console shows changes. Update after an intended change:
    .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.conftest import recorded_app, wait_for

PANES = ("nodes", "containers", "vms", "functions", "specs", "events")
KEYS = {"nodes": "1", "containers": "2", "vms": "3", "functions": "4", "specs": "5", "events": "6", "alerts": "7"}
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def _show(pane: str):
    async def run_before(pilot) -> None:
        await pilot.press(KEYS[pane])
        await pilot.pause()
        if pane == "specs":
            specs = pilot.app.pane("specs")
            specs.open_file(next(f for f in specs.files if f.path.name == "broken.yaml"))
            await wait_for(pilot, lambda: len(specs.findings) == 2)
        else:
            # The events are read in a worker: wait until they are on screen.
            await wait_for(pilot, lambda: pilot.app.pane(pane).table.rows_shown)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("theme", ["dark", "light"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("pane", PANES)
def test_pane_snapshot(snap_compare, tmp_path: Path, pane: str, size: str, theme: str) -> None:
    app = recorded_app(tmp_path, theme=theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=_show(pane))


def test_alerts_pane_snapshot(snap_compare, tmp_path: Path) -> None:
    """web's recorded replicas above a 50 % target of a 10m request, and the two unreachable
    backends of the recording; the containers of web are marked ALERT in their pane."""
    app = recorded_app(tmp_path, specs_dir=Path("tests/tui/fixtures/alert-specs"))
    assert snap_compare(app, terminal_size=(120, 30), run_before=_show("alerts"))


def test_kiosk_header_snapshot(snap_compare, tmp_path: Path) -> None:
    app = recorded_app(tmp_path, mode="kiosk", kiosk_lock=True, theme="high-contrast")
    assert snap_compare(app, terminal_size=(120, 30), run_before=_show("containers"))
