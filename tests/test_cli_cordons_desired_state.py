"""Cordons and desired state through `rtm-console` on the real engine, each step a separate
process as an operator runs it: cordon the engine's machine, apply, scale, re-apply, delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from test_cli_apply_docker import succeeded, workload_file
from test_cli_resources import lines_matching, rtm_console
from test_docker_support import remove_all

pytestmark = pytest.mark.docker
UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) were unschedulable."


@pytest.fixture
def operator(docker_client, test_image, test_labels, run_id, tmp_path):
    """(environment, spec file, workload name, data folder): the test engine, a fresh data
    folder, and a specs folder holding the sample workload."""
    name = f"{run_id}-clicordon"
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = workload_file(specs / "web.yaml", name, test_image, test_labels)
    data = tmp_path / "data"
    env = {**os.environ, "RTM_DATA_DIR": str(data), "RTM_SPECS_DIR": str(specs), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    yield env, spec, name, data
    remove_all(docker_client, f"rtm.workload={name}")


def replicas(docker_client, name: str) -> list[str]:
    return sorted(c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}))


def test_a_cordoned_machine_refuses_apply_and_scale_until_uncordoned(operator, docker_client) -> None:
    env, spec, name, data = operator
    machine = docker_client.info()["Name"]  # the node: the machine that carries the engine
    succeeded(rtm_console(env, "cordon", f"node/{machine}"))
    refused = rtm_console(env, "apply", str(spec), "--yes")
    assert refused.returncode != 0 and UNSCHEDULABLE in refused.stderr + refused.stdout
    assert replicas(docker_client, name) == []
    assert not (data / "workloads" / f"{name}.json").exists()  # written only after a confirmed apply

    succeeded(rtm_console(env, "uncordon", f"node/{machine}"))
    succeeded(rtm_console(env, "apply", str(spec), "--yes"))
    record = json.loads((data / "workloads" / f"{name}.json").read_text())
    assert (record["version"], record["replicas"], record["spec_replicas"]) == (1, 2, 2)

    succeeded(rtm_console(env, "cordon", f"node/{machine}"))
    scaled = rtm_console(env, "scale", "--workload", name, "--replicas", "3", "--yes")
    assert scaled.returncode == 1 and UNSCHEDULABLE in scaled.stdout + scaled.stderr
    assert replicas(docker_client, name) == [f"{name}-0", f"{name}-1"]
    succeeded(rtm_console(env, "uncordon", f"node/{machine}"))
    succeeded(rtm_console(env, "scale", "--workload", name, "--replicas", "3", "--yes"))
    assert replicas(docker_client, name) == [f"{name}-0", f"{name}-1", f"{name}-2"]
    assert json.loads((data / "workloads" / f"{name}.json").read_text())["replicas"] == 3

    # Re-applying the unchanged file keeps the scaled count.
    again = succeeded(rtm_console(env, "apply", str(spec), "--yes"))
    assert lines_matching(r"^unchanged\s+(\S+)$", again.stdout) == [f"container/{name}-{i}" for i in range(3)]
    assert replicas(docker_client, name) == [f"{name}-0", f"{name}-1", f"{name}-2"]

    succeeded(rtm_console(env, "delete", str(spec), "--yes"))
    assert replicas(docker_client, name) == [] and not (data / "workloads" / f"{name}.json").exists()

