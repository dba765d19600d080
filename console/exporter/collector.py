"""Prometheus metric families built from the poller's latest state.

A custom collector, never long-lived `Gauge.set` series: each collect reads `poller.latest()`
(a reference read that never waits on a backend) and yields new metric families, so a
container or VM that is gone is gone from the output too (exposition.py renders a backend's
families once per poll for /metrics). Records of a backend whose latest
poll failed are left out (their last values would look current); that backend shows
`rtm_backend_up 0` instead, and everything else is exported as usual.

Names follow node_exporter (host), cAdvisor (containers) and the libvirt exporters (VMs) under
the `rtm_` prefix, in base units, counters ending in `_total`. Labels are few and stable: names
of things (node, device, container, workload, domain, function, backend), never ids that change
on every re-creation or free text. docs/metrics.md lists every family.
"""

from __future__ import annotations

import platform
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from backends.base import Availability
from backends.records import ContainerInfo, FilesystemInfo, FunctionInfo, NodeInfo, VmInfo
from console.exporter.event_counts import EventCounter
from console.exporter.swarm_series import swarm_families
from console.poller import BackendState, PollState
from console.resource_kinds import CONTAINERS, KINDS, ResourceKind
from rtm import __version__

CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH_STATES = ("starting", "healthy", "unhealthy")
VM_STATES = ("running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended", "nostate")
# libvirt's words (as `virsh domstate` prints them) -> the libvirt exporters' label values.
_VM_STATE_WORDS = {"no state": "nostate", "shutting down": "shutdown", "shut off": "shutoff",
                   "suspended (power management)": "pmsuspended", "pmsuspended": "pmsuspended"}
HOST_INFO_LABELS = ("hostname", "zone", "os", "arch")  # fixed keys: user labels could be anything
# Host-side ends of container (veth*) and VM (vnet*) interfaces: one per container or VM, named
# at random and gone with it, so they would churn series; the container and VM families
# already count that traffic.
EXCLUDED_NETWORK_DEVICES = re.compile(r"^(veth|vnet)")


def is_container_layer(fs: FilesystemInfo) -> bool:
    """An overlay mount other than "/" is a container's root (an engine with a data root of its
    own is not caught by the host's /var/lib/docker exclusion): one per container, so left out
    like node_exporter leaves out overlay. Inside a container, "/" itself stays."""
    return fs.fstype == "overlay" and fs.mountpoint != "/"


class StateReader(Protocol):
    def latest(self) -> PollState: ...


class _Family:
    """One metric family being filled; a repeated label set is dropped (a scrape with two
    samples of one series is invalid), e.g. a filesystem mounted twice at one place."""

    def __init__(self, kind: type[Metric], name: str, doc: str, labels: Sequence[str]) -> None:
        self.metric = kind(name, doc, labels=labels)  # type: ignore[call-arg]
        self._seen: set[tuple[str, ...]] = set()

    def add(self, labels: Sequence[str], value: float) -> None:
        key = tuple(labels)
        if key not in self._seen:
            self._seen.add(key)
            self.metric.add_metric(key, float(value))  # type: ignore[attr-defined]


def gauge(name: str, doc: str, *labels: str) -> _Family:
    return _Family(GaugeMetricFamily, name, doc, labels)


def counter(name: str, doc: str, *labels: str) -> _Family:
    return _Family(CounterMetricFamily, name, doc, labels)


# ----------------------------------------------------------------------------------- host
# Which families each entry of a ResourceMetrics spec ("group.name") selects.

HOST_SELECTIONS: Mapping[str, tuple[str, ...]] = {
    "cpu.usage_percent": ("rtm_host_cpu_seconds_total", "rtm_host_cpu_usage_ratio"),
    "cpu.load_average": ("rtm_host_load1", "rtm_host_load5", "rtm_host_load15"),
    "cpu.context_switches": ("rtm_host_context_switches_total",),
    "memory.usage_bytes": ("rtm_host_memory_used_bytes", "rtm_host_memory_total_bytes"),
    "memory.available_bytes": ("rtm_host_memory_available_bytes",),
    "memory.swap_usage_bytes": ("rtm_host_swap_used_bytes", "rtm_host_swap_total_bytes"),
    "disk.usage_percent": ("rtm_host_filesystem_size_bytes", "rtm_host_filesystem_avail_bytes",
                           "rtm_host_filesystem_usage_ratio", "rtm_host_filesystem_readonly"),
    "disk.read_iops": ("rtm_host_disk_reads_completed_total",),
    "disk.write_iops": ("rtm_host_disk_writes_completed_total",),
    "disk.read_throughput": ("rtm_host_disk_read_bytes_total",),
    "disk.write_throughput": ("rtm_host_disk_written_bytes_total",),
    "network.bytes_received": ("rtm_host_network_receive_bytes_total",),
    "network.bytes_sent": ("rtm_host_network_transmit_bytes_total",),
    "network.packets_received": ("rtm_host_network_receive_packets_total",),
    "network.packets_sent": ("rtm_host_network_transmit_packets_total",),
    "network.connection_count": ("rtm_host_tcp_connections_established",),
}


