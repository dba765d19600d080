"""The exporter over the real Docker backend: a removed container's series vanish, and an engine
stopped mid-run turns its `rtm_backend_up` to 0 and back."""

from __future__ import annotations

import os

import pytest

from backends.docker import DockerBackend
from backends.docker.mapping import LABEL_WORKLOAD
from console.exporter.assembly import build_registry
from console.poller import Poller
from fixtures.engines import free_bridge_cidr, private_dockerd
from test_exporter_helpers import samples, scrape, value_of, wait_until

pytestmark = pytest.mark.docker


def _containers_named(registry, prefix: str) -> set[str]:
    return {s.labels["container"] for s in samples(scrape(registry), "rtm_container_cpu_usage_seconds") if s.labels["container"].startswith(prefix)}


def test_series_of_a_removed_container_vanish(docker_client, test_image, test_labels, run_id):
    backend = DockerBackend(os.environ["DOCKER_HOST"], read_only=True)
    poller = Poller([backend], interval=0.5)
    names = [f"{run_id}-exp-{n}" for n in range(2)]
    created = [
        docker_client.containers.run(test_image, ["sleep", "300"], name=name, detach=True, init=True,
                                     labels={**test_labels, LABEL_WORKLOAD: f"{run_id}-exp"}, mem_limit="64m")
        for name in names
    ]
    try:
        poller.start()
        registry = build_registry(poller)
        prefix = f"{run_id}-exp-"
        wait_until(lambda: _containers_named(registry, prefix) == set(names), "both containers in the scrape")
        families = scrape(registry)
        assert value_of(families, "rtm_container_spec_memory_limit_bytes", container=names[0]) == 64 * 2**20
        assert value_of(families, "rtm_container_state", container=names[0], state="running") == 1
        assert value_of(families, "rtm_workload_replicas", workload=f"{run_id}-exp", state="running") == 2
        assert value_of(families, "rtm_container_memory_working_set_bytes", container=names[0]) > 0

        created[1].remove(force=True)
        wait_until(lambda: _containers_named(registry, prefix) == {names[0]}, "the removed container to leave the scrape")
        families = scrape(registry)
        for family in ("rtm_container_info", "rtm_container_state", "rtm_container_memory_working_set_bytes"):
            assert names[1] not in {s.labels["container"] for s in samples(families, family)}, family
        assert value_of(families, "rtm_workload_replicas", workload=f"{run_id}-exp", state="running") == 1
    finally:
        poller.stop()
        backend.close()
        for container in created:
            try:
                container.remove(force=True)
            except Exception:  # already gone
                pass


@pytest.mark.slow
def test_an_engine_stopped_mid_run_turns_up_to_0_and_back():
    with private_dockerd(bridge_cidr=free_bridge_cidr(), images=[]) as engine:
        backend = DockerBackend(engine.host, read_only=True, timeout=3.0)
        poller = Poller([backend], interval=0.5, poll_timeout=10)
        poller.start()
        registry = build_registry(poller)
        up = lambda: value_of(scrape(registry), "rtm_backend_up", backend=backend.name)  # noqa: E731
        try:
            wait_until(lambda: up() == 1, "the engine to be up", timeout=60)
            engine.stop()
            wait_until(lambda: up() == 0, "up 0 while the engine is stopped", timeout=60)
            assert value_of(scrape(registry), "rtm_backend_up", backend=backend.name, endpoint=engine.host) == 0
            engine.start()
            wait_until(lambda: up() == 1, "up 1 once the engine is back", timeout=60)
        finally:
            poller.stop()
            backend.close()
