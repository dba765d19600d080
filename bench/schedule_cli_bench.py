"""Schedule CLI benchmark: `rtm-console schedule --json` end to end on a 5,000-node inventory.

1. End to end, per algorithm: a fresh `python -m console.cli schedule --policy P --nodes N
   --replicas 10000 --json` (ip_hash with 10,000 `--client` keys), interpreter start, imports,
   reading and validating both files, placing and printing included. The reference in the same
   run is the same command with the pure-Python YAML composer (PyYAML without libyaml, as the
   specs were read before). Goal: every algorithm within 2 s.
2. Loading alone, in this process: the 5,000-node inventory through `load_file` with libyaml
   and with the pure-Python composer.
3. Time to a placement preview: the console's placement screen (Textual, headless at 160x48)
   opened on a specs folder holding the same inventory and a workload of `--preview-replicas`
   replicas, from finding the specs to the preview's summary line on screen.
4. Validation time against the number of documents: 1,000 / 4,000 / 8,000 / 100,000 small
   documents, each with one error (it was quadratic: every step recounted every finding; the
   test suite counts those reads instead of timing them).

The inventory is bench/scheduler_bench.py's (seeded, mixed sizes and weights; its cordons are
left out, a spec has no such field), written as a `Nodes:` spec; the policy asks for
500m / 1Gi with the same affinity (`zone In [a, b, c]`, `generation Gt 1`, `gpu DoesNotExist`).

Usage (from the repository root):
    .venv/bin/python bench/schedule_cli_bench.py [--nodes 5000] [--replicas 10000] [--rounds 3]
        [--skip-reference] [--preview-replicas 1000]

The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from scheduler_bench import build_inventory, clients  # noqa: E402

from rtm import reader  # noqa: E402
from rtm.documents import load_file, load_text  # noqa: E402
from rtm.scheduling import ALGORITHMS  # noqa: E402

GOAL_SECONDS = 2.0
GI = 1024**3
POLICY = """\
SchedulingPolicy:
  algorithms: [round_robin]
  constraints:
    - {type: node_affinity, key: zone, operator: In, values: [zone-a, zone-b, zone-c]}
    - {type: node_affinity, key: generation, operator: Gt, values: ["1"]}
    - {type: node_affinity, key: gpu, operator: DoesNotExist}
    - {type: resource_requirements, cpu: 500m, memory: 1Gi}
  scaling: {min_replicas: 1, max_replicas: 100000}
