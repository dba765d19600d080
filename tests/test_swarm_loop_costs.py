"""What the control loops cost the engines, counted (never timed) on the test setup's real 3-node
swarm with the real Docker SDK: an autoscaler evaluation of a service reads its running tasks'
containers and nothing else on their nodes, and the loops (the Swarm watch, the autoscaler's
service look-ups, the poll of each engine) ask each engine `docker info` once per refresh of
their one shared discovery, not once per job."""

from __future__ import annotations

import os
from typing import Any

import pytest
from supervisor_support import start_supervisor, wait_for
from test_swarm_cli import env, running_tasks  # noqa: F401  (env: the CLI's fixture)
from test_swarm_scaling_loops import apply_spec, engines, workload_spec  # noqa: F401  (engines: the fixture)

from backends.docker.backend import DockerBackend
from backends.docker.client import EngineEndpoint
from backends.docker.stats import StatsCollector
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.autoscaler import WorkloadAutoscaler
from console.supervisor.engines import Engine
from console.supervisor.supervised import load_workloads

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")


class CountingApi:
    """The engine's API client, with each method asked for counted."""

    def __init__(self, api: Any, counts: dict[str, int]) -> None:
        self._api, self._counts = api, counts

    def __getattr__(self, name: str) -> Any:
        self._counts[name] = self._counts.get(name, 0) + 1
        return getattr(self._api, name)


def count_calls(engine: Engine) -> dict[str, int]:
    """The engine API methods the engine's backend is asked for from now on, counted."""
    counts: dict[str, int] = {}
    real_call = engine.backend.client.call
    engine.backend.client.call = lambda fn: real_call(lambda api: fn(CountingApi(api, counts)))  # type: ignore[method-assign]
    return counts


def tasks_by_node(swarm: dict[str, Any], name: str, engines: list[Engine]) -> list[list[str]]:
    """The running tasks of the service on each engine's node, in the engines' order."""
    node_of = {engine.name: engine.client.call(lambda api: api.info())["Swarm"]["NodeID"] for engine in engines}
    tasks = swarm["api"].tasks(filters={"service": name, "desired-state": "running"})
    return [[t["ID"] for t in tasks if t["NodeID"] == node_of[engine.name]] for engine in engines]


@pytest.fixture()
def unrelated_containers(swarm: dict[str, Any], run_id: str) -> Any:
    """Four running containers on the manager's engine that belong to no service."""
    api = swarm["api"]
    made = []
    try:
        for index in range(4):
            container = api.create_container(IMAGE, ["sleep", "600"], name=f"{run_id}-q9-other-{index}", labels={"rtm.test": "1"})
            api.start(container["Id"])
            made.append(container["Id"])
        yield made
    finally:
        for container_id in made:
            api.remove_container(container_id, force=True)


@pytest.fixture(params=["cgroup", "stream"])
def stats_engines(request: pytest.FixtureRequest, swarm: dict[str, Any]) -> Any:
    """The three engines reading statistics from cgroup files (the engines run on this machine)
    or from one stats stream per container (as for an engine on another machine)."""
    hosts = [swarm["manager"], *swarm["workers"]]
    backends = [DockerBackend(EngineEndpoint(f"q1-n{index}", host), stats=request.param) for index, host in enumerate(hosts, 1)]
    yield request.param, [Engine(backend.engine, backend=backend) for backend in backends]
    for backend in backends:
        backend.close()


def test_an_evaluation_of_a_service_reads_its_tasks_containers_and_nothing_else_on_the_nodes(
        env, swarm, stats_engines, unrelated_containers, run_id, tmp_path, monkeypatch) -> None:
    mode, engines = stats_engines
    name = f"{run_id}-q9-reads-{mode}"
    # Each task burns its whole 50m limit against a 10m request: 500 % of a 50 % target.
    spec = workload_spec(name, command=["sh", "-c", "while :; do :; done"], replicas=3, limits=("50m", "16Mi"), requests=("10m", "4Mi"),
                         policy={"horizontal": {"min_replicas": 1, "max_replicas": 4, "target_cpu_utilization": 50}})
    apply_spec(env, tmp_path, name, spec)
    wait_for(lambda: len(running_tasks(swarm, name)) == 3, what="three running tasks")
    read: list[str] = []
    sources: set[str | None] = set()
    real_stats = StatsCollector.stats

    def stats(collector: StatsCollector, container_id: str) -> Any:
        read.append(container_id)
        sources.add(collector.source(container_id))
        return real_stats(collector, container_id)

    monkeypatch.setattr(StatsCollector, "stats", stats)
    workload = load_workloads(tmp_path / "specs").workloads[name]
    # A kiosk gate refuses the scale-up: the evaluation is measured and decided, nothing changed.
    autoscaler = WorkloadAutoscaler(workload, engines, ActionGate("kiosk", tmp_path / "audit.jsonl"), EventLog.in_data_dir(tmp_path),
                                    tmp_path, interval=0)
    try:
        counts = [count_calls(engine) for engine in engines]
        autoscaler.tick(1.0)  # the first: finds the clusters, and each task's container by one inspect on its node's engine
        assert [c.get("inspect_container", 0) for c in counts] == [len(t) for t in tasks_by_node(swarm, name, engines)]
        for c in counts:
            c.clear()
        read.clear()
        autoscaler.tick(2.0)
        tasks = {t["Status"]["ContainerStatus"]["ContainerID"] for t in swarm["api"].tasks(filters={"service": name, "desired-state": "running"})}
        assert set(read) == tasks and not set(read) & set(unrelated_containers) and sources == {mode}
        # The manager: the service found (services), its state (services, nodes, tasks); no engine listed, no worker asked.
        assert counts == [{"services": 2, "nodes": 1, "tasks": 1}, {}, {}]
        decision = autoscaler.last_decision
        assert autoscaler.last_error is None and decision is not None
        assert (decision.direction, decision.current_replicas, decision.target_replicas) == ("scale_up", 3, 4), decision.reason
    finally:
        autoscaler.close()


