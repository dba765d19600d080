"""The Specs pane's file list: a long file name takes one line, shortened with an ellipsis."""

from __future__ import annotations

from pathlib import Path

from tui.conftest import recorded_app, screen_text, wait_for


async def test_a_long_spec_file_name_is_shortened_with_an_ellipsis(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a-very-long-spec-file-name-for-the-payments-service.yaml").write_text("name: x\n")
    (specs / "short.yaml").write_text("name: y\n")
    app = recorded_app(tmp_path, specs_dir=specs)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("5")
        assert await wait_for(pilot, lambda: "a-very-long" in screen_text(app) and "short.yaml" in screen_text(app))
        lines = screen_text(app).splitlines()
    (long_line,) = [line for line in lines if "a-very-long" in line]
    assert "…" in long_line and "payments-service.yaml" not in long_line
    following = lines[lines.index(long_line) + 1]
    assert "short.yaml" in following  # the name did not wrap onto the next line


async def test_the_spec_file_of_a_workload_with_a_firing_alert_says_alert(tmp_path: Path) -> None:
    app = recorded_app(tmp_path, specs_dir=Path("tests/tui/fixtures/alert-specs"))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("5")
        # web's recorded replicas are above its CPU target
        assert await wait_for(pilot, lambda: "ALERT web-hot.yaml" in screen_text(app))
