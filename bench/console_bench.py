"""Console benchmark: a 5,000-row table refresh, and the whole console's first paint, memory
and idle CPU with real backends.

1. Table refresh (in this process, textual headless at 160x48): the Containers pane shows
   5,000 containers; then a poll in which 20 % of them changed (CPU and memory) arrives. Timed:
   building the rows, comparing with the screen and updating the changed cells (`apply`, what
   the event loop spends before it can repaint), and one full repaint of the screen after it.
   Goal: apply under 100 ms. Median and worst of `--rounds` refreshes, a different fifth of the
   containers changing each time.
2. The console (`rtm-console` in tmux, 120x40): with `--containers` BusyBox containers started
   on $DOCKER_HOST (labelled rtm.bench.console, removed at the end), `--vms` small BIOS guests
   started on $LIBVIRT_DEFAULT_URI through the project's VM handler (deleted at the end; with
   `--vms 0` or no URI, `--sandbox` and libvirt's test driver), `--functions` functions stored
   in the local runtime, and the host; the project's modules are byte-compiled first, as a
   regular install has them. Timed
   from launch: first paint (the header on screen) and first data (this host's row). Then, on
   the Containers pane at the default 2 s refresh: resident memory, and CPU over `--idle-seconds`
   (the console's process, all threads, plus its child processes).
   Goals: first paint under 1 s, RSS under 100 MB, idle CPU at most 3 % of one core.

Usage (from the repository root):
    .venv/bin/python bench/console_bench.py [--rows 5000] [--changed 0.2] [--rounds 10]
        [--containers 200] [--vms 10] [--functions 50] [--idle-seconds 30] [--skip-table] [--skip-console]

The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

GOAL_APPLY_SECONDS = 0.100
GOAL_FIRST_PAINT_SECONDS = 1.0
GOAL_RSS_BYTES = 100 * 1024 * 1024
GOAL_IDLE_CPU = 0.03
BENCH_LABEL = "rtm.bench.console"


# ------------------------------------------------------------------------------ 1. table


class Fleet:
    """`count` containers; each `change()` replaces a different `share` of them with a copy
    whose CPU and memory moved (the rest are the same objects, as a poll of unchanged
    containers gives equal records)."""

    def __init__(self, count: int, share: float) -> None:
        from backends.records import ContainerInfo
        from tui.fixtures.recorded import FROZEN_NOW

        self.count, self.window, self.generation = count, max(1, int(count * share)), 0
        self.items = [
            ContainerInfo(
                id=f"{index:012x}", name=f"app-{index:05d}", workload=f"app{index % 40}", replica=index // 40,
                engine="docker@bench", state="running", health="healthy" if index % 7 else None,
                image="rtm-busybox:1.0", ports=(f"{8000 + index % 1000}->80/tcp",),
                started_at=FROZEN_NOW - 3600 - index, cpu_ratio=(index * 37 % 100) / 100,
                cpu_seconds_total=float(index), memory_working_set_bytes=(1 + index % 64) * 1024 * 1024,
                memory_limit_bytes=128 * 1024 * 1024, restarts=0, net_rx_bytes=index * 100,
                net_tx_bytes=index * 50, net_rx_packets=index, net_tx_packets=index,
                block_read_bytes=0, block_write_bytes=0,
            )
            for index in range(count)
        ]

    def change(self) -> tuple[Any, ...]:
        self.generation += 1
        start = (self.generation * self.window) % self.count
        for offset in range(self.window):
            index = (start + offset) % self.count
            item = self.items[index]
            self.items[index] = dataclasses.replace(
                item,
                cpu_ratio=((item.cpu_ratio or 0) + 0.13) % 1,
                memory_working_set_bytes=item.memory_working_set_bytes + 1024 * 1024,
            )
        return tuple(self.items)


def poll_state(items: tuple[Any, ...], version: int) -> Any:
    from backends.base import Availability
    from backends.records import FrozenDict, KindSnapshot
    from console.poller import BackendState, PollState
    from tui.fixtures.recorded import FROZEN_NOW

    state = BackendState(
        name="docker@bench", kind="containers",
        availability=Availability("docker", "unix:///bench.sock", "connected"),
        snapshot=KindSnapshot("containers", "docker@bench", items, FROZEN_NOW, 0.0),
        polled_at=FROZEN_NOW, polls=version,
    )
    return PollState(FrozenDict({"docker@bench": state}), version)


async def table_refresh(rows: int, changed_share: float, rounds: int) -> dict[str, Any]:
    from console.cordons import CordonStore
    from console.gate import ActionGate
    from console.tui.app import RtmConsole
    from console.tui.console_services import ConsoleOptions, ConsoleServices
    from tui.fixtures.recorded import RecordedSource, frozen_clock

    data = Path(tempfile.mkdtemp(prefix="rtm-bench-"))
    fleet = Fleet(rows, changed_share)
    source = RecordedSource([poll_state(tuple(fleet.items), 1)])
    services = ConsoleServices(source=source, gate=ActionGate("interactive", data / "audit.jsonl"),
                               specs_dir=data / "specs", data_dir=data, cordons=CordonStore(data),
                               clock=frozen_clock, poll_clock=frozen_clock)
    app = RtmConsole(services, ConsoleOptions(freeze_startup_objects=True))  # as rtm-console runs
    applies, repaints, cells = [], [], []
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.pane("containers")
        began = time.perf_counter()
        await pilot.press("2")
        await pilot.pause()
        first_load = time.perf_counter() - began
        assert len(pane.table.rows_shown) == rows, "the first load did not show every row"
        for generation in range(1, rounds + 1):
            state = poll_state(fleet.change(), generation + 1)
            began = time.perf_counter()
            pane.receive(state, visible=True)  # rows, diff, changed cells: the event loop's work
            applies.append(time.perf_counter() - began)
            if os.environ.get("RTM_BENCH_VERBOSE"): print(f"  round {generation}: {applies[-1] * 1000:.1f} ms")
            cells.append(pane.table.last_diff.changed_cells)
            began = time.perf_counter()
            app.screen._compositor.render_update(full=True)  # one full repaint after it
            repaints.append(time.perf_counter() - began)
            await pilot.pause()
    shutil.rmtree(data, ignore_errors=True)
    return {
        "rows": rows,
        "changed_rows": int(rows * changed_share),
        "changed_cells_median": statistics.median(cells),
        "first_load_seconds": first_load,
        "apply_median_seconds": statistics.median(applies),
        "apply_max_seconds": max(applies),
        "repaint_median_seconds": statistics.median(repaints),
        "rounds": rounds,
    }


# ------------------------------------------------------------------------------ 2. the console


def start_containers(count: int, run: str) -> tuple[Any, str, int]:
    """Start `count` sleeping BusyBox containers; returns (client, host, containers on the engine)."""
    import docker

    host = os.environ.get("DOCKER_HOST", "")
    if not host or count <= 0:
        return None, host, 0
    client = docker.DockerClient(base_url=host, timeout=120)
    image = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")
    for index in range(count):
        client.containers.run(image, ["sleep", "3600"], name=f"bench-console-{run}-{index}", detach=True,
                              # rtm.test.pid: the test suite's clean-up leaves them while this process lives
                              init=True, labels={BENCH_LABEL: run, "rtm.test": "1", "rtm.test.pid": str(os.getpid())})
    return client, host, len(client.containers.list())


def remove_containers(client: Any, run: str) -> None:
    if client is None:
        return
    for container in client.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={run}"}):
        container.remove(force=True)
    client.close()


# Each guest: one vCPU, 64 MiB, BIOS, no disk and no network: it sits in the firmware with
# nothing to boot, which is all the console needs to list, poll and chart it.
BENCH_VM_SPEC = """\
name: {name}
VirtualMachineRuntime:
  name: {name}
  hypervisor: kvm
  cpu: {{cores: 1, model: host-passthrough}}
  memory: {{size: 64Mi, balloon: true}}
  network: {{type: none}}
  security: {{secure_boot: false, tpm: false}}
