"""The console's scaling screen against the real engine with the engine's machine cordoned:
the scaling is refused with kube-scheduler's message, and done once the machine is uncordoned."""

from __future__ import annotations

import os

import pytest

from console.cordons import CordonStore
from console.tui.screens.dialogs import ConfirmScreen
from tui.conftest import host_backend, wait_for
from tui.test_console_docker import SIZE, WORKLOAD_SPEC

pytestmark = pytest.mark.docker


async def test_a_scaling_from_the_console_leaves_a_cordoned_machine_alone(live_console, tmp_path, docker_client, test_image, run_id) -> None:
    from textual.widgets import Select

    from backends.docker import make_docker_backends
    from rtm.documents import load_file

    name = f"tuic{run_id.replace('-', '')[-10:]}"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "web.yaml").write_text(WORKLOAD_SPEC.format(name=name, image=test_image))
    (tmp_path / "data").mkdir()
    cordons = CordonStore(tmp_path / "data")  # the console's data folder (live_console)
    backends, handlers = make_docker_backends([os.environ["DOCKER_HOST"]], cordoned=cordons.is_cordoned, data_dir=tmp_path / "data")
    (document,) = load_file(specs / "web.yaml").documents
    handlers["container"].apply(document, specs, handlers["container"].plan(document, specs), lambda _line: None)
    machine = docker_client.info()["Name"]
    console = live_console([host_backend(), *backends], handlers=handlers, specs=specs)
    app = console.app

    async def scale_to_three(pilot) -> None:
        await pilot.press("H")
        assert await wait_for(pilot, lambda: hasattr(app.screen, "decision"))
        screen = app.screen
        screen.query_one("#workload", Select).value = next(i for i, s in enumerate(screen.workloads) if s.document.name == name)
        await pilot.pause()
        screen.query_one("#replicas").value = "1"
        screen.query_one("#cpu").value = "150"
        screen.action_evaluate()
        assert screen.decision.target_replicas == 3
        await pilot.click("#execute")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")

    try:
        async with app.run_test(size=SIZE) as pilot:
            cordons.set(machine, True)
            await scale_to_three(pilot)
            assert await wait_for(pilot, lambda: any(r["action"] == "workload.scale" and r["result"] != "started" for r in console.audit()), timeout=90)
            (refused,) = [r for r in console.audit() if r["action"] == "workload.scale" and r["result"] != "started"]
            assert refused["result"] != "ok" and "0/1 nodes are available: 1 node(s) were unschedulable." in str(refused)
            assert {c.name for c in docker_client.containers.list(filters={"name": name})} == {f"{name}-0"}
            await pilot.press("escape")
            cordons.set(machine, False)
            await scale_to_three(pilot)
            assert await wait_for(pilot, lambda: any(r["action"] == "workload.scale" and r["result"] == "ok" for r in console.audit()), timeout=90)
        assert {c.name for c in docker_client.containers.list(filters={"name": name})} == {f"{name}-0", f"{name}-1", f"{name}-2"}
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)
