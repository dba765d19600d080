"""Claims of README.md and docs/*.md about the CLI, tried as people run them: each command is a
separate `rtm-console` process with its own data folder, against the test Docker engine, the
libvirt test driver (`--sandbox`) and the real host."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.agent import agent_info_path
from console.eventlog import EventLog
from test_cli_resources import ROOT, rtm_console
from test_docker_support import remove_all


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No config file, a data folder that does not exist yet, the specs folder tmp_path/specs."""
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "RTM_SPECS_DIR": str(tmp_path / "specs")}
    env.pop("RTM_CONFIG", None)
    (tmp_path / "specs").mkdir()
    return env


def workload_spec(folder: Path, name: str, image: str, labels: dict[str, str], replicas: int = 2, policy: str = "") -> Path:
    label_lines = "".join(f'    {key}: "{value}"\n' for key, value in labels.items())
    path = folder / f"{name}.yaml"
    path.write_text(f'name: {name}\nreplicas: {replicas}\nContainerRuntime:\n  base_image: "{image}"\n'
                    f'  command: ["sleep", "3600"]\n  security: {{user: "1000:1000"}}\n  labels:\n{label_lines}{policy}')
    return path


def audit(env: dict[str, str]) -> list[dict[str, Any]]:
    path = Path(env["RTM_DATA_DIR"]) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


POLICY = "AutoScalingPolicy:\n  horizontal: {min_replicas: 1, max_replicas: 3, target_cpu_utilization: 70}\n"


@pytest.fixture
def web(env, docker_client, test_image, test_labels, run_id, tmp_path) -> Iterator[str]:
    """A two-replica workload with an AutoScalingPolicy, applied, in the specs folder."""
    name = f"{run_id}-claims"
    spec = workload_spec(tmp_path / "specs", name, test_image, test_labels, policy=POLICY)
    try:
        applied = rtm_console(env, "apply", str(spec), "--yes")
        assert applied.returncode == 0, applied.stderr
        yield name
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


# ---------------------------------------------------------------- docs/config.md: --docker-host


