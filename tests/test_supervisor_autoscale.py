"""Autoscaling real container workloads: a CPU-burning workload scales out through the
scheduler and back in once the load stops and the cooldown has passed; vertical limits are
changed in place (`scale --workload --apply --vertical`), visible in `docker inspect` with no
restart; `--replicas N` sets the count by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.supervisor.autoscaler import history_path, load_history
from console.supervisor.engines import Engine, replica_service
from supervisor_support import labels_yaml, remove_workload, start_supervisor, wait_for

pytestmark = pytest.mark.usefixtures("docker_client")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def engine(docker_client):
    engine = Engine(os.environ["DOCKER_HOST"])
    yield engine
    engine.close()


def test_cpu_load_scales_out_then_back_in_after_the_cooldown(tmp_path, engine, docker_client, test_image, test_labels, run_id):
    name = f"{run_id}-hpa"
    spec = f"""name: {name}
ContainerRuntime:
  base_image: "{test_image}"
  labels: {labels_yaml(test_labels)}
  command: ["sleep", "3600"]
  resources:
    limits: {{cpu: "400m", memory: "64Mi"}}
    requests: {{cpu: "100m", memory: "16Mi"}}
AutoScalingPolicy:
  horizontal: {{min_replicas: 1, max_replicas: 2, target_cpu_utilization: 50, scale_up_cooldown: 1s, scale_down_cooldown: 4s}}
"""
    h = start_supervisor(tmp_path, name, spec, [engine], autoscale_interval=1.5)
    try:
        workload = h.supervisor.reload().workloads[name]
        replica_service([engine]).scale(workload.template, 1)
        first = h.replicas()[0]
        burner = docker_client.containers.get(first.id)
        burner.exec_run(["sh", "-c", "while [ ! -e /tmp/stop ]; do :; done"], detach=True)
        h.supervisor.start()

        wait_for(lambda: "scale" in h.kinds(), what="the scale-out", timeout=90)
        up = next(e for e in h.log() if e.kind == "scale")
        assert len(h.running()) == 2
        assert (up.details["from"], up.details["to"]) == (1, 2)
        assert up.details["created"] == [f"{name}-1@{engine.name}"]  # placed by the scheduler on the engine

        burner.exec_run(["touch", "/tmp/stop"])
        wait_for(lambda: h.kinds().count("scale") == 2, what="the scale-in", timeout=90)
        assert len(h.replicas()) == 1
        down = [e for e in h.log() if e.kind == "scale"][-1]
        assert (down.details["from"], down.details["to"]) == (2, 1)
        assert h.replicas()[0].id == first.id  # the highest index went first
        history = load_history(history_path(tmp_path / "data", name))
        assert [(e.from_replicas, e.to_replicas) for e in history.events] == [(1, 2), (2, 1)]
        # the cooldown counts from the decision that scaled out (the log's times include the work)
        assert history.events[1].time - history.events[0].time >= 4.0  # scale_down_cooldown
        state = h.supervisor.state()["autoscaling"][0]
        assert state["workload"] == name and state["decision"] is not None
    finally:
        assert h.supervisor.stop(timeout=10)
        remove_workload([engine], name)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_vertical_limits_change_in_place_without_a_restart(tmp_path, docker_client, test_image, test_labels, run_id):
    name = f"{run_id}-vpa"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "vpa.yaml").write_text(f"""name: {name}
ContainerRuntime:
  base_image: "{test_image}"
  labels: {labels_yaml(test_labels)}
  command: ["sleep", "3600"]
  resources: {{limits: {{cpu: "500m", memory: "128Mi"}}}}
AutoScalingPolicy:
  vertical: {{min_cpu: "200m", max_cpu: "1000m", min_memory: "32Mi", max_memory: "256Mi", adjustment_step: "100m"}}
""")
    try:
        made = _cli(tmp_path, "scale", "--workload", name, "--specs", str(specs), "--replicas", "1")
        assert made.returncode == 0, made.stderr
        assert f"0 -> 1 replicas, +{name}-0@" in made.stdout
        before = docker_client.api.inspect_container(f"{name}-0")

        done = _cli(tmp_path, "scale", "--workload", name, "--specs", str(specs), "--apply", "--vertical", "--yes", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["vertical"]["cpu"]["recommended"] == 200  # idle: the minimum
        assert report["vertical"]["memory"]["recommended"] == 64 * 1024 * 1024  # a 64Mi step above what it uses
        assert report["applied"] == ["limits changed in place"]

        after = docker_client.api.inspect_container(f"{name}-0")
        assert after["HostConfig"]["NanoCpus"] == 200_000_000
        assert after["HostConfig"]["Memory"] == after["HostConfig"]["MemorySwap"] == 64 * 1024 * 1024
        assert after["Id"] == before["Id"]
        assert after["State"]["StartedAt"] == before["State"]["StartedAt"] and after["RestartCount"] == 0
        audit = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
        assert [a["action"] for a in audit if a["result"] == "ok"] == ["workload.scale", "workload.resize"]
    finally:
        _cli(tmp_path, "scale", "--workload", name, "--specs", str(specs), "--replicas", "0", "--yes")
        leftovers = docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})
        assert leftovers == []


def test_scale_workload_refuses_unknown_workloads_and_bad_flags(tmp_path):
    (tmp_path / "specs").mkdir()
    unknown = _cli(tmp_path, "scale", "--workload", "nothing", "--specs", str(tmp_path / "specs"))
    assert unknown.returncode == 2 and "no container workload named 'nothing'" in unknown.stderr
    vertical_alone = _cli(tmp_path, "scale", "--workload", "nothing", "--vertical")
    assert vertical_alone.returncode == 2 and "--vertical applies limits: use it with --apply" in vertical_alone.stderr
    apply_on_policy = _cli(tmp_path, "scale", "--policy", "sample-specs/autoscaling-policy.yaml", "--current", "2", "--apply")
    assert apply_on_policy.returncode == 2 and "use --workload NAME" in apply_on_policy.stderr
