"""The supervisor's reconciliation loop on the real engine: an applied workload without any
policy keeps its desired count when a replica is removed by hand, as the agent runs it."""

from __future__ import annotations

import os

import pytest

from backends.docker import make_docker_handlers
from console.supervisor.engines import Engine
from supervisor_support import remove_workload, start_supervisor, wait_for
from test_docker_support import SAMPLES, workload_document

pytestmark = pytest.mark.docker


def test_a_removed_replica_of_a_workload_without_policies_comes_back(tmp_path, run_id, test_image, test_labels, docker_client) -> None:
    name = f"{run_id}-reconciled"
    engine = Engine(os.environ["DOCKER_HOST"])
    harness = start_supervisor(tmp_path, name, "# no workload here: the applied one has no policies\n", [engine], reconcile_interval=0.5)
    setup = make_docker_handlers([os.environ["DOCKER_HOST"]], stop_timeout=1, data_dir=tmp_path / "data")
    document = workload_document(name, test_image, test_labels, replicas=2,
                                 edit=lambda text: text.split("AutoScalingPolicy:")[0])  # no health, failover or scaling policy
    try:
        setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)
        harness.supervisor.start()
        docker_client.containers.get(f"{name}-1").remove(force=True)  # docker rm -f
        wait_for(lambda: "reconcile_create" in harness.kinds(), what="the missing replica to be created")
        assert sorted(r.name for r in harness.replicas()) == [f"{name}-0", f"{name}-1"]
        assert harness.supervisor.state()["reconcile"]["passes"] >= 1
    finally:
        harness.supervisor.stop()
        setup.close()
        remove_workload([engine], name)
        engine.close()


def test_a_pass_over_workloads_at_their_count_costs_one_listing_per_engine(tmp_path, run_id, test_image, test_labels, docker_client) -> None:
    from backends.docker.desired import DesiredStore
    from console.eventlog import EventLog
    from console.gate import ActionGate
    from console.supervisor.reconcile import Reconciler

    names = [f"{run_id}-quiet{i}" for i in range(3)]
    setup = make_docker_handlers([os.environ["DOCKER_HOST"]], stop_timeout=1, data_dir=tmp_path)
    engine = Engine(setup.backends[0].engine, backend=setup.backends[0])
    try:
        for name in names:
            document = workload_document(name, test_image, test_labels, replicas=1)
            setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)
        calls: list[str] = []
        client = setup.backends[0].client
        real_call = client.call

        class Recording:  # the engine's API, noting each request made through it
            def __init__(self, api) -> None:
                self.api = api

            def __getattr__(self, request: str):
                calls.append(request)
                return getattr(self.api, request)

        client.call = lambda fn, *a, **k: real_call(lambda api: fn(Recording(api)), *a, **k)
        loop = Reconciler(DesiredStore(tmp_path), lambda: [engine], ActionGate("agent", tmp_path / "audit.jsonl"), EventLog.in_data_dir(tmp_path))
        loop.tick()
        assert calls == ["containers"]  # one listing for three workloads, no inspection, nothing changed
    finally:
        for name in names:
            remove_workload([engine], name)
        setup.close()