def test_docker_host_repeated_keeps_every_engine_and_get_names_the_one_that_does_not_answer(env, web) -> None:
    engine = os.environ["DOCKER_HOST"]
    flags = ["--docker-host", "unix:///nonexistent/nosock.sock", "--docker-host", engine]
    config = rtm_console(env, *flags, "config", "--json")
    assert config.returncode == 0, config.stderr
    endpoints = json.loads(config.stdout)["settings"]["docker.endpoints"]["value"]
    # two sockets: each named after its path, so both can be configured at once
    named = Path(engine.removeprefix("unix://")).stem
    assert [(e["name"], e["host"]) for e in endpoints] == [("nosock", "unix:///nonexistent/nosock.sock"), (named, engine)]
    listed = rtm_console(env, *flags, "get", "containers", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {r["name"] for r in json.loads(listed.stdout)} >= {f"{web}-0", f"{web}-1"}
    assert {r["engine"] for r in json.loads(listed.stdout) if r["workload"] == web} == {f"docker@{named}"}
    assert "left out: docker at unix:///nonexistent/nosock.sock: unreachable" in listed.stderr
    workloads = rtm_console(env, *flags, "get", "workloads")
    assert workloads.returncode == 0 and web in workloads.stdout
    assert "left out: docker at unix:///nonexistent/nosock.sock: unreachable" in workloads.stderr


@pytest.mark.parametrize(("given", "names"), [
    (["unix:///a/docker.sock,unix:///b/docker.sock"], ["a-docker", "b-docker"]),  # commas: file names clash
    (["unix:///run/x.sock", "unix:///run/y.sock"], ["x", "y"]),
    (["unix:///var/run/docker.sock"], ["local"]),  # one socket keeps its usual name
])
def test_several_sockets_are_named_from_their_paths(env, given: list[str], names: list[str]) -> None:
    run = rtm_console(env, *[arg for address in given for arg in ("--docker-host", address)], "config", "--json")
    assert run.returncode == 0, run.stderr
    assert [e["name"] for e in json.loads(run.stdout)["settings"]["docker.endpoints"]["value"]] == names


# ----------------------------------------------------------- docs/containers.md: describe WORKLOAD


def test_describe_a_workload_shows_each_replica_and_its_policies(env, web) -> None:
    for target in (web, f"workload/{web}"):
        run = rtm_console(env, "describe", target)
        assert run.returncode == 0, run.stderr
        details = json.loads(run.stdout)
        assert (details["name"], details["kind"], details["running"]) == (web, "container", 2)
        assert [r["name"] for r in details["replicas"]] == [f"{web}-0", f"{web}-1"]
        for replica in details["replicas"]:
            assert (replica["engine"], replica["state"], replica["restarts"]) == ("docker@local", "running", 0)
            assert {"health", "cpu_ratio", "memory_working_set_bytes"} <= set(replica)
            assert isinstance(replica["started_at"], float)  # an instant: epoch seconds
        assert details["policies"]["AutoScalingPolicy"]["horizontal"]["max_replicas"] == 3


def test_describe_a_container_gives_its_instants_as_epoch_seconds(env, web) -> None:
    run = rtm_console(env, "describe", f"container/{web}-0")
    assert run.returncode == 0, run.stderr
    started = json.loads(run.stdout)["started_at"]
    assert isinstance(started, float) and abs(started - time.time()) < 3600


# ------------------------------------------------ issue 17 and docs/config.md: delete, its event


def test_delete_workload_slash_name_removes_every_replica_and_records_a_delete_event(env, web, docker_client) -> None:
    run = rtm_console(env, "delete", f"workload/{web}", "--yes")
    assert run.returncode == 0, run.stderr
    assert sorted(re.findall(r"^deleted (container/\S+)", run.stdout, re.MULTILINE)) == [f"container/{web}-0", f"container/{web}-1"]
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={web}"}) == []
    events = [json.loads(line) for line in rtm_console(env, "events", "--json").stdout.splitlines()]
    deleted = [e for e in events if e["kind"] == "delete"]
    assert [(e["workload"], e["target"]) for e in deleted] == [(web, f"container/{web}")]
    assert isinstance(deleted[0]["time"], float)


def test_delete_a_bare_workload_name_as_get_workloads_prints_it(env, web, docker_client) -> None:
    assert web in rtm_console(env, "get", "workloads").stdout
    run = rtm_console(env, "delete", web, "--yes")
    assert run.returncode == 0, run.stderr
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={web}"}) == []


def test_delete_of_a_spec_file_with_nothing_running_says_so_without_asking(env, run_id, test_image, test_labels, tmp_path) -> None:
    spec = workload_spec(tmp_path, f"{run_id}-never", test_image, test_labels)
    run = rtm_console(env, "delete", str(spec))  # no --yes and no terminal: asking would fail
    assert (run.returncode, run.stdout.strip()) == (0, f"nothing to delete: nothing that {spec} describes is running"), run.stderr
    assert audit(env) == []


# -------------------------------------------------- docs/agent.md: scale --workload --json shape


def test_scale_workload_json_has_the_decision_keys_even_without_a_policy(env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    name = f"{run_id}-nopolicy"
    health = 'HealthCheck:\n  liveness: {command: ["true"], interval: 5s, timeout: 1s}\n'  # supervised, not autoscaled
    workload_spec(tmp_path / "specs", name, test_image, test_labels, replicas=1, policy=health)
    try:
        assert rtm_console(env, "apply", str(tmp_path / "specs" / f"{name}.yaml")).returncode == 0
        run = rtm_console(env, "scale", "--workload", name, "--json")
        assert run.returncode == 0, run.stderr
        decision = json.loads(run.stdout)
        assert {key: decision[key] for key in ("direction", "target_replicas", "reason", "proposals")} == dict.fromkeys(
            ("direction", "target_replicas", "reason", "proposals"))
        assert (decision["workload"], decision["current_replicas"]) == (name, 1)
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


# ------------------------------------------------------------ not found, unknown kinds, config


def test_not_found_is_exit_1_for_every_kind_and_leaves_no_traceback(env) -> None:
    for target in ("vm/nope", "container/nope", "nope"):
        run = rtm_console(env, "--sandbox", "describe", target)
        assert run.returncode == 1, (target, run.stderr)
        assert "nope" in run.stderr and "debug.log" not in run.stderr
    debug_log = Path(env["RTM_DATA_DIR"]) / "debug.log"
    assert "Traceback" not in (debug_log.read_text() if debug_log.exists() else "")


def test_an_unknown_kind_is_named_as_written(env) -> None:
    run = rtm_console(env, "describe", "bogus/x")
    assert run.returncode == 2
    assert 'unknown kind "bogus"' in run.stderr


def test_config_creates_no_data_folder_and_shows_what_sandbox_puts_in_effect(env) -> None:
    plain = rtm_console(env, "config")
    assert plain.returncode == 0, plain.stderr
    assert not Path(env["RTM_DATA_DIR"]).exists()
    settings = json.loads(rtm_console(env, "--sandbox", "config", "--json").stdout)["settings"]
    assert settings["libvirt.uris"] == {"value": [{"name": "sandbox", "uri": "test:///default"}], "source": "flag --sandbox"}
    assert settings["functions.target"]["value"] == "local"
    vms = rtm_console(env, "--sandbox", "get", "vms", "--json")
    assert vms.returncode == 0 and {vm["host"] for vm in json.loads(vms.stdout)} <= {"libvirt@sandbox"}


# ----------------------------------------------------------------------- events -f, like tail -f


def test_events_follow_prints_the_last_events_first_then_new_ones(env) -> None:
    log = EventLog.in_data_dir(Path(env["RTM_DATA_DIR"]))
    Path(env["RTM_DATA_DIR"]).mkdir(mode=0o700)
    for index in range(5):
        log.record("scale", f"past {index}", workload="web")
    follow = subprocess.Popen([sys.executable, "-m", "console.cli", "events", "-f", "--limit", "2"], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True).start()
    try:
        first = [lines.get(timeout=60).split()[-2:] for _ in range(2)]  # a hang guard, not a timing goal
        log.record("restart", "new one", workload="web")
        assert first == [["past", "3"], ["past", "4"]]
        assert lines.get(timeout=60).split()[-2:] == ["new", "one"]
    finally:
        follow.kill()
        follow.communicate()


# ----------------------------------------------------------- the agent's agent.json, clean stop


def test_a_cleanly_stopped_agent_leaves_no_agent_json(env, tmp_path) -> None:
    env = {**env, "RTM_FUNCTIONS_GATEWAY_LISTEN": "127.0.0.1:0"}
    agent = subprocess.Popen([sys.executable, "-m", "console.cli", "agent", "--listen", "127.0.0.1:0"], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = agent_info_path(env["RTM_DATA_DIR"])
    try:
        for line in agent.stderr:  # JSON log lines; "agent started" comes once agent.json is written
            if "agent started" in line:
                break
        assert json.loads(info.read_text())["pid"] == agent.pid
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=60)  # a hang guard
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0
    assert not info.exists()
