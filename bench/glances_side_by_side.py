"""rtm-console beside glances, on the same machine, the same engine and the same terminal size.

Both tools run in tmux at 120x40 against the Docker engine at $DOCKER_HOST, with `--containers`
BusyBox containers running on it (labelled rtm.bench.console, started by this benchmark, older
than a minute before any measure, removed at the end):

- glances, installed from PyPI into its own virtualenv by this benchmark (`.bench-venvs/`,
  version `--glances-version`), run as `glances -t 2 --disable-plugin sensors`; its main screen
  lists the containers;
- rtm-console as `make run` starts it: no configuration file, a fresh home folder, DOCKER_HOST at
  the test engine, its modules byte-compiled as a regular install has them; Containers pane.

Measured per tool and round, rounds alternating which tool goes first:
- first content: from launch to the first capture showing live data (glances' CPU line with a
  figure, rtm-console's row for this host);
- idle CPU of the whole process tree over `--idle-seconds` after a `--warmup-seconds` warm-up;
- RSS of the process tree at the end of the idle window.

Goals (issue "Performance, round two"): first content no later than glances', RSS at most
1.25x glances', idle CPU at most half of glances'. Compared on the medians; exit 1 when a goal
is missed.

Usage (from the repository root, services up):
    .venv/bin/python bench/glances_side_by_side.py [--rounds 3] [--containers 50]
        [--warmup-seconds 15] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console_bench import ROOT, Terminal, cpu_seconds, remove_containers, start_containers  # noqa: E402

GLANCES_VERSION = "4.5.8"
GOAL_FIRST_CONTENT_RATIO = 1.0
GOAL_RSS_RATIO = 1.25
GOAL_IDLE_CPU_RATIO = 0.5
SIZE = ("120", "40")
WITHOUT_LIBVIRT = "rtm-console without libvirt"


def glances_command(version: str) -> Path:
    """glances in its own virtualenv (with the Docker SDK its containers plugin needs)."""
    venv = ROOT / ".bench-venvs" / f"glances-{version}"
    glances = venv / "bin" / "glances"
    if not glances.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"glances[containers]=={version}"], check=True)
    return glances


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


class Tool:
    """One tool as launched in tmux: its command line, what its first live content looks like,
    and what its screen must show at the end of the idle window for the measure to count."""

    def __init__(self, name: str, command: str, first_content: re.Pattern[str], after_start: str = "",
                 settled: re.Pattern[str] | None = None) -> None:
        self.name, self.command, self.first_content, self.after_start = name, command, first_content, after_start
        self.settled = settled

    def measure(self, warmup: float, idle: float) -> dict[str, float]:
        session = f"rtm-sbs-{self.name}-{uuid.uuid4().hex[:6]}"
        launched = time.perf_counter()
        subprocess.run(["tmux", "new", "-d", "-s", session, "-x", SIZE[0], "-y", SIZE[1], self.command], check=True)
        terminal = Terminal(session)
        try:
            first_content = self._wait_for_content(terminal, launched)
            if self.after_start:
                terminal.keys(self.after_start)
            process = psutil.Process(terminal.pid())
            time.sleep(warmup)
            before, began = cpu_seconds(process), time.monotonic()
            time.sleep(idle)
            cpu = (cpu_seconds(process) - before) / (time.monotonic() - began)
            rss = tree_rss(process)
            screen = terminal.screen()
            if self.settled is not None and not self.settled.search(screen):
                raise RuntimeError(f"{self.name} did not have everything up at the end of the idle window:\n{screen}")
            return {"first_content": first_content, "idle_cpu": cpu, "rss": rss, "rows": _container_rows(screen)}
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            time.sleep(1)  # the tool's exit is not part of the next tool's measure

    def _wait_for_content(self, terminal: Terminal, launched: float, timeout: float = 60) -> float:
        while time.perf_counter() - launched < timeout:
            if self.first_content.search(terminal.screen()):
                return time.perf_counter() - launched
            time.sleep(0.01)
        raise RuntimeError(f"{self.name}: no live content within {timeout:g} s:\n{terminal.screen()}")


def _container_rows(screen: str) -> int:
    return len(re.findall(r"bench-console-", screen))


def tools(work: Path, glances: Path, without_libvirt: bool) -> list[Tool]:
    docker_host = os.environ.get("DOCKER_HOST", "")

    def environment(home: Path) -> str:
        # Only what a user's shell would give both tools: no variable of the test setup but the engine.
        home.mkdir(parents=True, exist_ok=True)
        return f"cd {home} && exec env -i PATH={os.environ['PATH']} HOME={home} TERM=xterm-256color DOCKER_HOST={docker_host}"

    console = ROOT / ".venv" / "bin" / "rtm-console"
    # The console's header once every part is up: Docker answering, loops and functions started.
    console_up = re.compile(r"docker@\S+ up(?s:.*)control\s+loops:\s+here")
    measured = [
        Tool("glances", f"{environment(work / 'glances')} {glances} -t 2 --disable-plugin sensors",
             re.compile(r"CPU\s.*\d+(\.\d+)?%")),
        Tool("rtm-console", f"{environment(work / 'console')} {console}", re.compile(re.escape(socket.gethostname())),
             after_start="2", settled=console_up),
    ]
    if without_libvirt:  # the same console with no libvirt host configured (libvirt's libraries not loaded)
        home = work / "console-without-libvirt"
        (home / ".config" / "rtm-console").mkdir(parents=True, exist_ok=True)
        (home / ".config" / "rtm-console" / "config.yaml").write_text("libvirt:\n  uris: []\n")
        measured.append(Tool(WITHOUT_LIBVIRT, f"{environment(home)} {console}", re.compile(re.escape(socket.gethostname())),
                             after_start="2", settled=console_up))
    return measured


def median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(result[key] for result in rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--warmup-seconds", type=float, default=15.0)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--glances-version", default=GLANCES_VERSION)
    parser.add_argument("--also-without-libvirt", action="store_true",
                        help="also measure the console with no libvirt host configured (reported, not judged)")
    args = parser.parse_args()
    if not os.environ.get("DOCKER_HOST"):
        print("DOCKER_HOST is not set: start the services (make services-up) and source .services/env")
        return 2

    glances = glances_command(args.glances_version)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "console", "backends", "rtm", "themes"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    run = uuid.uuid4().hex[:8]
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    client, host, on_engine = start_containers(args.containers, run)
    started = time.monotonic()
    results: dict[str, list[dict[str, float]]] = {"glances": [], "rtm-console": [], WITHOUT_LIBVIRT: []}
    try:
        time.sleep(max(0.0, 65 - (time.monotonic() - started)))  # every container older than a minute
        with tempfile.TemporaryDirectory(prefix="rtm-sbs-") as folder:
            for round_index in range(args.rounds):
                order = tools(Path(folder) / f"round-{round_index + 1}", glances, args.also_without_libvirt)
                if round_index % 2:
                    order.reverse()
                for tool in order:
                    result = tool.measure(args.warmup_seconds, args.idle_seconds)
                    results[tool.name].append(result)
                    rows = f", {result['rows']} container rows on screen" if tool.name != "glances" else ""
                    print(f"round {round_index + 1} {tool.name:12s} first content {result['first_content']:.2f} s, "
                          f"idle CPU {result['idle_cpu'] * 100:.2f} %, RSS {result['rss'] / 2**20:.1f} MiB{rows}", flush=True)
    finally:
        remove_containers(client, run)

    print(f"\n{on_engine} containers on {host}; tmux {SIZE[0]}x{SIZE[1]}; glances {args.glances_version}; "
          f"{args.rounds} rounds; idle over {args.idle_seconds:g} s after {args.warmup_seconds:g} s; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if results[WITHOUT_LIBVIRT]:
        print(f"{WITHOUT_LIBVIRT} (not judged): first content {median(results[WITHOUT_LIBVIRT], 'first_content'):.2f} s, "
              f"idle CPU {median(results[WITHOUT_LIBVIRT], 'idle_cpu') * 100:.2f} %, "
              f"RSS {median(results[WITHOUT_LIBVIRT], 'rss') / 2**20:.1f} MiB "
              f"(ratio {median(results[WITHOUT_LIBVIRT], 'rss') / median(results['glances'], 'rss'):.2f})")
    missed = []
    for key, label, goal, unit in (("first_content", "first content", GOAL_FIRST_CONTENT_RATIO, "s"),
                                   ("rss", "RSS of the process tree", GOAL_RSS_RATIO, "MiB"),
                                   ("idle_cpu", "idle CPU", GOAL_IDLE_CPU_RATIO, "%")):
        ours, theirs = median(results["rtm-console"], key), median(results["glances"], key)
        scale = {"s": 1, "MiB": 2**-20, "%": 100}[unit]
        ratio = ours / theirs if theirs else float("inf")
        verdict = "met" if ratio <= goal else "MISSED"
        print(f"{label:24s} rtm-console {ours * scale:7.2f} {unit:3s}  glances {theirs * scale:7.2f} {unit:3s}  "
              f"ratio {ratio:.2f} (goal <= {goal:g}): {verdict}")
        if ratio > goal:
            missed.append(label)
    if missed:
        print("goals missed: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