def test_the_loops_ask_each_engine_docker_info_once_per_refresh_of_one_discovery(env, swarm, engines, run_id, tmp_path) -> None:
    name = f"{run_id}-q9-idle"
    spec = workload_spec(name, command=["sleep", "600"], replicas=1, limits=("50m", "16Mi"), requests=("10m", "4Mi"),
                         policy={"horizontal": {"min_replicas": 1, "max_replicas": 2, "target_cpu_utilization": 80}})
    apply_spec(env, tmp_path, name, spec)
    wait_for(lambda: len(running_tasks(swarm, name)) == 1, what="the task running")
    harness = start_supervisor(tmp_path / "loops", name, spec, engines, autoscale_interval=15.0)
    supervisor = harness.supervisor
    clock = [0.0]
    supervisor.swarm_roles.clock = lambda: clock[0]
    counts = [count_calls(engine) for engine in engines]
    supervisor.reload()
    statuses = []
    for cycle in range(8):  # two minutes of an idle agent, 15 s apart: every job of the loops and the poll once per cycle
        clock[0] = now = 15.0 * cycle
        supervisor.swarm.tick(now)
        for autoscaler in supervisor.autoscalers.values():
            autoscaler.tick(now)
        statuses = [engine.backend.swarm.observe() for engine in engines]
    supervisor.stop()
    assert supervisor.swarm_roles.refreshes == 4  # at 0, 30, 60 and 90 s
    assert [c.get("info") for c in counts] == [4, 4, 4]
    # The poll of the manager takes the watch's look of the same moment: services are listed by the
    # watch and twice by each evaluation (the service found, its state), the nodes once by each.
    assert (counts[0]["services"], counts[0]["tasks"], counts[0]["nodes"]) == (8 + 2 * 8, 8 + 8, 8 + 8)
    # Each job still knows the cluster: the watch looked at it, the autoscaler measured the service, the poll of the manager sees it.
    assert supervisor.swarm.state()["clusters"] == ["docker@q1-n1"] and name in supervisor.swarm.services
    assert supervisor.autoscalers[name].last_error is None and supervisor.autoscalers[name].last_decision is not None
    assert statuses[0] is not None and name in [service for service, _desired, _running in statuses[0].services]
    assert statuses[1:] == [None, None]


def test_a_standalone_workloads_evaluations_ask_the_engine_for_its_swarm_role_once_per_refresh(tmp_path, docker_client, run_id) -> None:
    name = f"{run_id}-q9-cost"
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "cost.yaml").write_text(workload_spec(name, command=["sleep", "600"], replicas=1, limits=("100m", "32Mi"),
                                                                requests=("10m", "16Mi"), policy={"horizontal": {"max_replicas": 2, "target_cpu_utilization": 50}}))
    engine = Engine(os.environ["DOCKER_HOST"])
    counts = count_calls(engine)
    try:
        workload = load_workloads(tmp_path / "specs").workloads[name]
        autoscaler = WorkloadAutoscaler(workload, [engine], ActionGate("agent", tmp_path / "audit.jsonl"), EventLog.in_data_dir(tmp_path), tmp_path, interval=0)
        clock = [0.0]
        autoscaler.services.discovery.clock = lambda: clock[0]
        for second in range(40):
            clock[0] = float(second)
            autoscaler.tick(float(second))
        assert counts.get("info") == 2 and "services" not in counts  # at 0 and 30 s; no swarm here: no service listing either
    finally:
        engine.close()


def test_the_discovery_asks_the_engines_again_when_one_is_lost_or_back_and_not_before_its_refresh(swarm, engines) -> None:
    from backends.docker.swarm.discovery import SwarmDiscovery

    counts = [count_calls(engine) for engine in engines]
    answering = list(engines)
    clock = [0.0]
    discovery = SwarmDiscovery(lambda: [engine.backend for engine in answering], clock=lambda: clock[0])
    assert [c.name for c in discovery.clusters()] == ["docker@q1-n1"]
    clock[0] = 29.0
    assert discovery.role_of("docker@q1-n2").role == "worker"  # still the first answer
    answering.remove(engines[2])  # the third engine lost
    assert discovery.role_of("docker@q1-n3") is None and len(discovery.clusters()[0].workers) == 1
    answering.append(engines[2])  # and back
    assert len(discovery.clusters()[0].workers) == 2
    assert [c.get("info") for c in counts] == [3, 3, 2] and discovery.refreshes == 3


def test_the_poll_gets_the_previous_roles_while_a_refresh_waits_for_a_simulated_silent_engine(swarm, engines) -> None:
    import threading

    from backends.docker.swarm.discovery import SwarmDiscovery

    answer = threading.Event()
    answer.set()
    real_call = engines[2].backend.client.call

    def held_call(fn: Any) -> Any:  # the third engine's `docker info` waits until it is let go
        answer.wait()
        return real_call(fn)

    engines[2].backend.client.call = held_call  # type: ignore[method-assign]
    clock = [0.0]
    discovery = SwarmDiscovery(lambda: [engine.backend for engine in engines], clock=lambda: clock[0])
    assert discovery.role_of("docker@q1-n1").is_manager
    answer.clear()
    clock[0] = 30.0
    refresh = threading.Thread(target=discovery.current)
    refresh.start()
    wait_for(lambda: discovery.refreshing, what="the refresh under way")
    assert discovery.role_of("docker@q1-n1").is_manager and discovery.refreshes == 1  # the previous answer, at once
    answer.set()
    refresh.join(timeout=60)
    assert discovery.refreshes == 2
