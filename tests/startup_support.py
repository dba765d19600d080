"""Helpers of the start-up tests: a console started as `rtm-console` starts it, driven by
Textual's Pilot in a fresh interpreter (a subprocess), so that what the test process imported
does not count; the child prints what it saw as one JSON line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The start of every child: its arguments (the environment as JSON, then the test's own), a
# wait that lets the app run until a condition holds, and `drive`, which builds the console as
# run_console does, lets `watch(app, poller, pilot, seen)` use it (and `first_paint(app, seen)`
# look at its first frame), quits it and prints `seen`.
CHILD_PRELUDE = r"""
import argparse, asyncio, json, sys

env, extra = json.loads(sys.argv[1]), sys.argv[2:]

async def until(pilot, condition, timeout=90.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await pilot.pause(0.1)
        if condition():
            return True
    return False

def drive(args, watch, first_paint=None):
    from console.commands.interactive import build_console
    from console.context import open_context

    ctx = open_context(args, "interactive", env=env)
    app, poller, background = build_console(ctx, args)
    seen = {}
    start_the_rest = app.services.after_first_paint

    def after_first_paint():
        if first_paint is not None:
            first_paint(app, seen)
        start_the_rest()

    app.services.after_first_paint = after_first_paint

    async def run():
        async with app.run_test(size=(160, 40)) as pilot:
            await watch(app, poller, pilot, seen)
            await pilot.press("q")

    poller.start()
    try:
        asyncio.run(run())
    finally:
        background.stop()
        poller.stop(timeout=3)
        ctx.close()
    print(json.dumps(seen))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def console_env(tmp_path: Path, libvirt_uri: str) -> dict[str, str]:
    """A fresh data folder, config and specs folder; the test engine; local functions."""
    return {"RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path),
            "RTM_SPECS_DIR": str(tmp_path / "specs"), "DOCKER_HOST": os.environ.get("DOCKER_HOST", ""),
            "LIBVIRT_DEFAULT_URI": libvirt_uri, "RTM_FUNCTIONS_TARGET": "local",
            "RTM_FUNCTIONS_GATEWAY_LISTEN": f"127.0.0.1:{free_port()}"}


def run_child(code: str, env: dict[str, str], *args: str) -> dict:
    child = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + code, json.dumps(env), *args], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])
