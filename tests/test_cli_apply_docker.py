"""The sample web workload through `rtm-console` on the real Docker engine: apply, get, plans,
logs, delete, and kiosk refusals, each as a separate `rtm-console` process."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from test_cli_resources import lines_matching, rtm_console
from test_docker_support import SAMPLES, remove_all

pytestmark = pytest.mark.docker
MI = 1024 * 1024


def workload_file(path: Path, name: str, image: str, labels: Mapping[str, str], memory: str = "128Mi") -> Path:
    """A copy of sample-specs/workload-web.yaml run from `image` under the name `name`, its
    containers labelled, its memory limit `memory`, and a first line of output for `logs`."""
    text = (SAMPLES / "workload-web.yaml").read_text()
    edits = {
        "name: web\n": f"name: {name}\n",
        'base_image: "alpine:3.18"': f'base_image: "{image}"',
        '"mkdir -p /tmp/www': '"echo serving /tmp/www on port 8080 && mkdir -p /tmp/www',
        'limits: {cpu: "500m", memory: "128Mi"}': f'limits: {{cpu: "500m", memory: "{memory}"}}',
        "ContainerRuntime:\n": "ContainerRuntime:\n  labels:\n" + "".join(f'    {k}: "{v}"\n' for k, v in labels.items()),
    }
    for old, new in edits.items():
        assert text.count(old) == 1, f"sample-specs/workload-web.yaml no longer holds {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    return path


def succeeded(run: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`run`, after checking it exited 0; the failure says what the command printed."""
    if run.returncode != 0:
        if "containers are not available" in run.stderr:
            pytest.fail(f"the CLI has no Docker handler for the configured engine: {run.stderr.strip()}", pytrace=False)
        pytest.fail(f"{' '.join(run.args[3:])} exited {run.returncode}:\n{run.stderr}{run.stdout}", pytrace=False)
    return run


@pytest.fixture(scope="module")
def env(docker_client, test_image, tmp_path_factory) -> dict[str, str]:
    """The CLI's environment: the test engine ($DOCKER_HOST), a fresh data folder, no config file."""
    root = tmp_path_factory.mktemp("cli-docker")
    env = {**os.environ, "RTM_DATA_DIR": str(root / "data"), "XDG_CONFIG_HOME": str(root / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


@pytest.fixture(scope="module")
def web(env, docker_client, test_image, test_labels, run_id, tmp_path_factory) -> Iterator[tuple[str, Path, subprocess.CompletedProcess]]:
    """The sample workload applied by `rtm-console apply`: (name, spec file, the apply run)."""
    name = f"{run_id}-cliweb"
    spec = workload_file(tmp_path_factory.mktemp("spec") / "web.yaml", name, test_image, test_labels)
    run = rtm_console(env, "apply", str(spec))
    yield name, spec, run
    remove_all(docker_client, f"rtm.workload={name}")


def test_apply_creates_a_container_per_replica(web, docker_client) -> None:
    name, _spec, run = web
    succeeded(run)
    assert lines_matching(r"^create\s+(\S+)$", run.stdout) == [f"container/{name}-0", f"container/{name}-1"]
    containers = docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})
    assert sorted(c.name for c in containers) == [f"{name}-0", f"{name}-1"]
    assert {c.attrs["HostConfig"]["Memory"] for c in containers} == {128 * MI}


def test_get_containers_json_lists_the_replicas_with_their_workload(web, env) -> None:
    name, _spec, apply = web
    succeeded(apply)
    records = [r for r in json.loads(succeeded(rtm_console(env, "get", "containers", "--json")).stdout) if r["workload"] == name]
    assert sorted((r["name"], r["replica"]) for r in records) == [(f"{name}-0", 0), (f"{name}-1", 1)]
    for record in records:
        assert record["labels"]["rtm.workload"] == name
        assert record["state"] == "running"
        assert record["memory_limit_bytes"] == 128 * MI
        assert isinstance(record["started_at"], float) and isinstance(record["memory_working_set_bytes"], int)
    table = succeeded(rtm_console(env, "get", "workloads", "--json")).stdout
    assert {"name": name, "kind": "container", "replicas": 2, "running": 2} in json.loads(table)


