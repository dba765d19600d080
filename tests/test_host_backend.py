"""The host backend against the real machine, and the records it produces."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from backends.base import Availability, Backend, BackendUnavailable
from backends.host import EXCLUDED_DISKS, PSEUDO_FSTYPES, HostBackend, read_tcp_established
from backends.records import FrozenDict, KindSnapshot, NodeInfo, to_jsonable


def poll_node(backend: HostBackend) -> NodeInfo:
    snapshot = backend.poll()
    assert isinstance(snapshot, KindSnapshot)
    (node,) = snapshot.items
    assert isinstance(node, NodeInfo)
    return node


def eventually(condition: Callable[[], bool], timeout: float = 15.0, step: float = 0.1) -> bool:
    """Poll a condition about the real machine until it holds (other work shares the host)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def busy_seconds(node: NodeInfo) -> float:
    return sum(c.seconds for c in node.cpu_seconds if c.mode not in ("idle", "iowait"))


def network(node: NodeInfo, device: str):
    (nic,) = [n for n in node.networks if n.device == device]
    return nic


# ------------------------------------------------------------------------------ the node


def test_host_backend_is_a_nodes_backend_and_connected() -> None:
    backend = HostBackend()
    assert isinstance(backend, Backend)
    assert backend.kind == "nodes"
    assert backend.availability().state == "connected"
    snapshot = backend.poll()
    assert snapshot.kind == "nodes" and snapshot.backend == backend.name
    assert snapshot.duration_seconds >= 0
    assert abs(snapshot.taken_at - time.time()) < 3600  # wall clock, epoch seconds


def test_node_identity_defaults_to_hostname_and_merges_labels() -> None:
    node = poll_node(HostBackend(zone="rack-2", labels={"role": "edge", "os": "custom"}))
    assert node.id == node.hostname == socket.gethostname()
    assert node.zone == "rack-2"
    assert node.labels["zone"] == "rack-2"
    assert node.labels["role"] == "edge"
    assert node.labels["os"] == "custom"  # configured labels override the well-known ones
    assert node.labels["arch"]


def test_memory_and_cpu_figures_match_psutil() -> None:
    node = poll_node(HostBackend())
    assert node.memory_bytes_total == psutil.virtual_memory().total
    assert 0 < node.memory_bytes_available <= node.memory_bytes_total
    assert node.memory_bytes_used == node.memory_bytes_total - node.memory_bytes_available
    assert node.swap_bytes_total == psutil.swap_memory().total
    assert 0 <= node.swap_bytes_used <= max(node.swap_bytes_total, node.swap_bytes_used)
    assert node.cpu_count == psutil.cpu_count(logical=True)
    assert node.cpu_millis_allocatable == node.cpu_count * 1000
    assert min(node.load1, node.load5, node.load15) >= 0
    assert node.context_switches_total > 0
    assert node.boot_time == psutil.boot_time() < time.time()
    cpus = {c.cpu for c in node.cpu_seconds}
    assert cpus == set(range(len(psutil.cpu_times(percpu=True))))
    modes = {c.mode for c in node.cpu_seconds}
    assert {"user", "system", "idle"} <= modes
    assert not modes & {"guest", "guest_nice"}  # already inside user/nice: never counted twice


def test_cpu_seconds_grow_and_usage_ratio_appears_while_a_busy_loop_runs() -> None:
    backend = HostBackend()
    first = poll_node(backend)
    assert first.cpu_usage_ratio is None  # nothing to compare with on the first poll
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        latest: list[NodeInfo] = []

        def busier() -> bool:
            latest.append(poll_node(backend))
            ratio = latest[-1].cpu_usage_ratio
            return busy_seconds(latest[-1]) > busy_seconds(first) and ratio is not None and ratio > 0

        assert eventually(busier)
        assert 0 < latest[-1].cpu_usage_ratio <= 1
        # Counters are cumulative: every (cpu, mode) is at least what the first poll saw.
        before = {(c.cpu, c.mode): c.seconds for c in first.cpu_seconds}
        assert all(c.seconds >= before[(c.cpu, c.mode)] for c in latest[-1].cpu_seconds)
    finally:
        busy.kill()
        busy.wait()


def test_loopback_traffic_shows_in_cumulative_lo_counters() -> None:
    backend = HostBackend()
    before = network(poll_node(backend), "lo")
    payload = b"x" * 1_000_000
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            peer, _ = server.accept()
            with peer:
                sender = threading.Thread(target=client.sendall, args=(payload,))
                sender.start()
                received = 0
                while received < len(payload):
                    received += len(peer.recv(65536))
                sender.join()
    after = network(poll_node(backend), "lo")
    # On lo every byte sent is also received, so both directions grow by the payload.
    assert after.bytes_sent - before.bytes_sent >= len(payload)
    assert after.bytes_recv - before.bytes_recv >= len(payload)
    assert after.packets_sent > before.packets_sent
    assert after.packets_recv > before.packets_recv


