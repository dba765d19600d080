"""Local functions runtime benchmark: throughput and latency through the gateway, and cold starts.

A trivial handler (returns a fixed 200 response) is stored in a temporary data folder and
served by a LocalFunctionsRuntime on an ephemeral loopback port in this process. Then:

1. wrk (a separate process, one thread) drives the function's route at several connection
   counts: requests/s and wrk's p50/p99 latency. Every request runs in a worker process.
2. The same wrk run against a path with no route (answered 404 by the gateway itself, no
   worker): the HTTP server's own ceiling, to show how much of the cost is the server.
3. A Python client on one keep-alive connection, sequential: per-request latency p50/p99; and
   the same number of invocations straight into the pool, without HTTP.
4. Cold start: a new worker process started and its handler imported, until ready (the pool's
   spawn + init), and the first request through the gateway after a deploy (cold, end to end).

Usage: python bench/localfn_bench.py [--duration 10] [--connections 1,8,32] [--cold-starts 20]
       [--markdown]     (prints the table for docs/benchmarks.md)
Needs wrk on PATH (Debian: apt-get install wrk); without it, parts 1-2 are skipped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.localfn.definition import definition_from_spec, locate_code  # noqa: E402
from backends.localfn.pool import INIT_TIMEOUT_SECONDS, worker_environment  # noqa: E402
from backends.localfn.process import WorkerProcess  # noqa: E402
from backends.localfn.functions_host import LocalFunctionsRuntime  # noqa: E402
from rtm.documents import load_text  # noqa: E402

TRIVIAL = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'


def deploy(runtime: LocalFunctionsRuntime, folder: Path, name: str, path: str) -> None:
    code = folder / name
    code.mkdir(parents=True, exist_ok=True)
    (code / "main.py").write_text(TRIVIAL)
    text = (f"ServerlessRuntime:\n  name: {name}\n  runtime: python3.12\n  handler: main.handler\n"
            f"  code: {name}\n  timeout: 10s\n  memory: 128Mi\n"
            f"  triggers:\n    - type: http\n      path: {path}\n      method: GET\n")
    spec = load_text(text, str(folder / f"{name}.yaml")).documents[0].get("ServerlessRuntime")
    source = locate_code(spec, folder)
    runtime.store.deploy(definition_from_spec(spec, name, source), source)
    runtime.routes()  # notice it now


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"connections": connections, "requests_per_second": rate, "p50_ms": latency("50%"),
            "p99_ms": latency("99%"), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": errors.group(0) if errors else ""}


def python_client(host: str, port: int, path: str, count: int) -> dict[str, float]:
    connection = http.client.HTTPConnection(host, port)
    timings = []
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        timings.append((time.perf_counter() - start) * 1000)
    elapsed = time.perf_counter() - began
    connection.close()
    timings.sort()
    return {"requests": count, "requests_per_second": count / elapsed,
            "p50_ms": timings[len(timings) // 2], "p99_ms": timings[int(len(timings) * 0.99) - 1]}


def in_process(runtime: LocalFunctionsRuntime, name: str, count: int) -> dict[str, float]:
    """Invocations straight into the pool (no HTTP): the worker round trip plus the record."""
    timings = []
    began = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        assert runtime.invoke(name, {}).result.ok
        timings.append((time.perf_counter() - start) * 1000)
    elapsed = time.perf_counter() - began
    timings.sort()
    return {"requests": count, "requests_per_second": count / elapsed,
            "p50_ms": timings[len(timings) // 2], "p99_ms": timings[int(len(timings) * 0.99) - 1]}


def cold_starts(runtime: LocalFunctionsRuntime, name: str, count: int) -> dict[str, float]:
    function = runtime.functions()[name]
    config = {"handler": function.definition.handler, "memory_bytes": function.definition.memory_bytes,
              "function_name": name, "version": function.version, "log_stream": "bench"}
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        worker = WorkerProcess(config, worker_environment(function), function.code_dir)
        failure = worker.wait_ready(INIT_TIMEOUT_SECONDS)
        timings.append((time.perf_counter() - start) * 1000)
        assert failure is None, failure
        worker.stop()
    timings.sort()
    return {"count": count, "p50_ms": statistics.median(timings), "max_ms": timings[-1], "min_ms": timings[0]}


def first_request_after_deploy(runtime: LocalFunctionsRuntime, folder: Path, host: str, port: int, count: int) -> dict[str, float]:
    timings = []
    for index in range(count):
        deploy(runtime, folder, f"fresh{index}", f"/fresh{index}")
        connection = http.client.HTTPConnection(host, port)
        start = time.perf_counter()
        connection.request("GET", f"/fresh{index}")
        response = connection.getresponse()
        response.read()
        timings.append((time.perf_counter() - start) * 1000)
        connection.close()
        assert response.status == 200
    timings.sort()
    return {"count": count, "p50_ms": statistics.median(timings), "max_ms": timings[-1]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,8,32", help="wrk connection counts")
    parser.add_argument("--python-requests", type=int, default=3000)
    parser.add_argument("--cold-starts", type=int, default=20)
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rtm-localfn-bench-") as temp:
        folder = Path(temp)
        runtime = LocalFunctionsRuntime(folder / "data", "127.0.0.1", 0, max_workers=args.max_workers,
                                        queue_timeout=60.0)
        runtime.start()
        try:
            deploy(runtime, folder, "trivial", "/trivial")
            host, port = runtime.url.removeprefix("http://").split(":")
            python_client(host, int(port), "/trivial", 200)  # warm up a worker
            results: dict[str, object] = {
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                "max_workers": args.max_workers,
                "load_before": os.getloadavg()[0],  # other work on the machine skews every number
            }
            if shutil.which("wrk"):
                results["wrk_function"] = [wrk(f"{runtime.url}/trivial", int(c), args.duration)
                                           for c in args.connections.split(",")]
                results["wrk_gateway_404"] = wrk(f"{runtime.url}/no-route", 8, args.duration)
            else:
                print("wrk not found: skipping the wrk runs", file=sys.stderr)
            results["python_client"] = python_client(host, int(port), "/trivial", args.python_requests)
            results["in_process"] = in_process(runtime, "trivial", args.python_requests)
            results["cold_start_worker"] = cold_starts(runtime, "trivial", args.cold_starts)
            results["cold_first_request"] = first_request_after_deploy(runtime, folder, host, int(port), 5)
            results["load_after"] = os.getloadavg()[0]
        finally:
            runtime.stop()

    if args.markdown:
        print(markdown(results))
    else:
        print(json.dumps(results, indent=2))
    return 0


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}; max_workers {results['max_workers']}; 1-minute load average "
             f"{results['load_before']:.1f} before, {results['load_after']:.1f} after.", "",
             "| what | connections | requests/s | p50 | p99 |", "|---|---:|---:|---:|---:|"]
    for run in results.get("wrk_function", []):
        lines.append(f"| wrk -> trivial function | {run['connections']} | {run['requests_per_second']:,.0f} "
                     f"| {run['p50_ms']:.2f} ms | {run['p99_ms']:.2f} ms |")
    if "wrk_gateway_404" in results:
        run = results["wrk_gateway_404"]
        lines.append(f"| wrk -> unrouted path (gateway only, 404) | {run['connections']} | "
                     f"{run['requests_per_second']:,.0f} | {run['p50_ms']:.2f} ms | {run['p99_ms']:.2f} ms |")
    py = results["python_client"]
    lines.append(f"| Python client, sequential keep-alive | 1 | {py['requests_per_second']:,.0f} "
                 f"| {py['p50_ms']:.2f} ms | {py['p99_ms']:.2f} ms |")
    direct = results["in_process"]
    lines.append(f"| in-process invoke, no HTTP (worker round trip + record) | 1 | {direct['requests_per_second']:,.0f} "
                 f"| {direct['p50_ms']:.2f} ms | {direct['p99_ms']:.2f} ms |")
    cold = results["cold_start_worker"]
    first = results["cold_first_request"]
    lines += ["", "| cold start | n | p50 | max |", "|---|---:|---:|---:|",
              f"| new worker until ready (spawn + import handler) | {cold['count']} | {cold['p50_ms']:.1f} ms | {cold['max_ms']:.1f} ms |",
              f"| first HTTP request after a deploy | {first['count']} | {first['p50_ms']:.1f} ms | {first['max_ms']:.1f} ms |"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
