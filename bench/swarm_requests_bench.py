"""Swarm requests benchmark: the Docker Engine API requests the control loops make on a swarm.

On the test swarm of `scripts/services.sh up` (a manager and two workers; the environment file
names them in RTM_TEST_SWARM_MANAGER and RTM_TEST_SWARM_WORKERS), a proxy in this process sits
in front of each engine's unix socket and counts every HTTP request line that goes through it
(keep-alive connections and request bodies followed; a connection upgraded for a stream is
counted once). One autoscaled workload of two sleeping tasks (min 2, max 3, the autoscaler's
evaluation every 15 s) is applied as a Swarm service under a unique name, and then:

1. `rtm-console agent` over the three engines, all three through the proxies, idle: after
   --warmup-seconds (default 40) its requests are counted for --seconds (default 60).
2. The reference, through the same proxies for the same duration: an operator watching the same
   facts with the docker CLI at the agent's 1 s cadence, `docker service ls`, `docker service
   ps SERVICE` and `docker node ls` against the manager, each once a second (three `watch -n 1`
   windows: three threads, a look skipped when the previous one is still running).

Printed per side: requests per minute by engine and by endpoint (method and path, ids replaced
by {id} and the query reduced to its parameter names), and the ratio agent / CLI watch. With
--rounds N both are measured N times, alternating which goes first; the medians are compared.
Goal: the agent costs the engines no more than the CLI watch (ratio <= 1), else exit status 1.

The workload is deleted at the end, also after a failure or Ctrl-C.

Usage: python bench/swarm_requests_bench.py [--warmup-seconds 40] [--seconds 60] [--rounds 1]
       [--image rtm-busybox:1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
RTM_CONSOLE = str(Path(sys.executable).with_name("rtm-console"))
DOCKER_CLI = shutil.which("docker") or "docker"
GOAL_RATIO = 1.0
CLI_WATCH = (("service", "ls"), ("service", "ps", "{service}"), ("node", "ls"))
# Path segments after which the next segment is an id or a name, not an endpoint of its own.
ID_COLLECTIONS = {"containers", "services", "tasks", "nodes", "networks", "volumes", "images",
                  "exec", "secrets", "configs", "plugins", "distribution"}
NOT_IDS = {"json", "create", "prune", "search", "load", "get", "pull", "privileges"}


# ----------------------------------------------------------------------------- counting proxies


def endpoint(method: str, target: str) -> str:
    """`GET /tasks?filters` for `GET /v1.41/tasks?filters=%7B...%7D`: no version, ids or query values."""
    path, _, query = target.partition("?")
    parts = path.split("/")
    if len(parts) > 1 and re.fullmatch(r"v[0-9.]+", parts[1]):
        del parts[1]
    for index in range(2, len(parts)):
        if parts[index - 1] in ID_COLLECTIONS and parts[index] not in NOT_IDS:
            parts[index] = "{id}"
    names = sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)})
    return f"{method} {'/'.join(parts)}" + (f"?{'&'.join(names)}" if names else "")


class RequestReader:
    """Finds the request heads in one client connection's bytes and reports each once."""

    def __init__(self, on_request: Callable[[str, str], None]) -> None:
        self.on_request = on_request
        self.buffer = b""
        self.body_left = 0
        self.chunked = False
        self.opaque = False  # upgraded to a raw stream (attach, exec): nothing more to count

    def feed(self, data: bytes) -> None:
        if self.opaque:
            return
        self.buffer += data
        while self._next():
            pass

    def _next(self) -> bool:
        """Consume one body or one head from the buffer; False when more bytes are needed."""
        if self.body_left:
            taken = min(self.body_left, len(self.buffer))
            self.buffer, self.body_left = self.buffer[taken:], self.body_left - taken
            return not self.body_left and bool(self.buffer)
        if self.chunked:
            return self._skip_chunk()
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4:]
        method, target = lines[0].split(" ")[:2]
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        self.on_request(method, target)
        if "upgrade" in headers.get("connection", "").lower():
            self.opaque = True
            return False
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self.body_left = int(headers.get("content-length") or 0)
        return bool(self.buffer)

    def _skip_chunk(self) -> bool:
        line_end = self.buffer.find(b"\r\n")
        if line_end < 0:
            return False
        size = int(self.buffer[:line_end].split(b";")[0], 16)
        if size == 0:  # the last chunk, then trailers up to an empty line
            end = self.buffer.find(b"\r\n\r\n", line_end)
            if end < 0:
                return False
            self.buffer, self.chunked = self.buffer[end + 4:], False
        else:
            if len(self.buffer) < line_end + 2 + size + 2:
                return False
            self.buffer = self.buffer[line_end + 2 + size + 2:]
        return bool(self.buffer)


