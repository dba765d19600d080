"""`rtm-console scale` previews, as a user runs them: JSON shape, history file, replayed clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "sample-specs" / "autoscaling-policy.yaml"


def scale(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", "scale", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def decision(*args: str) -> dict:
    result = scale("--policy", str(POLICY), "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_json_shape_and_proportional_scale_up() -> None:
    out = decision("--current", "3", "--metric", "cpu=95", "--metric", "memory=40")
    assert set(out) == {"direction", "current_replicas", "target_replicas", "reason", "proposals"}
    assert out["direction"] == "scale_up" and out["target_replicas"] == 5  # ceil(3 * 95 / 70)
    assert out["proposals"] == {"cpu": 5, "memory": 2}


def test_high_memory_is_not_overruled_by_low_cpu() -> None:
    out = decision("--current", "3", "--metric", "cpu=10", "--metric", "memory=95")
    assert out["direction"] == "scale_up" and out["target_replicas"] == 4


def test_a_metric_not_given_is_absent_from_proposals() -> None:
    out = decision("--current", "2", "--metric", "cpu=70.5")
    assert out["proposals"] == {"cpu": 2} and out["direction"] == "no_scale"


def test_state_file_keeps_the_cooldown_across_runs(tmp_path: Path) -> None:
    state = tmp_path / "hpa.json"
    first = decision("--current", "3", "--metric", "cpu=200", "--state", str(state), "--now", "2026-11-27T12:00:00Z")
    assert first["target_replicas"] == 6 and "ScaleUpLimit" in first["reason"]
    held = decision("--current", "3", "--metric", "cpu=200", "--state", str(state), "--now", "2026-11-27T12:01:00Z")
    assert held["direction"] == "no_scale" and "cooldown" in held["reason"].lower()
    later = decision("--current", "6", "--metric", "cpu=200", "--state", str(state), "--now", "2026-11-27T12:06:00Z")
    assert later["direction"] == "scale_up"
    assert json.loads(state.read_text())["events"]


def test_bad_metric_and_bad_now_are_usage_errors() -> None:
    assert scale("--policy", str(POLICY), "--current", "1", "--metric", "disk=5").returncode == 2
    assert scale("--policy", str(POLICY), "--current", "1", "--metric", "cpu=5", "--now", "yesterday").returncode == 2


def test_invalid_policy_reports_findings(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("AutoScalingPolicy:\n  horizontal: {min_replicas: 5, max_replicas: 2, target_cpu_utilization: 70}\n")
    result = scale("--policy", str(bad), "--current", "1", "--metric", "cpu=5")
    assert result.returncode == 2 and "min_replicas is above max_replicas" in result.stdout