"""
PURE_PYTHON_CLI = "import sys; import rtm.reader; rtm.reader.HAS_LIBYAML = False; from console.cli import main; sys.exit(main(sys.argv[1:]))"


def inventory_yaml(count: int) -> str:
    lines = ["Nodes:"]
    for node in build_inventory(count):
        labels = ", ".join(f'{k}: "{v}"' for k, v in node.labels.items() if k != "zone")
        lines.append(
            f"  - id: {node.id}\n    zone: {node.zone}\n    cpu: \"{node.cpu_millis}m\"\n"
            f"    memory: \"{node.memory_bytes // GI}Gi\"\n    labels: {{{labels}}}\n"
            f"    weight: {node.weight}\n    connections: {node.connections}"
        )
    return "\n".join(lines) + "\n"


def run_cli(folder: Path, algorithm: str, replicas: int, pure_python: bool) -> float:
    command = ["-c", PURE_PYTHON_CLI] if pure_python else ["-m", "console.cli"]
    args = ["schedule", "--policy", str(folder / "policy.yaml"), "--nodes", str(folder / "nodes.yaml"),
            "--replicas", str(replicas), "--algorithm", algorithm, "--json"]
    if algorithm == "ip_hash":
        for key in clients(replicas):
            args += ["--client", key]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *command, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1) or not done.stdout.startswith("{"):
        raise SystemExit(f"schedule {algorithm} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def timed_load(path: Path, pure_python: bool) -> float:
    reader.HAS_LIBYAML = not pure_python and bool(getattr(__import__("yaml"), "__with_libyaml__", False))
    try:
        start = time.perf_counter()
        result = load_file(path)
        seconds = time.perf_counter() - start
    finally:
        reader.HAS_LIBYAML = bool(getattr(__import__("yaml"), "__with_libyaml__", False))
    assert result.ok, result.findings[:3]
    return seconds


def validation_costs() -> list[tuple[int, float]]:
    """(documents, seconds) for texts of small documents with one error each."""
    rows = []
    for count in (1_000, 4_000, 8_000, 100_000):
        text = "".join(f"---\nname: w{i}\nContainerRuntime: {{base_image: x, restart_policy: sometimes}}\n" for i in range(count))
        start = time.perf_counter()
        result = load_text(text, "many.yaml")
        rows.append((count, time.perf_counter() - start))
        assert len(result.findings) == count
    return rows


def workload_yaml(replicas: int) -> str:
    """A container workload of `replicas` replicas asking what the policy asks, with the policy."""
    return (f"name: web\nreplicas: {replicas}\nContainerRuntime:\n  base_image: alpine:3.18\n"
            f"  security: {{user: '1000'}}\n  resources: {{requests: {{cpu: 500m, memory: 1Gi}}}}\n" + POLICY)


def time_to_preview(folder: Path) -> tuple[float, str]:
    """Seconds from finding the specs to the placement screen's summary on screen, and the summary."""
    import asyncio

    from textual.app import App
    from textual.widgets import Static

    from console.tui.planning import find_specs
    from console.tui.screens.placement_preview import PlacementScreen

    class Host(App):
        def on_mount(self) -> None:
            self.push_screen(PlacementScreen(find_specs([("bench", folder)]), []))

    async def run() -> tuple[float, str]:
        start = time.perf_counter()
        async with Host().run_test(size=(160, 48)) as pilot:
            while True:
                await pilot.pause()
                messages = pilot.app.screen.query("#messages")
                text = str(messages.first(Static).render()) if messages else ""
                if "placed" in text:
                    return time.perf_counter() - start, text.splitlines()[0]

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs per algorithm; the median is reported")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the pure-Python CLI runs (slow)")
    parser.add_argument("--preview-replicas", type=int, default=1_000, help="replicas of the workload in the placement preview")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rtm-schedule-bench-") as tmp:
        folder = Path(tmp)
        (folder / "nodes.yaml").write_text(inventory_yaml(args.nodes))
        (folder / "policy.yaml").write_text(POLICY)
        size = (folder / "nodes.yaml").stat().st_size
        print(f"schedule --json: {args.replicas} replicas onto {args.nodes} nodes (inventory {size / 1e6:.1f} MB), libyaml: {reader.HAS_LIBYAML}")

        print(f"\n{'algorithm':<22}{'median s':>10}{'worst s':>10}{'pure-Python s':>15}{'x faster':>10}{'goal met':>10}")
        ok = True
        for algorithm in ALGORITHMS:
            runs = [run_cli(folder, algorithm, args.replicas, pure_python=False) for _ in range(args.rounds)]
            median = statistics.median(runs)
            reference = None if args.skip_reference else run_cli(folder, algorithm, args.replicas, pure_python=True)
            meets = median <= GOAL_SECONDS
            ok &= meets
            ref_text = f"{reference:>15.2f}{reference / median:>10.1f}" if reference else f"{'':>15}{'':>10}"
            print(f"{algorithm:<22}{median:>10.2f}{max(runs):>10.2f}{ref_text}{'yes' if meets else 'NO':>10}")

        fast = statistics.median(timed_load(folder / "nodes.yaml", pure_python=False) for _ in range(args.rounds))
        slow = timed_load(folder / "nodes.yaml", pure_python=True)
        print(f"\nload_file of the inventory: {fast:.3f} s with libyaml, {slow:.3f} s pure-Python ({slow / fast:.1f} x)")

        preview_folder = folder / "specs"
        preview_folder.mkdir()
        (preview_folder / "nodes.yaml").write_text((folder / "nodes.yaml").read_text())
        (preview_folder / "web.yaml").write_text(workload_yaml(args.preview_replicas))
        seconds, summary = time_to_preview(preview_folder)
        print(f"placement preview, {args.nodes} nodes, {args.preview_replicas} replicas: {seconds:.2f} s to the preview ({summary})")

    print(f"\n{'documents':>10}{'seconds':>10}{'ms per 1,000':>14}")
    for count, seconds in validation_costs():
        print(f"{count:>10,}{seconds:>10.2f}{seconds * 1e6 / count:>14.1f}")
    print(f"\ngoal: every algorithm within {GOAL_SECONDS} s end to end, interpreter start included")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
