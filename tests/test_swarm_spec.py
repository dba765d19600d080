"""The pure mapping of a container workload to a Swarm ServiceSpec (backends/docker/swarm/spec.py):
resources, restart policy, health check, placement for every affinity operator, warnings for what
a service cannot carry, ports by publish mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.docker.swarm.spec import (
    Expression,
    SwarmSpecError,
    placement_constraints,
    service_spec,
)
from rtm.documents import Document, load_file, load_text

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"
MI = 1024 * 1024
SECOND = 1_000_000_000


def document(text: str) -> Document:
    result = load_text(text, "spec.yaml")
    assert result.ok, result.findings
    (doc,) = result.documents
    return doc


def workload(extra: str = "", container: str = "", replicas: str = "replicas: 3\n", security: str = '{user: "1000:1000"}') -> Document:
    return document(f"""name: web
{replicas}ContainerRuntime:
  base_image: "rtm-busybox:1.0"
  command: ["sleep", "600"]
  security: {security}
  resources:
    limits: {{cpu: "250m", memory: "32Mi"}}
    requests: {{cpu: "100m", memory: "16Mi"}}
{container}{extra}""")


def affinity(operator: str, values: str = "") -> str:
    return f"""SchedulingPolicy:
  constraints:
    - type: "node_affinity"
      key: "zone"
      operator: "{operator}"
{'      values: ' + values if values else ''}
"""


def test_resources_replicas_restart_policy_and_rollback() -> None:
    plan = service_spec(workload("FailoverStrategy:\n  recovery: {auto_restart: true, max_restart_attempts: 4, restart_delay: 2s}\n"), SAMPLES)
    spec = plan.spec
    task = spec["TaskTemplate"]
    assert spec["Name"] == "web" and spec["Labels"]["rtm.workload"] == "web"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}} and plan.replicas == 3
    assert task["Resources"] == {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 32 * MI},
                                 "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 16 * MI}}
    assert task["RestartPolicy"] == {"Condition": "any", "Delay": 2 * SECOND, "MaxAttempts": 4}
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
    container = task["ContainerSpec"]
    assert container["Args"] == ["sleep", "600"] and container["User"] == "1000:1000"
    assert container["CapabilityDrop"] == ["ALL"] and container["ReadOnly"] is False


def test_no_auto_restart_is_condition_none_and_policy_requirements_reserve_when_no_requests() -> None:
    doc = document("""name: web
ContainerRuntime:
  base_image: "rtm-busybox:1.0"
SchedulingPolicy:
  constraints:
    - type: "resource_requirements"
      cpu: "200m"
      memory: "64Mi"
  scaling: {min_replicas: 2, max_replicas: 4}
FailoverStrategy:
  recovery: {auto_restart: false}
""")
    plan = service_spec(doc, SAMPLES)
    assert plan.replicas == 2  # the policy's minimum
    assert plan.spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    assert plan.spec["TaskTemplate"]["Resources"]["Reservations"] == {"NanoCPUs": 200_000_000, "MemoryBytes": 64 * MI}


def test_liveness_command_probe_becomes_the_healthcheck_with_the_startup_budget() -> None:
    plan = service_spec(workload("""HealthCheck:
  liveness: {command: ["cat", "/tmp/ok"], interval: 5s, timeout: 2s, retries: 4}
  startup: {command: ["true"], interval: 2s, retries: 10, initial_delay: 3s}