def host_families(nodes: Iterable[NodeInfo], selection: frozenset[str] | None = None) -> list[Metric]:
    """Host metrics of every node; `selection` ("group.name" entries of a ResourceMetrics
    spec) keeps only the families those entries name, None keeps all."""
    chosen = set(HOST_SELECTIONS) if selection is None else set(selection) & set(HOST_SELECTIONS)
    nodes = tuple(nodes)
    families: list[_Family] = []

    def wanted(entry: str) -> bool:
        return entry in chosen

    info = gauge("rtm_host_info", "Labels of the node; always 1.", "node", *HOST_INFO_LABELS)
    boot = gauge("rtm_host_boot_time_seconds", "Node boot time, seconds since the epoch.", "node")
    cordoned = gauge("rtm_host_cordoned", "1 if the node is cordoned (no new placements).", "node")
    for node in nodes:
        info.add((node.id, *(node.labels.get(key, "") for key in HOST_INFO_LABELS)), 1)
        boot.add((node.id,), node.boot_time)
        cordoned.add((node.id,), int(node.cordoned))
    families += [info, boot, cordoned]

    if wanted("cpu.usage_percent"):
        seconds = counter("rtm_host_cpu_seconds_total", "Seconds the CPUs spent in each mode.", "node", "cpu", "mode")
        usage = gauge("rtm_host_cpu_usage_ratio", "Share of CPU time not idle (nor iowait) over the last poll interval, 0-1.", "node")
        for node in nodes:
            for cpu in node.cpu_seconds:
                seconds.add((node.id, str(cpu.cpu), cpu.mode), cpu.seconds)
            if node.cpu_usage_ratio is not None:
                usage.add((node.id,), node.cpu_usage_ratio)
        families += [seconds, usage]
    if wanted("cpu.load_average"):
        for minutes in ("1", "5", "15"):
            load = gauge(f"rtm_host_load{minutes}", f"{minutes}m load average.", "node")
            for node in nodes:
                load.add((node.id,), getattr(node, f"load{minutes}"))
            families.append(load)
    if wanted("cpu.context_switches"):
        switches = counter("rtm_host_context_switches_total", "Total number of context switches.", "node")
        for node in nodes:
            switches.add((node.id,), node.context_switches_total)
        families.append(switches)

    memory = (
        ("memory.usage_bytes", "rtm_host_memory_used_bytes", "Memory not available for new work (total - available), bytes.", "memory_bytes_used"),
        ("memory.usage_bytes", "rtm_host_memory_total_bytes", "Physical memory, bytes.", "memory_bytes_total"),
        ("memory.available_bytes", "rtm_host_memory_available_bytes", "Memory available for new work without swapping (MemAvailable), bytes.", "memory_bytes_available"),
        ("memory.swap_usage_bytes", "rtm_host_swap_used_bytes", "Swap space in use, bytes.", "swap_bytes_used"),
        ("memory.swap_usage_bytes", "rtm_host_swap_total_bytes", "Swap space, bytes.", "swap_bytes_total"),
    )
    for entry, name, doc, attribute in memory:
        if wanted(entry):
            family = gauge(name, doc, "node")
            for node in nodes:
                family.add((node.id,), getattr(node, attribute))
            families.append(family)

    if wanted("disk.usage_percent"):
        fs_labels = ("node", "device", "fstype", "mountpoint")
        size = gauge("rtm_host_filesystem_size_bytes", "Filesystem size, bytes.", *fs_labels)
        avail = gauge("rtm_host_filesystem_avail_bytes", "Filesystem space available to non-root users, bytes.", *fs_labels)
        ratio = gauge("rtm_host_filesystem_usage_ratio", "Used share of the space non-root users can use (df's Use%), 0-1.", *fs_labels)
        readonly = gauge("rtm_host_filesystem_readonly", "1 if the filesystem is mounted read-only.", *fs_labels)
        for node in nodes:
            for fs in node.filesystems:
                if is_container_layer(fs):
                    continue
                labels = (node.id, fs.device, fs.fstype, fs.mountpoint)
                size.add(labels, fs.size_bytes)
                avail.add(labels, fs.avail_bytes)
                ratio.add(labels, fs.used_ratio)
                readonly.add(labels, int(fs.read_only))
        families += [size, avail, ratio, readonly]
    disk = (
        ("disk.read_iops", "rtm_host_disk_reads_completed_total", "Reads completed successfully.", "reads_completed"),
        ("disk.write_iops", "rtm_host_disk_writes_completed_total", "Writes completed successfully.", "writes_completed"),
        ("disk.read_throughput", "rtm_host_disk_read_bytes_total", "Bytes read successfully.", "read_bytes"),
        ("disk.write_throughput", "rtm_host_disk_written_bytes_total", "Bytes written successfully.", "written_bytes"),
    )
    for entry, name, doc, attribute in disk:
        if wanted(entry):
            family = counter(name, doc, "node", "device")
            for node in nodes:
                for device in node.disks:
                    family.add((node.id, device.device), getattr(device, attribute))
            families.append(family)
    network = (
        ("network.bytes_received", "rtm_host_network_receive_bytes_total", "Bytes received per network device.", "bytes_recv"),
        ("network.bytes_sent", "rtm_host_network_transmit_bytes_total", "Bytes sent per network device.", "bytes_sent"),
        ("network.packets_received", "rtm_host_network_receive_packets_total", "Packets received per network device.", "packets_recv"),
        ("network.packets_sent", "rtm_host_network_transmit_packets_total", "Packets sent per network device.", "packets_sent"),
    )
    for entry, name, doc, attribute in network:
        if wanted(entry):
            family = counter(name, doc, "node", "device")
            for node in nodes:
                for interface in node.networks:
                    if not EXCLUDED_NETWORK_DEVICES.match(interface.device):
                        family.add((node.id, interface.device), getattr(interface, attribute))
            families.append(family)
    if wanted("network.connection_count"):
        tcp = gauge("rtm_host_tcp_connections_established", "TCP connections in state ESTABLISHED (IPv4 and IPv6).", "node")
        for node in nodes:
            if node.tcp_connections is not None:
                tcp.add((node.id,), node.tcp_connections)
        families.append(tcp)
    return [family.metric for family in families]


