"""The collector: what a scrape contains, read back with prometheus_client's parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from backends.host import HostBackend
from backends.records import DurationHistogram, DurationStats, FilesystemInfo, NetIO
from console.eventlog import EventLog
from console.exporter.assembly import ExporterSpecs, ExporterStartError, build_registry, load_specs
from console.poller import Poller
from test_exporter_helpers import (
    ScriptedBackend,
    container,
    function,
    promtool,
    repoll,
    samples,
    scrape,
    value_of,
    vm,
    wait_until,
)


@pytest.fixture
def host_poller():
    poller = Poller([HostBackend()], interval=0.5)
    poller.start()
    assert poller.wait_ready(20)
    # The CPU usage ratio needs two readings some clock ticks apart.
    wait_until(lambda: repoll(poller, "host").backends["host"].snapshot.items[0].cpu_usage_ratio is not None, "a CPU usage ratio")
    yield poller
    poller.stop()


def test_host_scrape_has_node_exporter_names_types_labels_and_plausible_values(host_poller):
    families = scrape(build_registry(host_poller))

    expected_types = {
        "rtm_host_cpu_seconds": "counter",
        "rtm_host_cpu_usage_ratio": "gauge",
        "rtm_host_load1": "gauge",
        "rtm_host_load5": "gauge",
        "rtm_host_load15": "gauge",
        "rtm_host_context_switches": "counter",
        "rtm_host_memory_used_bytes": "gauge",
        "rtm_host_memory_available_bytes": "gauge",
        "rtm_host_swap_used_bytes": "gauge",
        "rtm_host_filesystem_size_bytes": "gauge",
        "rtm_host_filesystem_avail_bytes": "gauge",
        "rtm_host_filesystem_usage_ratio": "gauge",
        "rtm_host_disk_reads_completed": "counter",
        "rtm_host_disk_writes_completed": "counter",
        "rtm_host_disk_read_bytes": "counter",
        "rtm_host_disk_written_bytes": "counter",
        "rtm_host_network_receive_bytes": "counter",
        "rtm_host_network_transmit_bytes": "counter",
        "rtm_host_network_receive_packets": "counter",
        "rtm_host_network_transmit_packets": "counter",
        "rtm_host_tcp_connections_established": "gauge",
        "rtm_backend_up": "gauge",
        "rtm_scrape_duration_seconds": "gauge",
        "rtm_build_info": "gauge",  # an info metric, as the text format writes it
    }
    for name, kind in expected_types.items():
        assert name in families, f"{name} missing from the scrape"
        assert families[name].type == kind, f"{name} is a {families[name].type}, not a {kind}"

    cpu = samples(families, "rtm_host_cpu_seconds", "rtm_host_cpu_seconds_total")
    assert {s.labels["mode"] for s in cpu} >= {"user", "system", "idle", "iowait"}
    assert {tuple(sorted(s.labels)) for s in cpu} == {("cpu", "mode", "node")}
    assert sum(s.value for s in cpu if s.labels["mode"] == "idle") > 0
    assert 0 <= families["rtm_host_cpu_usage_ratio"].samples[0].value <= 1

    used = families["rtm_host_memory_used_bytes"].samples[0].value
    available = families["rtm_host_memory_available_bytes"].samples[0].value
    total = families["rtm_host_memory_total_bytes"].samples[0].value
    assert used > 0 and available > 0 and used + available == total

    filesystems = samples(families, "rtm_host_filesystem_usage_ratio")
    assert any(s.labels["mountpoint"] == "/" for s in filesystems)
    assert all(set(s.labels) == {"node", "device", "fstype", "mountpoint"} and 0 <= s.value <= 1 for s in filesystems)
    assert all(s.value >= 0 for s in samples(families, "rtm_host_load1"))
    assert any(s.labels["device"] == "lo" and s.value > 0 for s in samples(families, "rtm_host_network_receive_packets"))
    assert value_of(families, "rtm_backend_up", backend="host", endpoint="local") == 1
    assert families["rtm_build_info"].samples[0].labels["version"]
    assert families["rtm_scrape_duration_seconds"].samples[0].value > 0


def test_promtool_check_metrics_reports_nothing_for_a_full_scrape(host_poller, tmp_path):
    # Containers, VMs, functions and control-loop counters besides the host, so every family
    # is linted, not only the host's.
    extra = [
        ScriptedBackend("docker@scripted", "containers", [container("web-0", health="healthy"), container("web-1", state="exited")]),
        ScriptedBackend("libvirt@scripted", "vms", [vm("db-vm"), vm("spare", state="shut off")]),
        ScriptedBackend("local-functions", "functions", [function("hello", duration=DurationStats(0.02, 0.1, 0.08),
                                                                  duration_histogram=DurationHistogram.empty().observe(0.02))]),
    ]
    events = EventLog(tmp_path / "events.jsonl")
    events.record("probe_failed", "liveness probe failed (1/3)", workload="web", details={"probe": "liveness"})
    events.record("restart", "liveness probe failed 3 times in a row", workload="web")
    poller = Poller(extra, interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        exposition = generate_latest(build_registry(_merged(host_poller, poller), events=events))
    finally:
        poller.stop()
    result = promtool("check", "metrics", stdin=exposition)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode() + result.stderr.decode() == ""


class _merged:
    """Two pollers read as one state (the host poller is shared by the module's tests)."""

    def __init__(self, *pollers: Poller) -> None:
        self.pollers = pollers
        self.clock = pollers[0].clock

    def latest(self):
        from console.poller import PollState

        backends = {}
        for poller in self.pollers:
            backends.update(poller.latest().backends)
        return PollState(backends, 1)


def test_a_resource_metrics_spec_selects_the_host_families(host_poller, tmp_path):
    (tmp_path / "metrics.yaml").write_text(
        "ResourceMetrics:\n  cpu:\n    load_average: gauge\n  network:\n    bytes_sent: counter\n"
    )
    specs = load_specs(tmp_path, required=True)
    assert specs.host_selection == {"cpu.load_average", "network.bytes_sent"}
    families = scrape(build_registry(host_poller, specs))
    assert {"rtm_host_load1", "rtm_host_load5", "rtm_host_load15", "rtm_host_network_transmit_bytes"} <= set(families)
    for left_out in ("rtm_host_cpu_seconds", "rtm_host_network_receive_bytes", "rtm_host_memory_used_bytes",
                     "rtm_host_filesystem_size_bytes", "rtm_host_tcp_connections_established"):
        assert left_out not in families
    assert "rtm_backend_up" in families  # not a host metric: always there


def test_a_counter_declared_a_gauge_stops_the_exporter_with_its_position(tmp_path):
    (tmp_path / "metrics.yaml").write_text("ResourceMetrics:\n  cpu:\n    context_switches: gauge\n")
    with pytest.raises(ExporterStartError) as error:
        load_specs(tmp_path)
    message = str(error.value)
    assert f"{tmp_path / 'metrics.yaml'}:3:" in message
    assert "context_switches is a cumulative count, so it is a counter, not a gauge" in message


def test_a_missing_specs_folder_is_fine_unless_it_was_named(tmp_path):
    assert load_specs(tmp_path / "absent").host_selection is None
    with pytest.raises(ExporterStartError, match="does not exist"):
        load_specs(tmp_path / "absent", required=True)


def test_series_of_a_removed_container_vanish_with_scripted_backend():
    engine = ScriptedBackend("docker@scripted", "containers", [container("web-0"), container("web-1")])
    poller = Poller([engine], interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        registry = build_registry(poller)
        before = scrape(registry)
        assert {s.labels["container"] for s in samples(before, "rtm_container_cpu_usage_seconds")} == {"web-0", "web-1"}

        engine.items = (container("web-0"),)
        repoll(poller, engine.name)
        after = scrape(registry)
        for family in ("rtm_container_cpu_usage_seconds", "rtm_container_memory_working_set_bytes",
                       "rtm_container_state", "rtm_container_info", "rtm_container_network_receive_bytes"):
            assert {s.labels["container"] for s in samples(after, family)} == {"web-0"}, family
        assert value_of(after, "rtm_workload_replicas", workload="web", state="running") == 1
    finally:
        poller.stop()


def test_a_backend_that_goes_down_reports_up_0_and_its_records_leave_with_scripted_backend():
    engine = ScriptedBackend("docker@scripted", "containers", [container("web-0")])
    other = ScriptedBackend("libvirt@scripted", "vms", [vm("db-vm")])
    poller = Poller([engine, other], interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        registry = build_registry(poller)
        assert value_of(scrape(registry), "rtm_backend_up", backend="docker@scripted") == 1

        engine.down = "connection refused"
        repoll(poller, engine.name)
        down = scrape(registry)
        assert value_of(down, "rtm_backend_up", backend="docker@scripted", endpoint="scripted://test") == 0
        assert samples(down, "rtm_container_cpu_usage_seconds") == []  # stale values are not shown as current
        assert value_of(down, "rtm_backend_up", backend="libvirt@scripted") == 1
        assert value_of(down, "rtm_vm_cpu_time_seconds", domain="db-vm") == 3.5

        engine.down = None
        repoll(poller, engine.name)
        back = scrape(registry)
        assert value_of(back, "rtm_backend_up", backend="docker@scripted") == 1
        assert value_of(back, "rtm_container_cpu_usage_seconds", container="web-0") == 12.5
    finally:
        poller.stop()


def test_container_vm_and_function_families_carry_their_values_and_state_sets_with_scripted_backend():
    histogram = DurationHistogram.empty((0.1, 1.0)).observe(0.05).observe(0.5).observe(4.0)
    backends = [
        ScriptedBackend("docker@scripted", "containers", [
            container("web-0", health="unhealthy", memory_limit_bytes=None),
            container("lonely", workload=None, state="paused"),
        ]),
        ScriptedBackend("libvirt@scripted", "vms", [vm("db-vm", state="shut off")]),
        ScriptedBackend("local-functions", "functions", [function("hello", duration=DurationStats(0.2, 0.9, 0.7), duration_histogram=histogram)]),
    ]
    poller = Poller(backends, interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        families = scrape(build_registry(poller, ExporterSpecs()))
    finally:
        poller.stop()

    assert value_of(families, "rtm_container_health", container="web-0", health="unhealthy") == 1
    assert value_of(families, "rtm_container_health", container="web-0", health="healthy") == 0
    assert value_of(families, "rtm_container_health", container="lonely") is None  # no health check
    assert value_of(families, "rtm_container_state", container="lonely", state="paused", workload="") == 1
    assert value_of(families, "rtm_container_spec_memory_limit_bytes", container="web-0") is None
    assert value_of(families, "rtm_container_spec_memory_limit_bytes", container="lonely") == 128 * 2**20
    assert value_of(families, "rtm_workload_replicas", workload="web", state="running") == 1
    assert all(s.labels["workload"] != "" for s in samples(families, "rtm_workload_replicas"))

    assert value_of(families, "rtm_vm_state", domain="db-vm", state="shutoff") == 1
    assert value_of(families, "rtm_vm_state", domain="db-vm", state="running") == 0
    assert value_of(families, "rtm_vm_memory_max_bytes", domain="db-vm", host="libvirt@scripted") == 128 * 2**20

    assert families["rtm_function_invocations"].type == "counter"
    assert value_of(families, "rtm_function_invocations", function="hello", target="local", region="") == 7
    assert value_of(families, "rtm_function_errors", function="hello") == 1
    assert value_of(families, "rtm_function_duration_window_seconds", function="hello", stat="p95") == 0.7
    duration = families["rtm_function_duration_seconds"]
    assert duration.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in duration.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 1, "1.0": 2, "+Inf": 3}
    assert [s.value for s in duration.samples if s.name.endswith("_count")] == [3]
    assert [s.value for s in duration.samples if s.name.endswith("_sum")] == [pytest.approx(4.55)]


def test_control_loop_counters_follow_the_event_log_across_a_rotation(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", max_bytes=1500)
    poller = Poller([ScriptedBackend("docker@scripted", "containers", [])], interval=60)
    registry = build_registry(poller, events=events)
    events.record("probe_failed", "liveness probe failed (1/3)", workload="web", details={"probe": "liveness"})
    events.record("probe_failed", "readiness probe failed (1/2)", workload="web")  # probe from the message
    events.record("restart", "liveness probe failed 3 times in a row", workload="web")
    events.record("scale", "3 -> 5", workload="web", details={"direction": "scale_up"})
    first = scrape(registry)
    assert value_of(first, "rtm_probe_failures", workload="web", probe="liveness") == 1
    assert value_of(first, "rtm_probe_failures", workload="web", probe="readiness") == 1
    assert value_of(first, "rtm_workload_restarts", workload="web") == 1
    assert value_of(first, "rtm_scaling_decisions", workload="web", direction="up") == 1
    assert value_of(first, "rtm_control_events", kind="probe_failed", workload="web") == 2

    for _ in range(8):  # rotates the 1500-byte log once (about 160 bytes an event)
        events.record("probe_failed", "liveness probe failed (2/3)", workload="web", details={"probe": "liveness"})
    assert events.old_path.exists()
    second = scrape(registry)
    assert value_of(second, "rtm_probe_failures", workload="web", probe="liveness") == 9
    assert value_of(scrape(registry), "rtm_probe_failures", workload="web", probe="liveness") == 9  # no double count


def test_desired_replicas_come_from_the_workload_specs():
    sample = Path(__file__).resolve().parents[1] / "sample-specs" / "workload-web.yaml"
    specs = load_specs(sample)
    poller = Poller([ScriptedBackend("docker@scripted", "containers", [container("web-0")])], interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        families = scrape(build_registry(poller, specs))
    finally:
        poller.stop()
    assert value_of(families, "rtm_workload_replicas_desired", workload="web") == 2
    assert value_of(families, "rtm_workload_replicas", workload="web", state="running") == 1


def test_container_interfaces_and_layers_are_left_out_of_host_metrics_with_scripted_backend():
    real = HostBackend().collect()
    interfaces = (*real.networks, NetIO("veth3f9a2c1", 10, 20, 1, 2), NetIO("vnet7", 10, 20, 1, 2), NetIO("br-homelab", 10, 20, 1, 2))
    layer = FilesystemInfo("overlay", "/srv/docker/overlay2/0a1b2c/merged", "overlay", 100, 50, 0.5)
    root_in_container = FilesystemInfo("overlay", "/", "overlay", 100, 50, 0.5)
    node = dataclasses.replace(real, networks=interfaces, filesystems=(layer, root_in_container))
    poller = Poller([ScriptedBackend("host", "nodes", [node])], interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        families = scrape(build_registry(poller))
    finally:
        poller.stop()
    devices = {s.labels["device"] for s in samples(families, "rtm_host_network_receive_bytes")}
    assert "br-homelab" in devices and "lo" in devices
    assert not any(device.startswith(("veth", "vnet")) for device in devices)
    assert [s.labels["mountpoint"] for s in samples(families, "rtm_host_filesystem_size_bytes")] == ["/"]