def test_root_filesystem_is_reported_and_pseudo_filesystems_are_not() -> None:
    node = poll_node(HostBackend())
    by_mount = {fs.mountpoint: fs for fs in node.filesystems}
    root = by_mount["/"]
    usage = psutil.disk_usage("/")
    assert root.size_bytes == usage.total
    assert 0 <= root.avail_bytes <= root.free_bytes <= root.size_bytes
    assert 0 <= root.used_ratio <= 1
    assert root.used_ratio == pytest.approx(usage.percent / 100, abs=0.01)
    assert root.files >= root.files_free >= 0
    for fs in node.filesystems:
        assert fs.fstype not in PSEUDO_FSTYPES
        assert not fs.mountpoint.startswith(("/proc", "/sys", "/dev/"))


def test_block_devices_are_whole_disks_with_cumulative_counters() -> None:
    backend = HostBackend()
    first = {d.device: d for d in poll_node(backend).disks}
    expected = {name for name in psutil.disk_io_counters(perdisk=True) if not EXCLUDED_DISKS.match(name)}
    assert set(first) == expected
    # Write and sync a file so the disk under the working directory does some I/O.
    with open("rtm-host-backend-io.tmp", "wb") as scratch:
        scratch.write(os.urandom(1 << 20))
        scratch.flush()
        os.fsync(scratch.fileno())
    os.unlink("rtm-host-backend-io.tmp")
    second = {d.device: d for d in poll_node(backend).disks}
    for name, disk in second.items():
        if name in first:
            assert disk.writes_completed >= first[name].writes_completed
            assert disk.written_bytes >= first[name].written_bytes
    if first:
        assert sum(d.written_bytes for d in second.values()) > sum(d.written_bytes for d in first.values())


def test_tcp_established_count_rises_with_open_loopback_connections() -> None:
    backend = HostBackend()
    connections = 10
    rose = False
    for _attempt in range(3):  # other processes open and close connections meanwhile
        before = poll_node(backend).tcp_connections
        assert before is not None
        with socket.create_server(("127.0.0.1", 0), backlog=connections) as server:
            clients = [socket.create_connection(server.getsockname()) for _ in range(connections)]
            peers = [server.accept()[0] for _ in range(connections)]
            during = poll_node(backend).tcp_connections
            for sock in clients + peers:
                sock.close()
        # Each loopback connection is two established sockets; ask for half as a margin.
        if during is not None and during - before >= connections:
            rose = True
            break
    assert rose


def test_tcp_established_is_read_from_the_kernel_counter_file(tmp_path) -> None:
    snmp = tmp_path / "snmp"
    snmp.write_text(
        "Ip: Forwarding DefaultTTL\nIp: 1 64\n"
        "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n"
        "Tcp: 1 200 120000 -1 21 2 0 0 17 481\n"
    )
    assert read_tcp_established(str(snmp)) == 17


def test_cordon_state_comes_from_the_injected_store() -> None:
    cordons = {"node-a"}
    backend = HostBackend(node_id="node-a", cordoned=lambda node_id: node_id in cordons)
    assert poll_node(backend).cordoned is True
    cordons.clear()
    assert poll_node(backend).cordoned is False


def test_runtimes_are_the_ones_the_caller_names() -> None:
    node = poll_node(HostBackend(runtimes=["docker", "libvirt"]))
    assert node.runtimes == frozenset({"docker", "libvirt"})


def test_mount_that_does_not_answer_is_skipped_with_fake_statvfs_and_fake_nfs_root(monkeypatch) -> None:
    """A dead network mount blocks statfs forever; stand in for one (no NFS server here) with
    "/" reported as an NFS mount and a statvfs that blocks on it."""
    real_statvfs = os.statvfs
    real_partitions = psutil.disk_partitions

    def partitions(all=False):
        return [part._replace(fstype="nfs4") if part.mountpoint == "/" else part for part in real_partitions(all)]

    monkeypatch.setattr("backends.host.psutil.disk_partitions", partitions)
    release = threading.Event()
    hung_calls = []

    def statvfs(path):
        if path == "/":
            hung_calls.append(path)
            release.wait()
        return real_statvfs(path)

    monkeypatch.setattr("backends.host.os.statvfs", statvfs)
    backend = HostBackend(mount_timeout=0.2)
    try:
        node = poll_node(backend)
        assert "/" not in {fs.mountpoint for fs in node.filesystems}
        assert any("/ did not answer" in warning for warning in node.warnings)
        # While the first call is still stuck, the mount is not asked again.
        node = poll_node(backend)
        assert any("/ skipped" in warning for warning in node.warnings)
        assert len(hung_calls) == 1
    finally:
        release.set()
    assert eventually(lambda: not backend._mounts.is_stuck("/"), timeout=10)
    monkeypatch.setattr("backends.host.os.statvfs", real_statvfs)
    node = poll_node(backend)
    assert "/" in {fs.mountpoint for fs in node.filesystems}
    assert node.warnings == ()