"""


def start_vms(count: int, run: str) -> tuple[Any, list[str], str]:
    """Define and start `count` small BIOS guests on $LIBVIRT_DEFAULT_URI with the project's VM
    handler (KVM, or QEMU's TCG where KVM is not usable, as `apply` chooses); returns (handler,
    names, URI). No URI or no libvirt binding: no guests, and the console uses the sandbox."""
    uri = os.environ.get("LIBVIRT_DEFAULT_URI", "")
    if not uri or count <= 0:
        return None, [], ""
    from backends.libvirt import LibvirtBackend, LibvirtVmHandler
    from rtm.documents import load_text

    handler = LibvirtVmHandler([LibvirtBackend(uri, shutdown_timeout=1.0)])
    names = []
    try:
        for index in range(count):
            name = f"rtm-bench-{run}-vm{index:02d}"
            document = load_text(BENCH_VM_SPEC.format(name=name)).documents[0]
            handler.apply(document, ROOT, handler.plan(document, ROOT), progress=lambda line: None)
            names.append(name)
    except Exception:
        remove_vms(handler, names)
        raise
    return handler, names, uri


def guest_processes(names: list[str]) -> list[Any]:
    """The QEMU processes of the guests `names` (their CPU is the machine's, not the console's)."""
    import psutil

    wanted = set(names)
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if "qemu" not in (process.info["name"] or ""):
            continue
        # QEMU is started with `-name guest=NAME,debug-threads=on`
        guests = {arg.removeprefix("guest=").split(",")[0] for arg in process.info["cmdline"] or () if arg.startswith("guest=")}
        if guests & wanted:
            found.append(process)
    return found


def remove_vms(handler: Any, names: list[str]) -> None:
    for name in names:
        handler.delete(name, with_disk=True)


def store_functions(data_dir: Path, count: int) -> None:
    """`count` functions in the local runtime's store (the sample function under new names)."""
    from backends.localfn import make_local_backends
    from console.config import load_config
    from rtm.documents import load_text

    config = load_config({"data_dir": str(data_dir)}, env={"HOME": str(data_dir)})
    _, handlers = make_local_backends(config)
    handler = handlers["function"]
    base = ROOT / "sample-specs"
    for index in range(count):
        text = (base / "serverless-runtime.yaml").read_text().replace('name: "hello"', f'name: "bench-fn-{index:03d}"')
        text = text.replace('path: "/api/function"', f'path: "/api/bench-{index:03d}"')
        for document in load_text(text, str(base / "bench.yaml")).documents:
            handler.apply(document, base, handler.plan(document, base), progress=lambda line: None)


