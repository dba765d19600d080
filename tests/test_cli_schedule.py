"""`rtm-console schedule` on the sample inventory: placements, accounting and kube-style reasons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-specs"


def schedule(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", "schedule", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def placements(*args: str, code: int = 0) -> dict:
    result = schedule("--nodes", str(SAMPLES / "nodes.yaml"), "--json", *args)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def test_json_shape_and_affinity_from_the_policy() -> None:
    out = placements("--policy", str(SAMPLES / "scheduling-policy.yaml"), "--replicas", "6")
    assert out["algorithm"] == "round_robin"
    assert [p["replica"] for p in out["placements"]] == list(range(6))
    nodes = {n["id"]: n for n in out["nodes"]}
    zone_c = {"node-03", "node-06", "node-09", "node-12"}  # the policy allows zones a and b only
    assert not {p["node"] for p in out["placements"]} & zone_c
    assert all(isinstance(n["cpu_free"], int) and isinstance(n["memory_free"], int) for n in out["nodes"])
    placed_on_01 = nodes["node-01"]["replicas"]
    assert nodes["node-01"]["cpu_free"] == 4000 - 100 * placed_on_01  # 100m requested per replica


def test_replicas_default_to_the_policy_minimum() -> None:
    out = placements("--policy", str(SAMPLES / "scheduling-policy.yaml"))
    assert len(out["placements"]) == 1


def test_unschedulable_message_like_kube_scheduler(tmp_path: Path) -> None:
    policy = tmp_path / "big.yaml"
    policy.write_text(
        "SchedulingPolicy:\n  constraints:\n"
        "    - {type: node_affinity, key: zone, operator: In, values: [us-east-1a]}\n"
        "    - {type: resource_requirements, cpu: '20', memory: 1Gi}\n"
    )
    out = placements("--policy", str(policy), "--replicas", "1", code=1)  # placed nowhere: exit 1
    assert out["placements"][0]["node"] is None
    assert out["placements"][0]["reason"] == "0/12 nodes are available: 4 Insufficient cpu, 8 node(s) didn't match Pod's node affinity/selector."


def test_ip_hash_keys_are_stable() -> None:
    args = ("--policy", str(SAMPLES / "workload-web.yaml"), "--algorithm", "ip_hash", "--client", "10.0.0.7", "--client", "192.168.1.20")
    first, second = placements(*args), placements(*args)
    assert first["placements"] == second["placements"] and len(first["placements"]) == 2


def test_ip_hash_needs_a_key_per_replica() -> None:
    result = schedule("--policy", str(SAMPLES / "workload-web.yaml"), "--nodes", str(SAMPLES / "nodes.yaml"), "--algorithm", "ip_hash", "--replicas", "3", "--client", "a")
    assert result.returncode == 2 and "--client key per replica" in result.stderr


def test_text_output_lists_replicas_and_remaining_capacity() -> None:
    result = schedule("--policy", str(SAMPLES / "scheduling-policy.yaml"), "--nodes", str(SAMPLES / "nodes.yaml"), "--replicas", "2")
    assert result.returncode == 0
    assert "node-01" in result.stdout and "3900m" in result.stdout


def test_many_client_keys_reach_argparse_as_one_option() -> None:
    """argparse's time grows with the square of the options: 10,000 `--client KEY` took 2.6 s to
    parse. Consecutive ones are folded into one `--client A B ...` first."""
    from console.cli import build_parser
    from console.commands.schedule_cmd import fold_client_keys

    keys = [f"10.0.{i // 256}.{i % 256}" for i in range(10_000)]
    argv = ["schedule", "--policy", "p.yaml", "--json"] + [x for key in keys for x in ("--client", key)]
    folded = fold_client_keys(argv)
    assert folded.count("--client") == 1
    assert build_parser().parse_args(folded).client == keys
    mixed = ["schedule", "--policy", "p.yaml", "--client", "a", "--client", "b", "--json", "--client", "c", "--client=d", "--client", "e"]
    assert build_parser().parse_args(fold_client_keys(mixed)).client == ["a", "b", "c", "d", "e"]


def test_ip_hash_keys_given_together_or_one_by_one_place_alike() -> None:
    args = ("--policy", str(SAMPLES / "workload-web.yaml"), "--algorithm", "ip_hash")
    one_by_one = placements(*args, "--client", "10.0.0.1", "--client", "10.0.0.2", "--client", "10.0.0.3")
    together = placements(*args, "--client", "10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert together == one_by_one and len(together["placements"]) == 3
