"""The spec editor: validation as you type, jumping to findings, saving atomically with the
previous version kept, and never losing what was typed (invalid YAML, a failed save, quitting
or switching files with unsaved changes)."""

from __future__ import annotations

import shutil
from pathlib import Path

from console.datadir import read_jsonl
from console.tui.panes.specs import VALIDATE_DELAY
from console.tui.screens.dialogs import UnsavedScreen
from tui.conftest import recorded_app, wait_for

SIZE = (120, 40)
SPECS = Path("tests/tui/fixtures/specs")


def _specs_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    shutil.copytree(SPECS, folder)
    return folder


async def _open(pilot, name: str):
    await pilot.press("5")
    await pilot.pause()
    specs = pilot.app.pane("specs")
    specs.open_file(next(f for f in specs.files if f.path.name == name and not f.sample))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return specs


async def test_typing_invalid_yaml_lists_the_finding_and_keeps_the_text(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=_specs_copy(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        assert specs.findings == ()
        specs.editor.focus()
        specs.editor.cursor_location = (3, 0)  # the start of "ContainerRuntime:" (line 4)
        await pilot.press(*"  oops: [")
        assert await wait_for(pilot, lambda: any(f.severity == "error" for f in specs.findings))
        finding = next(f for f in specs.findings if f.severity == "error")
        assert finding.message.startswith("invalid YAML") and finding.line >= 4
        assert "  oops: [" in specs.editor.text  # nothing typed is lost
        assert specs.dirty


async def test_selecting_a_finding_moves_the_cursor_to_its_line_and_column(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=_specs_copy(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "broken.yaml")
        assert [(f.line, f.column) for f in specs.findings] == [(6, 19), (8, 16)]
        findings = specs.query_one("#spec-findings")
        findings.focus()
        findings.highlighted = 1
        await pilot.press("enter")
        await pilot.pause()
        assert specs.editor.cursor_location == (7, 15)
        assert specs.editor.has_focus
        await pilot.press("f8")  # next finding wraps around to the first
        assert specs.editor.cursor_location == (5, 18)


async def test_an_opened_file_is_validated_once_and_the_finding_chosen_stays_chosen(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=_specs_copy(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "broken.yaml")
        findings = specs.query_one("#spec-findings")
        findings.highlighted = 1
        # The load's change reaches the pane through the editor: a callback queued behind it on
        # both runs once the pane has handled it. A validation it set off would be due one
        # typing delay later.
        handled: list[bool] = []
        specs.editor.call_later(lambda: specs.call_later(lambda: handled.append(True)))
        assert await wait_for(pilot, lambda: handled)
        await pilot.pause(VALIDATE_DELAY + 0.4)  # past the typing delay after the load's change
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert findings.highlighted == 1  # the list was not rebuilt under the selection


async def test_saving_writes_the_file_and_keeps_the_previous_version(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    before = (folder / "web.yaml").read_text()
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        specs.editor.focus()
        specs.editor.cursor_location = (0, 0)
        await pilot.press(*"# edited", "enter")
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: not specs.dirty)
        assert (folder / "web.yaml").read_text() == "# edited\n" + before
        assert (folder / "web.yaml~").read_text() == before
        record = read_jsonl(tmp_path / "audit.jsonl")[-1]
        assert (record["action"], record["target"], record["result"]) == ("spec.save", "spec/web.yaml", "ok")


async def test_a_failed_save_shows_why_and_keeps_the_buffer_unsaved(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        # The file's place is taken by a folder: the rename onto it fails.
        (folder / "web.yaml").unlink()
        (folder / "web.yaml").mkdir()
        specs.editor.focus()
        await pilot.press(*"# typed before the failure")
        typed = specs.editor.text
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: not specs.saving)
        assert specs.dirty and specs.editor.text == typed
        messages = [n.message for n in app._notifications]
        assert any("spec.save spec/web.yaml failed" in m and "kept in the editor" in m for m in messages)
        assert "[unsaved]" in str(specs.query_one("#spec-title").render())
        assert read_jsonl(tmp_path / "audit.jsonl")[-1]["result"] == "failed"


async def test_quitting_with_unsaved_changes_asks_and_cancel_keeps_everything(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=_specs_copy(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        specs.editor.focus()
        await pilot.press(*"# not saved yet")
        await pilot.press("ctrl+q")
        assert await wait_for(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and specs.dirty and "# not saved yet" in specs.editor.text


async def test_quitting_with_unsaved_changes_can_save_first(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        specs.editor.focus()
        specs.editor.cursor_location = (0, 0)
        await pilot.press(*"# keep me", "enter")
        await pilot.press("ctrl+q")
        assert await wait_for(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("s")
        assert await wait_for(pilot, lambda: not app.is_running)
    assert (folder / "web.yaml").read_text().startswith("# keep me\n")


async def test_quitting_with_unsaved_changes_can_discard_them(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    before = (folder / "web.yaml").read_text()
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        specs.editor.focus()
        await pilot.press(*"# throw away")
        await pilot.press("ctrl+q")
        assert await wait_for(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("d")
        assert await wait_for(pilot, lambda: not app.is_running)
    assert (folder / "web.yaml").read_text() == before


async def test_opening_another_file_with_unsaved_changes_asks_first(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=_specs_copy(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        specs.editor.focus()
        await pilot.press(*"# mine")
        other = next(f for f in specs.files if f.path.name == "nodes.yaml" and not f.sample)
        specs.ask_then(lambda: specs.open_file(other))
        assert await wait_for(pilot, lambda: isinstance(app.screen, UnsavedScreen))
        await pilot.press("escape")
        await pilot.pause()
        assert specs.path.name == "web.yaml" and "# mine" in specs.editor.text


async def test_a_sample_opens_as_a_new_file_of_the_specs_folder(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        specs = app.pane("specs")
        sample = next(f for f in specs.files if f.sample and f.path.name == "health-check.yaml")
        specs.open_file(sample)
        await pilot.pause()
        assert specs.path == folder / "health-check.yaml" and specs.dirty
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: (folder / "health-check.yaml").exists())
        assert (folder / "health-check.yaml").read_text() == sample.path.read_text()


async def test_new_spec_starts_an_unsaved_buffer_in_the_specs_folder(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    app = recorded_app(tmp_path, specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press(*"api", "enter")
        await pilot.pause()
        specs = app.pane("specs")
        assert specs.path == folder / "api.yaml" and specs.dirty
        assert not (folder / "api.yaml").exists()


async def test_in_kiosk_mode_the_editor_is_read_only_and_saves_are_refused(tmp_path: Path) -> None:
    folder = _specs_copy(tmp_path)
    before = (folder / "web.yaml").read_text()
    app = recorded_app(tmp_path, mode="kiosk", specs_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        specs = await _open(pilot, "web.yaml")
        assert specs.editor.read_only
        specs.editor.focus()
        await pilot.press(*"xyz")
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: not specs.saving and read_jsonl(tmp_path / "audit.jsonl"))
        record = read_jsonl(tmp_path / "audit.jsonl")[-1]
        assert (record["action"], record["result"], record["error"]) == ("spec.save", "refused", "refused_read_only")
    assert (folder / "web.yaml").read_text() == before
