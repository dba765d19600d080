"""Docker stats benchmark: live container statistics at 50 and 200 containers.

1. Cold start, 50 running containers (the test image running `sleep`): the time from a new
   DockerBackend (no connection, no cache) until every container has a CPU % and a memory
   figure, against `docker stats --no-stream` on the same engine in the same run (it also
   waits for two samples per container). Both are run `--rounds` times, alternating; medians
   are compared. Goal: at most a quarter of the CLI's time. The backend is also timed in a
   fresh Python process (interpreter start and imports included) for reference.
2. Steady state, 200 running containers: this process's CPU time (all threads,
   resource.getrusage) while it polls every 2 s for `--seconds`, after a warm-up poll.
   Goal: at most 1 % of one core. The engine's own CPU (dockerd and containerd, when they run
   on this machine) is reported too, and the same is measured with one stats stream per
   container (the remote-engine fallback) for comparison.

Every container made here carries the label rtm.bench=<run id> and is removed at the end,
also on failure or Ctrl-C.

Usage: python bench/docker_stats_bench.py [--host unix:///...] [--image rtm-busybox:1.0]
           [--cold 50] [--steady 200] [--seconds 30] [--interval 2] [--rounds 3] [--skip-stream]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.docker.backend import DockerBackend  # noqa: E402

GOAL_COLD_FRACTION = 0.25
GOAL_STEADY_PERCENT = 1.0
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"

FRESH_PROCESS = """
import sys, time
started = time.monotonic()
from backends.docker.backend import DockerBackend
backend = DockerBackend(sys.argv[1])
wanted = set(sys.argv[2].split(","))
while True:
    items = {c.id: c for c in backend.poll().items if c.id in wanted}
    if len(items) == len(wanted) and all(c.cpu_ratio is not None and c.memory_working_set_bytes > 0 for c in items.values()):
        break
