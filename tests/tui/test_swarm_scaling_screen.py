"""The console's scaling screen on a workload that is a Swarm service, on the test setup's real
3-node swarm through Textual's Pilot: Execute scales the service keeping its running tasks
(the question names the service and its cluster), and Apply limits changes the service's
limits by one rolling update, which the question says replaces its tasks."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from console.tui.screens.dialogs import ConfirmScreen
from tui.conftest import host_backend, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SIZE = (160, 40)
MI = 1024 * 1024


def service_spec(name: str) -> dict[str, Any]:
    vertical = {"min_cpu": "200m", "max_cpu": "1000m", "min_memory": "32Mi", "max_memory": "256Mi", "adjustment_step": "100m"}
    return {
        "name": name, "replicas": 1,
        "ContainerRuntime": {"base_image": os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0"), "command": ["sleep", "600"],
                             "security": {"user": "1000:1000"},
                             "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "16Mi"}}},
        "AutoScalingPolicy": {"horizontal": {"min_replicas": 1, "max_replicas": 3, "target_cpu_utilization": 50}, "vertical": vertical},
    }  # fmt: skip


def applied_console(live_console: Any, folder: Any, spec: dict[str, Any], endpoints: list[Any]) -> tuple[Any, Any, Any]:
    """The workload applied through the Docker handler over these engines, and a live console
    over them: (console, backends, handler)."""
    from backends.docker import make_docker_backends
    from rtm.documents import load_file

    specs = folder / "specs"
    specs.mkdir()
    (specs / "web.yaml").write_text(json.dumps(spec))
    backends, handlers = make_docker_backends(endpoints)
    (document,) = load_file(specs / "web.yaml").documents
    handlers["container"].apply(document, specs, handlers["container"].plan(document, specs), lambda _line: None)
    return live_console([host_backend(), *backends], handlers=handlers, specs=specs), backends, handlers["container"]


async def scaling_screen_of(pilot: Any, name: str) -> Any:
    """H, then the workload chosen in the scaling screen."""
    from textual.widgets import Select

    await pilot.press("H")
    assert await wait_for(pilot, lambda: hasattr(pilot.app.screen, "decision"))
    choices = pilot.app.screen.query_one("#workload", Select)
    choices.value = next(i for i, s in enumerate(pilot.app.screen.workloads) if s.document.name == name)
    await pilot.pause()
    return pilot.app.screen


def running_task_ids(api: Any, name: str) -> set[str]:
    return {t["ID"] for t in api.tasks(filters={"service": name, "desired-state": "running"}) if t["Status"]["State"] == "running"}


def the_service(api: Any, name: str) -> dict[str, Any]:
    return next(s for s in api.services() if s["Spec"]["Name"] == name)


async def test_the_scaling_screen_scales_a_service_keeping_its_tasks_and_resizes_it_by_a_rolling_update(
        live_console, tmp_path, swarm, run_id) -> None:
    from backends.docker import EngineEndpoint
    from backends.docker.swarm.observer import latest

    api = swarm["api"]
    name = f"{run_id}-q1-tui"
    hosts = [swarm["manager"], *swarm["workers"]]
    console, backends, handler = applied_console(live_console, tmp_path, service_spec(name),
                                                 [EngineEndpoint(f"q1-n{i}", host) for i, host in enumerate(hosts, 1)])
    first = wait_for_tasks(api, name, 1)
    app = console.app

    async def confirm(pilot, button: str) -> str:
        await pilot.click(button)
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.question
        await pilot.press("y")
        return question

    try:
        async with app.run_test(size=SIZE) as pilot:
            # The manager's poll has seen the service (the screen names its cluster from it).
            assert await wait_for(pilot, lambda: any(s[0] == name for s in getattr(latest("docker@q1-n1"), "services", ())), timeout=60)
            screen = await scaling_screen_of(pilot, name)
            screen.query_one("#replicas").value = "1"
            screen.query_one("#cpu").value = "150"
            screen.action_evaluate()
            assert screen.decision.target_replicas == 3
            question = await confirm(pilot, "#execute")
            assert f"service/{name} on the Swarm cluster of docker@q1-n1 from 1 to 3 replicas (running tasks kept)" in question
            assert await wait_for(pilot, lambda: the_service(api, name)["Spec"]["Mode"]["Replicated"]["Replicas"] == 3, timeout=60)
            assert await wait_for(pilot, lambda: len(running_task_ids(api, name)) == 3, timeout=90)
            assert first <= running_task_ids(api, name)  # the first task kept
            assert handler.replicas.survey(name).of(name) == []  # no loose container

            await pilot.press("escape")

            def engine_rows() -> int:  # running tasks of the workload whose containers an engine lists (with statistics)
                return len({c.id for c in app.live_records("containers")
                            if c.workload == name and c.state == "running" and "/" not in c.engine and c.cpu_ratio is not None})

            assert await wait_for(pilot, lambda: engine_rows() == 3, timeout=60)
            screen = await scaling_screen_of(pilot, name)
            assert screen.query_one("#replicas").value == "3"  # one row per task, not one per engine that reports it
            assert await wait_for(pilot, lambda: not screen.query_one("#resize").disabled)
            before = running_task_ids(api, name)
            question = await confirm(pilot, "#resize")
            assert f"rolling update of service/{name} on docker@q1-n1: replaces 3 tasks" in question and "cpu 200m" in question
            assert await wait_for(pilot, lambda: the_service(api, name)["Spec"]["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"] == 200_000_000,
                                  timeout=60)
            assert await wait_for(pilot, lambda: (now := running_task_ids(api, name)) and len(now) == 3 and not now & before, timeout=150)
        assert [r["action"] for r in console.audit() if r["result"] == "ok"] == ["workload.scale", "workload.resize"]
    finally:
        for backend in backends:
            backend.close()


def wait_for_tasks(api: Any, name: str, count: int) -> set[str]:
    from supervisor_support import wait_for as wait_plain

    return wait_plain(lambda: (ids := running_task_ids(api, name)) and len(ids) == count and ids, what=f"{count} running tasks")  # type: ignore[return-value]


async def test_apply_limits_on_a_standalone_workload_changes_them_in_place(live_console, tmp_path, docker_client, run_id) -> None:
    name = f"{run_id}-q1-inplace"
    spec = service_spec(name)
    spec["ContainerRuntime"]["labels"] = {"rtm.target": "standalone"}
    console, backends, _handler = applied_console(live_console, tmp_path, spec, [os.environ["DOCKER_HOST"]])
    before = docker_client.api.inspect_container(f"{name}-0")
    app = console.app
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: any(c.workload == name and c.cpu_ratio is not None for c in app.live_records("containers")), timeout=60)
            screen = await scaling_screen_of(pilot, name)
            assert await wait_for(pilot, lambda: not screen.query_one("#resize").disabled)
            await pilot.click("#resize")
            assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "in place on 1 running replicas, no restart" in app.screen.question and "cpu 200m" in app.screen.question
            await pilot.press("y")
            assert await wait_for(pilot, lambda: docker_client.api.inspect_container(f"{name}-0")["HostConfig"]["NanoCpus"] == 200_000_000, timeout=60)
        after = docker_client.api.inspect_container(f"{name}-0")
        assert after["Id"] == before["Id"] and after["State"]["StartedAt"] == before["State"]["StartedAt"]
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}):
            leftover.remove(force=True)
        for backend in backends:
            backend.close()
