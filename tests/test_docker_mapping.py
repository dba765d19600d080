"""ContainerRuntime specs as Docker Engine create requests (pure: no engine is contacted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends.docker.errors import RuntimeNotAvailable, SpecMappingError
from backends.docker.mapping import (
    LABEL_REPLICA,
    LABEL_SPEC_HASH,
    LABEL_WORKLOAD,
    cpu_shares,
    engine_runtime,
    nano_cpus,
    render,
    workload_request,
)
from rtm.documents import Document, load_file, load_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-specs"
MI = 1024 * 1024


def document(text: str, path: str = "spec.yaml") -> Document:
    result = load_text(text, path)
    assert result.ok, result.findings
    (doc,) = result.documents
    return doc


def sample(name: str) -> Document:
    result = load_file(SAMPLES / name)
    assert result.ok, result.findings
    return result.documents[0]


def container(spec: str, *, name: str = "app", extra: str = "") -> Document:
    indented = "\n".join("  " + line for line in spec.strip().splitlines())
    return document(f"name: {name}\nContainerRuntime:\n{indented}\n{extra}")


# ------------------------------------------------------------------------ the sample workload


def test_sample_workload_maps_limits_requests_security_and_health_exactly() -> None:
    request = workload_request(sample("workload-web.yaml"), SAMPLES)
    body = request.for_replica(0).body
    host = body["HostConfig"]
    assert host["NanoCpus"] == 500_000_000  # limits.cpu 500m
    assert host["Memory"] == 128 * MI and host["MemorySwap"] == 128 * MI  # 128Mi, no swap on top
    assert host["CpuShares"] == 102  # requests.cpu 100m: 100 * 1024 // 1000
    assert host["MemoryReservation"] == 32 * MI
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CAP_NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["no-new-privileges"]  # runtime/default: the engine's own profile
    assert "Runtime" not in host  # containerd: the engine's default runtime
    assert not {"CpuQuota", "CpuPeriod"} & host.keys()
    assert body["User"] == "1000:1000"
    assert body["Healthcheck"] == {
        "Test": ["CMD", "/bin/sh", "-c", "wget -q -O- http://127.0.0.1:8080/health || exit 1"],
        "Interval": 5_000_000_000, "Timeout": 2_000_000_000, "StartPeriod": 0, "Retries": 3,
    }
    assert body["Env"] == ["LOG_LEVEL=info"]
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "", "HostPort": ""}]}


def test_replicas_are_named_and_labelled_by_workload_index_and_hash() -> None:
    request = workload_request(sample("workload-web.yaml"), SAMPLES)
    assert request.replicas == 2  # the autoscaler's minimum
    first, second = request.for_replica(0), request.for_replica(1)
    assert (first.name, second.name) == ("web-0", "web-1")
    assert first.body["Labels"][LABEL_WORKLOAD] == "web"
    assert (first.body["Labels"][LABEL_REPLICA], second.body["Labels"][LABEL_REPLICA]) == ("0", "1")
    assert first.body["Labels"][LABEL_SPEC_HASH] == second.body["Labels"][LABEL_SPEC_HASH] == request.spec_hash


def test_seed_defect_1000m_is_one_cpu_not_ten() -> None:
    """The seed turns "1000m" into cpu_quota=1000000: 10 CPUs with the default period."""
    body = workload_request(sample("container-runtime.yaml"), SAMPLES).for_replica(0).body
    assert body["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert body["HostConfig"]["Memory"] == 512 * MI  # "512Mi" as bytes, which docker-py wants


def test_a_standalone_spec_is_named_after_its_image() -> None:
    assert workload_request(sample("container-runtime.yaml"), SAMPLES).for_replica(0).name == "alpine-0"


@pytest.mark.parametrize(("millis", "shares"), [(0, 2), (1, 2), (2, 2), (100, 102), (250, 256), (1000, 1024), (2000, 2048), (10**6, 262144)])
def test_cpu_shares_follow_the_kubelet_formula(millis: int, shares: int) -> None:
    assert cpu_shares(millis) == shares


def test_nano_cpus_of_fractional_and_whole_cpus() -> None:
    assert nano_cpus(250) == 250_000_000 and nano_cpus(2000) == 2_000_000_000


# ------------------------------------------------------------------------ health checks


def test_health_check_string_is_cmd_shell_with_nanosecond_durations() -> None:
    doc = container("""
base_image: busybox
health_check:
  command: "wget -q -O- http://127.0.0.1:8080/ || exit 1"
  interval: 30s
  timeout: 500ms
  retries: 5
  start_period: 1m