print(time.monotonic() - started)
"""


def make_containers(client: docker.DockerClient, image: str, count: int, label: str, prefix: str) -> list[str]:
    def one(index: int) -> str:
        container = client.containers.run(image, ["sleep", "3600"], detach=True, name=f"{prefix}-{index}", labels={"rtm.bench": label})
        return container.id

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def remove_containers(client: docker.DockerClient, label: str) -> None:
    leftovers = client.containers.list(all=True, filters={"label": f"rtm.bench={label}"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: c.remove(force=True), leftovers))


def time_backend(host: str, wanted: set[str]) -> float:
    started = time.monotonic()
    backend = DockerBackend(host)
    try:
        while True:
            items = {c.id: c for c in backend.poll().items if c.id in wanted}
            if len(items) == len(wanted) and all(c.cpu_ratio is not None and c.memory_working_set_bytes > 0 for c in items.values()):
                return time.monotonic() - started
    finally:
        backend.close()


def time_fresh_process(host: str, wanted: set[str]) -> float:
    root = Path(__file__).resolve().parent.parent
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", FRESH_PROCESS, host, ",".join(wanted)], cwd=root, check=True, capture_output=True)
    return time.monotonic() - started


def time_cli(host: str, wanted: set[str]) -> float:
    started = time.monotonic()
    out = subprocess.run([DOCKER_CLI, "-H", host, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.CPUPerc}} {{.MemUsage}}"],
                         check=True, capture_output=True, text=True).stdout
    elapsed = time.monotonic() - started
    seen = {line.split()[0] for line in out.splitlines() if line.strip()}
    if not wanted <= seen:
        raise SystemExit(f"docker stats missed {len(wanted - seen)} containers")
    return elapsed


def engine_processes(host: str) -> list[psutil.Process]:
    """dockerd serving `host` and its containerd, when they run on this machine."""
    socket_path = host.removeprefix("unix://")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or ())
        if process.pid != os.getpid() and socket_path and socket_path in cmdline and "dockerd" in cmdline:
            found.append(process)
            found.extend(child for child in process.children() if "containerd" in child.name() and "shim" not in child.name())
    return found


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def steady_state(host: str, mode: str, seconds: float, interval: float, count: int, label: str) -> dict[str, float]:
    backend = DockerBackend(host, stats=mode)
    engine = engine_processes(host)
    try:
        first = backend.poll()
        if len(first.items) < count:
            raise SystemExit(f"expected at least {count} containers, the engine has {len(first.items)}")
        deadline = time.monotonic() + 60  # streams need two frames each before the measurement
        while any(c.state == "running" and c.cpu_ratio is None for c in backend.poll().items) and time.monotonic() < deadline:
            time.sleep(interval)
        polls: list[float] = []
        incomplete = 0  # polls in which a running benchmark container had no CPU figure
        usage = resource.getrusage(resource.RUSAGE_SELF)
        own_before = usage.ru_utime + usage.ru_stime
        engine_before = cpu_seconds(engine)
        started = time.monotonic()
        next_poll = started
        while time.monotonic() - started < seconds:
            next_poll += interval
            poll_started = time.monotonic()
            snapshot = backend.poll()
            polls.append(time.monotonic() - poll_started)
            incomplete += any(c.state == "running" and c.cpu_ratio is None and c.labels.get("rtm.bench") == label for c in snapshot.items)
            time.sleep(max(0.0, next_poll - time.monotonic()))
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        own = usage.ru_utime + usage.ru_stime - own_before
        return {
            "percent_of_core": 100 * own / wall,
            "engine_percent_of_core": 100 * (cpu_seconds(engine) - engine_before) / wall if engine else float("nan"),
            "poll_ms_median": 1000 * statistics.median(polls),
            "polls": len(polls),
            "incomplete": incomplete,
            "running": sum(1 for c in snapshot.items if c.state == "running"),
            "wall": wall,
        }
    finally:
        backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    parser.add_argument("--image", default=os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0"))
    parser.add_argument("--cold", type=int, default=50)
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-stream", action="store_true", help="leave out the steady-state run with one stream per container")
    args = parser.parse_args()

    client = docker.DockerClient(base_url=args.host, timeout=120)
    label = uuid.uuid4().hex[:8]
    status = 0
    try:
        print(f"engine {args.host}: {client.version()['Version']}, {os.cpu_count()} CPUs here")
        started = time.monotonic()
        cold_ids = set(make_containers(client, args.image, args.cold, label, f"bench-{label}"))
        print(f"\n1. cold start, {args.cold} running containers (made in {time.monotonic() - started:.1f} s)")
        time.sleep(2)
        ours, cli = [], []
        for _ in range(args.rounds):
            cli.append(time_cli(args.host, cold_ids))
            ours.append(time_backend(args.host, cold_ids))
        fresh = time_fresh_process(args.host, cold_ids)
        ratio = statistics.median(ours) / statistics.median(cli)
        print(f"   docker stats --no-stream:   median {statistics.median(cli):.3f} s  (runs: {', '.join(f'{t:.3f}' for t in cli)})")
        print(f"   DockerBackend, cold:        median {statistics.median(ours):.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours)})")
        print(f"   same, in a fresh process:   {fresh:.3f} s  (interpreter start and imports included)")
        verdict = "met" if ratio <= GOAL_COLD_FRACTION else "MISSED"
        print(f"   ratio {ratio:.2f} of the CLI's time; goal <= {GOAL_COLD_FRACTION}: {verdict}")
        status |= ratio > GOAL_COLD_FRACTION

        started = time.monotonic()
        make_containers(client, args.image, args.steady - args.cold, label, f"bench-{label}-more")
        print(f"\n2. steady state, {args.steady} running containers, a poll every {args.interval:g} s for {args.seconds:g} s "
              f"(made in {time.monotonic() - started:.1f} s)")
        for mode in ("cgroup",) if args.skip_stream else ("cgroup", "stream"):
            result = steady_state(args.host, mode, args.seconds, args.interval, args.steady, label)
            note = ""
            if mode == "cgroup":
                verdict = "met" if result["percent_of_core"] <= GOAL_STEADY_PERCENT else "MISSED"
                note = f"; goal <= {GOAL_STEADY_PERCENT} %: {verdict}"
                status |= result["percent_of_core"] > GOAL_STEADY_PERCENT
            print(f"   {mode:>6}: this process {result['percent_of_core']:.2f} % of one core{note}; "
                  f"engine {result['engine_percent_of_core']:.1f} %; poll median {result['poll_ms_median']:.1f} ms over {result['polls']} polls "
                  f"of {result['running']} running containers"
                  + (f", {result['incomplete']} with a container lacking CPU %" if result["incomplete"] else ""))
    finally:
        remove_containers(client, label)
        client.close()
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
