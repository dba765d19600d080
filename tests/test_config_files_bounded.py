"""The config file and the web config are read like specs: regular files of at most 16 MiB,
nesting capped, each refusal one line with the path (and line:col when it is in the YAML)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def rtm(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home))
    env.pop("RTM_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "named-pipe.yml"
    os.mkfifo(path)
    return path


def _deep(tmp_path: Path, key: str, levels: int) -> Path:
    path = tmp_path / f"deep-{key}.yml"
    path.write_text(f"{key}: " + "[" * levels + "]" * levels + "\n")
    return path


def test_config_nested_10000_levels_is_a_finding_with_its_position_not_a_recursion_error(tmp_path: Path) -> None:
    path = _deep(tmp_path, "theme", 10_000)
    result = rtm(tmp_path, "--config", str(path), "config")
    assert result.returncode == 2, result.stderr
    assert f"{path}:1:1007: error: invalid YAML: exceeded maximum nesting depth" in result.stderr
    assert "recursion" not in result.stderr


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_config_that_is_a_device_or_a_pipe_is_refused_at_once(kind: str, fifo: Path, tmp_path: Path) -> None:
    path = fifo if kind == "fifo" else Path(kind)
    result = rtm(tmp_path, "--config", str(path), "config")
    assert result.returncode == 2
    reason = "a pipe" if kind == "fifo" else "a character device"
    assert f"{path}: error: cannot read the config file: not a regular file ({reason})" in result.stderr


def test_web_config_pipe_and_deep_nesting_are_refused_with_exit_1(fifo: Path, tmp_path: Path) -> None:
    piped = rtm(tmp_path, "exporter", "--web-config", str(fifo), "--check")
    assert piped.returncode == 1
    assert f"{fifo}: error: cannot read the web config: not a regular file (a pipe)" in piped.stderr
    deep = _deep(tmp_path, "tls_server_config", 5_000)
    nested = rtm(tmp_path, "exporter", "--web-config", str(deep), "--check")
    assert nested.returncode == 1, nested.stderr
    assert f"{deep}:1:1019: error: invalid YAML: exceeded maximum nesting depth" in nested.stderr
