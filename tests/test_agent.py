"""The headless agent as a process: its state over HTTP, JSON logs, the agent lock, spec
reloads, and a clean stop on SIGTERM that leaves workloads running and no process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from console.agent import running_agent
from console.datadir import agent_lock_path, lock_holder
from supervisor_support import labels_yaml, wait_for

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "RTM_LOAD_BALANCER_UPSTREAM_PATH": str(tmp_path / "upstream.conf")}


def _start_agent(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "agent", "--specs", str(tmp_path / "specs"), "--listen", f"127.0.0.1:{port}", *extra],
        env=_env(tmp_path), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _state(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/agent/state", timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.fixture()
def agent_workload(tmp_path, docker_client, test_image, test_labels, run_id):
    """A workload with one running replica and a liveness probe, in tmp_path/specs."""
    name = f"{run_id}-agent"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "workload.yaml").write_text(f"""name: {name}
ContainerRuntime:
  base_image: "{test_image}"
  labels: {labels_yaml(test_labels)}
  command: ["sleep", "3600"]
HealthCheck:
  liveness: {{command: ["true"], interval: 1s, timeout: 0.8s, retries: 2}}
FailoverStrategy:
  recovery: {{restart_delay: 1s}}
""")
    made = subprocess.run([sys.executable, "-m", "console.cli", "scale", "--workload", name, "--specs", str(specs), "--replicas", "1"],
                          env=_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    yield name
    for container in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}):
        container.remove(force=True)


def test_agent_serves_its_state_refuses_a_second_agent_and_stops_cleanly(tmp_path, agent_workload, docker_client):
    port = _free_port()
    agent = _start_agent(tmp_path, port)
    try:
        state = wait_for(lambda: (s := _state(port)) and s["workloads"] and s["workloads"][0]["replicas"] and s, what="the agent's state")
        assert state["workloads"][0]["workload"] == agent_workload
        assert set(state["loops"]) == {"rtm-failover", "rtm-engines", "rtm-autoscaler", "rtm-reconcile", "rtm-specs", "rtm-swarm"}
        assert state["agent"]["pid"] == agent.pid
        wait_for(lambda: any(e["kind"] == "probe_passed" for e in _state(port)["events"]), what="a probe event in the state")
        holder = lock_holder(agent_lock_path(tmp_path / "data"))
        assert holder and holder["pid"] == agent.pid and holder["role"] == "agent"
        found = running_agent(tmp_path / "data")  # what a console reads to show the agent's state
        assert found["pid"] == agent.pid and found["state_url"] == f"http://127.0.0.1:{port}/agent/state"

        second = subprocess.run([sys.executable, "-m", "console.cli", "agent", "--specs", str(tmp_path / "specs"), "--listen", f"127.0.0.1:{_free_port()}"],
                                env=_env(tmp_path), cwd=REPO, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"agent pid {agent.pid}" in second.stderr

        # The specs are reloaded when they change.
        (tmp_path / "specs" / "more.yaml").write_text((tmp_path / "specs" / "workload.yaml").read_text().replace(agent_workload, f"{agent_workload}-b"))
        wait_for(lambda: len(_state(port)["workloads"]) == 2, what="the reloaded specs")

        children = psutil.Process(agent.pid).children(recursive=True)
        agent.send_signal(signal.SIGTERM)
        _out, err = agent.communicate(timeout=30)  # a hang guard, not a timing goal (bench has none)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert lock_holder(agent_lock_path(tmp_path / "data")) is None
    assert running_agent(tmp_path / "data") is None
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert records[-1]["message"] == "agent stopped"
    assert any(r.get("event") == "probe_passed" for r in records)
    containers = docker_client.containers.list(filters={"label": f"rtm.workload={agent_workload}"})
    assert [c.status for c in containers] == ["running"]  # the workload was left running


def test_agent_serves_metrics_beside_its_state(tmp_path):
    (tmp_path / "specs").mkdir()
    port = _free_port()
    agent = _start_agent(tmp_path, port)
    try:
        wait_for(lambda: _state(port), what="the agent")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert "rtm_" in metrics
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    assert agent.returncode == 0


def test_agent_modules_never_import_textual():
    code = "import sys, console.agent, console.commands.agent_cmd, console.supervisor.live; print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_specs_with_errors_cost_the_metrics_not_the_state(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "broken.yaml").write_text("name: broken\nContainerRuntime:\n  base_image: x\n  restart_policy: sometimes\nHealthCheck: {}\n")
    port = _free_port()
    agent = _start_agent(tmp_path, port)
    try:
        state = wait_for(lambda: _state(port), what="the agent's state")
        assert any("broken.yaml" in problem for problem in state["spec_problems"])
        assert any(note.startswith("metrics are not served") for note in state["agent"]["notes"])
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    assert agent.returncode == 0


def test_a_bad_web_config_stops_the_agent_before_it_serves(tmp_path):
    (tmp_path / "specs").mkdir()
    web_config = tmp_path / "web.yml"
    web_config.write_text("tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n")
    agent = _start_agent(tmp_path, _free_port(), "--web-config", str(web_config))
    _out, err = agent.communicate(timeout=60)
    assert agent.returncode == 1
    assert "rtm-console agent:" in err and "cert" in err
    assert lock_holder(agent_lock_path(tmp_path / "data")) is None


def test_agent_serves_the_firing_alerts_and_writes_their_events(tmp_path):
    (tmp_path / "specs").mkdir()
    port = _free_port()
    agent = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "agent", "--specs", str(tmp_path / "specs"), "--listen", f"127.0.0.1:{port}"],
        env={**_env(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        state = wait_for(lambda: (s := _state(port)) and s.get("alerts") and s, what="a firing alert in the agent's state")
        (alert,) = [a for a in state["alerts"] if a["alert"] == "RtmBackendDown"]
        assert alert["subject"].startswith("docker@") and alert["severity"] == "critical" and alert["silenced_until"] is None
        events = tmp_path / "data" / "events.jsonl"
        wait_for(lambda: events.exists() and '"alert_firing"' in events.read_text(), what="the alert_firing event")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    assert agent.returncode == 0


def test_the_agent_brings_back_a_replica_removed_by_hand_and_leaves_a_cordoned_machine_alone(
        tmp_path, docker_client, test_image, test_labels, run_id):
    """An applied workload without any policy (the specs folder empty): the agent keeps its count."""
    name = f"{run_id}-kept"
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "web.yaml"
    spec.write_text(f"""name: {name}
