"""Scale benchmark: 1,000 containers across 4 Docker engines.

The engines are the test engine ($DOCKER_HOST) and `--extra-engines` (3) dockerds this benchmark
starts for itself (tests/fixtures/engines.py: each with its own socket, data-root, exec-root and
pidfile under /tmp, a bridge rtmbrN on a free 172.30.N.0/24, iptables left alone), given the
test image by `docker save | docker load`. `--per-engine` (250) containers of the test image
running `sleep 3600` are started on each, labelled rtm.bench.scale=<run>. The extra engines are
stopped and removed, and the containers on the test engine removed, at the end, also on a
failure, Ctrl-C or SIGTERM.

First, in this process and without engines, the cost per container of one exporter scrape
and of the Containers pane taking one engine's poll (4 backends of made-up containers, 250 to
2,000 in all): a figure that stays flat per container shows that nothing grows faster than the
number of containers.

Then, once every container runs, measured in turn (never two at once):
1. `rtm-console exporter` (headless; its configuration lists the 4 engines, libvirt and AWS
   off): after the first poll of every engine and `--warmup-seconds`, idle CPU of its process
   tree over `--idle-seconds` at the default 2 s refresh, RSS at the end, then `--scrapes`
   sequential scrapes (median, p99, series, CPU per scrape), then `--spaced-scrapes` 2.5 s
   apart (every engine polled again before each, as at Prometheus' usual interval), and RSS.
2. `rtm-console agent` the same way (an empty specs folder: the exporter plus the control
   loops and the local functions runtime).
3. `rtm-console` in tmux (120x40) on the Containers pane: first content, idle CPU and RSS of
   its process tree.
4. References in the same run: the docker CLI asked what the console shows, engine after
   engine (`docker ps` and `docker stats --no-stream`: wall time, the CLI's CPU, and how many
   containers it listed), what a 2 s refresh with it would cost; glances 4.5.8 (one engine
   only: it reads $DOCKER_HOST, the test engine with its 250) in tmux the same way as the
   console (`--skip-glances` leaves it out).
The engines' own CPU (dockerd + containerd of the 4 engines; the test engine also serves other
work) is reported beside each idle window.

Usage (from the repository root, as root, services up; the full run takes 10-15 minutes and
about 2 GiB of memory for the containers' shims):
    .venv/bin/python bench/scale_1000_bench.py [--per-engine 250] [--extra-engines 3]
        [--idle-seconds 30] [--warmup-seconds 10] [--scrapes 200] [--spaced-scrapes 10] [--cli-rounds 3] [--skip-glances]
        [--skip-console] [--skip-synthetic] [--synthetic-only]

Reported, not judged: the exit status is 1 only when something could not be measured.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from console_bench import cpu_seconds as tree_cpu_seconds
from docker_stats_bench import DOCKER_CLI, engine_processes
from docker_stats_bench import cpu_seconds as processes_cpu_seconds
from exporter_bench import (
    free_port,
    measure_interleaved,
    scrape_once,
    wait_answering,
    wait_for_series,
)
from fixtures.engines import free_bridge_cidr, private_dockerd
from glances_side_by_side import GLANCES_VERSION, Tool, glances_command, tree_rss

LABEL = "rtm.bench.scale"
IMAGE = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")
# The private engines' bridges: a range neither the test services (172.29/16), the tests' own
# engines (172.31.N/24) nor the swarm (10.231.N/24) use.
BRIDGE_PREFIX = "172.30"
MAX_PER_PRIVATE_ENGINE = 250  # a /24 bridge has 253 addresses for containers
RSS_MIB = 2**20
SPACED_GAP = 2.5  # seconds between spaced scrapes: longer than the default 2 s refresh


# ----------------------------------------------------------------------------------- engines


@contextlib.contextmanager
def engines(extra: int) -> Iterator[list[tuple[str, str]]]:
    """(name, address) of the test engine and of `extra` private engines, stopped at the end."""
    with contextlib.ExitStack() as stack:
        found = [("test", os.environ["DOCKER_HOST"])]
        for number in range(1, extra + 1):
            engine = stack.enter_context(private_dockerd(bridge_cidr=free_bridge_cidr(BRIDGE_PREFIX), images=[IMAGE]))
            found.append((f"scale{number}", engine.host))
            print(f"engine scale{number}: {engine.host}", flush=True)
        yield found


@contextlib.contextmanager
def containers(hosts: list[tuple[str, str]], per_engine: int, run: str) -> Iterator[int]:
    """`per_engine` sleeping containers on each engine; yields how many run in all."""
    import docker

    clients = {name: docker.DockerClient(base_url=host, timeout=300) for name, host in hosts}
    # rtm.test.pid: the test suite's clean-up leaves them alone while this process lives.
    labels = {LABEL: run, "rtm.test": "1", "rtm.test.pid": str(os.getpid())}

    def start(job: tuple[str, int]) -> None:
        engine, index = job
        clients[engine].containers.run(IMAGE, ["sleep", "3600"], name=f"rtm-scale-{run}-{engine}-{index}", detach=True,
                                       labels=labels)

    def remove(engine: str) -> None:
        mine = clients[engine].containers.list(all=True, filters={"label": f"{LABEL}={run}"})
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda container: container.remove(force=True), mine))

    try:
        began, used_before = time.monotonic(), psutil.virtual_memory().used
        jobs = [(engine, index) for index in range(per_engine) for engine in clients]  # the engines in step
        with ThreadPoolExecutor(max_workers=2 * len(clients)) as pool:
            list(pool.map(start, jobs))
        running = sum(len(client.containers.list(filters={"label": f"{LABEL}={run}"})) for client in clients.values())
        grown = (psutil.virtual_memory().used - used_before) / 2**30
        print(f"{running} containers running after {time.monotonic() - began:.0f} s; the machine's memory in use grew "
              f"by {grown:.2f} GiB", flush=True)
        yield running
    finally:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            list(pool.map(remove, clients))
        for client in clients.values():
            client.close()


def engines_cpu(hosts: list[tuple[str, str]]) -> list[psutil.Process]:
    return [process for _, host in hosts for process in engine_processes(host)]


# ------------------------------------------------------------------------------ rtm-console


def write_home(work: Path, hosts: list[tuple[str, str]], name: str) -> tuple[Path, Path]:
    """A home folder and a configuration naming the 4 engines (libvirt off); returns both."""
    home = work / name
    (home / "specs").mkdir(parents=True)
    endpoints = "".join(f"    - {{name: {engine}, host: \"{host}\"}}\n" for engine, host in hosts)
    config = home / "config.yaml"
    config.write_text(f"docker:\n  endpoints:\n{endpoints}libvirt:\n  uris: []\nspecs_dir: {home / 'specs'}\n"
                      f"data_dir: {home / 'data'}\n")
    return home, config


def clean_environment(home: Path) -> dict[str, str]:
    """Only what a user's shell would give: no variable of the test setup (no DOCKER_HOST, no AWS)."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "TERM": "xterm-256color"}


