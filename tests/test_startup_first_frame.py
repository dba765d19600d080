"""What `rtm-console` (no command) loads and builds before its first frame: only what the first
screen needs. The command modules, the control loops with the Docker backend they drive, the
spec editor (textual's TextArea with tree-sitter) and the screens opened by keys are imported
later; the panes out of sight are built right after the first paint, and a pane built then
works as before (the Specs pane's editor follows the console's theme).

The console runs in a fresh interpreter (a subprocess driving it with Textual's Pilot), so what
this test process imported does not count."""

from __future__ import annotations

from pathlib import Path

from startup_support import console_env, run_child

# Run in the child: the console as console/cli.py starts it (no command), seen at its first
# paint and after it.
CHILD = r"""
from console import cli

def first_paint(app, seen):
    seen["modules"] = sorted(sys.modules)
    seen["panes_built"] = sorted(pane for pane, widget in app.panes.items() if widget.is_mounted)

async def watch(app, poller, pilot, seen):
    seen["all_built"] = await until(pilot, lambda: all(widget.is_mounted for widget in app.panes.values()))
    await pilot.press("5")
    editor = app.query_one("#spec-editor")
    seen["editor_theme"] = editor.theme
    await pilot.press("t")
    await pilot.pause()
    seen["theme_after_t"] = [app.theme, editor.theme]

drive(cli.console_args([]), watch, first_paint)
"""


def _console(tmp_path: Path) -> dict:
    return run_child(CHILD, console_env(tmp_path, "test:///default"))


def test_the_first_frame_loads_neither_commands_nor_loops_nor_the_editor_and_builds_only_the_nodes_pane(tmp_path: Path) -> None:
    seen = _console(tmp_path)
    modules = set(seen["modules"])
    # Command modules are imported to run a command, not to open the console.
    assert modules & {"console.commands.schedule_cmd", "console.commands.scale_cmd",
                      "console.commands.exporter_cmd", "console.commands.agent_cmd"} == set()
    # The control loops and the Docker backend start after the first paint.
    assert {m for m in modules if m.startswith("console.supervisor.")} <= {"console.supervisor.gated_actions"}
    assert "backends.docker.backend" not in modules
    # The spec editor (with tree-sitter), the libvirt binding and the screens opened by keys.
    assert modules & {"textual.widgets._text_area", "tree_sitter", "libvirt",
                      "console.tui.screens.details", "console.tui.screens.placement_preview"} == set()
    assert seen["panes_built"] == ["nodes"]
    assert seen["all_built"]  # the other panes follow right after the first paint


def test_a_pane_built_after_the_first_paint_follows_the_theme(tmp_path: Path) -> None:
    """The Specs pane's editor is built late: it takes the console's theme then, and follows
    a theme change (`t`)."""
    seen = _console(tmp_path)
    assert seen["editor_theme"] == "monokai"  # the dark theme's editor colours
    assert seen["theme_after_t"] == ["light", "github_light"]
