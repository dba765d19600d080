"""Paint first, connect after: the console's first frame (header, pane tabs, this host's row)
does not wait for the other backends, the control loops or the local functions runtime; they
start right after it, each `starting` in the header until it is up, even while a Docker engine
never answers. Quitting stops everything that started."""

from __future__ import annotations

import argparse
import re
import socket
import threading
from pathlib import Path

from console.commands.interactive import build_console
from console.context import open_context
from console.datadir import agent_lock_path, lock_holder
from tests.tui.conftest import screen_text, wait_for


class SilentEngine:
    """A Docker endpoint that accepts connections and never answers them."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(64)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


def _header(app) -> str:
    return str(app.header.render())


async def test_first_frame_comes_before_the_backends_loops_and_functions_start(tmp_path: Path, debug_log: Path) -> None:
    # debug_log: the logging configuration that open_context sets up is put back afterwards
    engine = SilentEngine(tmp_path / "silent-docker.sock")
    env = {"RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path),
           "RTM_SPECS_DIR": str(tmp_path / "specs"), "DOCKER_HOST": f"unix://{tmp_path / 'silent-docker.sock'}",
           "LIBVIRT_DEFAULT_URI": "test:///default", "RTM_FUNCTIONS_TARGET": "local",
           "RTM_FUNCTIONS_GATEWAY_LISTEN": "127.0.0.1:0"}  # a free port the gateway takes itself
    ctx = open_context(argparse.Namespace(), "interactive", env=env)
    app, poller, background = build_console(ctx, argparse.Namespace())
    first_frames: list[str] = []
    start_the_rest = app.services.after_first_paint

    def after_first_paint() -> None:
        first_frames.append((screen_text(app), _header(app), app.alerts.write_events))
        start_the_rest()

    app.services.after_first_paint = after_first_paint
    poller.start()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            assert await wait_for(pilot, lambda: "functions served at" in _header(app), timeout=30), _header(app)
            header = _header(app)
            port = int(re.search(r"functions served at http://127\.0\.0\.1:(\d+)", header).group(1))
            assert "control loops: here" in header
            assert app.alerts.write_events  # the process running the loops writes the alert events
            assert "docker@local connecting" in header  # the silent engine has still not answered
            assert "libvirt@test:///default: not connected yet" in header  # until the VMs pane is shown
            assert "starting" not in header
            assert socket.gethostname() in screen_text(app) or "Ready" in screen_text(app)  # this host's row
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass  # the functions gateway listens
            assert lock_holder(agent_lock_path(tmp_path / "data"))["role"] == "console"
            await pilot.press("q")
    finally:
        background.stop()
        poller.stop(timeout=3)
        ctx.close()
        engine.close()
    ((first_frame, first_header, writing_alert_events),) = first_frames
    assert not writing_alert_events
    assert "1 Nodes" in first_frame and "2 Containers" in first_frame
    assert "host up" in first_header or "host connecting" in first_header
    assert "backends: starting" in first_header
    assert "control loops: starting" in first_header
    assert "functions: starting" in first_header
    assert "docker@" not in first_header and "libvirt@" not in first_header
    # Quitting stopped what started after the first frame.
    assert lock_holder(agent_lock_path(tmp_path / "data")) is None
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
