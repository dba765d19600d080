"""Applying ContainerRuntime workloads to the real engine, and operating their containers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from backends.docker import DockerSetup, make_docker_handlers
from backends.docker.errors import ContainerNotFound, ExecTimeout, RuntimeNotAvailable
from backends.handlers import ApplyError
from test_docker_support import SAMPLES, eventually, remove_all, workload_document

pytestmark = pytest.mark.docker
MI = 1024 * 1024


@pytest.fixture(scope="module")
def setup(docker_client) -> DockerSetup:
    built = make_docker_handlers([os.environ["DOCKER_HOST"]], stop_timeout=1)
    yield built
    built.close()


@pytest.fixture
def workload(docker_client, test_image, test_labels, run_id, request):
    """A unique workload name for this test; its containers are removed afterwards."""
    name = f"{run_id}-{request.node.name.removeprefix('test_')[:12].replace('_', '-').strip('-')}"
    yield name
    remove_all(docker_client, f"rtm.workload={name}")


def doc(workload: str, image: str, labels, **options):
    return workload_document(workload, image, labels, **options)


def apply(setup: DockerSetup, document, base_dir: Path = SAMPLES, progress=None) -> list[str]:
    changes = setup.handler.plan(document, base_dir)
    return setup.handler.apply(document, base_dir, changes, progress or (lambda _line: None))


def inspect(docker_client, name: str) -> dict:
    return docker_client.api.inspect_container(name)


def run_in(docker_client, name: str, command: str) -> str:
    result = docker_client.containers.get(name).exec_run(["sh", "-c", command])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def proc_status(docker_client, name: str) -> dict[str, str]:
    lines = run_in(docker_client, name, "cat /proc/1/status").splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


# ------------------------------------------------------------------------ the sample workload


@pytest.fixture(scope="module")
def sample_applied(setup, docker_client, test_image, test_labels, run_id):
    name = f"{run_id}-web"
    document = doc(name, test_image, test_labels)
    done = apply(setup, document)
    yield name, document, done
    remove_all(docker_client, f"rtm.workload={name}")


def test_sample_workload_is_created_with_exactly_the_spec_s_settings(sample_applied, docker_client) -> None:
    name, _document, done = sample_applied
    assert done == [f"created container/{name}-0 on docker@local", f"created container/{name}-1 on docker@local"]
    for index in (0, 1):
        data = inspect(docker_client, f"{name}-{index}")
        host, config = data["HostConfig"], data["Config"]
        assert host["NanoCpus"] == 500_000_000 and host["CpuQuota"] == 0
        assert host["Memory"] == 128 * MI and host["MemorySwap"] == 128 * MI
        assert host["CpuShares"] == 102 and host["MemoryReservation"] == 32 * MI
        assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CAP_NET_BIND_SERVICE"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert config["User"] == "1000:1000"
        assert config["Healthcheck"] == {"Test": ["CMD", "/bin/sh", "-c", "wget -q -O- http://127.0.0.1:8080/health || exit 1"],
                                         "Interval": 5_000_000_000, "Timeout": 2_000_000_000, "Retries": 3}
        assert config["Labels"]["rtm.workload"] == name and config["Labels"]["rtm.replica"] == str(index)


def test_sample_workload_runs_confined_as_the_spec_says(sample_applied, docker_client) -> None:
    name = f"{sample_applied[0]}-0"
    status = proc_status(docker_client, name)
    assert status["CapBnd"] == f"{1 << 10:016x}"  # CAP_NET_BIND_SERVICE (bit 10) and nothing else
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # the engine's default profile is filtering
    assert run_in(docker_client, name, "id -u; id -g") == "1000\n1000"
    cgroup = run_in(docker_client, name, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
    assert cgroup.split() == [str(128 * MI), "50000", "100000"]  # half a CPU, as limits.cpu 500m says


def test_sample_workload_becomes_healthy(sample_applied, docker_client) -> None:
    name = sample_applied[0]
    healthy = eventually(lambda: all(inspect(docker_client, f"{name}-{i}")["State"]["Health"]["Status"] == "healthy" for i in (0, 1)), 40, 0.5)
    assert healthy


def test_reapplying_an_unchanged_spec_does_nothing(setup, sample_applied, docker_client) -> None:
    name, document, _done = sample_applied
    ids = [inspect(docker_client, f"{name}-{i}")["Id"] for i in (0, 1)]
    changes = setup.handler.plan(document, SAMPLES)
    assert [(c.action, c.resource) for c in changes] == [("unchanged", f"container/{name}-0"), ("unchanged", f"container/{name}-1")]
    assert setup.handler.apply(document, SAMPLES, changes, lambda _line: None) == []
    assert [inspect(docker_client, f"{name}-{i}")["Id"] for i in (0, 1)] == ids


def test_list_and_describe_show_the_workload(setup, sample_applied) -> None:
    name = sample_applied[0]
    records = {c.name: c for c in setup.handler.list()}
    replica = records[f"{name}-0"]
    assert replica.workload == name and replica.replica == 0 and replica.engine == "docker@local"
    assert replica.memory_limit_bytes == 128 * MI and replica.cpu_ratio is not None
    # One published port. Docker 20.10 may give its IPv4 and IPv6 bindings different host ports
    # once an earlier container took a port on one family only; both are then shown.
    assert replica.ports and {port.split("->")[1] for port in replica.ports} == {"8080/tcp"}
    described = setup.handler.describe(name)
    assert [r["name"] for r in described["replicas"]] == [f"{name}-0", f"{name}-1"]
    one = setup.handler.describe(f"{name}-1")
    assert one["resources"]["NanoCpus"] == 500_000_000 and one["security"]["cap_add"] == ["CAP_NET_BIND_SERVICE"]
    json.dumps(one)  # JSON-ready


# ------------------------------------------------------------------------ changes


def test_changed_limits_are_updated_in_place_without_a_restart(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    started = inspect(docker_client, f"{workload}-0")["State"]["StartedAt"]
    resized = doc(workload, test_image, test_labels, replicas=1,
                  edit=lambda t: t.replace('limits: {cpu: "500m", memory: "128Mi"}', 'limits: {cpu: "750m", memory: "192Mi"}'))
    changes = setup.handler.plan(resized, SAMPLES)
    assert [c.action for c in changes] == ["update"]
    assert dict((f, (a, b)) for f, a, b in changes[0].diff) == {
        "HostConfig.NanoCpus": (500_000_000, 750_000_000), "HostConfig.Memory": (128 * MI, 192 * MI),
        "HostConfig.MemorySwap": (128 * MI, 192 * MI),
    }
    setup.handler.apply(resized, SAMPLES, changes, lambda _line: None)
    data = inspect(docker_client, f"{workload}-0")
    assert data["State"]["StartedAt"] == started and data["State"]["Running"]
    assert (data["HostConfig"]["NanoCpus"], data["HostConfig"]["Memory"], data["HostConfig"]["MemorySwap"]) == (750_000_000, 192 * MI, 192 * MI)
    assert run_in(docker_client, f"{workload}-0", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes") == str(192 * MI)
    assert [c.action for c in setup.handler.plan(resized, SAMPLES)] == ["unchanged"]


def test_a_changed_spec_replaces_replicas_one_at_a_time(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=2))
    old_ids = [inspect(docker_client, f"{workload}-{i}")["Id"] for i in (0, 1)]
    changed = doc(workload, test_image, test_labels, replicas=2, edit=lambda t: t.replace('LOG_LEVEL: "info"', 'LOG_LEVEL: "debug"'))
    changes = setup.handler.plan(changed, SAMPLES)
    assert [c.action for c in changes] == ["replace", "replace"]
    assert ("Env.LOG_LEVEL", "info", "debug") in changes[0].diff
    lines: list[str] = []
    setup.handler.apply(changed, SAMPLES, changes, lines.append)
    # The second replica is stopped only after the first one's successor is up and healthy.
    assert lines.index(f"replaced container/{workload}-0 on docker@local") < lines.index(f"stopping {workload}-1 (up to 1 s)")
    assert lines.index(f"waiting for {workload}-0 to become healthy") < lines.index(f"replaced container/{workload}-0 on docker@local")
    for index, old in enumerate(old_ids):
        data = inspect(docker_client, f"{workload}-{index}")
        assert data["Id"] != old and "LOG_LEVEL=debug" in data["Config"]["Env"]
        assert data["State"]["Health"]["Status"] == "healthy"
    assert not docker_client.containers.list(all=True, filters={"name": f"{workload}-0.replaced"})
    assert [c.action for c in setup.handler.plan(changed, SAMPLES)] == ["unchanged", "unchanged"]


@pytest.mark.parametrize(("replicas", "failing", "exit_code", "output"), [
    (2, "echo cannot start >&2; exit 3", 3, "cannot start"),
    # Still running when `start` returns, gone a fifth of a second later: not a started replica.
    (1, "sleep 0.2; echo gave up >&2; exit 4", 4, "gave up"),
], ids=["exits-at-once", "exits-a-moment-later"])
def test_a_replica_that_does_not_stay_up_fails_the_apply_and_what_it_created_is_removed(
        setup, workload, docker_client, test_image, test_labels, replicas, failing, exit_code, output) -> None:
    broken = doc(workload, test_image, test_labels, replicas=replicas,
                 edit=lambda t: t.replace('command: ["sh", "-c", "mkdir', f'command: ["sh", "-c", "{failing}; mkdir'))
    with pytest.raises(ApplyError) as failure:
        apply(setup, broken)
    assert failure.value.failed == f"create container/{workload}-0"
    assert f"exit code {exit_code}" in failure.value.cause and output in failure.value.cause
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"}) == []


def test_a_failed_replacement_brings_the_old_replica_back(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    old = inspect(docker_client, f"{workload}-0")["Id"]
    never_healthy = doc(workload, test_image, test_labels, replicas=1,
                        edit=lambda t: t.replace("8080/health || exit 1", "8080/missing || exit 1").replace("retries: 3\nSchedulingPolicy", "retries: 1\nSchedulingPolicy"))
    with pytest.raises(ApplyError) as failure:
        apply(setup, never_healthy)
    assert "did not become healthy" in failure.value.cause
    data = inspect(docker_client, f"{workload}-0")
    assert data["Id"] == old and data["State"]["Running"]
    assert [c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"})] == [f"{workload}-0"]


def test_scale_one_to_three_to_one(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    setup.actions.update_limits(f"{workload}-0", cpu_millis=250)
    done = setup.actions.scale(workload, 3)
    assert done == [f"created container/{workload}-1 on docker@local", f"created container/{workload}-2 on docker@local"]
    for index in (1, 2):
        data = inspect(docker_client, f"{workload}-{index}")
        assert data["State"]["Running"] and data["Config"]["Labels"]["rtm.replica"] == str(index)
        assert data["HostConfig"]["NanoCpus"] == 250_000_000  # the current limits of the replica copied
        assert data["Config"]["User"] == "1000:1000" and data["HostConfig"]["CapAdd"] == ["CAP_NET_BIND_SERVICE"]
    assert setup.actions.scale(workload, 1) == [f"removed container/{workload}-2", f"removed container/{workload}-1"]
    left = docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"})
    assert [c.name for c in left] == [f"{workload}-0"]


def test_scale_from_nothing_needs_the_spec(setup, workload, test_image, test_labels, docker_client) -> None:
    with pytest.raises(ValueError, match="no replica to copy"):
        setup.actions.scale(workload, 2)
    done = setup.actions.scale(workload, 2, document=doc(workload, test_image, test_labels), base_dir=SAMPLES)
    assert len(done) == 2 and len(docker_client.containers.list(filters={"label": f"rtm.workload={workload}"})) == 2


# ------------------------------------------------------------------------ operating containers


def test_update_limits_in_place_moves_the_swap_limit_too(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    name = f"{workload}-0"
    started = inspect(docker_client, name)["State"]["StartedAt"]
    # Above the current MemorySwap (128Mi): the engine refuses Memory alone.
    line = setup.actions.update_limits(name, memory_bytes=300 * MI, cpu_millis=1500, cpu_request_millis=500, memory_request_bytes=64 * MI)
    assert "Memory 134217728 -> 314572800" in line
    data = inspect(docker_client, name)
    host = data["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"], host["CpuShares"], host["MemoryReservation"]) == (300 * MI, 300 * MI, 1_500_000_000, 512, 64 * MI)
    assert data["State"]["StartedAt"] == started
    setup.actions.update_limits(name, memory_bytes=64 * MI)
    assert (inspect(docker_client, name)["HostConfig"]["Memory"], inspect(docker_client, name)["HostConfig"]["MemorySwap"]) == (64 * MI, 64 * MI)


def test_exec_returns_output_and_exit_code_and_stops_at_its_timeout(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    name = f"{workload}-0"
    result = setup.actions.exec(name, "echo out; echo err >&2; exit 4", timeout=10)
    assert result.exit_code == 4 and "out" in result.output and "err" in result.output
    with pytest.raises(ExecTimeout) as timeout:
        setup.actions.exec(name, ["sh", "-c", "echo started; sleep 30"], timeout=1)
    assert "was killed" in str(timeout.value) and "started" in timeout.value.output
    assert "sleep 30" not in run_in(docker_client, name, "ps -o args")


def test_logs_tail_and_follow(setup, docker_client, test_image, test_labels, run_id) -> None:
    name = f"{run_id}-talker"
    docker_client.containers.run(test_image, ["sh", "-c", "echo one; echo two; echo three; i=0; while :; do echo tick$i; i=$((i+1)); sleep 0.2; done"],
                                 detach=True, name=name, labels={**test_labels, "rtm.test.case": name}, init=True)
    try:
        assert eventually(lambda: list(setup.actions.logs(name, tail=None))[:3] == ["one", "two", "three"], 10)
        assert len(list(setup.actions.logs(name, tail=2))) == 2
        followed: list[str] = []
        stream = setup.actions.logs(name, tail=0, follow=True)

        def read() -> None:
            for line in stream:
                followed.append(line)
                if len(followed) == 3:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(15)
        assert len(followed) == 3 and all(line.startswith("tick") for line in followed)
        numbers = [int(line.removeprefix("tick")) for line in followed]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
    finally:
        remove_all(docker_client, f"rtm.test.case={name}")


def test_stop_start_restart_remove(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=1))
    name = f"{workload}-0"
    setup.actions.stop(name, timeout=1)
    assert inspect(docker_client, name)["State"]["Status"] == "exited"
    setup.actions.start(name)
    first = inspect(docker_client, name)["State"]
    assert first["Running"]
    setup.actions.restart(name, timeout=1)
    assert inspect(docker_client, name)["State"]["StartedAt"] != first["StartedAt"]
    assert setup.actions.remove(name) == f"removed {name} from docker@local"
    with pytest.raises(ContainerNotFound):
        setup.actions.start(name)


def test_delete_removes_every_replica_of_a_workload(setup, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, doc(workload, test_image, test_labels, replicas=2))
    lines = setup.handler.delete(workload)
    assert lines == [f"deleted container/{workload}-0 on docker@local", f"deleted container/{workload}-1 on docker@local"]
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"}) == []
    with pytest.raises(LookupError):
        setup.handler.delete(workload)


# ------------------------------------------------------------------------ runtimes, seccomp, tuning


def test_runtime_runc_is_passed_and_a_missing_runtime_is_refused_before_anything_is_made(setup, workload, docker_client, test_image, test_labels) -> None:
    with pytest.raises(RuntimeNotAvailable, match="no runtime 'crun'"):
        setup.handler.plan(doc(workload, test_image, test_labels, replicas=1, edit=lambda t: t.replace("  ports:", '  runtime: "crun"\n  ports:', 1)), SAMPLES)
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"}) == []
    apply(setup, doc(workload, test_image, test_labels, replicas=1, edit=lambda t: t.replace("  ports:", '  runtime: "runc"\n  ports:', 1)))
    assert inspect(docker_client, f"{workload}-0")["HostConfig"]["Runtime"] == "runc"


def test_seccomp_profiles_take_effect(setup, workload, docker_client, test_image, test_labels, tmp_path) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    (tmp_path / "no-mkdir.json").write_text(json.dumps(profile))
    simple = lambda seccomp: (lambda t: t.replace('seccomp_profile: "runtime/default"', f'seccomp_profile: "{seccomp}"')
                              .replace('"sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/health && echo ok > /tmp/www/ready && exec httpd', '"sh", "-c", "exec httpd')
                              .replace("-h /tmp/www", "-h /var/www"))  # fmt: skip
    setup.handler.apply(confined := doc(workload, test_image, test_labels, replicas=1, edit=simple("no-mkdir.json")), tmp_path,
                        setup.handler.plan(confined, tmp_path), lambda _line: None)
    container = docker_client.containers.get(f"{workload}-0")
    refused = container.exec_run(["mkdir", "/tmp/x"])
    assert refused.exit_code != 0 and b"Operation not permitted" in refused.output
    unconfined = doc(workload, test_image, test_labels, replicas=1, edit=simple("unconfined"))
    assert [c.action for c in setup.handler.plan(unconfined, tmp_path)] == ["replace"]
    apply(setup, unconfined, tmp_path)
    assert proc_status(docker_client, f"{workload}-0")["Seccomp"] == "0"


def test_jvm_tuning_reaches_the_container_as_java_tool_options(setup, workload, docker_client, test_image, test_labels) -> None:
    tuned = doc(workload, test_image, test_labels, replicas=1,
                edit=lambda t: t + "PerformanceTuning:\n  jvm_tuning:\n    heap_size: 96m\n    gc_algorithm: SerialGC\n")
    apply(setup, tuned)
    assert run_in(docker_client, f"{workload}-0", "echo $JAVA_TOOL_OPTIONS") == "-Xms96m -Xmx96m -XX:+UseSerialGC"
