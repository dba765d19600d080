"""Docker Swarm through `rtm-console` on the test setup's real 3-node swarm (zones b/a/a): the
nodes, cordon/uncordon/drain, workloads as services (apply, update, unchanged, delete), scale
keeping tasks, every affinity operator, --strict, and a worker refusing cluster changes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from supervisor_support import wait_for
from test_cli_resources import rtm_console

pytestmark = pytest.mark.docker
MI = 1024 * 1024


@pytest.fixture(scope="module")
def env(swarm: dict[str, Any], tmp_path_factory) -> dict[str, str]:
    """The CLI's environment: the manager as the one Docker endpoint, a fresh data folder."""
    root = tmp_path_factory.mktemp("cli-swarm")
    env = {**os.environ, "DOCKER_HOST": swarm["manager"], "RTM_DATA_DIR": str(root / "data"), "XDG_CONFIG_HOME": str(root / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


def ok(run: Any) -> Any:
    assert run.returncode == 0, f"{' '.join(run.args[3:])} exited {run.returncode}:\n{run.stderr}{run.stdout}"
    return run


def spec_file(tmp_path: Path, name: str, *, replicas: int = 3, limits_cpu: str = "250m", policy: str = "", security: str = "",
              container: str = "", image: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""name: {name}
replicas: {replicas}
ContainerRuntime:
  base_image: "{image or os.environ.get('RTM_TEST_IMAGE', 'rtm-busybox:1.0')}"
  command: ["sleep", "600"]
  security: {{user: "1000:1000"{security}}}
  resources:
    limits: {{cpu: "{limits_cpu}", memory: "32Mi"}}
    requests: {{cpu: "100m", memory: "16Mi"}}
{container}{policy}FailoverStrategy:
  recovery: {{auto_restart: true, max_restart_attempts: 3, restart_delay: 1s}}
""")
    return path


def shell_spec(tmp_path: Path, name: str, script: str, *, replicas: int, extra: str = "") -> Path:
    """A workload whose tasks run `sh -c SCRIPT`, without limits."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""name: {name}
replicas: {replicas}
ContainerRuntime:
  base_image: "{os.environ.get('RTM_TEST_IMAGE', 'rtm-busybox:1.0')}"
  command: ["sh", "-c", "{script}"]
  security: {{user: "1000:1000"}}
{extra}""")
    return path


def affinity(*expressions: str) -> str:
    return "SchedulingPolicy:\n  constraints:\n" + "".join(
        f'    - {{type: "node_affinity", {e}}}\n' for e in expressions)


def service(api: Any, name: str) -> dict[str, Any] | None:
    return next((s for s in api.services() if s["Spec"]["Name"] == name), None)


def running_tasks(swarm: dict[str, Any], name: str) -> dict[str, str]:
    """task id -> node hostname of the service's running tasks."""
    api = swarm["api"]
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in api.nodes()}
    return {t["ID"]: hostnames[t["NodeID"]] for t in api.tasks(filters={"service": name, "desired-state": "running"})
            if t["Status"]["State"] == "running"}


@pytest.fixture()
def applied(env: dict[str, str], swarm: dict[str, Any], run_id: str, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """apply(suffix, **spec options) -> (workload name, spec file): applied with --yes; deleted after."""
    names: list[str] = []

    def apply(suffix: str, **options: Any) -> tuple[str, Path]:
        name = f"{run_id}-{suffix}"
        path = spec_file(tmp_path, name, **options)
        ok(rtm_console(env, "apply", "--yes", str(path)))
        names.append(name)
        return name, path

    yield apply
    for name in names:
        found = service(swarm["api"], name)
        if found is not None:
            swarm["api"].remove_service(found["ID"])


# --- nodes -----------------------------------------------------------------------------------


def test_get_nodes_json_lists_the_swarm_nodes_by_hostname_with_role_availability_and_labels(env, swarm) -> None:
    nodes = json.loads(ok(rtm_console(env, "get", "nodes", "--json")).stdout)
    by_id = {n["id"]: n for n in nodes if "role" in n}
    assert sorted(by_id) == sorted(swarm["hostnames"])
    manager, *workers = swarm["hostnames"]
    assert by_id[manager]["role"] == "manager" and by_id[manager]["leader"] is True
    assert all(by_id[w]["role"] == "worker" for w in workers)
    assert [by_id[h]["labels"]["zone"] for h in swarm["hostnames"]] == swarm["zones"]
    for node in by_id.values():
        assert node["availability"] == "active" and node["state"] == "ready"
        assert node["engine_version"].startswith("20.10") and node["cpu_count"] > 0 and node["memory_bytes"] > 0


def test_describe_shows_one_swarm_node(env, swarm) -> None:
    node = json.loads(ok(rtm_console(env, "describe", f"node/{swarm['hostnames'][1]}")).stdout)
    assert (node["hostname"], node["role"], node["labels"]["zone"]) == (swarm["hostnames"][1], "worker", swarm["zones"][1])


def test_get_nodes_says_which_engines_are_clusters(env, swarm) -> None:
    text = ok(rtm_console(env, "--docker-host", swarm["manager"], "--docker-host", swarm["workers"][0], "get", "nodes")).stdout
    assert "Swarm manager (a cluster)" in text and "Swarm worker" in text
    assert all(hostname in text for hostname in swarm["hostnames"])


def test_cordon_pauses_a_swarm_node_and_uncordon_activates_it_audited(env, swarm) -> None:
    node = swarm["hostnames"][2]
    assert "cordoned (Swarm availability pause)" in ok(rtm_console(env, "cordon", f"node/{node}")).stdout
    availability = {n["Description"]["Hostname"]: n["Spec"]["Availability"] for n in swarm["api"].nodes()}
    assert availability[node] == "pause"
    ok(rtm_console(env, "uncordon", node))
    assert {n["Description"]["Hostname"]: n["Spec"]["Availability"] for n in swarm["api"].nodes()}[node] == "active"
    audit = [json.loads(line) for line in (Path(env["RTM_DATA_DIR"]) / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["target"]) for r in audit if r["target"] == f"node/{node}"][-2:] == [
        ("node.cordon", f"node/{node}"), ("node.uncordon", f"node/{node}")]


def test_drain_asks_first_and_moves_the_tasks_away(env, swarm, applied) -> None:
    name, _path = applied("drain", replicas=2)
    wait_for(lambda: len(running_tasks(swarm, name)) == 2, what="two running tasks")
    node = next(iter(running_tasks(swarm, name).values()))
    refused = rtm_console(env, "drain", node)  # no terminal and no --yes
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    ok(rtm_console(env, "drain", node, "--yes"))
    wait_for(lambda: len(running_tasks(swarm, name)) == 2 and node not in running_tasks(swarm, name).values(),
             what=f"the tasks moved off {node}")
    ok(rtm_console(env, "uncordon", node))


def test_drain_of_a_node_that_is_not_in_a_swarm_is_refused_clearly(env, swarm) -> None:
    run = rtm_console(env, "drain", "no-such-node", "--yes")
    assert run.returncode == 1
    assert "node no-such-node is not in a swarm" in run.stderr and swarm["hostnames"][0] in run.stderr


# --- workloads as services -------------------------------------------------------------------


def test_apply_creates_one_service_with_resources_restart_policy_and_tasks_in_zone_a(env, swarm, applied) -> None:
    name, _path = applied("zone", policy=affinity('key: "zone", operator: "In", values: ["a"]'))
    found = service(swarm["api"], name)
    task = found["Spec"]["TaskTemplate"]
    assert task["Resources"] == {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 32 * MI},
                                 "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 16 * MI}}
    assert task["RestartPolicy"] == {"Condition": "any", "Delay": 1_000_000_000, "MaxAttempts": 3}
    assert found["Spec"]["Labels"]["rtm.workload"] == name
    tasks = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 3 and t, what="three running tasks")
    zone_a = {h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z == "a"}
    assert set(tasks.values()) <= zone_a
    listed = json.loads(ok(rtm_console(env, "get", "containers", "--json")).stdout)
    rows = [c for c in listed if c["workload"] == name]
    assert len(rows) == 3 and {c["labels"]["rtm.swarm.node"] for c in rows} <= zone_a
    assert {c["labels"]["rtm.swarm.desired_state"] for c in rows} == {"running"}


def test_dry_run_names_the_cluster_and_an_unchanged_spec_makes_no_call(env, swarm, applied) -> None:
    name, path = applied("same", replicas=1)
    version = service(swarm["api"], name)["Version"]["Index"]
    plan = ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout
    assert f"unchanged service/{name}" in plan and "on the Swarm cluster of docker@" in plan
    ok(rtm_console(env, "apply", "--yes", str(path)))
    assert service(swarm["api"], name)["Version"]["Index"] == version  # no update was posted


def test_a_changed_spec_is_one_rolling_update_with_the_field_diff(env, swarm, applied, tmp_path) -> None:
    name, _path = applied("update", replicas=1)
    version = service(swarm["api"], name)["Version"]["Index"]
    changed = spec_file(tmp_path, name, replicas=1, limits_cpu="300m")
    plan = ok(rtm_console(env, "apply", "--dry-run", str(changed))).stdout
    assert f"replace   service/{name}" in plan and "rolling update" in plan and "300000000" in plan
    refused = rtm_console(env, "apply", str(changed))  # it replaces the tasks: asked first, so refused without a terminal
    assert refused.returncode == 1 and service(swarm["api"], name)["Version"]["Index"] == version
    ok(rtm_console(env, "apply", "--yes", str(changed)))
    updated = service(swarm["api"], name)
    assert updated["Spec"]["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 300_000_000
    assert updated["Version"]["Index"] > version


def test_strict_refuses_settings_a_service_cannot_carry(env, swarm, run_id, tmp_path) -> None:
    path = spec_file(tmp_path, f"{run_id}-strict")  # no_new_privileges: true, the default
    plan = ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout
    assert "security.no_new_privileges: a Swarm service on Engine API 1.41 cannot carry it" in plan
    run = rtm_console(env, "apply", "--strict", "--yes", str(path))
    assert run.returncode == 1 and "--strict" in run.stderr
    assert service(swarm["api"], f"{run_id}-strict") is None


def test_scale_keeps_the_running_tasks_and_a_reapply_keeps_the_scaled_count(env, swarm, applied) -> None:
    name, path = applied("scale", replicas=2)
    before = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and t, what="two running tasks")
    out = ok(rtm_console(env, "scale", "--workload", name, "--replicas", "4")).stdout
    assert "2 -> 4 replicas" in out
    events = [json.loads(line) for line in (Path(env["RTM_DATA_DIR"]) / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "scale" and e["workload"] == name and "2 -> 4" in e["message"] for e in events)
    after = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 4 and t, what="four running tasks")
    assert set(before) <= set(after)  # the two first tasks still run
    assert f"unchanged service/{name}" in ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout


def test_delete_removes_the_service_and_only_it(env, swarm, applied) -> None:
    name, path = applied("delete", replicas=1)
    other, _ = applied("kept", replicas=1)
    out = ok(rtm_console(env, "delete", str(path), "--yes")).stdout
    assert f"deleted service/{name}" in out
    assert service(swarm["api"], name) is None and service(swarm["api"], other) is not None


@pytest.mark.parametrize(("suffix", "expression", "zones"), [
    ("in2", 'key: "zone", operator: "In", values: ["a", "b"]', {"a", "b"}),
    ("notin", 'key: "zone", operator: "NotIn", values: ["a"]', {"b"}),
    ("exists", 'key: "zone", operator: "Exists"', {"a", "b"}),
    ("nozone", 'key: "zone", operator: "DoesNotExist"', set()),
    ("gt", 'key: "slots", operator: "Gt", values: ["1"]', None),
    ("lt", 'key: "slots", operator: "Lt", values: ["2"]', None),
])
def test_every_affinity_operator_holds_on_the_swarm(env, swarm, applied, suffix, expression, zones) -> None:
    api = swarm["api"]
    slots = dict(zip(swarm["hostnames"], ("1", "2", "3")))
    for node in api.nodes():  # a numeric label for Gt / Lt: rtm-sw1=1, rtm-sw2=2, rtm-sw3=3
        spec = node["Spec"]
        api.update_node(node["ID"], node["Version"]["Index"], {**spec, "Labels": {**spec.get("Labels", {}), "slots": slots[node["Description"]["Hostname"]]}})
    name, _path = applied(suffix, replicas=2, policy=affinity(expression))
    if zones is not None:
        allowed = {h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z in zones}
    else:
        allowed = {h for h, s in slots.items() if (int(s) > 1 if suffix == "gt" else int(s) < 2)}
    if not allowed:  # no node fits: the tasks stay pending with Swarm's reason
        wait_for(lambda: any("no suitable node" in t["Status"].get("Err", "") for t in api.tasks(filters={"service": name})),
                 what="a task pending for no suitable node")
        return
    tasks = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and t, what="two running tasks")
    assert set(tasks.values()) <= allowed


# --- target, ports, adoption, workers --------------------------------------------------------


def test_docker_target_standalone_and_the_workloads_label_choose_where_it_goes(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-target"
    standalone = {**env, "RTM_DOCKER_TARGET": "standalone"}
    plan = ok(rtm_console(standalone, "apply", "--dry-run", str(spec_file(tmp_path, name, replicas=1)))).stdout
    assert f"create    container/{name}-0" in plan and "service/" not in plan
    labelled = spec_file(tmp_path, name, replicas=1, container='  labels: {rtm.target: "cluster"}\n')
    assert f"create    service/{name}" in ok(rtm_console(standalone, "apply", "--dry-run", str(labelled))).stdout
    labelled = spec_file(tmp_path, name, replicas=1, container='  labels: {rtm.target: "standalone"}\n')
    assert f"create    container/{name}-0" in ok(rtm_console(env, "apply", "--dry-run", str(labelled))).stdout


def test_publish_mode_host_publishes_ports_on_the_tasks_node(env, swarm, applied) -> None:
    env = {**env, "RTM_DOCKER_PUBLISH_MODE": "host"}
    name, path = applied("ports", replicas=1, container='  ports: ["18080:8080"]\n')
    assert service(swarm["api"], name)["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "ingress"  # the default
    ok(rtm_console(env, "apply", "--yes", str(path)))
    ports = service(swarm["api"], name)["Spec"]["EndpointSpec"]["Ports"]
    assert ports == [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 18080, "PublishMode": "host"}]


def test_loose_replicas_on_the_clusters_engines_are_adopted_after_asking(env, swarm, run_id, tmp_path, test_labels) -> None:
    import docker

    name = f"{run_id}-adopt"
    manager = docker.DockerClient(base_url=swarm["manager"])
    loose = manager.containers.run(os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0"), ["sleep", "600"], name=f"{name}-0", detach=True,
                                   labels={**test_labels, "rtm.workload": name, "rtm.replica": "0"})
    try:
        path = spec_file(tmp_path, name, replicas=1)
        plan = ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout
        assert f"delete    container/{name}-0" in plan and f"replaced by service/{name} (adopted)" in plan
        refused = rtm_console(env, "apply", str(path))  # no terminal, no --yes: a delete is not done unasked
        assert refused.returncode == 1 and service(swarm["api"], name) is None
        out = ok(rtm_console(env, "apply", "--yes", str(path))).stdout
        assert f"adopted by service/{name}" in out
        assert service(swarm["api"], name) is not None
        assert not manager.containers.list(all=True, filters={"name": f"^{name}-0$"})
    finally:
        manager.containers.list(all=True, filters={"name": f"^{name}-0$"}) and loose.remove(force=True)
        found = service(swarm["api"], name)
        if found is not None:
            swarm["api"].remove_service(found["ID"])
        manager.close()


def test_a_worker_alone_refuses_cluster_changes_naming_its_manager(env, swarm, run_id, tmp_path) -> None:
    worker_env = {**env, "DOCKER_HOST": swarm["workers"][0]}
    run = rtm_console(worker_env, "apply", "--yes", str(spec_file(tmp_path, f"{run_id}-worker", replicas=1)))
    assert run.returncode == 1
    manager_address = os.environ["RTM_TEST_SWARM_ADDRESSES"].split(",")[0]
    assert f"is a Swarm worker: cluster changes go through a manager (at {manager_address}:2377)" in run.stderr
    assert f"{run_id}-worker" not in ok(rtm_console(worker_env, "get", "containers")).stdout


def test_a_failed_task_shows_swarms_error_text(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-fails"
    path = shell_spec(tmp_path, name, "exit 3", replicas=1, extra="FailoverStrategy:\n  recovery: {auto_restart: false}\n")
    try:
        ok(rtm_console(env, "apply", "--yes", str(path)))

        def failed_row() -> dict[str, Any] | None:
            rows = [c for c in json.loads(ok(rtm_console(env, "get", "containers", "--json")).stdout) if c["workload"] == name]
            return rows[0] if len(rows) == 1 and rows[0]["labels"].get("rtm.swarm.state") == "failed" else None

        row = wait_for(failed_row, what="the task failed")
        assert row["labels"]["rtm.swarm.message"] == "task: non-zero exit (3)"
        assert row["labels"]["rtm.swarm.desired_state"] == "shutdown"
    finally:
        ok(rtm_console(env, "delete", f"workload/{name}", "--yes"))


def test_the_affinity_node_label_follows_the_live_labels_and_goes_with_delete(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-label"
    label = f"rtm.affinity.{name}"
    path = spec_file(tmp_path, name, replicas=1, policy=affinity('key: "zone", operator: "In", values: ["a", "b"]'))
    plan = ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout
    assert f"affinity zone In [a, b]: kept by the node label {label}=yes" in plan
    ok(rtm_console(env, "apply", "--yes", str(path)))
    labelled = {n["Description"]["Hostname"] for n in swarm["api"].nodes() if n["Spec"].get("Labels", {}).get(label) == "yes"}
    assert labelled == set(swarm["hostnames"])  # zones b, a, a: all three
    ok(rtm_console(env, "delete", f"workload/{name}", "--yes"))
    assert not any(label in n["Spec"].get("Labels", {}) for n in swarm["api"].nodes())


def test_logs_of_a_workload_that_is_a_service_come_from_the_service(env, swarm, run_id, tmp_path) -> None:
    name = f"{run_id}-logs"
    path = shell_spec(tmp_path, name, "echo hello from $(hostname); exec sleep 600", replicas=2)
    try:
        ok(rtm_console(env, "apply", "--yes", str(path)))
        wait_for(lambda: len([line for line in ok(rtm_console(env, "logs", f"container/{name}")).stdout.splitlines()
                              if "hello from" in line]) == 2, what="both tasks' first line, read from the service")
    finally:
        ok(rtm_console(env, "delete", f"workload/{name}", "--yes"))


def test_the_plan_checks_the_image_on_the_nodes_allowed_to_run_the_tasks(env, swarm, run_id, tmp_path) -> None:
    zone_a = ", ".join(sorted(h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z == "a"))
    every = [arg for engine in [swarm["manager"], *swarm["workers"]] for arg in ("--docker-host", engine)]
    policy = affinity('key: "zone", operator: "In", values: ["a"]')
    path = spec_file(tmp_path, f"{run_id}-image", replicas=1, policy=policy)
    assert f"image {os.environ.get('RTM_TEST_IMAGE', 'rtm-busybox:1.0')} on {zone_a})" in ok(rtm_console(env, *every, "apply", "--dry-run", str(path))).stdout
    assert f"not checked on {zone_a} (no endpoint configured for them)" in ok(rtm_console(env, "apply", "--dry-run", str(path))).stdout
    missing = spec_file(tmp_path, f"{run_id}-image", replicas=1, policy=policy, image="rtm-busybox:not-there")
    assert f"missing on {zone_a}: the tasks there will pull it" in ok(rtm_console(env, *every, "apply", "--dry-run", str(missing))).stdout


def test_tasks_on_configured_engines_keep_the_engines_rows_with_node_and_service(env, swarm, applied) -> None:
    name, _path = applied("rows", replicas=3)
    wait_for(lambda: len(running_tasks(swarm, name)) == 3, what="three running tasks")
    every = [arg for engine in [swarm["manager"], *swarm["workers"]] for arg in ("--docker-host", engine)]

    def rows() -> list[dict[str, Any]] | None:
        found = [c for c in json.loads(ok(rtm_console(env, *every, "get", "containers", "--json")).stdout) if c["workload"] == name]
        return found if len(found) == 3 and all(c["cpu_ratio"] is not None for c in found) else None

    found = wait_for(rows, what="three rows with statistics")
    assert all("/" not in c["engine"] and c["labels"]["rtm.swarm.stats"] == "from the engine of its node" for c in found)
    assert sorted(c["name"] for c in found) == [f"{name}.{slot}" for slot in (1, 2, 3)]
    assert {c["labels"]["rtm.swarm.node"] for c in found} <= set(swarm["hostnames"])


def test_a_manager_engines_poll_shows_every_task_for_the_containers_pane(swarm, applied) -> None:
    from backends.docker import DockerBackend

    name, _path = applied("poll", replicas=3, policy=affinity('key: "zone", operator: "In", values: ["a"]'))
    wait_for(lambda: len(running_tasks(swarm, name)) == 3, what="three running tasks")
    backend = DockerBackend(swarm["manager"], read_only=True)
    try:
        rows = [c for c in backend.poll().items if c.workload == name]
    finally:
        backend.close()
    assert sorted(c.name for c in rows) == [f"{name}.{slot}" for slot in (1, 2, 3)]
    zone_a = {h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z == "a"}
    assert {c.labels["rtm.swarm.node"] for c in rows} <= zone_a
    assert {c.engine for c in rows} <= {f"{backend.name}/{node}" for node in zone_a}
    assert {(c.state, c.labels["rtm.swarm.desired_state"]) for c in rows} == {("running", "running")}
