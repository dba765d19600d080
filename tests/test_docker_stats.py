"""Live container statistics: the kernel-file parsers, Docker's formulas, and the real engine."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from backends.base import Backend
from backends.docker.backend import DockerBackend
from backends.docker.stats import (
    CgroupMounts,
    StatsStream,
    blkio_v1,
    cpu_stat_v2_ns,
    docker_cpu_ratio,
    frame_reading,
    io_stat_v2,
    net_dev,
    stat_value,
    system_cpu_ns,
    working_set,
)
from test_docker_support import eventually, remove_all, run_container

MB = 1_000_000

# ------------------------------------------------------------------------ formulas and parsers


def test_cpu_ratio_is_the_docker_cli_formula() -> None:
    # 0.5 s of container CPU while the 2-CPU host spent 2 s of CPU time: half a core.
    assert docker_cpu_ratio(500_000_000, 2_000_000_000, 2) == pytest.approx(0.5)
    assert docker_cpu_ratio(0, 2_000_000_000, 2) == 0.0
    assert docker_cpu_ratio(10, 0, 2) == 0.0


def test_working_set_is_usage_minus_inactive_file() -> None:
    assert working_set(100 * MB, 30 * MB) == 70 * MB
    assert working_set(10 * MB, 30 * MB) == 10 * MB  # inconsistent counters: never negative


def test_system_cpu_counts_user_to_softirq_like_the_engine_with_sample_proc_stat() -> None:
    text = b"cpu  100 20 30 400 5 6 7 8 0 0\ncpu0 50 10 15 200 2 3 3 4 0 0\nintr 1\n"
    assert system_cpu_ns(text, 100) == (100 + 20 + 30 + 400 + 5 + 6 + 7) * 10_000_000  # steal left out


def test_memory_stat_values_with_sample_v1_file() -> None:
    text = b"cache 4096\nrss 57344\ninactive_file 0\nhierarchical_memory_limit 9223372036854771712\ntotal_cache 4096\ntotal_inactive_file 12288\n"
    assert stat_value(text, b"total_inactive_file") == 12288
    assert stat_value(text, b"inactive_file") == 0  # the line, not the end of total_inactive_file
    assert stat_value(text, b"cache") == 4096  # the first line
    assert stat_value(text, b"swap") == 0  # absent


def test_block_io_with_sample_v1_and_v2_files() -> None:
    v1 = b"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n"
    assert blkio_v1(v1) == (4097, 8194)
    assert blkio_v1(b"Total 0\n") == (0, 0)
    v2 = b"8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=6 rios=1 wios=1\n"
    assert io_stat_v2(v2) == (1005, 2006)


def test_cpu_usage_with_sample_v2_file() -> None:
    assert cpu_stat_v2_ns(b"usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n") == 1_500_000


def test_network_counters_leave_out_loopback_with_sample_net_dev() -> None:
    text = (
        b"Inter-|   Receive                                                |  Transmit\n"
        b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        b"    lo:     999       9    0    0    0     0          0         0      999       9    0    0    0     0       0          0\n"
        b"  eth0:     200       2    0    0    0     0          0         0      300       3    0    0    0     0       0          0\n"
        b"  eth1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0       0          0\n"
    )
    assert net_dev(text) == (210, 320, 3, 5)


def test_cgroup_mounts_from_sample_mountinfo() -> None:
    text = (
        "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 /nested /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n"
        "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    mounts = CgroupMounts.from_mountinfo(text)
    assert mounts.path("cpuacct", "/docker/abc") == "/sys/fs/cgroup/cpu,cpuacct/docker/abc"
    assert mounts.path("memory", "/docker/abc") == "/sys/fs/cgroup/memory/docker/abc"
    assert mounts.path("blkio", "/nested/docker/abc") == "/sys/fs/cgroup/blkio/docker/abc"
    assert mounts.path(None, "/docker/abc") == "/sys/fs/cgroup/unified/docker/abc"
    assert mounts.path("pids", "/x") is None


FRAME = {
    "read": "2026-11-27T19:00:01.0Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}, "system_cpu_usage": 20_000_000_000, "online_cpus": 2},
    "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 18_000_000_000, "online_cpus": 2},
    "memory_stats": {"usage": 50 * MB, "limit": 128 * MB, "stats": {"total_inactive_file": 10 * MB}},
    "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 200, "rx_packets": 1, "tx_packets": 2}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 7}, {"op": "Write", "value": 9}, {"op": "Total", "value": 16}]},
}


def test_stream_frame_gives_docker_cpu_and_working_set() -> None:
    reading, ratio = frame_reading(FRAME)
    assert ratio == pytest.approx(1.0)  # 1 s of CPU over 2 s of a 2-CPU host's time: one core
    assert working_set(reading.memory_usage, reading.inactive_file) == 40 * MB
    assert reading.net == (100, 200, 1, 2) and reading.block == (7, 9)


def test_first_stream_frame_has_no_cpu_ratio() -> None:
    _reading, ratio = frame_reading({**FRAME, "precpu_stats": {"cpu_usage": {}}})
    assert ratio is None


def test_malformed_stream_frames_are_skipped_and_counted() -> None:
    stream = StatsStream.__new__(StatsStream)  # the frame handling alone, without a connection
    stream.latest, stream.malformed_frames, stream.frames = None, 0, 0
    for line in (b"{not json", b'{"cpu_stats": null}', b"[]", b'"text"', b""):
        stream._take(line)
    assert stream.malformed_frames == 4 and stream.latest is None
    stream._take(json.dumps(FRAME).encode())
    assert stream.frames == 1 and stream.latest is not None and stream.latest.cpu_ratio == pytest.approx(1.0)


# ------------------------------------------------------------------------ the real engine


@pytest.fixture
def stats_containers(docker_client, test_image, test_labels, run_id):
    """A CPU burner, a memory holder (40 MB in its /dev/shm) and an idle sleeper."""
    labels = {**test_labels, "rtm.test.case": f"{run_id}-stats"}
    made = {
        "burn": run_container(docker_client, test_image, ["sh", "-c", "while :; do :; done"], labels, name=f"{run_id}-burn"),
        "hold": run_container(docker_client, test_image, ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 && exec sleep 600"],
                              labels, name=f"{run_id}-hold", mem_limit="256m"),
        "idle": run_container(docker_client, test_image, ["sleep", "600"], labels, name=f"{run_id}-idle"),
    }
    yield {key: container.id for key, container in made.items()}
    remove_all(docker_client, f"rtm.test.case={run_id}-stats")


@pytest.mark.docker
@pytest.mark.parametrize("mode", ["cgroup", "stream"])
def test_cpu_burner_shows_cpu_and_memory_holder_shows_memory(stats_containers, mode: str) -> None:
    backend = DockerBackend(os.environ["DOCKER_HOST"], stats=mode)
    try:
        def figures():
            records = {c.id: c for c in backend.poll().items}
            hold = records.get(stats_containers["hold"])
            ready = hold is not None and hold.memory_working_set_bytes >= 40 * 1024 * 1024
            return records if ready and all(records.get(i) and records[i].cpu_ratio is not None for i in stats_containers.values()) else None

        records = eventually(figures, timeout=30, step=1.0)
        assert records, "no complete statistics within 30 s"
        burn, hold, idle = (records[stats_containers[k]] for k in ("burn", "hold", "idle"))
        assert burn.cpu_ratio > 0.3  # a busy loop on a shared 2-core machine
        assert burn.cpu_seconds_total > 0
        assert idle.cpu_ratio < 0.1
        assert 40 * 1024 * 1024 <= hold.memory_working_set_bytes < 256 * 1024 * 1024
        assert hold.memory_limit_bytes == 256 * 1024 * 1024 and idle.memory_limit_bytes is None
        assert {backend.stats.source(i) for i in stats_containers.values()} == {mode}
    finally:
        backend.close()


@pytest.mark.docker
def test_backend_is_a_containers_backend_whose_first_poll_already_has_cpu(stats_containers) -> None:
    backend = DockerBackend(os.environ["DOCKER_HOST"])
    try:
        assert isinstance(backend, Backend) and backend.kind == "containers"
        assert backend.name == "docker@local" and backend.endpoint == os.environ["DOCKER_HOST"]
        snapshot = backend.poll()
        assert snapshot.kind == "containers" and snapshot.backend == backend.name
        mine = [c for c in snapshot.items if c.id in stats_containers.values()]
        assert len(mine) == 3 and all(c.cpu_ratio is not None and c.state == "running" for c in mine)
        assert backend.availability().connected
    finally:
        backend.close()


@pytest.mark.docker
def test_containers_out_of_focus_are_read_every_few_polls_and_all_again_without_focus(stats_containers) -> None:
    """The console focuses the backend on the rows in sight: the busy container, out of focus,
    keeps its figures for two polls and gets fresh ones on the third; without a focus every
    poll reads it."""
    backend = DockerBackend(os.environ["DOCKER_HOST"], stats="cgroup", unfocused_every=3)
    burn, idle = stats_containers["burn"], stats_containers["idle"]

    def cpu_seconds() -> dict[str, float]:
        time.sleep(0.3)  # the busy loop's CPU time moves on in between
        return {c.id: c.cpu_seconds_total for c in backend.poll().items}

    try:
        first = cpu_seconds()  # poll 1 of 3 reads all
        backend.focus({idle})
        second, third, fourth = cpu_seconds(), cpu_seconds(), cpu_seconds()
        assert second[burn] == third[burn] == first[burn]  # out of focus: not read
        assert fourth[burn] > third[burn]  # every third poll reads everything
        backend.focus(None)
        fifth, sixth = cpu_seconds(), cpu_seconds()
        assert fourth[burn] < fifth[burn] < sixth[burn]
    finally:
        backend.close()


@pytest.mark.docker
def test_new_and_removed_containers_are_seen_from_events_without_listing_again(docker_client, test_image, test_labels, run_id) -> None:
    import docker

    listings = []
    original = docker.APIClient.containers

    def counting(self, *args, **kwargs):
        listings.append(kwargs)
        return original(self, *args, **kwargs)

    backend = DockerBackend(os.environ["DOCKER_HOST"])
    labels = {**test_labels, "rtm.test.case": f"{run_id}-events"}
    try:
        docker.APIClient.containers = counting
        backend.poll()
        assert len(listings) == 1
        container = run_container(docker_client, test_image, ["sleep", "600"], labels, name=f"{run_id}-late")
        seen = eventually(lambda: next((c for c in backend.poll().items if c.id == container.id and c.cpu_ratio is not None), None), 15)
        assert seen is not None and seen.state == "running" and seen.name == f"{run_id}-late"
        container.remove(force=True)
        assert eventually(lambda: all(c.id != container.id for c in backend.poll().items), 15)
        assert len(listings) == 1  # the table followed /events; nothing was listed again
    finally:
        docker.APIClient.containers = original
        backend.close()
        remove_all(docker_client, f"rtm.test.case={run_id}-events")


@pytest.mark.docker
def test_health_status_follows_the_event_stream(docker_client, test_image, test_labels, run_id) -> None:
    backend = DockerBackend(os.environ["DOCKER_HOST"])
    labels = {**test_labels, "rtm.test.case": f"{run_id}-health"}
    try:
        backend.poll()
        container = run_container(docker_client, test_image, ["sleep", "600"], labels, name=f"{run_id}-health",
                                  healthcheck={"test": ["CMD", "true"], "interval": 500_000_000, "retries": 1})
        record = eventually(lambda: next((c for c in backend.poll().items if c.id == container.id and c.health == "healthy"), None), 20)
        assert record is not None
    finally:
        backend.close()
        remove_all(docker_client, f"rtm.test.case={run_id}-health")


@pytest.mark.docker
def test_container_removed_mid_stream_ends_its_stream_quietly(docker_client, test_image, test_labels, run_id) -> None:
    labels = {**test_labels, "rtm.test.case": f"{run_id}-gone"}
    container = run_container(docker_client, test_image, ["sleep", "600"], labels, name=f"{run_id}-gone")
    backend = DockerBackend(os.environ["DOCKER_HOST"], stats="stream")
    errors: list[BaseException] = []
    threading.excepthook, previous_hook = (lambda args: errors.append(args.exc_value)), threading.excepthook
    try:
        backend.poll()
        stream = backend.stats._tracked[container.id].stream
        assert stream is not None and eventually(lambda: stream.frames > 0, 10)
        container.remove(force=True)
        assert eventually(lambda: not stream.alive, 15), "the stream of a removed container kept running"
        assert eventually(lambda: all(c.id != container.id for c in backend.poll().items), 10)
        time.sleep(0.2)
        assert errors == []
    finally:
        threading.excepthook = previous_hook
        backend.close()
        remove_all(docker_client, f"rtm.test.case={run_id}-gone")