class CountingProxies:
    """One unix-socket proxy per engine on an event loop of its own thread; counts while asked."""

    def __init__(self, folder: Path, engines: dict[str, str]) -> None:
        self.engines = engines  # name -> the engine's socket path
        self.sockets = {name: folder / f"{name}.sock" for name in engines}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.counting = False
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.servers: list[asyncio.AbstractServer] = []
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxies", daemon=True)

    def start(self) -> dict[str, str]:
        """Start the proxies; the DOCKER_HOST of each engine's proxy by name."""
        self.thread.start()
        for name, target in self.engines.items():
            self.servers.append(asyncio.run_coroutine_threadsafe(
                asyncio.start_unix_server(self._handler(name, target), path=str(self.sockets[name])), self.loop).result(10))
        return {name: f"unix://{path}" for name, path in self.sockets.items()}

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()

    async def _close(self) -> None:
        for server in self.servers:
            server.close()
        connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)

    def begin(self) -> None:
        with self.lock:
            self.counts.clear()
            self.counting = True

    def end(self) -> Counter[tuple[str, str]]:
        with self.lock:
            self.counting = False
            return Counter(self.counts)

    def _count(self, engine: str, method: str, target: str) -> None:
        with self.lock:
            if self.counting:
                self.counts[engine, endpoint(method, target)] += 1

    def _handler(self, name: str, target: str):
        async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
            try:
                engine_reader, engine_writer = await asyncio.open_unix_connection(target)
            except OSError:
                client_writer.close()
                return
            requests = RequestReader(lambda method, path: self._count(name, method, path))
            await asyncio.gather(pipe(client_reader, engine_writer, requests.feed), pipe(engine_reader, client_writer, None))
        return handle


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inspect: Callable[[bytes], None] | None) -> None:
    try:
        while data := await reader.read(65536):
            if inspect is not None:
                inspect(data)
            writer.write(data)
            await writer.drain()
    except (OSError, ValueError, IndexError):
        pass  # a peer went away, or bytes that are not HTTP: stop forwarding this connection
    finally:
        writer.close()


# ----------------------------------------------------------------------------- the two sides