# ----------------------------------------------------------------------------- containers

_CONTAINER_LABELS = ("container", "engine", "workload")


def container_families(containers: Iterable[ContainerInfo], selection: frozenset[str] | None = None) -> list[Metric]:
    """Every container family (`selection` is the descriptors' one signature: only host
    families are selectable)."""
    containers = tuple(containers)
    info = gauge("rtm_container_info", "Container metadata; always 1.", *_CONTAINER_LABELS, "image")
    cpu = counter("rtm_container_cpu_usage_seconds_total", "CPU time consumed, seconds (all cores).", *_CONTAINER_LABELS)
    working_set = gauge("rtm_container_memory_working_set_bytes", "Memory in use minus inactive file cache (what the OOM killer looks at), bytes.", *_CONTAINER_LABELS)
    limit = gauge("rtm_container_spec_memory_limit_bytes", "Memory limit, bytes (absent without a limit).", *_CONTAINER_LABELS)
    counters = (
        ("rtm_container_network_receive_bytes_total", "Bytes received.", "net_rx_bytes"),
        ("rtm_container_network_transmit_bytes_total", "Bytes sent.", "net_tx_bytes"),
        ("rtm_container_network_receive_packets_total", "Packets received.", "net_rx_packets"),
        ("rtm_container_network_transmit_packets_total", "Packets sent.", "net_tx_packets"),
        ("rtm_container_fs_reads_bytes_total", "Bytes read from block devices.", "block_read_bytes"),
        ("rtm_container_fs_writes_bytes_total", "Bytes written to block devices.", "block_write_bytes"),
        ("rtm_container_restarts_total", "Restarts by the engine's restart policy.", "restarts"),
    )
    io = [(counter(name, doc, *_CONTAINER_LABELS), attribute) for name, doc, attribute in counters]
    start = gauge("rtm_container_start_time_seconds", "When the container last started, seconds since the epoch.", *_CONTAINER_LABELS)
    state = gauge("rtm_container_state", "1 for the container's current state, 0 for the others.", *_CONTAINER_LABELS, "state")
    health = gauge("rtm_container_health", "1 for the health check's current verdict, 0 for the others (containers with a health check).", *_CONTAINER_LABELS, "health")
    for container in containers:
        labels = (container.name, container.engine, container.workload or "")
        info.add((*labels, container.image), 1)
        cpu.add(labels, container.cpu_seconds_total)
        working_set.add(labels, container.memory_working_set_bytes)
        if container.memory_limit_bytes is not None:
            limit.add(labels, container.memory_limit_bytes)
        for family, attribute in io:
            family.add(labels, getattr(container, attribute))
        if container.started_at is not None:
            start.add(labels, container.started_at)
        _state_set(state, labels, container.state, CONTAINER_STATES)
        if container.health is not None:
            _state_set(health, labels, container.health, HEALTH_STATES)
    return [f.metric for f in (info, cpu, working_set, limit, *(f for f, _ in io), start, state, health)]


