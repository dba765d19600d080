"""`rtm-console apply` asks before host-level container settings and before creating many
replicas at once: the reasons are printed with their positions, and without a terminal the
apply is refused unless --yes is given (real Docker engine, a real `rtm-console` process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_cli_apply_docker import succeeded, workload_file
from test_cli_resources import rtm_console
from test_docker_support import remove_all

pytestmark = pytest.mark.docker


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


def _edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return path


def _created(docker_client, name: str) -> list[str]:
    return sorted(c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}))


def test_host_level_capability_is_confirmed_first_and_refused_without_a_terminal(env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    name = f"{run_id}-risky"
    spec = _edit(workload_file(tmp_path / "risky.yaml", name, test_image, test_labels),
                 'capabilities: ["NET_BIND_SERVICE"]', 'capabilities: ["NET_BIND_SERVICE", "SYS_ADMIN"]')
    try:
        refused = rtm_console(env, "apply", str(spec))
        assert refused.returncode == 1
        assert f"ContainerRuntime/{name}: confirm first: {spec}:16:40: capability SYS_ADMIN lets the container" in refused.stdout
        assert "no terminal to confirm it on; pass --yes" in refused.stderr
        assert _created(docker_client, name) == []
        succeeded(rtm_console(env, "apply", str(spec), "--yes"))
        assert _created(docker_client, name) == [f"{name}-0", f"{name}-1"]
        again = succeeded(rtm_console(env, "apply", str(spec)))  # nothing to create: nothing to ask
        assert "confirm first" not in again.stdout
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


def test_creating_more_replicas_than_the_limit_at_once_is_confirmed_first(env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    name = f"{run_id}-many"
    spec = _edit(workload_file(tmp_path / "many.yaml", name, test_image, test_labels), f"name: {name}\n", f"name: {name}\nreplicas: 51\n")
    try:
        refused = rtm_console(env, "apply", str(spec))
        assert refused.returncode == 1, refused.stderr
        assert f"ContainerRuntime/{name}: confirm first: creates 51 replicas at once (more than 50)" in refused.stdout
        assert _created(docker_client, name) == []
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


@pytest.mark.parametrize(("edit", "expected"), [
    (('limits: {cpu: "500m"', 'limits: {cpu: "1000"'), r"asks for 1000 CPUs; the largest engine has \d+"),
    (('memory: "128Mi"}', 'memory: "64Ti"}'), r"asks for 65536\.0 GiB of memory; the largest engine has [\d.]+ GiB"),
])
def test_plan_refuses_more_cpu_or_memory_than_the_largest_engine_has(edit, expected, env, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    import re

    name = f"{run_id}-huge"
    spec = _edit(workload_file(tmp_path / "huge.yaml", name, test_image, test_labels), *edit)
    planned = rtm_console(env, "apply", "--dry-run", str(spec))
    assert planned.returncode == 1
    assert re.search(f"ContainerRuntime/{name}: cannot plan: the spec {expected}", planned.stderr), planned.stderr
    assert _created(docker_client, name) == []
