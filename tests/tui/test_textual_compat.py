"""The Textual compatibility module: the version check at start-up, and the internals it wraps."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from console.diagnostics import setup_debug_log
from console.tui.textual_compat import SUPPORTED_TEXTUAL, installed_textual, textual_problem
from tui.conftest import recorded_app

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_textual_is_supported_and_others_are_named_with_the_range_and_the_fix() -> None:
    assert textual_problem(installed_textual()) is None
    assert textual_problem("8.2.0") is None and textual_problem("8.9.1") is None
    for version in ("9.0.0", "8.1.3", "10.2", "unknown"):
        problem = textual_problem(version)
        assert problem is not None and f"Textual {version} is installed" in problem
        assert SUPPORTED_TEXTUAL in problem and f"pip install '{SUPPORTED_TEXTUAL}'" in problem
    missing = textual_problem(None)
    assert missing is not None and "not installed" in missing and f"pip install '{SUPPORTED_TEXTUAL}'" in missing


def test_the_supported_range_is_the_one_the_package_pins() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert SUPPORTED_TEXTUAL in dependencies


def test_simulated_newer_textual_stops_the_console_with_the_supported_range_and_no_traceback(tmp_path: Path) -> None:
    """A distribution record of Textual 9.1.0 put ahead of the installed one on the path: what
    the console sees after `pip install -U textual`, without changing the test environment."""
    shadow = tmp_path / "shadow"
    record = shadow / "textual-9.1.0.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: textual\nVersion: 9.1.0\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)]), "RTM_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    run = subprocess.run([sys.executable, "-m", "console.cli"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith("rtm-console: rtm-console's console works with textual>=8.2,<9"), run.stderr
    assert "Textual 9.1.0 is installed" in run.stderr and "pip install 'textual>=8.2,<9'" in run.stderr
    assert "Traceback" not in run.stderr


async def test_an_unexpected_error_ends_the_console_with_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # As rtm-console does at start-up: tracebacks go to the debug log, never to the terminal
    # (set up here so the test does not depend on what earlier tests left in `logging`).
    debug_log = setup_debug_log(tmp_path / "data")
    app = recorded_app(tmp_path)

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        async with app.run_test() as pilot:
            app.call_later(fail)
            await pilot.pause()
    printed = capfd.readouterr().err  # what Textual prints on the terminal when the app has gone
    assert "rtm-console stopped: " in printed and "boom" in printed
    assert "Traceback" not in printed and "fail()" not in printed
    assert "Traceback" in debug_log.read_text()  # the details are kept where the line says