def workload_families(containers: Iterable[ContainerInfo], desired: Mapping[str, int]) -> list[Metric]:
    """Replicas of each workload by state (from container records) and as the specs ask."""
    by_state: dict[str, Counter[str]] = {}
    for container in containers:
        if container.workload:
            by_state.setdefault(container.workload, Counter())[container.state] += 1
    replicas = gauge("rtm_workload_replicas", "Containers of the workload in each state.", "workload", "state")
    for workload in sorted(set(by_state) | set(desired)):
        counts = by_state.get(workload, Counter())
        for state in (*CONTAINER_STATES, *sorted(set(counts) - set(CONTAINER_STATES))):
            replicas.add((workload, state), counts[state])
    wanted = gauge("rtm_workload_replicas_desired", "Replicas to keep: the desired state's count of an applied workload (scale and the autoscaler change it), else what its spec asks for.", "workload")
    for workload, count in sorted(desired.items()):
        wanted.add((workload,), count)
    return [replicas.metric, wanted.metric]


def _state_set(family: _Family, labels: tuple[str, ...], current: str, known: tuple[str, ...]) -> None:
    for state in known if current in known else (*known, current):
        family.add((*labels, state), int(state == current))


# ------------------------------------------------------------------------------------ VMs

_VM_LABELS = ("domain", "host")


def vm_state(word: str) -> str:
    """A VM's state as a label value: libvirt's words to the libvirt exporters' names."""
    word = word.strip().lower()
    return _VM_STATE_WORDS.get(word) or re.sub(r"[^a-z0-9]+", "_", word).strip("_") or "nostate"


def vm_families(vms: Iterable[VmInfo], selection: frozenset[str] | None = None) -> list[Metric]:
    info = gauge("rtm_vm_info", "VM metadata; always 1.", *_VM_LABELS, "uuid")
    cpu = counter("rtm_vm_cpu_time_seconds_total", "CPU time used by the VM, seconds (all vCPUs).", *_VM_LABELS)
    vcpus = gauge("rtm_vm_vcpus", "Virtual CPUs.", *_VM_LABELS)
    memory = gauge("rtm_vm_memory_current_bytes", "Memory the VM has now (balloon), bytes.", *_VM_LABELS)
    memory_max = gauge("rtm_vm_memory_max_bytes", "Memory the VM may have, bytes.", *_VM_LABELS)
    counters = (
        ("rtm_vm_block_read_bytes_total", "Bytes read from the VM's disks.", "block_read_bytes"),
        ("rtm_vm_block_write_bytes_total", "Bytes written to the VM's disks.", "block_write_bytes"),
        ("rtm_vm_interface_receive_bytes_total", "Bytes received by the VM's network interfaces.", "net_rx_bytes"),
        ("rtm_vm_interface_transmit_bytes_total", "Bytes sent by the VM's network interfaces.", "net_tx_bytes"),
    )
    io = [(counter(name, doc, *_VM_LABELS), attribute) for name, doc, attribute in counters]
    start = gauge("rtm_vm_start_time_seconds", "When the VM last started, seconds since the epoch.", *_VM_LABELS)
    state = gauge("rtm_vm_state", "1 for the VM's current state, 0 for the others.", *_VM_LABELS, "state")
    for vm in vms:
        labels = (vm.name, vm.host)
        info.add((*labels, vm.uuid), 1)
        cpu.add(labels, vm.cpu_time_seconds)
        vcpus.add(labels, vm.vcpus)
        memory.add(labels, vm.memory_current_bytes)
        memory_max.add(labels, vm.memory_max_bytes)
        for family, attribute in io:
            family.add(labels, getattr(vm, attribute))
        if vm.started_at is not None:
            start.add(labels, vm.started_at)
        _state_set(state, labels, vm_state(vm.state), VM_STATES)
    return [f.metric for f in (info, cpu, vcpus, memory, memory_max, *(f for f, _ in io), start, state)]


