"""Exporter benchmark: rtm-console's exporter against Debian's prometheus-node-exporter.

Both run as processes of their own on loopback, in the same run, on the same host:

1. Host metrics: sequential scrapes of each, interleaved (one of ours, one of theirs, ...) so
   both see the same background noise, over one keep-alive connection each, with the headers
   Prometheus sends (text format, gzip). Reported: median and p99 latency of a whole scrape
   (request to last byte), series per scrape, and CPU seconds per scrape of each process (from
   /proc/PID/stat; ours includes the background polls that ran meanwhile, since that is where
   our exporter does its reading).
2. 100 concurrent scrapers (threads, one keep-alive connection each) against our exporter for
   30 s: requests, errors, latency under load. Bounded by the clock, loopback only. A reused
   connection the exporter closed before answering (to make room for a newcomer, above its
   connection limit) gets the scrape sent again on a new one, as Prometheus' HTTP client does:
   counted apart, not as an error.
3. When a Docker engine ($DOCKER_HOST) and libvirt (qemu:///system) answer: 50 containers
   (labelled rtm.test=1) on a private dockerd started for the run (so exactly 50, whatever
   else runs on the shared engine; --shared-engine uses $DOCKER_HOST instead) and 5 small VMs
   (64 MiB, no disk, TCG) are created, our exporter serves host + containers + VMs, and its
   scrape latency is measured again. Everything created is removed at the end.

Goals (exit status 1 if one is missed): our median host scrape no slower than node_exporter's;
no error under 100 concurrent scrapers; p99 below 50 ms with 50 containers and 5 VMs.

Usage: python bench/exporter_bench.py [--scrapes 300] [--clients 100] [--duration 30]
       [--containers 50] [--vms 5] [--skip-engines] [--shared-engine] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
HEADERS = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1", "Accept-Encoding": "gzip"}
GOAL_P99_WITH_ENGINES = 0.050
BENCH_LABEL = "rtm.bench"
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_answering(port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = scrape_once(http.client.HTTPConnection("127.0.0.1", port, timeout=5), path)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {timeout:g} s")


@contextlib.contextmanager
def node_exporter() -> Iterator[tuple[int, int]]:
    """(pid, port) of a node_exporter with its default collectors on a free loopback port."""
    port = free_port()
    process = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answering(port, "/metrics")
        yield process.pid, port
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def rtm_exporter(docker_host: str | None = None, libvirt_uri: str | None = None) -> Iterator[tuple[int, int]]:
    """(pid, port) of our exporter (this script with --serve) over host [+ Docker] [+ libvirt]."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port)]
    if docker_host:
        command += ["--docker", docker_host]
    if libvirt_uri:
        command += ["--libvirt", libvirt_uri]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_answering(port, "/ready", timeout=120)
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.returncode not in (0, -signal.SIGTERM):
            print(process.stderr.read() if process.stderr else "", file=sys.stderr)


def serve(port: int, docker_host: str | None, libvirt_uri: str | None) -> int:
    """--serve: the exporter over the backends asked for, until SIGTERM."""
    sys.path.insert(0, str(ROOT))
    from backends.host import HostBackend
    from console.config import ListenAddress
    from console.exporter.assembly import serve_exporter
    from console.poller import Poller

    backends: list = [HostBackend()]
    if docker_host:
        from backends.docker import DockerBackend

        backends.append(DockerBackend(docker_host, read_only=True))
    if libvirt_uri:
        from backends.libvirt import make_libvirt_backends

        backends += make_libvirt_backends([libvirt_uri], read_only=True)
    poller = Poller(backends, interval=2.0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    exporter = serve_exporter(poller, ListenAddress("127.0.0.1", port))
    poller.start()
    stop.wait()
    exporter.stop()
    poller.stop()
    for backend in backends:
        backend.close()
    return 0


# -------------------------------------------------------------------------------- scrapes


def scrape_once(connection: http.client.HTTPConnection, path: str = "/metrics") -> tuple[int, bytes]:
    connection.request("GET", path, headers=HEADERS)
    response = connection.getresponse()
    return response.status, response.read()


def count_series(body: bytes) -> int:
    text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


@dataclass
class LatencyResult:
    name: str
    scrapes: int
    series: int
    median_ms: float
    p99_ms: float
    cpu_ms_per_scrape: float
    latencies: list[float] = field(default_factory=list, repr=False)

    def row(self) -> str:
        return (f"| {self.name} | {self.series} | {self.scrapes} | {self.median_ms:.2f} | {self.p99_ms:.2f} | "
                f"{self.cpu_ms_per_scrape:.2f} |")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def measure_interleaved(targets: dict[str, tuple[int, int]], scrapes: int) -> list[LatencyResult]:
    """Sequential scrapes of every target in turn; one keep-alive connection per target."""
    connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name, (_, port) in targets.items()}
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    series: dict[str, int] = {}
    for connection in connections.values():  # warm up: connections open, first poll done
        scrape_once(connection)
    cpu_before = {name: cpu_seconds(pid) for name, (pid, _) in targets.items()}
    for _ in range(scrapes):
        for name, connection in connections.items():
            began = time.perf_counter()
            status, body = scrape_once(connection)
            latencies[name].append(time.perf_counter() - began)
            if status != 200:
                raise RuntimeError(f"{name} answered {status}")
            series[name] = count_series(body)
    cpu_after = {name: cpu_seconds(pid) for name, (pid, _) in targets.items()}
    for connection in connections.values():
        connection.close()
    return [
        LatencyResult(name, scrapes, series[name], 1000 * statistics.median(values), 1000 * p99(values),
                      1000 * (cpu_after[name] - cpu_before[name]) / scrapes, values)
        for name, values in latencies.items()
    ]


