"""The package as users get it: a wheel built from this tree, installed into a fresh virtualenv."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_validates_its_bundled_samples(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], check=True, timeout=600)
    (wheel,) = dist.glob("rtm_console-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=900)

    cli = env_dir / "bin" / "rtm-console"
    samples = subprocess.run([str(cli), "samples"], capture_output=True, text=True, check=True, cwd=tmp_path)
    folder = Path(samples.stdout.strip())
    assert folder.is_dir() and env_dir in folder.parents  # the samples inside the installed package
    assert (folder / "workload-web.yaml").is_file() and (folder / "functions" / "hello" / "main.py").is_file()

    validate = subprocess.run([str(cli), "validate", str(folder)], capture_output=True, text=True, cwd=tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    themes = subprocess.run([str(python), "-c", "import themes, console.cli, backends.base, rtm.documents"], cwd=tmp_path)
    assert themes.returncode == 0
