"""The exporter's Swarm series over the real 3-node swarm: replicas desired and running per
service, node availability and state, and task replacements observed by the poller."""

from __future__ import annotations

import docker
import pytest
from test_exporter_helpers import scrape, value_of, wait_until

from backends.docker import DockerBackend
from console.exporter.assembly import build_registry
from console.poller import Poller

pytestmark = pytest.mark.docker


def test_service_replicas_node_availability_and_replacements_are_exported(swarm, run_id, test_image) -> None:
    api = swarm["api"]
    name = f"{run_id}-exp"
    backend = DockerBackend(swarm["manager"], read_only=True)
    poller = Poller([backend], interval=0.5)
    created = api.create_service({"ContainerSpec": {"Image": test_image, "Command": ["sleep", "600"], "StopGracePeriod": 1_000_000_000}},
                                 name=name, labels={"rtm.workload": name}, mode={"Replicated": {"Replicas": 2}})
    paused = swarm["hostnames"][1]
    try:
        poller.start()
        registry = build_registry(poller)
        cluster = backend.name

        def replicas(family: str) -> float | None:
            return value_of(scrape(registry), family, cluster=cluster, service=name)

        wait_until(lambda: replicas("rtm_swarm_service_replicas_running") == 2, "two running tasks in the scrape", timeout=60)
        families = scrape(registry)
        assert replicas("rtm_swarm_service_replicas_desired") == 2
        wait_until(lambda: value_of(scrape(registry), "rtm_workload_replicas", workload=name, state="running") == 2,
                   "the tasks as the workload's running replicas", timeout=30)
        assert value_of(families, "rtm_swarm_task_replacements", cluster=cluster, service=name) == 0
        for hostname in swarm["hostnames"]:
            assert value_of(families, "rtm_swarm_node_state", cluster=cluster, node=hostname, state="ready") == 1
            assert value_of(families, "rtm_swarm_node_availability", cluster=cluster, node=hostname, availability="active") == 1

        node = next(n for n in api.nodes() if n["Description"]["Hostname"] == paused)
        api.update_node(node["ID"], node["Version"]["Index"], {**node["Spec"], "Availability": "pause"})
        wait_until(lambda: value_of(scrape(registry), "rtm_swarm_node_availability", cluster=cluster, node=paused, availability="pause") == 1,
                   "the paused node in the scrape", timeout=30)

        task = next(t for t in api.tasks(filters={"service": name}) if t["Status"]["State"] == "running")
        hostname = next(n["Description"]["Hostname"] for n in api.nodes() if n["ID"] == task["NodeID"])
        engine = dict(zip(swarm["hostnames"], [swarm["manager"], *swarm["workers"]]))[hostname]
        docker.APIClient(base_url=engine).kill(task["Status"]["ContainerStatus"]["ContainerID"])  # a new task in its slot
        wait_until(lambda: value_of(scrape(registry), "rtm_swarm_task_replacements", cluster=cluster, service=name) == 1,
                   "one replacement observed", timeout=60)
    finally:
        poller.stop()
        backend.close()
        api.remove_service(created["ID"])
        node = next(n for n in api.nodes() if n["Description"]["Hostname"] == paused)
        api.update_node(node["ID"], node["Version"]["Index"], {**node["Spec"], "Availability": "active"})


def test_a_manager_costs_three_calls_per_poll_and_a_standalone_engine_one_info_every_30(swarm, run_id, test_image) -> None:
    import os

    from backends.docker.swarm.observer import ROLE_CHECK_EVERY, SwarmObserver

    api = swarm["api"]
    manager = DockerBackend(swarm["manager"], read_only=True)
    standalone = DockerBackend(os.environ["DOCKER_HOST"], read_only=True)
    created = api.create_service({"ContainerSpec": {"Image": test_image, "Command": ["sleep", "600"]}}, name=f"{run_id}-cost",
                                 labels={"rtm.workload": f"{run_id}-cost"}, mode={"Replicated": {"Replicas": 0}})
    try:
        on_manager, on_standalone = SwarmObserver(manager), SwarmObserver(standalone)
        on_manager.observe()  # docker info first
        first = on_manager.calls
        on_manager.observe()
        assert on_manager.calls - first == 3  # services, tasks, nodes
        for _ in range(ROLE_CHECK_EVERY):
            assert on_standalone.observe() is None
        assert on_standalone.calls == 1
    finally:
        api.remove_service(created["ID"])
        manager.close()
        standalone.close()
