"""Autoscaling a workload that is a Swarm service, on the test setup's real 3-node swarm with
the real Docker SDK: the supervisor's autoscaler loop measures the service's running tasks
(their containers' statistics from the configured engines of the nodes) and raises the
service's replica count keeping the running tasks, adds no loose container and writes no
desired-state record (reconciliation leaves the service alone); `scale --apply --vertical` is
one rolling update of the service's limits, said by the plan and the question."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from supervisor_support import start_supervisor, wait_for
from test_cli_resources import rtm_console
from test_swarm_cli import env, ok, running_tasks, service  # noqa: F401  (env: the CLI's fixture)

from backends.docker.client import EngineEndpoint
from backends.docker.desired import DesiredStore
from backends.docker.replicas import find_replicas
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.autoscaler import WorkloadAutoscaler
from console.supervisor.engines import Engine
from console.supervisor.supervised import load_workloads
from console.supervisor.reconcile import Reconciler
from console.supervisor.swarm_autoscaling import ServiceFinder, execute_service_resize

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MI = 1024 * 1024
IMAGE = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")


def workload_spec(name: str, *, command: list[str], replicas: int, limits: tuple[str, str], requests: tuple[str, str],
                  policy: dict[str, Any]) -> str:
    """The workload as YAML (written as JSON, which YAML reads)."""
    resources = {"limits": dict(zip(("cpu", "memory"), limits)), "requests": dict(zip(("cpu", "memory"), requests))}
    return json.dumps({"name": name, "replicas": replicas, "AutoScalingPolicy": policy,
                       "ContainerRuntime": {"base_image": IMAGE, "command": command, "security": {"user": "1000:1000"}, "resources": resources}})


@pytest.fixture()
def engines(swarm: dict[str, Any]) -> Any:
    """The manager and both workers as the supervisor's engines (every task's statistics)."""
    hosts = [swarm["manager"], *swarm["workers"]]
    made = [Engine(EngineEndpoint(f"q1-n{index}", host)) for index, host in enumerate(hosts, 1)]
    yield made
    for engine in made:
        engine.close()


def apply_spec(env: dict[str, str], tmp_path: Path, name: str, text: str) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    path = specs / f"{name}.yaml"
    path.write_text(text)
    ok(rtm_console(env, "apply", "--yes", str(path)))
    return specs


def test_the_autoscaler_loop_raises_a_services_replicas_keeping_its_running_tasks(env, swarm, engines, run_id, tmp_path) -> None:
    name = f"{run_id}-q1-hpa"
    # Each task burns its whole 50m limit against a 10m request: 500 % of a 50 % target.
    spec = workload_spec(name, command=["sh", "-c", "while :; do :; done"], replicas=1, limits=("50m", "32Mi"), requests=("10m", "16Mi"),
                         policy={"horizontal": {"min_replicas": 1, "max_replicas": 3, "target_cpu_utilization": 50, "scale_up_cooldown": "1s"}})
    apply_spec(env, tmp_path, name, spec)
    first = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 1 and t, what="the first task running")
    harness = start_supervisor(tmp_path, name, spec, engines, autoscale_interval=1.0)
    try:
        harness.supervisor.start()
        wait_for(lambda: service(swarm["api"], name)["Spec"]["Mode"]["Replicated"]["Replicas"] == 3,
                 what="the autoscaler raising the service to 3 replicas", timeout=120)
    finally:
        assert harness.supervisor.stop(timeout=10)
    after = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 3 and t, what="three running tasks")
    assert set(first) <= set(after)  # the first task kept

    scaled = [e for e in harness.log() if e.kind == "scale"]
    assert scaled and all(f"service/{name} on docker@q1-n1" in e.message and "running tasks kept" in e.message for e in scaled)
    assert scaled[-1].details["to"] == 3 and scaled[0].details["from"] == 1
    assert {a["action"] for a in harness.audit() if a["result"] == "ok"} == {"workload.scale"}
    # No loose container for the workload, and no desired-state record: the service's spec is the record.
    assert find_replicas([e.backend for e in engines], name) == []
    data = tmp_path / "data"
    assert DesiredStore(data).get(name) is None
    gate = ActionGate("agent", data / "audit.jsonl")
    Reconciler(DesiredStore(data), lambda: engines, gate, EventLog.in_data_dir(data)).tick()
    assert find_replicas([e.backend for e in engines], name) == []
    assert set(running_tasks(swarm, name)) == set(after)


def vertical_spec(name: str) -> str:
    vertical = {"min_cpu": "200m", "max_cpu": "1000m", "min_memory": "32Mi", "max_memory": "256Mi", "adjustment_step": "100m"}
    return workload_spec(name, command=["sleep", "600"], replicas=2, limits=("500m", "128Mi"), requests=("300m", "16Mi"), policy={"vertical": vertical})


def every_engine(swarm: dict[str, Any]) -> list[str]:
    return [arg for engine in [swarm["manager"], *swarm["workers"]] for arg in ("--docker-host", engine)]


def test_scale_vertical_on_a_service_is_one_rolling_update_said_by_the_plan(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-q1-vpa"
    specs = apply_spec(env, tmp_path, name, vertical_spec(name))
    before = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and t, what="two running tasks")
    scale = [*every_engine(swarm), "scale", "--workload", name, "--specs", str(specs)]
    note = f"rolling update of service/{name} on docker@"

    preview = ok(rtm_console(env, *scale)).stdout
    assert f"plan: resize workload/{name}: {note}" in preview and ": replaces 2 tasks" in preview
    planned = ok(rtm_console(env, *scale, "--apply", "--vertical", "--dry-run")).stdout
    assert f"plan: resize workload/{name}: {note}" in planned and "done:" not in planned
    refused = rtm_console(env, *scale, "--apply", "--vertical")  # no terminal, no --yes
    assert refused.returncode == 1 and "pass --yes" in refused.stdout
    assert service(swarm["api"], name)["Spec"]["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 128 * MI}

    report = json.loads(ok(rtm_console(env, *scale, "--apply", "--vertical", "--yes", "--json")).stdout)
    assert report["vertical"]["cpu"]["recommended"] == 200 and report["vertical"]["memory"]["recommended"] == 64 * MI
    assert len(report["applied"]) == 1 and note in report["applied"][0] and "replaced 2 tasks" in report["applied"][0]
    live = service(swarm["api"], name)["Spec"]
    assert live["TaskTemplate"]["Resources"] == {"Limits": {"NanoCPUs": 200_000_000, "MemoryBytes": 64 * MI},
                                                 "Reservations": {"NanoCPUs": 200_000_000, "MemoryBytes": 16 * MI}}  # the cpu request came down to its limit
    assert live["Mode"]["Replicated"]["Replicas"] == 2
    # Swarm replaces the tasks one at a time: two new running tasks, none of the old ones.
    after = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and not set(t) & set(before) and t,
                     what="two new tasks after the rolling update", timeout=300)
    assert len(after) == 2
    # A re-apply of the unchanged spec keeps the limits the vertical change set.
    assert f"unchanged service/{name}" in ok(rtm_console(env, "apply", "--dry-run", str(specs / f"{name}.yaml"))).stdout


def test_the_resize_question_names_the_rolling_update_and_the_agents_loop_resizes_without_one(swarm, engines, run_id, tmp_path, env) -> None:
    name = f"{run_id}-q1-ask"
    apply_spec(env, tmp_path, name, vertical_spec(name))
    services = ServiceFinder().holding(name, engines)
    assert services is not None
    questions: list[str] = []
    gate = ActionGate("interactive", tmp_path / "data" / "audit.jsonl", confirm=lambda q: questions.append(q) or False)
    events = EventLog.in_data_dir(tmp_path / "data")
    replaced, message = execute_service_resize(name, services, gate, events, services.state(name), 200, None, "idle")
    assert replaced is None and "not confirmed" in message
    assert questions == [f"Resize workload/{name} (rolling update of service/{name} on {services.cluster.name}: replaces 2 tasks)?"]
    assert service(swarm["api"], name)["Spec"]["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 500_000_000

    workload = load_workloads(tmp_path / "specs").workloads[name]
    autoscaler = WorkloadAutoscaler(workload, engines, ActionGate("agent", tmp_path / "data" / "audit.jsonl"), events, tmp_path / "data",
                                    interval=0)
    wait_for(lambda: autoscaler.tick(time.time()) or autoscaler.last_vertical, what="a vertical recommendation from the tasks' readings")
    assert autoscaler.last_error is None and autoscaler.last_vertical.changes
    assert service(swarm["api"], name)["Spec"]["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 200_000_000, "MemoryBytes": 64 * MI}
    (resized,) = [e for e in events.read() if e.kind == "scale"]
    assert f"limits changed by a rolling update of service/{name} on {services.cluster.name}: replaces 2 tasks" in resized.message


def test_scale_apply_sets_the_services_replica_count_keeping_its_task(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-q1-apply"
    # The task's shell holds an 8 MiB string against a 4Mi request (Swarm's least): far above a 50 % target.
    hold = "x=aaaaaaaa; while [ ${#x} -lt 8000000 ]; do x=$x$x; done; sleep 600; echo $x"  # not the last command: sh stays
    spec = workload_spec(name, command=["sh", "-c", hold], replicas=1, limits=("100m", "64Mi"), requests=("10m", "4Mi"),
                         policy={"horizontal": {"min_replicas": 1, "max_replicas": 2, "target_memory_utilization": 50}})
    specs = apply_spec(env, tmp_path, name, spec)
    first = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 1 and t, what="the first task running")
    scale = [*every_engine(swarm), "scale", "--workload", name, "--specs", str(specs)]
    step = f"scale service/{name} on docker@n1-docker: 1 -> 2 replicas (running tasks kept)"
    planned = json.loads(ok(rtm_console(env, *scale, "--apply", "--dry-run", "--json")).stdout)
    assert (planned["plan"], planned["applied"]) == ([step], [])
    assert ok(rtm_console(env, *scale, "--replicas", "3", "--dry-run")).stdout.strip() == f"plan: {step.replace('-> 2', '-> 3')}"
    assert service(swarm["api"], name)["Spec"]["Mode"]["Replicated"]["Replicas"] == 1
    assert not (Path(env["RTM_DATA_DIR"]) / "autoscaler" / f"{name}.json").exists()  # a dry run writes no history
    done = ok(rtm_console(env, *scale, "--apply", "--json"))
    report = json.loads(done.stdout)
    assert (report["direction"], report["current_replicas"], report["target_replicas"]) == ("scale_up", 1, 2), report
    assert report["applied"] == [f"1 -> 2 replicas of service/{name} on docker@n1-docker (running tasks kept)"] and report["plan"] == [step]
    assert service(swarm["api"], name)["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    after = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and t, what="two running tasks")
    assert set(first) <= set(after)


def test_a_dry_run_of_scale_replicas_on_standalone_engines_prints_the_plan_and_creates_nothing(tmp_path, docker_client, run_id) -> None:
    name = f"{run_id}-q1-dry"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "dry.yaml").write_text(workload_spec(name, command=["sleep", "600"], replicas=1, limits=("100m", "32Mi"), requests=("10m", "16Mi"),
                                                  policy={"horizontal": {"min_replicas": 1, "max_replicas": 3, "target_cpu_utilization": 50}}))
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    planned = ok(rtm_console(env, "scale", "--workload", name, "--specs", str(specs), "--replicas", "3", "--dry-run")).stdout
    assert f"plan: scale workload/{name}: 0 -> 3 replicas (placed by the scheduler)" in planned and "done:" not in planned
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}) == []


def test_a_service_scale_up_by_more_than_50_is_asked_first_and_refused_without_a_terminal(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-q1-many"
    spec = workload_spec(name, command=["sleep", "600"], replicas=1, limits=("50m", "16Mi"), requests=("10m", "4Mi"),
                         policy={"horizontal": {"min_replicas": 1, "max_replicas": 100, "target_cpu_utilization": 50}})
    specs = apply_spec(env, tmp_path, name, spec)
    refused = rtm_console(env, *every_engine(swarm), "scale", "--workload", name, "--specs", str(specs), "--replicas", "52")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "pass --yes" in said and "creates 51 replicas at once (more than 50)" in said
    assert service(swarm["api"], name)["Spec"]["Mode"]["Replicated"]["Replicas"] == 1  # nothing changed