def headless(command: str, work: Path, hosts: list[tuple[str, str]], run: str, expected: int, args) -> dict[str, float]:
    """`rtm-console COMMAND` serving on a free port: idle CPU, RSS and scrape latency."""
    home, config = write_home(work, hosts, command)
    port = free_port()
    argv = [str(ROOT / ".venv" / "bin" / "rtm-console"), "--config", str(config), command, "--listen", f"127.0.0.1:{port}"]
    with open(home / "stderr.log", "wb") as log:
        process = subprocess.Popen(argv, cwd=home, env=clean_environment(home), stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_answering(port, "/ready", timeout=300)
        wait_for_series(port, f'rtm_container_info{{container="rtm-scale-{run}-'.encode(), expected, timeout=300)
        time.sleep(args.warmup_seconds)
        tree, engine_list = psutil.Process(process.pid), engines_cpu(hosts)
        before, engines_before, began = tree_cpu_seconds(tree), processes_cpu_seconds(engine_list), time.monotonic()
        time.sleep(args.idle_seconds)
        elapsed = time.monotonic() - began
        idle = (tree_cpu_seconds(tree) - before) / elapsed
        engines_idle = (processes_cpu_seconds(engine_list) - engines_before) / elapsed
        rss = tree_rss(tree)
        (scrapes,) = measure_interleaved({command: (process.pid, port)}, args.scrapes)
        spaced = spaced_scrapes(port, args.spaced_scrapes, SPACED_GAP)
        return {"idle_cpu": idle, "engines_cpu": engines_idle, "rss": rss, "median_ms": scrapes.median_ms,
                "p99_ms": scrapes.p99_ms, "series": scrapes.series, "cpu_ms_per_scrape": scrapes.cpu_ms_per_scrape,
                "spaced_median_ms": 1000 * statistics.median(spaced), "spaced_max_ms": 1000 * max(spaced),
                "rss_after": tree_rss(tree)}
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        process.kill()  # nothing when it has exited
        process.wait(10)


def spaced_scrapes(port: int, count: int, gap: float) -> list[float]:
    """Wall seconds of `count` scrapes `gap` seconds apart: every engine was polled again
    since the last one, as with Prometheus' 15 s interval and the default 2 s refresh."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    try:
        for _ in range(count):
            time.sleep(gap)
            began = time.perf_counter()
            status, _ = scrape_once(connection)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"the exporter answered {status}")
    finally:
        connection.close()
    return latencies


def in_tmux(tool: Tool, hosts: list[tuple[str, str]], args) -> dict[str, float]:
    engine_list = engines_cpu(hosts)
    before, began = processes_cpu_seconds(engine_list), time.monotonic()
    result = tool.measure(args.warmup_seconds, args.idle_seconds)
    # The engines' CPU over the tool's whole run (start, warm-up and idle window).
    result["engines_cpu"] = (processes_cpu_seconds(engine_list) - before) / (time.monotonic() - began)
    return result


def console_tool(work: Path, hosts: list[tuple[str, str]]) -> Tool:
    home, config = write_home(work, hosts, "console")
    environment = " ".join(f"{key}={value}" for key, value in clean_environment(home).items())
    command = f"cd {home} && exec env -i {environment} {ROOT / '.venv' / 'bin' / 'rtm-console'} --config {config}"
    # Settled: every engine up in the header.
    settled = re.compile("".join(rf"(?=(?s:.*)docker@{engine} up)" for engine, _ in hosts))
    return Tool("rtm-console", command, re.compile(re.escape(socket.gethostname())), after_start="2", settled=settled)


def glances_tool(work: Path) -> Tool:
    home = work / "glances"
    home.mkdir()
    environment = " ".join(f"{key}={value}" for key, value in clean_environment(home).items())
    command = (f"cd {home} && exec env -i {environment} DOCKER_HOST={os.environ['DOCKER_HOST']} "
               f"{glances_command(GLANCES_VERSION)} -t 2 --disable-plugin sensors")
    return Tool("glances", command, re.compile(r"CPU\s.*\d+(\.\d+)?%"))


# -------------------------------------------------------------------------------- docker CLI


def docker_cli(hosts: list[tuple[str, str]], verb: list[str], rounds: int) -> dict[str, float]:
    """`docker -H HOST VERB` on each engine in turn, `rounds` times: median wall time of a
    round, the CLI's CPU per round, the engines' CPU per round, and the lines it printed."""
    engine_list = engines_cpu(hosts)
    walls, lines = [], 0
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    engines_before = processes_cpu_seconds(engine_list)
    for _ in range(rounds):
        began, lines = time.monotonic(), 0
        for _, host in hosts:
            out = subprocess.run([DOCKER_CLI, "-H", host, *verb], check=True, capture_output=True, text=True).stdout
            lines += sum(1 for line in out.splitlines() if line.strip())
        walls.append(time.monotonic() - began)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli_cpu = (children.ru_utime - children_before.ru_utime + children.ru_stime - children_before.ru_stime) / rounds
    return {"wall": statistics.median(walls), "cli_cpu": cli_cpu,
            "engines_cpu": (processes_cpu_seconds(engine_list) - engines_before) / rounds, "lines": lines}


# --------------------------------------------------------------------- cost per container


_FLEETS: dict[tuple[int, int], list[tuple]] = {}


def fleet_state(engines: int, per_engine: int, version: int, fresh: int = -1) -> object:
    """A poll state of `engines` container backends with `per_engine` containers each (console
    benchmark's made-up fleet); the records of backend `fresh` are new equal objects, as an
    engine's poll of unchanged containers gives."""
    import dataclasses

    from console_bench import Fleet
    from tui.fixtures.recorded import FROZEN_NOW

    from backends.base import Availability
    from backends.records import FrozenDict, KindSnapshot
    from console.poller import BackendState, PollState

    key = (engines, per_engine)
    if key not in _FLEETS:
        items = Fleet(engines * per_engine, 0.2).items
        _FLEETS[key] = [tuple(dataclasses.replace(c, engine=f"docker@e{engine}") for c in items[engine * per_engine:(engine + 1) * per_engine])
                        for engine in range(engines)]
    backends = {}
    for engine, records in enumerate(_FLEETS[key]):
        name = f"docker@e{engine}"
        mine = tuple(dataclasses.replace(c) for c in records) if engine == fresh else records
        backends[name] = BackendState(name=name, kind="containers", availability=Availability("docker", f"unix:///e{engine}", "connected"),
                                      snapshot=KindSnapshot("containers", name, mine, FROZEN_NOW, 0.0), polled_at=FROZEN_NOW,
                                      polls=version)
    return PollState(FrozenDict(backends), version)


def moved(state: object, step: int) -> object:
    """`state` polled again: new snapshots whose every container used more CPU and memory."""
    import dataclasses

    from backends.records import FrozenDict
    from console.poller import PollState

    backends = {}
    for name, backend in state.backends.items():
        items = tuple(dataclasses.replace(c, cpu_seconds_total=c.cpu_seconds_total + step,
                                          memory_working_set_bytes=c.memory_working_set_bytes + 4096 * step)
                      for c in backend.snapshot.items)
        backends[name] = dataclasses.replace(backend, snapshot=dataclasses.replace(backend.snapshot, items=items), polls=step)
    return PollState(FrozenDict(backends), state.version + step)


def scrape_costs(state: object, rounds: int = 5) -> tuple[float, float, float]:
    """CPU ms of one scrape of `state` (text format, no gzip): every family rendered afresh by
    prometheus_client (what /metrics did before it reused text); what /metrics does on the
    first scrape after every backend was polled again with every container's CPU and memory
    moved; and on a scrape with no poll since the last one. The best of `rounds` each."""
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

    from console.exporter.collector import RtmCollector
    from console.exporter.exposition import RtmRegistry

    current = [state]
    registry = RtmRegistry(RtmCollector(type("Source", (), {"latest": lambda self: current[0]})()))

    def cpu_ms(action) -> float:
        began = time.process_time()
        action()
        return 1000 * (time.process_time() - began)

    def serve() -> None:
        registry.exposition(generate_latest, CONTENT_TYPE_PLAIN_0_0_4)

    fresh = min(cpu_ms(lambda: generate_latest(registry)) for _ in range(rounds))
    serve()
    polled = []
    for step in range(1, rounds + 1):
        current[0] = moved(state, step)
        polled.append(cpu_ms(serve))
    unchanged = min(cpu_ms(serve) for _ in range(rounds))
    return fresh, min(polled), unchanged


def costs_per_container(engines: int, totals: tuple[int, ...]) -> list[tuple[int, tuple[float, float, float], float]]:
    """(containers, scrape_costs, CPU ms of the Containers pane taking one engine's poll) at
    each total, in this process: flat per container means no term grows faster."""
    import asyncio

    from tui.fixtures.recorded import RecordedSource, frozen_clock

    from console.cordons import CordonStore
    from console.gate import ActionGate
    from console.tui.app import RtmConsole
    from console.tui.console_services import ConsoleOptions, ConsoleServices

    async def pane_cost(total: int, data: Path) -> float:
        source = RecordedSource([fleet_state(engines, total // engines, 1)])
        services = ConsoleServices(source=source, gate=ActionGate("interactive", data / "audit.jsonl"), specs_dir=data / "specs",
                                   data_dir=data, cordons=CordonStore(data), clock=frozen_clock, poll_clock=frozen_clock)
        app = RtmConsole(services, ConsoleOptions(freeze_startup_objects=True))
        spent = []
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("2")
            await pilot.pause()
            for version in range(2, 12):
                state = fleet_state(engines, total // engines, version, fresh=version % engines)
                began = time.process_time()
                app.pane("containers").receive(state, visible=True)
                spent.append(time.process_time() - began)
                await pilot.pause()
        return statistics.median(spent)

    rows = []
    for total in totals:
        scrapes = scrape_costs(fleet_state(engines, total // engines, 1))
        with tempfile.TemporaryDirectory(prefix="rtm-scale-pane-") as data:
            pane = asyncio.run(pane_cost(total, Path(data)))
        rows.append((total, scrapes, 1000 * pane))
    return rows


# -------------------------------------------------------------------------------------- main


def report(results: dict[str, dict[str, float]], cli: dict[str, dict[str, float]], running: int, hosts: int) -> None:
    print(f"\n{running} containers on {hosts} engines; load average {os.getloadavg()[0]:.2f} at the end")
    print("\n| process | idle CPU % of a core | engines' CPU % | RSS MiB | scrape median ms | scrape p99 ms | "
          "CPU ms per scrape | series |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        scrape = (f"{result['median_ms']:.1f} | {result['p99_ms']:.1f} | {result['cpu_ms_per_scrape']:.1f} | "
                  f"{result['series']}" if "p99_ms" in result else " |  |  | ")
        print(f"| {name} | {result['idle_cpu'] * 100:.2f} | {result['engines_cpu'] * 100:.2f} | "
              f"{result['rss'] / RSS_MIB:.0f} | {scrape} |")
    print("\n| process | scrapes 2.5 s apart (every engine polled since): median ms | max ms | RSS MiB after the scrapes |")
    print("|---|---:|---:|---:|")
    for name, result in results.items():
        if "spaced_median_ms" in result:
            print(f"| {name} | {result['spaced_median_ms']:.1f} | {result['spaced_max_ms']:.1f} | {result['rss_after'] / RSS_MIB:.0f} |")
    for name, result in results.items():
        if "first_content" in result:
            print(f"{name}: first content {result['first_content']:.2f} s after launch")
    print("\n| docker CLI, engine after engine | wall s per round | CLI CPU s | engines' CPU s | lines | "
          "CPU % of a core at a 2 s refresh |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, result in cli.items():
        share = (result["cli_cpu"] + result["engines_cpu"]) / max(2.0, result["wall"])
        print(f"| {name} | {result['wall']:.2f} | {result['cli_cpu']:.2f} | {result['engines_cpu']:.2f} | "
              f"{result['lines']} | {share * 100:.0f} |")
    exporter, stats = results.get("rtm-console exporter"), cli.get("docker stats --no-stream")
    if exporter and stats:
        print(f"\nexporter p99 scrape / one `docker stats --no-stream` round: "
              f"{exporter['p99_ms'] / 1000 / stats['wall']:.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-engine", type=int, default=250)
    parser.add_argument("--extra-engines", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--spaced-scrapes", type=int, default=10, help="scrapes 2.5 s apart, after the back-to-back ones")
    parser.add_argument("--cli-rounds", type=int, default=3)
    parser.add_argument("--skip-glances", action="store_true")
    parser.add_argument("--skip-console", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true", help="leave out the cost per container in this process")
    parser.add_argument("--synthetic-only", action="store_true", help="only the cost per container (no engine is started)")
    args = parser.parse_args(argv)
    if not os.environ.get("DOCKER_HOST"):
        print("DOCKER_HOST is not set: start the services (make services-up) and source .services/env")
        return 2
    if args.per_engine > MAX_PER_PRIVATE_ENGINE:
        print(f"--per-engine is at most {MAX_PER_PRIVATE_ENGINE} (a private engine's bridge is a /24)")
        return 2
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the engines and containers are always removed.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.default_int_handler)

    if not args.skip_synthetic:
        print(f"\ncost per container, in this process ({args.extra_engines + 1} backends of made-up containers):")
        print("| containers | scrape CPU ms: all rendered afresh | after a poll | no poll since | per container µs after a poll | "
              "Containers pane, one engine's poll, CPU ms | per container µs |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for total, (fresh, polled, unchanged), pane in costs_per_container(args.extra_engines + 1, (250, 500, 1000, 2000)):
            print(f"| {total} | {fresh:.1f} | {polled:.1f} | {unchanged:.1f} | {polled * 1000 / total:.0f} | {pane:.1f} | "
                  f"{pane * 1000 / total:.1f} |", flush=True)
        if args.synthetic_only:
            return 0

    subprocess.run([sys.executable, "-m", "compileall", "-q", "console", "backends", "rtm", "themes"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    run = uuid.uuid4().hex[:6]
    results: dict[str, dict[str, float]] = {}
    cli: dict[str, dict[str, float]] = {}
    with engines(args.extra_engines) as hosts, containers(hosts, args.per_engine, run) as running, \
            tempfile.TemporaryDirectory(prefix="rtm-scale-") as folder:
        work = Path(folder)
        expected = args.per_engine * len(hosts)
        for command in ("exporter", "agent"):
            print(f"rtm-console {command} ...", flush=True)
            results[f"rtm-console {command}"] = headless(command, work, hosts, run, expected, args)
        if not args.skip_console:
            print("rtm-console in tmux ...", flush=True)
            results["rtm-console (tmux, Containers pane)"] = in_tmux(console_tool(work, hosts), hosts, args)
        if not args.skip_glances:
            print("glances in tmux (the test engine only) ...", flush=True)
            results[f"glances {GLANCES_VERSION} (tmux, one engine)"] = in_tmux(glances_tool(work), hosts, args)
        print("docker CLI ...", flush=True)
        cli["docker ps"] = docker_cli(hosts, ["ps", "-q"], args.cli_rounds)
        cli["docker stats --no-stream"] = docker_cli(hosts, ["stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}"],
                                                     args.cli_rounds)
    report(results, cli, running, len(hosts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