def test_the_unchanged_file_plans_unchanged(web, env) -> None:
    name, spec, apply = web
    succeeded(apply)
    plan = succeeded(rtm_console(env, "apply", str(spec), "--dry-run")).stdout
    assert plan.splitlines() == [f"unchanged container/{name}-0", f"unchanged container/{name}-1"]


def test_a_changed_memory_limit_plans_a_change_and_dry_run_makes_none(web, env, docker_client, test_image, test_labels, tmp_path) -> None:
    name, _spec, apply = web
    succeeded(apply)
    smaller = workload_file(tmp_path / "web.yaml", name, test_image, test_labels, memory="96Mi")
    plan = succeeded(rtm_console(env, "apply", str(smaller), "--dry-run")).stdout
    assert lines_matching(r"^(?:update|replace)\s+(\S+)", plan) == [f"container/{name}-0", f"container/{name}-1"]
    assert len(lines_matching(rf"^\s+\S*Memory: {128 * MI} -> {96 * MI}$", plan)) == 2, plan
    assert docker_client.api.inspect_container(f"{name}-0")["HostConfig"]["Memory"] == 128 * MI


def test_logs_print_the_container_s_output(web, env) -> None:
    name, _spec, apply = web
    succeeded(apply)
    logs = succeeded(rtm_console(env, "logs", f"container/{name}-0")).stdout
    assert "serving /tmp/www on port 8080" in logs.splitlines()


def test_kiosk_refuses_apply_and_delete_on_the_engine(web, env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    name, _spec, apply = web
    succeeded(apply)
    other = f"{run_id}-clikiosk"
    refused_apply = rtm_console(env, "--kiosk", "apply", str(workload_file(tmp_path / "k.yaml", other, test_image, test_labels)), "--yes")
    refused_delete = rtm_console(env, "--kiosk", "delete", f"container/{name}-0", "--yes")
    for run, action in ((refused_apply, "workload.apply"), (refused_delete, "resource.delete")):
        assert run.returncode == 1
        assert f"kiosk mode is read-only: {action} " in run.stderr
    assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={other}"}) == []
    assert docker_client.containers.get(f"{name}-0").status == "running"
    audit = [json.loads(line) for line in (Path(env["RTM_DATA_DIR"]) / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["target"], r["result"]) for r in audit if r["mode"] == "kiosk"] == [
        ("workload.apply", f"ContainerRuntime/{other}", "refused"),
        ("resource.delete", f"container/{name}-0", "refused"),
    ]


def test_delete_needs_yes_without_a_terminal_and_then_removes_every_replica(env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    name = f"{run_id}-clidel"
    spec = workload_file(tmp_path / "del.yaml", name, test_image, test_labels)
    try:
        succeeded(rtm_console(env, "apply", str(spec)))
        refused = rtm_console(env, "delete", str(spec))
        assert refused.returncode == 1
        assert re.search(r"no terminal to confirm it on; pass --yes", refused.stderr), refused.stderr
        assert len(docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})) == 2
        deleted = succeeded(rtm_console(env, "delete", str(spec), "--yes")).stdout
        assert sorted(re.findall(r"^deleted (container/\S+)", deleted, re.MULTILINE)) == [f"container/{name}-0", f"container/{name}-1"]
        assert docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}) == []
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


def test_apply_and_delete_each_leave_one_event_per_change(env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    from console.eventlog import EventLog

    name = f"{run_id}-clievt"
    spec = workload_file(tmp_path / "evt.yaml", name, test_image, test_labels)
    events = EventLog.in_data_dir(env["RTM_DATA_DIR"])
    try:
        succeeded(rtm_console(env, "apply", str(spec)))
        succeeded(rtm_console(env, "delete", str(spec), "--yes"))
    finally:
        remove_all(docker_client, f"rtm.workload={name}")
    mine = [(e.kind, e.target) for e in events.read() if (e.workload or "").startswith(name)]
    assert mine == [("apply", f"ContainerRuntime/{name}"), ("delete", f"container/{name}")], mine