# ------------------------------------------------------------------------------ functions

_FUNCTION_LABELS = ("function", "target", "region")


def function_families(functions: Iterable[FunctionInfo], selection: frozenset[str] | None = None) -> list[Metric]:
    functions = tuple(functions)
    info = gauge("rtm_function_info", "Function metadata; always 1.", *_FUNCTION_LABELS, "runtime")
    invocations = counter("rtm_function_invocations_total", "Invocations.", *_FUNCTION_LABELS)
    errors = counter("rtm_function_errors_total", "Invocations that failed.", *_FUNCTION_LABELS)
    memory = gauge("rtm_function_memory_limit_bytes", "Memory configured for the function, bytes.", *_FUNCTION_LABELS)
    timeout = gauge("rtm_function_timeout_seconds", "Timeout configured for the function, seconds.", *_FUNCTION_LABELS)
    window = gauge("rtm_function_duration_window_seconds", "Invocation duration over the backend's reporting window (CloudWatch-style statistics).", *_FUNCTION_LABELS, "stat")
    histogram = HistogramMetricFamily("rtm_function_duration_seconds", "Duration of every invocation the backend counted.", labels=_FUNCTION_LABELS)
    for function in functions:
        labels = (function.name, function.target, function.region or "")
        info.add((*labels, function.runtime), 1)
        invocations.add(labels, function.invocations)
        errors.add(labels, function.errors)
        memory.add(labels, function.memory_mb * 1024 * 1024)
        timeout.add(labels, function.timeout_seconds)
        if function.duration is not None:
            window.add((*labels, "average"), function.duration.average_seconds)
            window.add((*labels, "maximum"), function.duration.maximum_seconds)
            if function.duration.p95_seconds is not None:
                window.add((*labels, "p95"), function.duration.p95_seconds)
        spread = function.duration_histogram
        if spread is not None:
            buckets = [(_le(bound), count) for bound, count in zip(spread.bounds, spread.bucket_counts)]
            histogram.add_metric(list(labels), buckets + [("+Inf", spread.count)], spread.sum_seconds)
    return [*(f.metric for f in (info, invocations, errors, memory, timeout, window)), histogram]


def _le(bound: float) -> str:
    return repr(float(bound))


# ------------------------------------------------------------------------- control loops


def control_families(counts: EventCounter) -> list[Metric]:
    totals = counts.totals()
    events = counter("rtm_control_events_total", "Events the control loops logged, by kind.", "kind", "workload")
    failures = counter("rtm_probe_failures_total", "Failed probe runs.", "workload", "probe")
    recoveries = counter("rtm_probe_recoveries_total", "Probe passes that ended a failure streak.", "workload", "probe")
    restarts = counter("rtm_workload_restarts_total", "Restarts of a workload's replicas, by the control loops or from the console.", "workload")
    scaling = counter("rtm_scaling_decisions_total", "Scaling decisions carried out, by direction.", "workload", "direction")
    for (kind, workload), count in sorted(totals.by_kind.items()):
        events.add((kind, workload), count)
    for (workload, probe), count in sorted(totals.probe_failures.items()):
        failures.add((workload, probe), count)
    for (workload, probe), count in sorted(totals.probe_recoveries.items()):
        recoveries.add((workload, probe), count)
    for workload, count in sorted(totals.restarts.items()):
        restarts.add((workload,), count)
    for (workload, direction), count in sorted(totals.scaling_decisions.items()):
        scaling.add((workload, direction), count)
    return [f.metric for f in (events, failures, recoveries, restarts, scaling)]