""")
    health = workload_request(doc, Path(".")).template["Healthcheck"]
    assert health == {"Test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"], "Interval": 30_000_000_000,
                      "Timeout": 500_000_000, "StartPeriod": 60_000_000_000, "Retries": 5}


# ------------------------------------------------------------------------ seccomp and runtimes


def test_seccomp_unconfined_and_profile_file(tmp_path: Path) -> None:
    unconfined = container("base_image: busybox\nsecurity: {seccomp_profile: unconfined}")
    assert workload_request(unconfined, tmp_path).template["HostConfig"]["SecurityOpt"] == ["no-new-privileges", "seccomp=unconfined"]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "no-mkdir.json").write_text(json.dumps(profile, indent=2))
    custom = container("base_image: busybox\nsecurity: {seccomp_profile: profiles/no-mkdir.json, no_new_privileges: false}")
    options = workload_request(custom, tmp_path).template["HostConfig"]["SecurityOpt"]
    assert len(options) == 1 and options[0].startswith("seccomp=")
    assert json.loads(options[0].removeprefix("seccomp=")) == profile  # the content, not the path


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("{not json", "not JSON"), ('{"syscalls": []}', "not a seccomp profile")])
def test_bad_seccomp_profile_is_a_spec_error(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "p.json").write_text(content)
    doc = container("base_image: busybox\nsecurity: {seccomp_profile: p.json}")
    with pytest.raises(SpecMappingError, match=message):
        workload_request(doc, tmp_path)


def test_runtime_containerd_is_the_default_and_others_are_checked_against_the_engine() -> None:
    assert engine_runtime("containerd", {"runc"}) is None
    assert engine_runtime("runc", {"runc", "io.containerd.runc.v2"}) == "runc"
    assert engine_runtime("crun") == "crun"  # render: the engine is not asked
    with pytest.raises(RuntimeNotAvailable, match=r"no runtime 'crun' \(it has: io.containerd.runc.v2, runc\)"):
        engine_runtime("crun", {"runc", "io.containerd.runc.v2"})
    doc = container("base_image: busybox\nruntime: crun")
    assert workload_request(doc, Path(".")).template["HostConfig"]["Runtime"] == "crun"
    with pytest.raises(RuntimeNotAvailable):
        workload_request(doc, Path("."), engine_runtimes={"runc"})


# ------------------------------------------------------------------------ environment and tuning


def test_jvm_tuning_reaches_the_container_as_java_tool_options() -> None:
    doc = container("base_image: eclipse-temurin:21", extra="PerformanceTuning:\n  jvm_tuning:\n    heap_size: 2g\n    gc_algorithm: ZGC\n")
    env = workload_request(doc, Path(".")).template["Env"]
    assert "JAVA_TOOL_OPTIONS=-Xms2g -Xmx2g -XX:+UseZGC" in env


def test_an_explicit_java_tool_options_wins_over_the_tuning() -> None:
    doc = container("base_image: x\nenvironment: {JAVA_TOOL_OPTIONS: -Xmx1g}", extra="PerformanceTuning:\n  jvm_tuning: {heap_size: 2g}\n")
    env = workload_request(doc, Path(".")).template["Env"]
    assert env == ["JAVA_TOOL_OPTIONS=-Xmx1g"]


def test_render_masks_secret_looking_values_but_the_hash_sees_them() -> None:
    spec = "base_image: busybox\nenvironment:\n  DB_PASSWORD: {pw}\n  DATABASE_URL: postgres://app:{pw}@db/app\n  LOG_LEVEL: info"
    shown = render(container(spec.format(pw="hunter2")), Path("."))
    text = json.dumps(shown)
    assert "hunter2" not in text
    env = shown["requests"][0]["body"]["Env"]
    assert env == ["DB_PASSWORD=***", "DATABASE_URL=postgres://app:***@db/app", "LOG_LEVEL=info"]
    other = render(container(spec.format(pw="swordfish")), Path("."))
    assert other["spec_hash"] != shown["spec_hash"]


def test_render_shortens_a_custom_seccomp_profile(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    shown = render(container("base_image: busybox\nsecurity: {seccomp_profile: p.json}"), tmp_path)
    options = shown["requests"][0]["body"]["HostConfig"]["SecurityOpt"]
    assert options == ["no-new-privileges", "seccomp=<profile, 34 bytes of JSON>"]


# ------------------------------------------------------------------------ the spec hash


def test_spec_hash_ignores_in_place_resources_but_not_the_rest() -> None:
    base = "base_image: busybox\nenvironment: {A: '1'}\nresources: {limits: {cpu: %s, memory: %s}, requests: {cpu: 100m}}"
    first = workload_request(container(base % ("500m", "128Mi")), Path("."))
    resized = workload_request(container(base % ("2", "1Gi")), Path("."))
    assert first.spec_hash == resized.spec_hash
    assert first.resources != resized.resources
    changed = workload_request(container(base.replace("'1'", "'2'") % ("500m", "128Mi")), Path("."))
    assert changed.spec_hash != first.spec_hash


def test_spec_hash_is_stable_across_loads() -> None:
    assert workload_request(sample("workload-web.yaml"), SAMPLES).spec_hash == workload_request(sample("workload-web.yaml"), SAMPLES).spec_hash


# ------------------------------------------------------------------------ ports and volumes


def test_ports_publish_on_engine_chosen_or_fixed_host_ports() -> None:
    doc = container('base_image: busybox\nports: ["8080", "0.0.0.0:9000:90", "127.0.0.1:5353:53/udp"]', extra="replicas: 2\n")
    request = workload_request(doc, Path("."))
    host = request.template["HostConfig"]
    assert request.template["ExposedPorts"] == {"8080/tcp": {}, "90/tcp": {}, "53/udp": {}}
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}],
        "90/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9000"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
    }
    assert request.fixed_host_ports == ("90/tcp", "53/udp")
    assert "one engine can run only one replica" in render(doc, Path("."))["note"]


def test_volumes_named_absolute_and_relative_to_the_spec(tmp_path: Path) -> None:
    doc = container('base_image: busybox\nvolumes: ["data:/var/lib/data", "/srv/conf:/etc/app:ro", "./site:/var/www"]')
    binds = workload_request(doc, tmp_path).template["HostConfig"]["Binds"]
    assert binds == ["data:/var/lib/data:rw", "/srv/conf:/etc/app:ro", f"{tmp_path.resolve()}/site:/var/www:rw"]


# ------------------------------------------------------------------------ purity


def test_mapping_and_render_import_no_sdk_and_open_no_socket() -> None:
    code = (
        "import socket, sys, json\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('a socket was opened')\n"
        "socket.socket = refuse\n"
        "from pathlib import Path\n"
        "from rtm.documents import load_file\n"
        "from backends.docker.mapping import render\n"
        "render(load_file(Path('sample-specs/workload-web.yaml')).documents[0], Path('sample-specs'))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests', 'urllib3'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
