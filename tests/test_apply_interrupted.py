"""An apply cut short on the real Docker engine: Ctrl+C (SIGINT) and `kill -9` sent to a real
`rtm-console apply` process once its first replica exists. The audit log holds the intent
before the change and the outcome after it; the output says what exists now."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli_apply_docker import workload_file
from test_docker_support import eventually, remove_all

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
REPLICAS = 3


@pytest.fixture
def workload(docker_client, test_image, test_labels, run_id, request, tmp_path) -> Iterator[tuple[str, Path]]:
    """(name, spec file) of a 3-replica workload of the test image; its containers removed after."""
    name = f"{run_id}-cut{request.node.name[-12:].strip('_').replace('_', '-').lower()}"
    spec = workload_file(tmp_path / "web.yaml", name, test_image, test_labels)
    spec.write_text(spec.read_text().replace(f"name: {name}\n", f"name: {name}\nreplicas: {REPLICAS}\n", 1))
    yield name, spec
    remove_all(docker_client, f"rtm.workload={name}")


def start_apply(spec: Path, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "RTM_DATA_DIR": str(data_dir), "XDG_CONFIG_HOME": str(data_dir.parent / "xdg")}
    env.pop("RTM_CONFIG", None)
    # Ctrl+C must reach Python as KeyboardInterrupt even when the test runner ignores SIGINT.
    return subprocess.Popen([sys.executable, "-m", "console.cli", "apply", str(spec), "--yes"], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def live_replicas(docker_client, name: str) -> set[str]:
    return {c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})}


def wait_for_the_first_replica(docker_client, name: str, process: subprocess.Popen) -> None:
    """Polls the engine until replica 0 runs (the apply goes on to the next ones)."""
    def first_runs() -> bool:
        return any(c.name == f"{name}-0" and c.status == "running"
                   for c in docker_client.containers.list(filters={"label": f"rtm.workload={name}"}))
    assert eventually(lambda: first_runs() or process.poll() is not None, timeout=120, step=0.05)
    assert process.poll() is None, f"the apply ended before it could be interrupted: {process.communicate()}"


def audit_of(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "audit.jsonl").read_text().splitlines()]


def test_ctrl_c_after_the_first_replica_says_what_exists_and_audits_intent_and_outcome(workload, docker_client, tmp_path) -> None:
    name, spec = workload
    data_dir = tmp_path / "data"
    process = start_apply(spec, data_dir)
    wait_for_the_first_replica(docker_client, name, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    live = live_replicas(docker_client, name)
    assert f"{name}-0" in live
    said = re.search(rf"^interrupted: ContainerRuntime/{name}: exists now: (.*?)(?:; not created: (.*?))?; apply again to finish, "
                     rf"or delete workload/{name} to remove it$", err, re.MULTILINE)
    assert said, err
    existing = set(said.group(1).split(", "))
    missing = set(said.group(2).split(", ")) if said.group(2) else set()
    assert existing == {f"container/{n}" for n in live}  # what the output says is what the engine has
    assert existing | missing == {f"container/{name}-{i}" for i in range(REPLICAS)}

    records = [r for r in audit_of(data_dir) if r["action"] == "workload.apply"]
    assert [r["result"] for r in records] == ["started", "interrupted"]
    intent, outcome = records
    assert [c["resource"] for c in intent["params"]["changes"]] == [f"container/{name}-{i}" for i in range(REPLICAS)]
    assert outcome["error"] == "interrupted"
    assert f"exists now: {said.group(1)}" in outcome["message"]


def test_kill_9_during_an_apply_leaves_its_intent_in_the_audit_log(workload, docker_client, tmp_path) -> None:
    name, spec = workload
    data_dir = tmp_path / "data"
    process = start_apply(spec, data_dir)
    wait_for_the_first_replica(docker_client, name, process)
    process.kill()
    process.communicate(timeout=60)
    records = [r for r in audit_of(data_dir) if r["action"] == "workload.apply"]
    assert [(r["target"], r["result"]) for r in records] == [(f"ContainerRuntime/{name}", "started")]
    assert records[0]["params"]["changes"][0] == {"action": "create", "resource": f"container/{name}-0"}