@dataclass
class LoadResult:
    clients: int
    seconds: float
    requests: int
    errors: int
    median_ms: float
    p99_ms: float  # every scrape but each connection's first
    first_scrape_p99_ms: float  # the first scrape of each connection: connect while 100 others scrape
    first_error: str = ""
    reconnects: int = 0  # idle keep-alive connections the exporter closed, the scrape sent again


# What a reused keep-alive connection closed by the server before it answered looks like.
CLOSED_BEFORE_ANSWER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def measure_concurrent(port: int, clients: int, duration: float) -> LoadResult:
    """`clients` threads scraping as fast as they can until `duration` seconds have passed."""
    deadline = time.monotonic() + duration
    lock = threading.Lock()
    latencies: list[float] = []
    firsts: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    reconnects = [0]

    def scraper() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        reused = False  # the connection has served a scrape: the server may have closed it since
        mine: list[float] = []
        start.wait()
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                status, body = scrape_once(connection)
                if status != 200 or not body:
                    raise RuntimeError(f"status {status}, {len(body)} bytes")
            except CLOSED_BEFORE_ANSWER if reused else ():
                # An idle keep-alive connection the exporter closed to make room for a new one
                # (connections.py): Prometheus' HTTP client (Go's net/http) sends the GET again
                # on a new connection, and so does this one; only a failure of that is an error.
                with lock:
                    reconnects[0] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                reused = False
                continue
            except Exception as exc:  # counted and reported, the scraper reconnects
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                reused = False
                continue
            reused = True
            mine.append(time.perf_counter() - began)
        connection.close()
        with lock:
            firsts.extend(mine[:1])
            latencies.extend(mine[1:])

    threads = [threading.Thread(target=scraper, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join(duration + 60)
    elapsed = time.monotonic() - began
    return LoadResult(clients, elapsed, len(latencies) + len(firsts), len(errors),
                      1000 * statistics.median(latencies) if latencies else 0.0, 1000 * p99(latencies) if latencies else 0.0,
                      1000 * p99(firsts) if firsts else 0.0, errors[0] if errors else "", reconnects[0])


# --------------------------------------------------------------------------------- engines


@contextlib.contextmanager
def bench_engine(shared: bool) -> Iterator[str]:
    """The address of a Docker engine holding only the benchmark's containers: a private dockerd
    (the test setup's helper; needs root) with the test image copied from $DOCKER_HOST, or with
    `shared` the $DOCKER_HOST engine itself, whatever else runs there."""
    if shared:
        yield os.environ["DOCKER_HOST"]
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.engines import free_bridge_cidr, private_dockerd

    with private_dockerd(bridge_cidr=free_bridge_cidr(), images=[os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")]) as engine:
        yield engine.host


@contextlib.contextmanager
def bench_containers(count: int, host: str) -> Iterator[str]:
    """`count` sleeping containers on the engine at `host`; yields `host`."""
    import docker

    image = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")
    client = docker.DockerClient(base_url=host, timeout=120)
    # The test labels with this process' pid: a test session's clean-up leaves them alone while
    # this process lives, and removes them if it dies before its own clean-up.
    labels = {"rtm.test": "1", "rtm.test.pid": str(os.getpid()), "rtm.test.run": f"bench-{os.getpid()}",
              BENCH_LABEL: str(os.getpid()), "rtm.workload": "bench"}
    created = []
    try:
        for number in range(count):
            created.append(client.containers.run(image, ["sleep", "3600"], name=f"rtm-bench-{os.getpid()}-{number}",
                                                 detach=True, init=True, labels=labels, mem_limit="32m"))
        yield host
    finally:
        for container in created:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        client.close()


VM_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>"""


@contextlib.contextmanager
def bench_vms(count: int, uri: str) -> Iterator[str]:
    """`count` transient 64 MiB VMs without disk (BIOS finds nothing to boot: a few % of a core each)."""
    import libvirt

    connection = libvirt.open(uri)
    domains = []
    try:
        for number in range(count):
            domains.append(connection.createXML(VM_XML.format(name=f"rtm-bench-{os.getpid()}-vm{number}"), 0))
        yield uri
    finally:
        for domain in domains:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
        connection.close()


def engines_available() -> tuple[bool, bool, str]:
    docker_ok = libvirt_ok = False
    why = []
    try:
        import docker

        docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=5).ping()
        docker_ok = True
    except Exception as exc:  # any reason: the engine part of the run is skipped and says why
        why.append(f"Docker: {type(exc).__name__}: {exc}")
    try:
        import libvirt

        libvirt.registerErrorHandler(lambda *_: None, None)
        libvirt.open("qemu:///system").close()
        libvirt_ok = True
    except Exception as exc:
        why.append(f"libvirt: {type(exc).__name__}: {exc}")
    return docker_ok, libvirt_ok, "; ".join(why)


def wait_for_series(port: int, needle: bytes, count: int, timeout: float = 120.0) -> None:
    """Until the scrape has `count` lines containing `needle` (the poller has seen everything)."""
    deadline = time.monotonic() + timeout
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    found = 0
    while time.monotonic() < deadline:
        _, body = scrape_once(connection)
        text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        found = sum(1 for line in text.splitlines() if needle in line)
        if found >= count:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the scrape shows {found} of {count} series with {needle!r}")


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--vms", type=int, default=5)
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--shared-engine", action="store_true", help="put the containers on $DOCKER_HOST instead of a private dockerd")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--docker", help=argparse.SUPPRESS)
    parser.add_argument("--libvirt", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.docker, args.libvirt)

    report: dict = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    failures = []
    print(f"host metrics: {args.scrapes} interleaved scrapes each", flush=True)
    with node_exporter() as theirs, rtm_exporter() as ours:
        host = measure_interleaved({"rtm-console exporter": ours, "node_exporter 1.5": theirs}, args.scrapes)
        print("| exporter | series | scrapes | median ms | p99 ms | CPU ms/scrape |\n|---|---:|---:|---:|---:|---:|")
        for result in host:
            print(result.row())
        report["host"] = [{k: v for k, v in asdict(r).items() if k != "latencies"} for r in host]
        if host[0].median_ms > host[1].median_ms:
            failures.append("median host scrape slower than node_exporter's")

        print(f"\n{args.clients} concurrent scrapers for {args.duration:g} s", flush=True)
        load = measure_concurrent(ours[1], args.clients, args.duration)
        print(f"requests {load.requests} ({load.requests / load.seconds:.0f}/s), errors {load.errors}, "
              f"idle connections closed and the scrape sent again {load.reconnects}, "
              f"median {load.median_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; first scrape of each connection: "
              f"p99 {load.first_scrape_p99_ms:.0f} ms {load.first_error}")
        report["concurrent"] = asdict(load)
        if load.errors or not load.requests:
            failures.append(f"{load.errors} errors under {args.clients} concurrent scrapers")

    if not args.skip_engines:
        docker_ok, libvirt_ok, why = engines_available()
        if not (docker_ok or libvirt_ok):
            print(f"\nengines: skipped ({why})")
        else:
            containers = args.containers if docker_ok else 0
            vms = args.vms if libvirt_ok else 0
            print(f"\nhost + {containers} containers + {vms} VMs: {args.scrapes} scrapes" + (f" ({why})" if why else ""), flush=True)
            with contextlib.ExitStack() as stack:
                docker_host = None
                if containers:
                    engine = stack.enter_context(bench_engine(args.shared_engine))
                    docker_host = stack.enter_context(bench_containers(containers, engine))
                libvirt_uri = stack.enter_context(bench_vms(vms, "qemu:///system")) if vms else None
                ours = stack.enter_context(rtm_exporter(docker_host, libvirt_uri))
                if containers:
                    wait_for_series(ours[1], f'rtm_container_info{{container="rtm-bench-{os.getpid()}-'.encode(), containers)
                if vms:
                    wait_for_series(ours[1], f'rtm_vm_info{{domain="rtm-bench-{os.getpid()}-vm'.encode(), vms)
                (engines,) = measure_interleaved({f"rtm-console exporter, {containers} containers + {vms} VMs": ours}, args.scrapes)
                print("| exporter | series | scrapes | median ms | p99 ms | CPU ms/scrape |\n|---|---:|---:|---:|---:|---:|")
                print(engines.row())
                report["engines"] = {k: v for k, v in asdict(engines).items() if k != "latencies"}
                if engines.p99_ms > GOAL_P99_WITH_ENGINES * 1000:
                    failures.append(f"p99 {engines.p99_ms:.1f} ms with engines, goal < {GOAL_P99_WITH_ENGINES * 1000:g} ms")

    report["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print("\ngoals: " + ("all met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