class Terminal:
    def __init__(self, name: str) -> None:
        self.name = name

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float, step: float = 0.01) -> float:
        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            if text in self.screen():
                return time.perf_counter()
            time.sleep(step)
        raise RuntimeError(f"{text!r} did not appear within {timeout:g} s:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.2)

    def pid(self) -> int:
        out = subprocess.run(["tmux", "list-panes", "-t", self.name, "-F", "#{pane_pid}"], capture_output=True, text=True)
        return int(out.stdout.split()[0])


# A yardstick measured in the same idle window: one Python thread waking 10 times a second and
# doing nothing else (as textual's input thread does). What it costs says how expensive a
# wake-up is on the machine at that moment; on a shared VM it moves as much as the console does.
YARDSTICK = """
import selectors, sys, threading, time
selector = selectors.DefaultSelector()
def loop():
    while True:
        selector.select(0.1)
threading.Thread(target=loop, daemon=True).start()
time.sleep(float(sys.argv[1]))
"""


def cpu_seconds(process: Any) -> float:
    import psutil

    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def console_run(container_count: int, function_count: int, vm_count: int, idle_seconds: float, extra_args: str = "",
                pane: str = "2") -> dict[str, Any]:
    import psutil

    # Measure the console as a regular install leaves it, its modules byte-compiled (`make bench`
    # does this too; an editable install where PYTHONDONTWRITEBYTECODE is set would otherwise
    # compile them on every start).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "console", "backends", "rtm", "themes"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    run = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="rtm-bench-console-"))
    data = work / "data"
    data.mkdir()
    client = None
    name = f"rtm-bench-{run}"
    result: dict[str, Any] = {}
    vm_handler, vms = None, []
    try:
        # The guests first: their firmware has settled by the time the containers are up.
        vm_handler, vms, libvirt_uri = start_vms(vm_count, run)
        client, host, on_engine = start_containers(container_count, run)
        created_at = time.monotonic()
        store_functions(data, function_count)
        config = work / "config.yaml"
        docker_line = f"docker:\n  endpoints: [{host}]\n" if host else ""
        libvirt_line = f"libvirt:\n  uris: [{libvirt_uri}]\n" if vms else ""
        config.write_text(f"refresh_interval: 2s\nspecs_dir: {work / 'specs'}\ndata_dir: {data}\n{docker_line}{libvirt_line}"
                          "functions:\n  target: local\n  gateway_listen: 127.0.0.1:0\n")
        console = ROOT / ".venv" / "bin" / "rtm-console"
        sandbox = "" if vms else "--sandbox"  # real guests, or libvirt's test driver
        command = f"cd {ROOT} && HOME={work} TERM=xterm-256color exec {console} --config {config} {sandbox} {extra_args}"
        launched = time.perf_counter()
        subprocess.run(["tmux", "new", "-d", "-s", name, "-x", "120", "-y", "40", command], check=True)
        terminal = Terminal(name)
        first_paint = terminal.wait_for("rtm-console", 30) - launched
        import socket

        first_data = terminal.wait_for(socket.gethostname(), 60) - launched
        terminal.keys(pane)
        if host and pane == "2" and container_count:
            terminal.wait_for("bench-console-", 120)
        if vms and pane == "3":
            terminal.wait_for(vms[0], 60)
        process = psutil.Process(terminal.pid())
        time.sleep(10)  # settle: stats warm up, the first polls of every backend are done
        # An idle fleet: every container up for more than a minute, so uptimes are shown in
        # minutes (as in a steady state) rather than ticking every second.
        time.sleep(max(0.0, 70 - (time.monotonic() - created_at)))
        load_before = os.getloadavg()[0]
        yardstick = psutil.Popen([sys.executable, "-c", YARDSTICK, str(idle_seconds + 5)])
        time.sleep(0.5)  # its start-up is not part of the measure
        guests = guest_processes(vms)
        cpu_before, wall_before = cpu_seconds(process), time.monotonic()
        yardstick_before = cpu_seconds(yardstick)
        guests_before = sum(cpu_seconds(guest) for guest in guests)
        time.sleep(idle_seconds)
        elapsed = time.monotonic() - wall_before
        cpu = (cpu_seconds(process) - cpu_before) / elapsed
        yardstick_cpu = (cpu_seconds(yardstick) - yardstick_before) / elapsed
        guests_cpu = (sum(cpu_seconds(guest) for guest in guests) - guests_before) / elapsed
        yardstick.kill()
        yardstick.wait()
        memory = process.memory_info()
        children_rss = sum(c.memory_info().rss for c in process.children(recursive=True))
        screen = terminal.screen()
        terminal.keys("q")
        result = {
            "containers_started": container_count if host else 0,
            "containers_on_engine": on_engine,
            "functions": function_count,
            "vms": len(vms),
            "libvirt": libvirt_uri if vms else "test:///default (sandbox)",
            "docker_host": host or "(none: DOCKER_HOST not set)",
            "first_paint_seconds": first_paint,
            "first_data_seconds": first_data,
            "rss_bytes": memory.rss,
            "children_rss_bytes": children_rss,
            "idle_cpu_share_of_one_core": cpu,
            "yardstick_cpu_share_of_one_core": yardstick_cpu,
            "guests_cpu_share_of_one_core": guests_cpu,
            "idle_seconds": idle_seconds,
            "load_average_1m_before_idle": load_before,
            "header": screen.splitlines()[0].strip() if screen else "",
        }
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        remove_containers(client, run)
        if vm_handler is not None:
            remove_vms(vm_handler, vms)
        shutil.rmtree(work, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------ report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--changed", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--vms", type=int, default=10, help="small BIOS guests on $LIBVIRT_DEFAULT_URI (0: libvirt's test driver)")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-console", action="store_true")
    parser.add_argument("--console-args", default="", help="more rtm-console options, e.g. --kiosk")
    parser.add_argument("--pane", default="2", help="the pane shown while idle (1-6; default 2, Containers)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()

    missed = []
    results: dict[str, Any] = {}
    if not args.skip_table:
        table = asyncio.run(table_refresh(args.rows, args.changed, args.rounds))
        results["table"] = table
        print(f"table refresh: {table['rows']} rows, {table['changed_rows']} changed "
              f"({table['changed_cells_median']:.0f} cells): apply median {table['apply_median_seconds'] * 1000:.1f} ms, "
              f"worst {table['apply_max_seconds'] * 1000:.1f} ms; full repaint {table['repaint_median_seconds'] * 1000:.1f} ms; "
              f"first load {table['first_load_seconds'] * 1000:.0f} ms")
        if table["apply_max_seconds"] > GOAL_APPLY_SECONDS:
            missed.append("table refresh apply >= 100 ms")
    if not args.skip_console:
        if shutil.which("tmux") is None:
            print("console: tmux is not installed; skipped")
        else:
            run = console_run(args.containers, args.functions, args.vms, args.idle_seconds, args.console_args, args.pane)
            results["console"] = run
            print(f"console: {run['containers_on_engine']} containers on {run['docker_host']} "
                  f"({run['containers_started']} started for the run), {run['functions']} local functions, "
                  f"{run['vms']} VMs on {run['libvirt']}, this host")
            print(f"  first paint {run['first_paint_seconds']:.2f} s, first data {run['first_data_seconds']:.2f} s")
            print(f"  RSS {run['rss_bytes'] / 2**20:.1f} MiB (child processes {run['children_rss_bytes'] / 2**20:.1f} MiB)")
            print(f"  idle CPU {run['idle_cpu_share_of_one_core'] * 100:.2f} % of one core over {run['idle_seconds']:g} s "
                  f"(load average before: {run['load_average_1m_before_idle']:.2f}); yardstick (an idle thread "
                  f"waking 10 times a second) {run['yardstick_cpu_share_of_one_core'] * 100:.2f} %, ratio "
                  f"{run['idle_cpu_share_of_one_core'] / max(run['yardstick_cpu_share_of_one_core'], 1e-9):.1f}x")
            if run["vms"]:
                print(f"  the {run['vms']} guests' QEMU processes meanwhile: {run['guests_cpu_share_of_one_core'] * 100:.2f} % of one core")
            print(f"  header: {run['header']}")
            if run["first_paint_seconds"] >= GOAL_FIRST_PAINT_SECONDS:
                missed.append("first paint >= 1 s")
            if run["rss_bytes"] >= GOAL_RSS_BYTES:
                missed.append("RSS >= 100 MB")
            if run["idle_cpu_share_of_one_core"] > GOAL_IDLE_CPU:
                missed.append("idle CPU > 3 %")
    if args.json:
        print(json.dumps(results, indent=2, default=lambda o: dataclasses.asdict(o)))
    if missed:
        print("goals missed: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