"""), SAMPLES)
    check = plan.spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]
    assert check == {"Test": ["CMD", "cat", "/tmp/ok"], "Interval": 5 * SECOND, "Timeout": 2 * SECOND, "Retries": 4,
                     "StartPeriod": 23 * SECOND}


@pytest.mark.parametrize(("probe", "test"), [
    ('{http: {port: 8080, path: "/health"}}', ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]),
    ("{tcp: {port: 6379}}", ["CMD", "nc", "-z", "127.0.0.1", "6379"]),
])
def test_http_and_tcp_liveness_probes_become_the_documented_commands(probe: str, test: list[str]) -> None:
    plan = service_spec(workload(f"HealthCheck:\n  liveness: {probe}\n"), SAMPLES)
    assert plan.spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"] == test


def test_an_https_liveness_probe_is_refused_not_dropped() -> None:
    with pytest.raises(SwarmSpecError, match="a Swarm health check needs a command"):
        service_spec(workload('HealthCheck:\n  liveness: {http: {port: 8443, scheme: "https"}}\n'), SAMPLES)


def test_security_settings_a_service_cannot_carry_are_warnings() -> None:
    plan = service_spec(workload(), SAMPLES)  # no_new_privileges is on by default
    assert [w.split(":")[0] for w in plan.warnings] == ["security.no_new_privileges"]
    relaxed = service_spec(workload(security='{user: "1000:1000", no_new_privileges: false, seccomp_profile: "unconfined"}'), SAMPLES)
    assert [w.split(":")[0] for w in relaxed.warnings] == ["security.seccomp_profile"]


def test_in_with_one_value_and_notin_are_swarm_constraints() -> None:
    assert placement_constraints(workload(affinity("In", '["a"]'))) == (["node.labels.zone==a"], [])
    assert placement_constraints(workload(affinity("NotIn", '["a", "c"]'))) == (["node.labels.zone!=a", "node.labels.zone!=c"], [])


@pytest.mark.parametrize(("operator", "values"), [("In", '["a", "b"]'), ("Exists", ""), ("DoesNotExist", ""), ("Gt", '["2"]'), ("Lt", '["2"]')])
def test_operators_swarm_cannot_say_are_kept_by_the_workloads_node_label(operator: str, values: str) -> None:
    plan = service_spec(workload(affinity(operator, values)), SAMPLES)
    assert [e.operator for e in plan.expressions] == [operator]
    assert plan.spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.rtm.affinity.web==yes"]


@pytest.mark.parametrize(("expression", "labels", "fits"), [
    (Expression("zone", "In", ("a", "b")), {"zone": "b"}, True),
    (Expression("zone", "In", ("a", "b")), {"zone": "c"}, False),
    (Expression("zone", "Exists", ()), {"zone": "c"}, True),
    (Expression("zone", "Exists", ()), {}, False),
    (Expression("zone", "DoesNotExist", ()), {}, True),
    (Expression("zone", "DoesNotExist", ()), {"zone": "a"}, False),
    (Expression("cores", "Gt", ("2",)), {"cores": "4"}, True),
    (Expression("cores", "Gt", ("2",)), {"cores": "2"}, False),
    (Expression("cores", "Lt", ("2",)), {"cores": "1"}, True),
    (Expression("cores", "Lt", ("2",)), {"cores": "x"}, False),
])
def test_expression_decides_a_node_by_its_labels(expression: Expression, labels: dict[str, str], fits: bool) -> None:
    assert expression.matches(labels) is fits


def test_other_algorithms_than_round_robin_are_said_to_have_no_swarm_equivalent() -> None:
    plan = service_spec(load_file(SAMPLES / "workload-web.yaml").documents[0], SAMPLES)
    assert any("least_connections" in w and "no Swarm equivalent" in w for w in plan.warnings)


@pytest.mark.parametrize("mode", ["ingress", "host"])
def test_ports_are_published_in_the_configured_mode(mode: str) -> None:
    plan = service_spec(workload(container='  ports: ["8080:80"]\n'), SAMPLES, publish_mode=mode)
    assert plan.spec["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": mode}]


def test_an_unknown_publish_mode_is_refused() -> None:
    with pytest.raises(SwarmSpecError, match="docker.publish_mode"):
        service_spec(workload(), SAMPLES, publish_mode="vip")


def test_the_spec_hash_ignores_the_replica_count() -> None:
    assert service_spec(workload(), SAMPLES, replicas=5).spec_hash == service_spec(workload(), SAMPLES).spec_hash


@pytest.mark.parametrize(("variable", "value"), [("RTM_DOCKER_PUBLISH_MODE", "vip"), ("RTM_DOCKER_TARGET", "swarm")])
def test_a_bad_publish_mode_or_target_in_the_configuration_is_refused_with_the_choices(tmp_path: Path, variable: str, value: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, variable: value, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    run = subprocess.run([sys.executable, "-m", "console.cli", "config"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=SAMPLES.parent)
    assert run.returncode == 2
    assert variable in run.stderr and value in run.stderr


def test_an_unknown_rtm_target_label_is_refused_with_the_choices() -> None:
    from backends.docker.errors import DockerRequestError
    from backends.docker.swarm.target import SwarmTarget

    doc = workload(container='  labels: {rtm.target: "swarm"}\n')
    with pytest.raises(DockerRequestError, match='label rtm.target: "swarm" is neither cluster nor standalone'):
        SwarmTarget([]).services_for(doc)
