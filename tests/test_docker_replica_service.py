"""The replica service on the real engine: cordons in every placement path, desired state kept
by apply, scale and the reconciliation loop, Swarm's containers left alone."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from backends.docker import DockerSetup, make_docker_handlers
from backends.docker.desired import DesiredStore
from backends.docker.replicas import PlacementError
from backends.handlers import ApplyError
from console.cordons import CordonStore
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.autoscaler import execute_scale, history_path, load_history, update_history
from console.supervisor.engines import Engine
from console.supervisor.reconcile import Reconciler
from console.supervisor.supervised import workload_from_document
from test_docker_support import SAMPLES, remove_all, run_container, workload_document

pytestmark = pytest.mark.docker
UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) were unschedulable."


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def cordons(data) -> CordonStore:
    return CordonStore(data)


@pytest.fixture
def setup(data, cordons) -> DockerSetup:
    built = make_docker_handlers([os.environ["DOCKER_HOST"]], stop_timeout=1, cordoned=cordons.is_cordoned, data_dir=data)
    yield built
    built.close()


@pytest.fixture
def machine(docker_client) -> str:
    """The node id of the engine's machine: the hostname `docker info` reports."""
    return docker_client.info()["Name"]


@pytest.fixture
def workload(docker_client, run_id, request):
    name = f"{run_id}-rs-{request.node.name.removeprefix('test_')[:10].replace('_', '-').strip('-')}"
    yield name
    remove_all(docker_client, f"rtm.workload={name}")


def apply(setup: DockerSetup, document) -> list[str]:
    return setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)


