"""The CLI takes every name the console's `:` prompt takes for a kind (console/resource_kinds.py):
KIND/NAME and `get`, in any case, run as a user runs them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from test_cli_resources import rtm_console


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


def test_describe_takes_the_prompts_aliases_of_a_kind(tmp_path: Path) -> None:
    host = socket.gethostname()
    for target in (f"machines/{host}", f"NO/{host}"):
        described = rtm_console(_env(tmp_path), "describe", target)
        assert described.returncode == 0, described.stderr
        assert json.loads(described.stdout)["id"] == host
    unknown = rtm_console(_env(tmp_path), "describe", f"bogus/{host}")
    assert unknown.returncode == 2 and 'unknown kind "bogus"' in unknown.stderr


def test_get_takes_the_prompts_aliases_of_a_kind(tmp_path: Path) -> None:
    listed = rtm_console(_env(tmp_path), "get", "no")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["ID", "ZONE", "CPUS", "CPU", "MEMORY", "LOAD1", "RUNTIMES", "CORDONED"]
    assert listed.stdout.splitlines()[1].split()[0] == socket.gethostname()
    refused = rtm_console(_env(tmp_path), "get", "bogus")
    assert refused.returncode == 2 and "invalid choice: 'bogus'" in refused.stderr