replicas: 2
ContainerRuntime:
  base_image: "{test_image}"
  labels: {labels_yaml(test_labels)}
  command: ["sleep", "3600"]
""")
    cli = lambda *args: subprocess.run([sys.executable, "-m", "console.cli", *args], env=_env(tmp_path), cwd=REPO,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    applied = cli("apply", str(spec), "--yes")
    assert applied.returncode == 0, applied.stderr
    port = _free_port()
    agent = _start_agent(tmp_path, port)
    machine = docker_client.info()["Name"]
    try:
        wait_for(lambda: _state(port), what="the agent's state")
        docker_client.containers.get(f"{name}-1").remove(force=True)
        wait_for(lambda: any(e["kind"] == "reconcile_create" for e in _state(port)["events"]), timeout=90, what="the replica to come back")
        assert sorted(c.name for c in docker_client.containers.list(filters={"label": f"rtm.workload={name}"})) == [f"{name}-0", f"{name}-1"]

        assert cli("cordon", f"node/{machine}").returncode == 0
        docker_client.containers.get(f"{name}-0").remove(force=True)
        failed = wait_for(lambda: [e for e in _state(port)["events"] if e["kind"] == "reconcile_failed"], timeout=90, what="a refused placement")
        assert "0/1 nodes are available: 1 node(s) were unschedulable." in failed[0]["message"]
        assert [c.name for c in docker_client.containers.list(filters={"label": f"rtm.workload={name}"})] == [f"{name}-1"]
        assert cli("uncordon", f"node/{machine}").returncode == 0
        wait_for(lambda: len(docker_client.containers.list(filters={"label": f"rtm.workload={name}"})) == 2, timeout=90,
                 what="the replica placed once the machine is uncordoned")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
        for container in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}):
            container.remove(force=True)