# ------------------------------------------------------------------------------- records


def test_node_snapshot_serialises_to_json() -> None:
    snapshot = HostBackend(runtimes=["libvirt", "docker"]).poll()
    data = json.loads(json.dumps(to_jsonable(snapshot), allow_nan=False))
    (node,) = data["items"]
    assert node["runtimes"] == ["docker", "libvirt"]
    assert node["memory_bytes_total"] == psutil.virtual_memory().total
    assert {"cpu", "mode", "seconds"} == set(node["cpu_seconds"][0])
    assert to_jsonable(float("nan")) is None


def test_records_are_immutable_and_still_copyable() -> None:
    node = poll_node(HostBackend(labels={"role": "edge"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.zone = "elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        node.labels["role"] = "core"  # type: ignore[index]
    assert isinstance(node.labels, FrozenDict)
    assert copy.deepcopy(node) == node
    assert dataclasses.asdict(node)["labels"]["role"] == "edge"
    assert hash(FrozenDict(a="1")) == hash(FrozenDict(a="1"))


def test_availability_describes_itself_in_one_line() -> None:
    availability = Availability(
        backend="docker",
        endpoint="unix:///var/run/docker.sock",
        state="unreachable",
        cause="connection refused\n(errno 111)",
        hint="start the Docker daemon",
        read_only=True,
    )
    text = availability.describe()
    assert "\n" not in text
    assert text == (
        "docker at unix:///var/run/docker.sock: unreachable [read-only] "
        "(connection refused (errno 111)); try: start the Docker daemon"
    )
    assert str(BackendUnavailable(availability)) == text
    assert not availability.connected


def test_container_layers_are_not_host_filesystems() -> None:
    """Overlay mounts other than / are container layers, wherever the engine keeps its data."""
    node = HostBackend().collect()
    assert all(fs.fstype != "overlay" or fs.mountpoint == "/" for fs in node.filesystems)


def test_local_filesystems_are_asked_directly_and_others_from_a_thread(monkeypatch) -> None:
    """A thread per statfs call costs more than the call: only filesystems that can hang get one."""
    from backends.host import MountStatter

    started = []
    real_thread = threading.Thread

    def counting_thread(*args, **kwargs):
        started.append(kwargs.get("name"))
        return real_thread(*args, **kwargs)

    monkeypatch.setattr("backends.host.threading.Thread", counting_thread)
    statter = MountStatter(timeout=5)
    assert statter.statvfs("/", "ext4").f_blocks == os.statvfs("/").f_blocks
    assert started == []
    statter.statvfs("/", "nfs4")
    assert started == ["rtm-statvfs:/"]


def test_the_mount_table_is_parsed_again_only_after_a_mount_or_unmount(monkeypatch, tmp_path: Path) -> None:
    """Parsing hundreds of container mounts each refresh is wasted work when nothing changed;
    a real tmpfs mount and unmount must still show up at once."""
    from backends.host import MountTable

    parses = []
    real_partitions = psutil.disk_partitions

    def counting_partitions(all=False):
        parses.append(all)
        return real_partitions(all)

    monkeypatch.setattr("backends.host.psutil.disk_partitions", counting_partitions)
    table = MountTable()
    try:
        mountpoint = str(tmp_path)
        assert mountpoint not in {part.mountpoint for part in table.partitions()}
        table.partitions()
        table.partitions()
        assert len(parses) == 1
        subprocess.run(["mount", "-t", "tmpfs", "rtm-test", mountpoint], check=True)
        try:
            assert mountpoint in {part.mountpoint for part in table.partitions()}
            assert len(parses) == 2
        finally:
            subprocess.run(["umount", mountpoint], check=True)
        assert mountpoint not in {part.mountpoint for part in table.partitions()}
        assert len(parses) == 3
    finally:
        table.close()
