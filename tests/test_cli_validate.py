"""The validate/render/samples commands as a user runs them: a real subprocess, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-specs"


def rtm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, RTM_DATA_DIR=str(cwd / ".rtm-test-data")) if cwd != ROOT else dict(os.environ)
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)


def test_samples_validate_clean() -> None:
    result = rtm("validate", str(SAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_error_exit_1_with_position(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text('ContainerRuntime:\n  base_image: a\n  security: {user: "1"}\n  resources:\n    limits: {cpu: "1.1.M"}\n')
    result = rtm("validate", str(spec))
    assert result.returncode == 1
    line = result.stdout.strip()
    assert line.startswith(f"{spec}:5:") and ": error: " in line


def test_warning_exit_0_unless_strict(tmp_path: Path) -> None:
    spec = tmp_path / "root.yaml"
    spec.write_text("ContainerRuntime:\n  base_image: a\n")
    assert rtm("validate", str(spec)).returncode == 0
    strict = rtm("validate", "--strict", str(spec))
    assert strict.returncode == 1 and ": warning: the container runs as root" in strict.stdout


def test_json_format(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("SchedulingPolicy:\n  algorithm: [round_robin]\n")
    result = rtm("validate", "--format", "json", str(spec))
    assert result.returncode == 1
    (finding,) = json.loads(result.stdout)
    assert {k: finding[k] for k in ("path", "line", "column", "severity")} == {"path": str(spec), "line": 2, "column": 3, "severity": "error"}
    assert 'unknown key "algorithm"' in finding["message"]


def test_unreadable_path_exit_2(tmp_path: Path) -> None:
    result = rtm("validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_usage_error_exit_2() -> None:
    assert rtm("validate").returncode == 2


def test_folder_is_searched_recursively(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.yml").write_text("HealthCheck: {}\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    result = rtm("validate", str(tmp_path))
    assert result.returncode == 1 and "deep.yml:1:14: error:" in result.stdout


def test_render_tuning_contacts_nothing_and_prints_json() -> None:
    result = rtm("render", str(SAMPLES / "performance-tuning.yaml"))
    assert result.returncode == 0, result.stderr
    (doc,) = json.loads(result.stdout)
    tuning = doc["PerformanceTuning"]
    assert tuning["jvm"]["JAVA_TOOL_OPTIONS"] == "-Xms2g -Xmx2g -XX:+UseG1GC -XX:MaxGCPauseMillis=200 -XX:G1HeapRegionSize=16m"
    assert "maxmemory 1000000000" in tuning["redis.conf"]  # Redis reads 1g as 10^9 bytes
    assert "query_cache_size = 268435456" in tuning["my.cnf"]  # MySQL 256m is 256 MiB
    assert tuning["connection_pool"] == {"maximumPoolSize": 100, "minimumIdle": 10, "connectionTimeout": 30000}


def test_render_yaml_format() -> None:
    result = rtm("render", str(SAMPLES / "performance-tuning.yaml"), "--format", "yaml")
    assert yaml.safe_load(result.stdout)[0]["PerformanceTuning"]["connection_pool"]["minimumIdle"] == 10


def test_render_refuses_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("PerformanceTuning:\n  jvm_tuning: {heap_size: 2x}\n")
    result = rtm("render", str(spec))
    assert result.returncode == 1 and "nothing rendered" in result.stderr


def test_samples_prints_the_folder() -> None:
    result = rtm("samples")
    assert result.returncode == 0 and Path(result.stdout.strip()) == SAMPLES


def test_version_and_help_with_examples() -> None:
    assert rtm("--version").stdout.startswith("rtm-console ")
    for command in ("validate", "render", "apply", "get", "delete", "describe", "logs", "events", "config"):
        help_text = rtm(command, "--help").stdout
        assert "examples:" in help_text, command


# --- fuzzing: mangled YAML never gives a traceback ------------------------------------------

SAMPLE_TEXTS = [p.read_text() for p in sorted(SAMPLES.glob("*.yaml"))]


def _mangle(text: str, data: st.DataObject) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["delete", "insert", "swap", "dup"]))
        if not chars:
            break
        i = data.draw(st.integers(0, len(chars) - 1))
        if op == "delete":
            del chars[i]
        elif op == "insert":
            chars.insert(i, data.draw(st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t\n ,?0aZ\x00\u00e9"))))
        elif op == "swap":
            j = data.draw(st.integers(0, len(chars) - 1))
            chars[i], chars[j] = chars[j], chars[i]
        else:
            chars[i:i] = chars[i : i + data.draw(st.integers(1, 40))]
    return "".join(chars)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_yaml_gives_findings_not_tracebacks(data: st.DataObject) -> None:
    from rtm.documents import load_text

    text = _mangle(data.draw(st.sampled_from(SAMPLE_TEXTS)), data)
    result = load_text(text, "fuzz.yaml")  # must not raise
    for finding in result.findings:
        assert finding.line >= 1 and finding.column >= 1
        assert finding.message


def test_mangled_files_through_the_cli_never_print_a_traceback(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    for i, text in enumerate(SAMPLE_TEXTS * 3):
        chars = list(text)
        for _ in range(6):
            chars.insert(rng.randrange(len(chars)), rng.choice(":-[]{}&*!|\t'\""))
        (tmp_path / f"m{i}.yaml").write_text("".join(chars))
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "bomb.yaml").write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    result = rtm("validate", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "not UTF-8" in result.stdout and "too many values" in result.stdout


def test_render_runtime_kinds_contacts_nothing_and_loads_no_sdk() -> None:
    """Each runtime kind renders what its backend would send, without importing an SDK."""
    code = (
        "import sys, json; from pathlib import Path; from rtm.documents import load_file; from console.render import render_documents\n"
        "out = {}\n"
        "for name in ('workload-web', 'vm-runtime', 'serverless-runtime'):\n"
        "    p = Path('sample-specs') / f'{name}.yaml'\n"
        "    out[name] = render_documents(load_file(p).documents, p.parent)\n"
        "print(json.dumps({'out': out, 'sdks': sorted(m for m in ('docker', 'libvirt', 'boto3') if m in sys.modules)}, default=str))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sdks"] == []
    container = data["out"]["workload-web"][0]["ContainerRuntime"]
    assert container["requests"][0]["path"] == "/containers/create?name=web-0"
    vm = data["out"]["vm-runtime"][0]["VirtualMachineRuntime"][0]
    assert "<smm state=\"on\" />" in vm["domain_xml"] and "qcow2" in vm["volume_xml"]
    function = data["out"]["serverless-runtime"][0]["ServerlessRuntime"]
    assert function["CreateFunction"]["Runtime"] == "python3.12"


# --- what is not a spec file is refused at once ----------------------------------------------


def test_devices_pipes_and_huge_files_are_refused_at_once_with_exit_2(tmp_path: Path) -> None:
    """/dev/zero used to end in MemoryError (exit 70) and a FIFO in a hang."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(17 * 1024 * 1024)
    for path, reason in (("/dev/zero", "not a regular file (a character device)"), (str(fifo), "not a regular file (a pipe)"),
                         (str(huge), "larger than 16 MiB")):
        result = rtm("validate", path)
        assert result.returncode == 2, (path, result.stderr)
        assert f"rtm-console validate: cannot read {path}: {reason}" in result.stderr
        assert "Traceback" not in result.stderr
    scheduled = rtm("schedule", "--policy", str(SAMPLES / "scheduling-policy.yaml"), "--nodes", str(fifo))
    assert scheduled.returncode == 2 and f"cannot read {fifo}: not a regular file (a pipe)" in scheduled.stderr


def test_strict_validate_fails_on_host_level_settings(tmp_path: Path) -> None:
    spec = tmp_path / "privileged.yaml"
    spec.write_text('ContainerRuntime:\n  base_image: a\n  security: {user: "1000", seccomp_profile: unconfined}\n')
    assert rtm("validate", str(spec)).returncode == 0
    strict = rtm("validate", "--strict", str(spec))
    assert strict.returncode == 1
    assert f"{spec}:3:45: warning: seccomp_profile: unconfined lets the container make every system call" in strict.stdout
