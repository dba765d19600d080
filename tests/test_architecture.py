"""The import rule: console -> backends -> rtm, and rtm stays pure.

Each headless module is imported in a fresh interpreter and the modules it pulled in are
checked, so a stray import anywhere in the chain is caught.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("docker", "libvirt", "boto3", "botocore", "textual", "psutil", "prometheus_client")
NETWORK = ("socket", "http.client", "urllib.request", "ssl")


def _modules(package: str) -> list[str]:
    names = [package]
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
        names.append(info.name)
    return names


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, json; before = set(sys.modules); import {module}; print(json.dumps(sorted(set(sys.modules) - before)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", _modules("rtm"))
def test_rtm_imports_no_sdk_textual_network_or_outer_layer(module: str) -> None:
    loaded = _loaded_after_import(module)
    forbidden = {m for m in loaded if m.split(".")[0] in (*SDKS, "console", "backends") or m in NETWORK}
    assert not forbidden, f"{module} pulled in {sorted(forbidden)}"


@pytest.mark.parametrize("module", [m for m in _modules("backends")])
def test_backends_never_import_console_or_textual(module: str) -> None:
    loaded = _loaded_after_import(module)
    forbidden = {m for m in loaded if m.split(".")[0] in ("console", "textual")}
    assert not forbidden, f"{module} pulled in {sorted(forbidden)}"


@pytest.mark.parametrize("module", [m for m in _modules("console") if not m.startswith("console.tui")])
def test_headless_console_modules_never_import_textual(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert not {m for m in loaded if m.split(".")[0] == "textual"}, f"{module} pulled in textual"