def names(docker_client, workload: str) -> list[str]:
    return sorted(c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={workload}"}))


def reconciler(setup: DockerSetup, data: Path) -> tuple[Reconciler, EventLog]:
    events = EventLog.in_data_dir(data)
    engines = [Engine(b.engine, backend=b) for b in setup.backends]
    return Reconciler(DesiredStore(data), lambda: engines, ActionGate("agent", data / "audit.jsonl"), events), events


# ------------------------------------------------------------------------------------- cordons


def test_a_cordoned_machine_takes_no_replica_from_apply_and_takes_them_again_once_uncordoned(
        setup, cordons, machine, workload, docker_client, test_image, test_labels) -> None:
    document = workload_document(workload, test_image, test_labels, replicas=1)
    cordons.set(machine, True)
    with pytest.raises(ApplyError) as refused:
        apply(setup, document)
    assert UNSCHEDULABLE in refused.value.cause
    assert names(docker_client, workload) == []
    assert setup.handler.desired.get(workload) is None  # recorded only after a confirmed apply
    cordons.set(machine, False)
    assert apply(setup, document) == [f"created container/{workload}-0 on docker@local"]


def test_a_cordoned_machine_takes_no_replica_from_scale_or_the_autoscaler(
        setup, cordons, machine, data, workload, docker_client, test_image, test_labels) -> None:
    document = workload_document(workload, test_image, test_labels, replicas=1)
    apply(setup, document)
    cordons.set(machine, True)
    with pytest.raises(PlacementError, match=re.escape(UNSCHEDULABLE)):
        setup.actions.scale(workload, 2)  # what the console's scaling screen calls
    engines = [Engine(b.engine, backend=b) for b in setup.backends]
    events = EventLog.in_data_dir(data)
    gate = ActionGate("agent", data / "audit.jsonl")
    supervised = workload_from_document(document)
    assert supervised is not None
    done, message = execute_scale(supervised, engines, gate, events, 1, 2, "cpu above target", setup.handler.desired)
    assert done is None and UNSCHEDULABLE in message
    assert names(docker_client, workload) == [f"{workload}-0"]
    # In-place changes stay allowed on a cordoned machine.
    assert "updated" in setup.actions.update_limits(f"{workload}-0", cpu_millis=300)
    cordons.set(machine, False)
    done, _message = execute_scale(supervised, engines, gate, events, 1, 2, "cpu above target", setup.handler.desired)
    assert done is not None and done.after == 2
    assert names(docker_client, workload) == [f"{workload}-0", f"{workload}-1"]
    assert setup.handler.desired.get(workload).replicas == 2  # the autoscaler's count is the desired count


def test_a_rolling_replacement_leaves_a_cordoned_machine(setup, cordons, machine, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, workload_document(workload, test_image, test_labels, replicas=1))
    old = docker_client.api.inspect_container(f"{workload}-0")["Id"]
    cordons.set(machine, True)
    changed = workload_document(workload, test_image, test_labels, replicas=1, edit=lambda t: t.replace('LOG_LEVEL: "info"', 'LOG_LEVEL: "debug"'))
    with pytest.raises(ApplyError) as refused:
        apply(setup, changed)  # the only engine is on the cordoned machine: the replacement fits nowhere
    assert UNSCHEDULABLE in refused.value.cause
    assert docker_client.api.inspect_container(f"{workload}-0")["Id"] == old  # the old replica is back and running
    assert docker_client.api.inspect_container(f"{workload}-0")["State"]["Running"]
    cordons.set(machine, False)
    assert apply(setup, changed) == [f"replaced container/{workload}-0 on docker@local"]


# ------------------------------------------------------------------------------- desired state


def test_re_applying_an_unchanged_spec_keeps_the_scaled_count(setup, data, workload, docker_client, test_image, test_labels) -> None:
    document = workload_document(workload, test_image, test_labels, replicas=1)
    apply(setup, document)
    record = DesiredStore(data).get(workload)
    assert (record.replicas, record.spec_replicas) == (1, 1)
    assert setup.actions.scale(workload, 3)[-1] == f"created container/{workload}-2 on docker@local"
    assert DesiredStore(data).get(workload).replicas == 3
    plan = setup.handler.plan(document, SAMPLES)
    assert [c.action for c in plan] == ["unchanged"] * 3  # the unchanged spec does not undo the scaling
    apply(setup, document)
    assert names(docker_client, workload) == [f"{workload}-{i}" for i in range(3)]
    # A spec whose replicas: changed sets the count.
    apply(setup, workload_document(workload, test_image, test_labels, replicas=2))
    assert names(docker_client, workload) == [f"{workload}-0", f"{workload}-1"]
    assert (DesiredStore(data).get(workload).replicas, DesiredStore(data).get(workload).spec_replicas) == (2, 2)
    lines = setup.handler.delete(workload)
    assert lines[0] == f"deleted the desired state of workload {workload}"
    assert DesiredStore(data).get(workload) is None and names(docker_client, workload) == []


def test_reconciliation_replaces_a_missing_replica_and_removes_a_surplus_but_not_swarm_tasks(
        setup, data, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, workload_document(workload, test_image, test_labels, replicas=2))
    loop, events = reconciler(setup, data)
    docker_client.containers.get(f"{workload}-1").remove(force=True)  # docker rm -f
    loop.tick()
    assert names(docker_client, workload) == [f"{workload}-0", f"{workload}-1"]
    assert [e.kind for e in events.read() if e.workload == workload] == ["reconcile_create"]
    by_hand = run_container(docker_client, test_image, ["sleep", "600"], {**test_labels, "rtm.workload": workload}, name=f"{workload}-byhand")
    swarm = run_container(docker_client, test_image, ["sleep", "600"],
                          {**test_labels, "rtm.workload": workload, "com.docker.swarm.service.name": workload}, name=f"{workload}-swarmtask")
    loop.tick()
    assert names(docker_client, workload) == [f"{workload}-0", f"{workload}-1", swarm.name]  # the unindexed one went first
    assert [e.kind for e in events.read() if e.workload == workload] == ["reconcile_create", "reconcile_remove"]
    assert by_hand.name in events.read()[-1].message
    loop.tick()  # nothing left to do: no event
    assert len([e for e in events.read() if e.workload == workload]) == 2
    audit = [line for line in (data / "audit.jsonl").read_text().splitlines() if workload in line]
    assert any("replica.create_missing" in line for line in audit) and any("replica.remove_surplus" in line for line in audit)


def test_reconciliation_waits_for_an_uncordoned_machine(setup, data, cordons, machine, workload, docker_client, test_image, test_labels) -> None:
    apply(setup, workload_document(workload, test_image, test_labels, replicas=1))
    loop, events = reconciler(setup, data)
    cordons.set(machine, True)
    docker_client.containers.get(f"{workload}-0").remove(force=True)
    loop.tick()
    loop.tick()  # tried on every pass, said once
    (failed,) = [e for e in events.read() if e.workload == workload]
    assert failed.kind == "reconcile_failed" and UNSCHEDULABLE in failed.message
    assert names(docker_client, workload) == []
    cordons.set(machine, False)
    loop.tick()
    assert names(docker_client, workload) == [f"{workload}-0"]


def test_history_updates_from_many_writers_lose_no_entry(tmp_path) -> None:
    path = history_path(tmp_path, "web")
    writers = [threading.Thread(target=update_history, args=(path, lambda h, i=i: h.record_event(float(i), 1, 2))) for i in range(16)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert sorted(e.time for e in load_history(path).events) == [float(i) for i in range(16)]


def test_a_failover_replacement_refuses_a_cordoned_machine_and_uses_it_once_uncordoned(
        setup, data, cordons, machine, workload, docker_client, test_image, test_labels) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from console.supervisor.workload_supervisor import ReplicaTrack, WorkloadSupervisor

    document = workload_document(workload, test_image, test_labels, replicas=2)
    apply(setup, document)
    engines = [Engine(b.engine, backend=b) for b in setup.backends]
    events = EventLog.in_data_dir(data)
    with ThreadPoolExecutor(1) as pool:
        supervisor = WorkloadSupervisor(workload_from_document(document), lambda: engines, ActionGate("agent", data / "audit.jsonl"),
                                        events, None, pool)

        def give_up(index: int) -> None:  # what the loop does once a replica's restart budget is used up
            replica = next(r for r in engines[0].replicas(workload) if r.index == index)
            supervisor._replace(replica.key, ReplicaTrack(replica, supervisor._new_probes(replica), supervisor._new_detector()), time.time())

        cordons.set(machine, True)
        give_up(1)
        assert [e.kind for e in events.read()] == ["replace_failed"] and UNSCHEDULABLE in events.read()[0].message
        assert names(docker_client, workload) == [f"{workload}-0"]
        cordons.set(machine, False)
        give_up(0)
    assert [e.kind for e in events.read()] == ["replace_failed", "replace"]
    assert len(names(docker_client, workload)) == 1 and names(docker_client, workload) != [f"{workload}-0"]
