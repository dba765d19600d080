"""End to end: the installed `rtm-console` in a real terminal (tmux), read off the screen.

Each test starts its own tmux session running `.venv/bin/rtm-console` with a data folder and a
config file of its own, sends keys, reads the screen with `capture-pane`, and quits. One test
runs the console inside GNU screen (itself shown in tmux, where the screen is read).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import require_service

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = Path(sys.executable).with_name("rtm-console")



@pytest.fixture(autouse=True)
def _tmux_installed() -> None:
    if shutil.which("tmux") is None:
        require_service("tmux", "not installed")


class Terminal:
    def __init__(self, name: str) -> None:
        self.name = name

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: "Escape" then "P" must not arrive as Alt+P
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.15)

    def burst(self, *keys: str) -> None:
        """The keys in one send-keys: they reach the console back to back, as a fast typist's
        do over SSH."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self, escapes: bool = False) -> str:
        command = ["tmux", "capture-pane", "-p", "-t", self.name] + (["-e"] if escapes else [])
        result = subprocess.run(command, capture_output=True, text=True)
        return result.stdout

    def wait_for(self, *texts: str, timeout: float = 40.0) -> str:
        """The screen once any of `texts` is on it (the timeout only guards against a hang)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if any(text in screen for text in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"none of {texts!r} appeared; the screen shows:\n{self.screen()}")

    def wait_for_line(self, *parts: str, timeout: float = 40.0) -> str:
        """The first screen line holding every one of `parts` (a table row with a value in it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = next((line for line in self.screen().splitlines() if all(part in line for part in parts)), None)
            if line is not None:
                return line
            time.sleep(0.2)
        raise AssertionError(f"no line holds all of {parts!r}; the screen shows:\n{self.screen()}")

    def wait_for_toast(self, text: str, timeout: float = 40.0) -> None:
        """A notification holding `text`, however the toast wrapped it (its lines start with ▌)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            toast = [line.split("▌", 1)[1] for line in self.screen().splitlines() if "▌" in line]
            if text in " ".join(" ".join(toast).split()):
                return
            time.sleep(0.2)
        raise AssertionError(f"no notification said {text!r}; the screen shows:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0


def _start(tmp_path: Path, term: str = "xterm-256color", extra_env: dict[str, str] | None = None,
           args: str = "", docker_endpoint: str = "unix:///nonexistent/docker.sock", size: tuple[int, int] = (120, 40),
           wrap: str = "") -> Terminal:
    """rtm-console in a new tmux session; `wrap` is a command line it runs inside (`screen`)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data, config_home = tmp_path / "data", tmp_path / "config"
    config = tmp_path / "config.yaml"
    config.write_text(
        "refresh_interval: 1s\n"
        f"specs_dir: {tmp_path / 'specs'}\n"
        f"docker:\n  endpoints: [{docker_endpoint}]\n"
        "functions:\n  target: local\n  gateway_listen: 127.0.0.1:0\n"
    )
    status = tmp_path / "exit-status"
    env = {"TERM": term, "RTM_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(config_home),
           "HOME": str(tmp_path), **(extra_env or {})}
    assignments = " ".join(f"{key}={value}" for key, value in env.items())
    # The exit status is written to a file and the pane lingers briefly so tests can read both.
    command = f"env -u NO_COLOR {assignments} {CONSOLE} --config {config} {args}; echo $? > {status}"
    command = f"cd {ROOT} && {wrap} sh -c '{command}'; sleep 2"
    name = f"rtm-e2e-{uuid.uuid4().hex[:8]}"
    width, height = size
    subprocess.run(["tmux", "new", "-d", "-s", name, "-x", str(width), "-y", str(height), command], check=True)
    terminal = Terminal(name)
    terminal.status_file = status  # type: ignore[attr-defined]
    return terminal


def audit_records(tmp_path: Path) -> list[dict]:
    """The audit log of a console started by `_start(tmp_path, ...)`."""
    import json

    path = tmp_path / "data" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def select_row(terminal: Terminal, pane_key: str, alias: str, name: str, then: tuple[str, ...] = (),
               timeout: float = 40.0) -> None:
    """Show a pane, wait until the console has polled and drawn the row, then select it with the
    `:` prompt (`co NAME`) and type `then`, the keys that act on the row, all in one burst right
    behind the jump's Enter: the console must lose none of them (nothing here waits for the focus
    to move). The row must be drawn first: a jump typed before the pane's backend has answered
    finds nothing, and a screen capture cannot tell that apart from a jump that worked (the
    notice may be drawn after the capture), so the keys behind it would act on no row."""
    terminal.keys(pane_key)
    terminal.wait_for(name, timeout=timeout)
    terminal.burst(":", f"{alias} {name}", "Enter", *then)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for terminal in started:
        subprocess.run(["tmux", "kill-session", "-t", terminal.name], capture_output=True)


def _exit_status(terminal: Terminal, timeout: float = 40.0) -> int:
    """The console's exit status once it has exited (the timeout only guards against a hang)."""
    status_file: Path = terminal.status_file  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status_file.exists() and status_file.read_text().strip():
            return int(status_file.read_text())
        time.sleep(0.2)
    raise AssertionError(f"rtm-console did not exit; the screen shows:\n{terminal.screen()}")


@pytest.mark.parametrize("term", ["xterm-256color", "tmux-256color", "xterm"])
def test_switch_panes_and_quit_in_tmux(terminals, tmp_path: Path, term: str) -> None:
    terminal = _start(tmp_path, term=term)
    terminals.append(terminal)
    screen = terminal.wait_for("host up")
    assert "interactive" in screen and "1 Nodes" in screen and "NODE" in screen
    terminal.keys("3")
    terminal.wait_for("VCPUS")  # the VMs table's header
    terminal.keys("2")
    terminal.wait_for("RESTARTS")  # the containers table's header
    # the unreachable engine is reported once its first poll fails (it shows "connecting" before)
    terminal.wait_for("/nonexistent/docker.sock", "not installed", "DOWN")
    terminal.keys("6")
    terminal.wait_for("MESSAGE")
    terminal.keys("5")
    terminal.wait_for("specs folder")
    terminal.keys("1", "?")
    terminal.wait_for("Command palette")
    terminal.keys("Escape")
    # The help covers the panes' tabs: once the last tab shows again the help is closed, and q
    # reaches the console on its own (right behind the Escape it could read as Alt+q).
    terminal.wait_for("7 Alerts")
    terminal.keys("q")
    assert _exit_status(terminal) == 0


def test_switch_panes_and_quit_in_gnu_screen_at_80x24(terminals, tmp_path: Path) -> None:
    if shutil.which("screen") is None:
        require_service("GNU screen", "not installed")
    session = f"rtm-e2e-{uuid.uuid4().hex[:6]}"
    # TERM=screen, as GNU screen sets it for the programs it runs.
    terminal = _start(tmp_path, term="screen", size=(80, 24), wrap=f"screen -U -S {session}")
    terminals.append(terminal)
    try:
        screen = terminal.wait_for("host up")
        assert "1 Nodes" in screen and "NODE" in screen and "━" in screen  # the tabs' underline, in UTF-8
        terminal.keys("3")
        terminal.wait_for("VCPUS")
        terminal.keys("2")
        terminal.wait_for("RESTARTS")
        terminal.keys("q")
        assert _exit_status(terminal) == 0
    finally:  # a screen whose terminal goes away detaches and keeps running: end it
        subprocess.run(["screen", "-S", session, "-X", "quit"], capture_output=True)


def test_kiosk_lock_ignores_quit_keys_and_shows_the_lock(terminals, tmp_path: Path) -> None:
    terminal = _start(tmp_path, args="--kiosk --kiosk-lock")
    terminals.append(terminal)
    screen = terminal.wait_for("KIOSK read-only")
    assert "[locked]" in screen
    terminal.keys("q", "C-q", "C-c", "?")
    # The help opened by the key typed last shows that the console read the quit keys before it.
    terminal.wait_for("Command palette: every action by name")
    assert "KIOSK read-only" in terminal.screen()
    assert not (tmp_path / "exit-status").exists()


def _rgb_of_256(index: int) -> tuple[int, int, int]:
    """The xterm 256-colour palette (tmux hands colours on in it)."""
    basic = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
             (192, 192, 192), (128, 128, 128), (255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255),
             (255, 0, 255), (0, 255, 255), (255, 255, 255)]
    if index < 16:
        return basic[index]
    if index >= 232:
        grey = 8 + (index - 232) * 10
        return (grey, grey, grey)
    steps = (0, 95, 135, 175, 215, 255)
    index -= 16
    return (steps[index // 36], steps[index // 6 % 6], steps[index % 6])


def _colours(screen_with_escapes: str) -> set[tuple[int, int, int]]:
    """Every colour in the SGR sequences of the screen, as RGB."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen_with_escapes):
        numbers = [int(n) for n in params.split(";") if n]
        index = 0
        while index < len(numbers):
            number = numbers[index]
            if number in (38, 48) and index + 1 < len(numbers):
                if numbers[index + 1] == 2:
                    found.add(tuple(numbers[index + 2:index + 5]))
                    index += 5
                    continue
                if numbers[index + 1] == 5:
                    found.add(_rgb_of_256(numbers[index + 2]))
                    index += 3
                    continue
            elif 30 <= number <= 37 or 40 <= number <= 47:
                found.add(_rgb_of_256(number % 10))
            elif 90 <= number <= 97 or 100 <= number <= 107:
                found.add(_rgb_of_256(number % 10 + 8))
            index += 1
    return found


def test_no_color_draws_only_greys(terminals, tmp_path: Path) -> None:
    colour = _start(tmp_path / "a", extra_env={})
    plain = _start(tmp_path / "b", extra_env={"NO_COLOR": "1"})
    terminals.extend([colour, plain])
    colour.wait_for("host up")
    plain.wait_for("host up")
    assert any(r != g or g != b for r, g, b in _colours(colour.screen(escapes=True)))
    assert all(r == g == b for r, g, b in _colours(plain.screen(escapes=True)))


def test_a_broken_config_file_is_reported_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("refresh_interval: 0.1s\ntheme: purple\n")
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    result = subprocess.run([str(CONSOLE), "--config", str(config)], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert f"{config}:1:" in result.stderr and f"{config}:2:" in result.stderr
    assert "Traceback" not in result.stderr


def _row_of(screen: str, name: str) -> str:
    return next((line for line in screen.splitlines() if f" {name} " in f" {line} "), "")


def test_a_changed_row_is_repainted_in_the_terminal(terminals, tmp_path: Path, docker_client, test_image,
                                                    test_labels, run_id) -> None:
    """The table repaints only the lines of the rows that changed: the terminal must show the
    new state of the one container that changed, while its neighbours stay as they were."""
    names = [f"{run_id}-paint-{index}" for index in range(3)]
    containers = [docker_client.containers.run(test_image, ["sleep", "600"], name=name, labels=test_labels,
                                               detach=True, init=True) for name in names]
    try:
        terminal = _start(tmp_path, docker_endpoint=os.environ["DOCKER_HOST"])
        terminals.append(terminal)
        terminal.wait_for("host up")
        terminal.keys("2")
        terminal.wait_for(*names[-1:])
        containers[1].pause()
        screen = _wait_for_row(terminal, names[1], "paused")
        assert "running" in _row_of(screen, names[0]) and "running" in _row_of(screen, names[2])
        containers[1].unpause()
        screen = _wait_for_row(terminal, names[1], "running")
        assert "paused" not in screen
        terminal.keys("q")
        assert _exit_status(terminal) == 0
    finally:
        for container in containers:
            container.remove(force=True)


def _wait_for_row(terminal: Terminal, name: str, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = terminal.screen()
        if text in _row_of(screen, name):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{name}'s row never showed {text!r}; the screen shows:\n{terminal.screen()}")
