"""Every spec check, reported at its exact position in words a newcomer understands."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from rtm.documents import load_file, load_text

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"
TODAY = date(2026, 11, 27)


def findings(text: str) -> list[tuple[int, int, str, str]]:
    result = load_text(textwrap.dedent(text).lstrip("\n"), "spec.yaml", today=TODAY)
    return [(f.line, f.column, f.severity, f.message) for f in result.findings]


def only(text: str) -> tuple[int, int, str, str]:
    found = findings(text)
    assert len(found) == 1, found
    return found[0]


# --- the samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_sample_is_valid_without_warnings(path: Path) -> None:
    result = load_file(path, today=TODAY)
    assert result.findings == (), [f.format() for f in result.findings]
    assert result.documents


def test_sample_workload_is_a_container_workload_with_all_policies() -> None:
    (doc,) = load_file(SAMPLES / "workload-web.yaml", today=TODAY).documents
    assert doc.is_workload and doc.runtime_kind == "ContainerRuntime"
    assert set(doc.specs) == {"ContainerRuntime", "SchedulingPolicy", "AutoScalingPolicy", "HealthCheck", "FailoverStrategy"}
    assert doc.desired_replicas == 2


def test_seed_values_are_typed() -> None:
    (doc,) = load_file(SAMPLES / "container-runtime.yaml", today=TODAY).documents
    container = doc.get("ContainerRuntime")
    assert container.resources.limits.cpu == 1000  # millicores: "1000m" is one CPU, not ten
    assert container.resources.limits.memory == 512 * 1024 * 1024
    assert container.health_check.interval == 30.0  # seconds, not nanoseconds
    assert container.health_check.docker_test()[0] == "CMD"
    with pytest.raises((AttributeError, TypeError)):
        container.base_image = "other"  # type: ignore[misc]


def test_nodes_inventory_has_a_dozen_nodes_over_three_zones() -> None:
    (doc,) = load_file(SAMPLES / "nodes.yaml", today=TODAY).documents
    assert len(doc.nodes) == 12
    assert {n.all_labels["zone"] for n in doc.nodes} == {"us-east-1a", "us-east-1b", "us-east-1c"}


# --- structure ------------------------------------------------------------------------------


def test_unknown_key_near_miss_suggests_the_right_one() -> None:
    line, col, severity, message = only(
        """
        ContainerRuntime:
          base_image: "alpine:3.18"
          resouces: {}
        """
    )
    assert (line, col, severity) == (3, 3, "error")
    assert 'unknown key "resouces"' in message


def test_unknown_key_hint_names_the_near_miss() -> None:
    result = load_text("ContainerRuntime:\n  base_imge: x\n", "s.yaml", today=TODAY)
    assert 'did you mean "base_image"' in result.findings[0].hint


def test_unknown_kind() -> None:
    line, col, _, message = only("ContainerRuntim:\n  base_image: x\n")
    assert (line, col) == (1, 1) and 'unknown kind "ContainerRuntim"' in message


def test_wrong_type_points_at_the_value() -> None:
    line, col, _, message = only(
        """
        HealthCheck:
          liveness:
            command: ["true"]
            retries: "three"
        """
    )
    assert (line, col) == (4, 14)
    assert "retries must be a whole number" in message


def test_missing_required_key() -> None:
    line, col, _, message = only("ServerlessRuntime:\n  runtime: python3.12\n")
    assert (line, col) == (2, 3)
    assert 'needs the key "handler"' in message


def test_duplicate_key() -> None:
    line, col, _, message = only("ContainerRuntime:\n  base_image: a\n  base_image: b\n")
    assert (line, col) == (3, 3) and "given twice" in message


def test_invalid_yaml_reports_its_position() -> None:
    line, col, _, message = only("ContainerRuntime:\n  base_image: a\n   runtime: b\n")
    assert line == 3 and message.startswith("invalid YAML")


def test_two_runtimes_in_one_document() -> None:
    found = findings(
        """
        name: both
        ContainerRuntime: {base_image: a, security: {user: "1000"}}
        ServerlessRuntime: {runtime: python3.12, handler: main.handler}
        """
    )
    assert any("one runtime kind" in m for *_, m in found)


# --- quantities -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad,col", [("1.1.M", 12), ("0.1mi", 12), ("1K", 12)])
def test_bad_quantity_points_inside_the_string(bad: str, col: int) -> None:
    line, column, _, message = only(f'ContainerRuntime:\n  base_image: a\n  security: {{user: "1"}}\n  resources:\n    limits:\n      memory: "{bad}"\n')
    assert line == 6
    assert column >= col  # the column moves to the offending character inside the quotes
    assert "memory" in message


def test_requests_above_limits() -> None:
    line, col, _, message = only(
        """
        ContainerRuntime:
          base_image: a
          security: {user: "1000"}
          resources:
            limits: {cpu: "500m", memory: 128Mi}
            requests: {cpu: "1", memory: 64Mi}
        """
    )
    assert (line, col) == (6, 21)
    assert "cpu request is above its limit" in message


def test_half_cpu_equals_500m() -> None:
    result = load_text('ContainerRuntime:\n  base_image: a\n  security: {user: "1"}\n  resources: {limits: {cpu: 0.5}, requests: {cpu: 500m}}\n', "s.yaml", today=TODAY)
    assert result.ok and result.documents[0].get("ContainerRuntime").resources.limits.cpu == 500


# --- replica ranges and targets -------------------------------------------------------------


def test_min_above_max_replicas() -> None:
    line, col, _, message = only("AutoScalingPolicy:\n  horizontal:\n    min_replicas: 5\n    max_replicas: 2\n    target_cpu_utilization: 70\n")
    assert (line, col) == (3, 19) and "min_replicas is above max_replicas" in message


def test_utilization_target_outside_1_to_100() -> None:
    line, col, _, message = only("SchedulingPolicy:\n  scaling:\n    target_cpu_utilization: 150\n")
    assert (line, col) == (3, 29) and "from 1 to 100" in message


def test_vertical_min_above_max() -> None:
    line, col, _, message = only('AutoScalingPolicy:\n  vertical:\n    min_cpu: "2"\n    max_cpu: "1"\n')
    assert (line, col) == (3, 14) and "min_cpu is above max_cpu" in message


# --- probes ---------------------------------------------------------------------------------


def test_probe_timeout_not_below_interval() -> None:
    line, col, _, message = only("HealthCheck:\n  liveness:\n    command: [\"true\"]\n    interval: 10s\n    timeout: 10s\n")
    assert (line, col) == (5, 14) and "timeout must be shorter than the interval" in message


def test_container_health_check_timeout_not_below_interval() -> None:
    found = findings('ContainerRuntime:\n  base_image: a\n  security: {user: "1"}\n  health_check:\n    command: ["true"]\n    interval: 5s\n    timeout: 6s\n')
    assert found == [(7, 14, "error", "the timeout must be shorter than the interval")]


# --- affinity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator,values,expected",
    [
        ("In", "[]", "In needs at least one value"),
        ("NotIn", "[]", "NotIn needs at least one value"),
        ("Exists", '["a"]', "Exists takes no values"),
        ("DoesNotExist", '["a"]', "DoesNotExist takes no values"),
        ("Gt", '["a"]', "Gt needs exactly one whole number"),
        ("Lt", '["1", "2"]', "Lt needs exactly one whole number"),
    ],
)
def test_affinity_operator_value_counts(operator: str, values: str, expected: str) -> None:
    line, col, _, message = only(f"SchedulingPolicy:\n  constraints:\n    - type: node_affinity\n      key: zone\n      operator: {operator}\n      values: {values}\n")
    assert (line, col) == (6, 15) and message == expected


def test_gt_with_one_integer_is_valid() -> None:
    assert findings("SchedulingPolicy:\n  constraints:\n    - {type: node_affinity, key: cores, operator: Gt, values: [4]}\n") == []


# --- Lambda limits --------------------------------------------------------------------------


def test_deprecated_runtime_is_refused_with_its_date() -> None:
    line, col, _, message = only("ServerlessRuntime:\n  runtime: python3.9\n  handler: main.handler\n")
    assert (line, col) == (2, 12)
    assert "deprecated by AWS on 2025-12-15" in message


@pytest.mark.parametrize(
    "field,value,expected",
    [
        ("memory", "64Mi", "from 128Mi to 10240Mi"),
        ("memory", "20Gi", "from 128Mi to 10240Mi"),
        ("timeout", "901s", "from 1 to 900"),
        ("timeout", "0s", "from 1 to 900"),
        ("handler", "main", "is not a Python handler"),
    ],
)
def test_lambda_limits(field: str, value: str, expected: str) -> None:
    text = f"ServerlessRuntime:\n  runtime: python3.12\n  handler: main.handler\n  {field}: {value}\n"
    text = text.replace("  handler: main.handler\n  handler", "  handler")
    line, col, _, message = only(text)
    assert expected in message and line == (3 if field == "handler" else 4)


def test_function_environment_over_4kb_warns() -> None:
    big = "x" * 4100
    line, col, severity, message = only(f"ServerlessRuntime:\n  runtime: python3.12\n  handler: main.handler\n  environment:\n    BIG: {big}\n")
    assert (line, col, severity) == (5, 5, "warning") and "over Lambda's 4 KB limit" in message


# --- VMs ------------------------------------------------------------------------------------


def test_vm_cores_at_least_one() -> None:
    line, col, _, message = only("VirtualMachineRuntime:\n  cpu: {cores: 0}\n  memory: {size: 64Mi}\n")
    assert (line, col) == (2, 16) and "cpu.cores must be at least 1" in message


def test_vm_memory_unit_libvirt_cannot_take() -> None:
    line, col, _, message = only("VirtualMachineRuntime:\n  memory: {size: 64Mi, current: 100Mi}\n")
    assert "memory.current is above memory.size" in message and line == 2


def test_vm_disk_cache_mode() -> None:
    line, col, _, message = only("VirtualMachineRuntime:\n  memory: {size: 64Mi}\n  storage: {size: 1Gi, cache: fast}\n")
    assert (line, col) == (3, 31)
    assert "must be one of default, none, writethrough, writeback, directsync, unsafe" in message


# --- cron -----------------------------------------------------------------------------------


def test_cron_field_out_of_range_points_at_the_field() -> None:
    line, col, _, message = only('ServerlessRuntime:\n  runtime: python3.12\n  handler: main.handler\n  triggers:\n    - {type: cron, schedule: "0 25 * * *"}\n')
    assert line == 5 and col == 33  # the "25" inside the quoted schedule
    assert "hour" in message


# --- warnings -------------------------------------------------------------------------------


def test_curl_in_alpine_health_check_warns() -> None:
    line, col, severity, message = only(
        'ContainerRuntime:\n  base_image: "alpine:3.18"\n  security: {user: "1000"}\n  health_check:\n    command: ["/bin/sh", "-c", "curl -f http://localhost:8080/health || exit 1"]\n'
    )
    assert (line, col, severity) == (5, 14, "warning") and "no curl" in message


def test_container_running_as_root_warns() -> None:
    line, col, severity, message = only("ContainerRuntime:\n  base_image: a\n")
    assert (line, col, severity) == (2, 3, "warning") and "runs as root" in message


def test_jvm_heap_larger_than_container_limit_warns() -> None:
    found = findings(
        """
        name: app
        ContainerRuntime:
          base_image: a
          security: {user: "1000"}
          resources: {limits: {memory: 1Gi}}
        PerformanceTuning:
          jvm_tuning: {heap_size: 2g}
        """
    )
    assert found == [(7, 27, "warning", "the JVM heap is larger than the container's memory limit")]


def test_metric_declared_with_the_wrong_type() -> None:
    line, col, _, message = only("ResourceMetrics:\n  cpu:\n    context_switches: gauge\n")
    assert (line, col) == (3, 23) and "context_switches is a cumulative count" in message


@pytest.mark.parametrize(
    "text,expected",
    [
        ("8080", (8080, None, None, "tcp")),
        ("9000:90", (90, 9000, None, "tcp")),
        ("127.0.0.1:8080:80/udp", (80, 8080, "127.0.0.1", "udp")),
        ("[::1]:8080:80", (80, 8080, "::1", "tcp")),
    ],
)
def test_port_mappings(text: str, expected: tuple) -> None:
    from rtm.kinds.container import parse_port

    port = parse_port(text)
    assert (port.container_port, port.host_port, port.host_ip, port.protocol) == expected


def test_port_out_of_range() -> None:
    line, col, _, message = only('ContainerRuntime:\n  base_image: a\n  security: {user: "1"}\n  ports: ["70000:80"]\n')
    assert (line, col) == (4, 11) and "from 1 to 65535" in message


# --- settings that reach into the host ---------------------------------------------------


def test_host_level_container_settings_each_warn_at_their_position_with_why() -> None:
    found = findings(
        """
        ContainerRuntime:
          base_image: alpine:3.18
          volumes: ["/:/host", "data:/data", "/var/run/docker.sock:/var/run/docker.sock:ro"]
          security:
            user: "1000"
            capabilities:
              - NET_BIND_SERVICE
              - SYS_ADMIN
              - cap_sys_module
            seccomp_profile: unconfined
            no_new_privileges: false
        """
    )
    assert [(line, col, severity) for line, col, severity, _ in found] == [
        (8, 9, "warning"), (9, 9, "warning"), (3, 13, "warning"), (3, 38, "warning"), (10, 22, "warning"), (11, 24, "warning"),
    ]
    messages = [message for *_, message in found]
    assert "SYS_ADMIN lets the container mount filesystems" in messages[0]
    assert "SYS_MODULE lets the container load kernel modules" in messages[1]
    assert 'bind mount of "/" gives the container the host\'s whole filesystem' in messages[2]
    assert "the Docker socket: full control of the engine" in messages[3]
    assert "unconfined lets the container make every system call" in messages[4]
    assert "no_new_privileges: false lets a process gain privileges" in messages[5]


def test_safe_capabilities_and_named_volumes_do_not_warn() -> None:
    assert findings(
        """
        ContainerRuntime:
          base_image: alpine:3.18
          volumes: ["data:/data", "/srv/conf:/etc/app:ro"]
          security: {user: "1000", capabilities: [NET_BIND_SERVICE, CHOWN]}
        """
    ) == []


def test_a_very_large_replica_count_warns() -> None:
    line, col, severity, message = only("name: web\nreplicas: 100000\nContainerRuntime: {base_image: a, security: {user: '1000'}}\n")
    assert (line, col, severity) == (2, 11, "warning")
    assert message == "replicas: 100,000 is more than 1,000 replicas"
    assert findings("name: web\nreplicas: 1000\nContainerRuntime: {base_image: a, security: {user: '1000'}}\n") == []