def workload_spec(name: str, image: str) -> str:
    return json.dumps({
        "name": name, "replicas": 2,
        "AutoScalingPolicy": {"horizontal": {"min_replicas": 2, "max_replicas": 3, "target_cpu_utilization": 80}},
        "ContainerRuntime": {
            "base_image": image, "command": ["sleep", "3600"], "security": {"user": "1000:1000"},
            "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}, "requests": {"cpu": "50m", "memory": "16Mi"}}},
    }) + "\n"


def rtm_environment(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DOCKER_HOST", "RTM_DOCKER_ENDPOINTS")}
    env.update(RTM_DATA_DIR=str(folder / "data"), XDG_CONFIG_HOME=str(folder / "config"))
    return env


def measure_agent(proxies: CountingProxies, hosts: dict[str, str], folder: Path, warmup: float, seconds: float) -> Counter:
    command = [RTM_CONSOLE]
    for host in hosts.values():
        command += ["--docker-host", host]
    command += ["agent", "--specs", str(folder / "specs"), "--listen", "127.0.0.1:0"]
    with open(folder / "agent.log", "ab") as log:
        agent = subprocess.Popen(command, env=rtm_environment(folder), stdout=subprocess.DEVNULL, stderr=log)
    try:
        time.sleep(warmup)
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with status {agent.returncode} during the warm-up; see {folder / 'agent.log'}")
        proxies.begin()
        time.sleep(seconds)
        counts = proxies.end()
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with status {agent.returncode} while counted; see {folder / 'agent.log'}")
        return counts
    finally:
        stop_process(agent)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_cli_watch(proxies: CountingProxies, manager_host: str, service: str, folder: Path, seconds: float) -> tuple[Counter, Counter]:
    """Three `watch -n 1` loops of the docker CLI against the manager; (requests, looks per command)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "DOCKER_HOST": manager_host,
           "DOCKER_CONFIG": str(folder / "docker-config")}
    stop = threading.Event()
    looks: Counter[str] = Counter()
    failures: list[str] = []

    def watch(words: tuple[str, ...]) -> None:
        argv = [DOCKER_CLI, *(word.format(service=service) for word in words)]
        tick = time.monotonic()
        while not stop.is_set():
            result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
            if result.returncode:
                failures.append(f"{' '.join(argv)}: {result.stderr.strip()}")
                return
            if proxies.counting:
                looks[" ".join(words)] += 1
            tick += 1.0
            while tick < time.monotonic():  # the look took longer than a second: skip the missed tick
                tick += 1.0
            stop.wait(tick - time.monotonic())

    threads = [threading.Thread(target=watch, args=(words,), daemon=True) for words in CLI_WATCH]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)  # every watch has made its first look
        proxies.begin()
        time.sleep(seconds)
        counts = proxies.end()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    if failures:
        raise RuntimeError("the docker CLI failed: " + "; ".join(failures))
    return counts, looks


# ----------------------------------------------------------------------------- report


def per_minute(count: float, seconds: float) -> float:
    return count * 60.0 / seconds


def print_side(title: str, counts: Counter, engines: list[str], seconds: float) -> float:
    total = per_minute(sum(counts.values()), seconds)
    by_engine = Counter()
    for (engine, _), count in counts.items():
        by_engine[engine] += count
    print(f"\n{title}: {total:.0f} requests per minute")
    print("  by engine: " + ", ".join(f"{engine} {per_minute(by_engine[engine], seconds):.0f}" for engine in engines))
    rows = sorted({path for _, path in counts}, key=lambda path: -sum(counts[e, path] for e in engines))
    print(f"  {'per minute':>10}  " + "".join(f"{engine:>9}" for engine in engines) + "  endpoint")
    for path in rows:
        cells = "".join(f"{per_minute(counts[e, path], seconds):>9.0f}" for e in engines)
        print(f"  {per_minute(sum(counts[e, path] for e in engines), seconds):>10.0f}  {cells}  {path}")
    return total


def swarm_engines() -> dict[str, str]:
    """The test swarm's engines by name (manager, worker1, ...): their socket paths. Exits when absent."""
    manager = os.environ.get("RTM_TEST_SWARM_MANAGER", "")
    workers = [host for host in os.environ.get("RTM_TEST_SWARM_WORKERS", "").split(",") if host]
    if not manager or not workers:
        sys.exit("swarm_requests_bench: RTM_TEST_SWARM_MANAGER and RTM_TEST_SWARM_WORKERS are not set.\n"
                 "hint: start the test swarm (scripts/services.sh up, or up-swarm beside services already up) and load "
                 "its environment first: set -a; . .services/env; set +a")
    hosts = {"manager": manager, **{f"worker{index}": host for index, host in enumerate(workers, 1)}}
    for name, host in hosts.items():
        if not host.startswith("unix://"):
            sys.exit(f"swarm_requests_bench: the {name}'s engine {host} is not a unix socket; the proxies sit on unix sockets")
        if not Path(host.removeprefix("unix://")).exists():
            sys.exit(f"swarm_requests_bench: the {name}'s socket {host} does not exist.\nhint: is the test swarm up? scripts/services.sh status")
    return {name: host.removeprefix("unix://") for name, host in hosts.items()}


def delete_workload(name: str, manager_socket: str, folder: Path) -> None:
    """Delete through rtm-console; whatever is left (a failed delete) through the Docker API."""
    try:
        subprocess.run([RTM_CONSOLE, "--docker-host", f"unix://{manager_socket}", "delete", "--yes", f"workload/{name}"],
                       env=rtm_environment(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)
        with contextlib.closing(docker.DockerClient(base_url=f"unix://{manager_socket}", timeout=30)) as client:
            for service in client.services.list(filters={"label": f"rtm.workload={name}"}):
                service.remove()
    except (OSError, subprocess.TimeoutExpired, docker.errors.DockerException) as error:
        print(f"swarm_requests_bench: could not delete service {name}: {error}\n"
              f"hint: docker -H unix://{manager_socket} service rm {name}", file=sys.stderr)


def run(args: argparse.Namespace, engines: dict[str, str], folder: Path, name: str) -> int:
    (folder / "specs").mkdir()
    (folder / "specs" / f"{name}.yaml").write_text(workload_spec(name, args.image))
    applied = subprocess.run([RTM_CONSOLE, "--docker-host", f"unix://{engines['manager']}", "apply", "--yes",
                              str(folder / "specs" / f"{name}.yaml")], env=rtm_environment(folder), capture_output=True, text=True, check=False)
    if applied.returncode:
        raise RuntimeError(f"apply failed (exit {applied.returncode}): {applied.stdout}{applied.stderr}")
    proxies = CountingProxies(folder, engines)
    try:
        hosts = proxies.start()
        names = list(engines)
        agent_totals, cli_totals = [], []
        for round_number in range(1, args.rounds + 1):
            order = ("agent", "cli") if round_number % 2 else ("cli", "agent")
            for side in order:
                if side == "agent":
                    counts = measure_agent(proxies, hosts, folder, args.warmup_seconds, args.seconds)
                    agent_totals.append(print_side(f"round {round_number}, rtm-console agent over {len(names)} engines "
                                                   f"({args.seconds:g} s after {args.warmup_seconds:g} s of warm-up)",
                                                   counts, names, args.seconds))
                else:
                    counts, looks = measure_cli_watch(proxies, hosts["manager"], name, folder, args.seconds)
                    cli_totals.append(print_side(f"round {round_number}, docker CLI watch at 1 s ({args.seconds:g} s)",
                                                 counts, names, args.seconds))
                    print("  looks made: " + ", ".join(f"docker {words.replace('{service}', 'SERVICE')} {looks[words]}"
                                                       for words in (" ".join(w) for w in CLI_WATCH)))
    finally:
        proxies.stop()
    agent, cli = statistics.median(agent_totals), statistics.median(cli_totals)
    ratio = agent / cli if cli else float("inf")
    print(f"\nrequests per minute (median of {args.rounds}): agent {agent:.0f} (rounds: {', '.join(f'{t:.0f}' for t in agent_totals)}), "
          f"docker CLI watch {cli:.0f} (rounds: {', '.join(f'{t:.0f}' for t in cli_totals)})")
    met = ratio <= GOAL_RATIO
    print(f"ratio agent / CLI watch: {ratio:.2f} (goal <= {GOAL_RATIO:g}: {'met' if met else 'missed'})")
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup-seconds", type=float, default=40.0, help="agent's warm-up before counting (default 40)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each side is counted (default 60)")
    parser.add_argument("--rounds", type=int, default=1, help="measure both sides this many times, alternating (default 1)")
    parser.add_argument("--image", default=os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0"), help="the tasks' image")
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup_seconds < 0 or args.rounds < 1:
        parser.error("--seconds must be > 0, --warmup-seconds >= 0 and --rounds >= 1")
    engines = swarm_engines()
    folder = Path(tempfile.mkdtemp(prefix="rtm-swreq-"))
    name = f"rtmbench-swreq-{uuid.uuid4().hex[:8]}"
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM cleans up as Ctrl-C does
    failed = False  # a failed run keeps its folder (the agent's log) for a look
    try:
        return run(args, engines, folder, name)
    except KeyboardInterrupt:
        print("\ninterrupted: deleting the workload", file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f"swarm_requests_bench: {error}", file=sys.stderr)
        failed = True
        return 2
    finally:
        delete_workload(name, engines["manager"], folder)
        if not failed:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