# ------------------------------------------------------------------------------- backends


def backend_families(state: PollState, unavailable: Sequence[Availability], now: float) -> list[Metric]:
    up = gauge("rtm_backend_up", "1 if the backend's latest poll succeeded, else 0 (also before its first poll).", "backend", "endpoint")
    polls = counter("rtm_backend_polls_total", "Finished poll attempts, good or failed.", "backend")
    duration = gauge("rtm_backend_poll_duration_seconds", "How long the last good poll took.", "backend")
    age = gauge("rtm_backend_data_age_seconds", "Seconds since the last good poll.", "backend")
    for backend in state.backends.values():
        up.add((backend.name, backend.availability.endpoint), int(is_up(backend)))
        polls.add((backend.name,), backend.polls)
        if backend.snapshot is not None:
            duration.add((backend.name,), backend.snapshot.duration_seconds)
        backend_age = backend.age(now)
        if backend_age is not None:
            age.add((backend.name,), backend_age)
    for availability in unavailable:  # configured, but could not even be built
        up.add((availability.backend, availability.endpoint), 0)
    return [f.metric for f in (up, polls, duration, age)]


# ------------------------------------------------------------------------------ collector


class RtmCollector:
    """The exporter's one collector: register it in a CollectorRegistry.

    `source` is the poller (anything with `latest()`); `host_selection` the "group.name"
    entries of a ResourceMetrics spec (None: every host metric); `events` counts the event
    log; `unavailable` lists backends that could not be built (exported as up 0);
    `desired_replicas` maps workload names to what their specs ask for; `desired_counts()`
    gives the desired state's counts of applied workloads, read at every scrape (they change
    with scale and the autoscaler) and taking precedence; `clock` is the poller's clock, for
    data ages.
    """

    def __init__(
        self,
        source: StateReader,
        *,
        host_selection: frozenset[str] | None = None,
        events: EventCounter | None = None,
        unavailable: Sequence[Availability] = (),
        desired_replicas: Mapping[str, int] | None = None,
        desired_counts: Callable[[], Mapping[str, int]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.source = source
        self.host_selection = host_selection
        self.events = events
        self.unavailable = tuple(unavailable)
        self.desired_replicas = dict(desired_replicas or {})
        self.desired_counts = desired_counts or dict
        self.clock = clock or getattr(source, "clock", time.monotonic)

    def collect(self) -> list[Metric]:
        began = time.perf_counter()
        state = self.source.latest()
        records = _fresh_records(state)
        families = [family for kind in KINDS for family in self.kind_families(kind, records)]
        return [family for family in families if family.samples] + self.live_families(state, began)

    def kind_families(self, kind: ResourceKind, records: Iterable[object]) -> list[Metric]:
        """The families of `kind` for `records` (of any kind: the others are skipped)."""
        return kind.metric_families([r for r in records if isinstance(r, kind.record)], self.host_selection)

    def live_families(self, state: PollState, began: float) -> list[Metric]:
        """What is not one backend's snapshot: workloads, backends, Swarm, control loops, the
        build, and last this scrape's duration since `began` (time.perf_counter())."""
        containers = [r for r in _fresh_records(state) if isinstance(r, CONTAINERS.record)]
        families = [
            *workload_families(containers, {**self.desired_replicas, **self.desired_counts()}),
            *backend_families(state, self.unavailable, self.clock()),
            *swarm_families(b.name for b in state.backends.values() if b.kind == "containers" and is_up(b)),
        ]
        if self.events is not None:
            families += control_families(self.events)
        build = InfoMetricFamily("rtm_build", "rtm-console version; always 1.", value={"version": __version__, "python_version": platform.python_version()})
        families = [family for family in families if family.samples] + [build]
        families.append(GaugeMetricFamily("rtm_scrape_duration_seconds", "Time this scrape took to collect the metrics.", value=time.perf_counter() - began))
        return families


def is_up(backend: BackendState) -> bool:
    """The latest poll succeeded (so its snapshot is current)."""
    return backend.error is None and backend.snapshot is not None


def _fresh_records(state: PollState) -> list[object]:
    """Records of the backends that are up; a failed backend's last snapshot is left out."""
    return [item for backend in state.backends.values() if is_up(backend) for item in backend.snapshot.items]  # type: ignore[union-attr]
