"""The one utilization measure (rtm.autoscaling.workload_utilization) and the callers that
must agree with it: the console's scaling screen and the alert arithmetic."""

from __future__ import annotations

from backends.records import ContainerInfo
from console.tui.planning import live_workload
from rtm.autoscaling import ReplicaUsage, ResourceAmounts, workload_utilization
from rtm.documents import load_text

MI = 1024 * 1024


def test_running_replicas_with_a_reading_count_and_a_missing_request_counts_as_the_limit() -> None:
    replicas = [ReplicaUsage(True, 100, 32 * MI), ReplicaUsage(True, None, 64 * MI), ReplicaUsage(False, 900, 900 * MI)]
    metrics = workload_utilization(replicas, ResourceAmounts(None, 200), ResourceAmounts(64 * MI, 128 * MI))
    assert metrics == {"cpu": 50.0, "memory": 75.0}  # cpu against the limit; the stopped replica left out


def test_a_resource_without_request_or_limit_or_reading_is_not_measured() -> None:
    assert workload_utilization([ReplicaUsage(True, None, 10)], ResourceAmounts(None, None), ResourceAmounts(100, None)) == {"memory": 10.0}
    assert workload_utilization([], ResourceAmounts(100, None), ResourceAmounts(100, None)) == {}


SPEC = """\
name: web
ContainerRuntime:
  base_image: "alpine:3.18"
  resources:
    limits: {cpu: "500m", memory: "128Mi"}
"""


def container(name: str, state: str, cpu_ratio: float | None, memory: int) -> ContainerInfo:
    fields = dict.fromkeys(ContainerInfo.__dataclass_fields__)
    fields.update(id=name, name=name, workload="web", replica=0, engine="docker@local", state=state, health=None, image="alpine",
                  ports=(), started_at=None, cpu_ratio=cpu_ratio, cpu_seconds_total=0.0, memory_working_set_bytes=memory,
                  memory_limit_bytes=None, restarts=0, net_rx_bytes=0, net_tx_bytes=0, net_rx_packets=0, net_tx_packets=0,
                  block_read_bytes=0, block_write_bytes=0, labels={})
    return ContainerInfo(**fields)


def test_the_scaling_screen_measures_as_the_autoscaler_does_against_the_limit_without_requests() -> None:
    (document,) = load_text(SPEC, "web.yaml").documents
    live = live_workload(document, [container("web-0", "running", 0.25, 64 * MI), container("web-1", "exited", None, 0)])
    assert live is not None and live.replicas == 1
    assert live.metrics == {"cpu": 50.0, "memory": 50.0}
