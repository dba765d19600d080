"""A Swarm service's `command` readiness probe, on the test setup's real 3-node swarm (zones
b/a/a): the control loops run it inside each running task's container through the engine of the
task's node, and the task is in the nginx upstream only while it passes; a task on a node whose
engine is not configured stays a member and one event says which engine to add."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from supervisor_support import wait_for
from test_swarm_failover import (
    applied,
    hostname_of,
    kinds,
    node_engines,
    running,
    servers,
    spec,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SERVES_8080 = '["sh", "-c", "mkdir -p /tmp/www && exec httpd -f -p 8080 -h /tmp/www"]'
READY_WITH_FILE = '  ports: ["8080"]\nHealthCheck:\n  readiness: {command: "test -f /tmp/ready", interval: 2s, timeout: 1.5s, retries: 1}\n'


@pytest.fixture()
def prefix(swarm: dict[str, Any]) -> Iterator[str]:
    """q7-<random>: this test's services, removed afterwards."""
    prefix = f"q7-{uuid.uuid4().hex[:6]}"
    yield prefix
    for service in swarm["api"].services(filters={"name": prefix}):  # the engine matches names by their start
        swarm["api"].remove_service(service["ID"])


def host_member(swarm: dict[str, Any], task: dict[str, Any]) -> str:
    """Where this host reaches the task's port 8080 (its node's address and the host port it got)."""
    published = next(p["PublishedPort"] for p in task["Status"]["PortStatus"]["Ports"] if p["TargetPort"] == 8080)
    return f"{swarm['api'].inspect_node(task['NodeID'])['Status']['Addr']}:{published}"


def run_in_task(swarm: dict[str, Any], task: dict[str, Any], *command: str) -> None:
    """Runs a command in the task's container through its node's engine, as an operator's exec would."""
    engine = docker.APIClient(base_url=node_engines(swarm)[hostname_of(swarm, task["NodeID"])])
    try:
        engine.exec_start(engine.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], list(command))["Id"])
    finally:
        engine.close()


@pytest.mark.parametrize("zone", ["b", "a"], ids=["the-managers-own-task", "a-task-on-a-worker-endpoint"])
def test_a_task_is_in_the_upstream_only_while_its_command_readiness_probe_passes_inside_it(swarm, prefix, tmp_path, zone) -> None:
    name = f"{prefix}-cmd"
    text = spec(name, replicas=1, command=SERVES_8080, zone=zone, extra=READY_WITH_FILE)
    harness = applied(swarm, tmp_path, name, text, publish_mode="host", every_node=True)
    harness.supervisor.start()
    try:
        task = wait_for(lambda: running(swarm, name), what="the task running", timeout=60)[0]
        node = hostname_of(swarm, task["NodeID"])
        engine = f"docker@sw{swarm['hostnames'].index(node) + 1}"  # the engines are sw1 (manager), sw2, sw3 in the nodes' order
        looks = harness.supervisor.swarm.looks
        wait_for(lambda: harness.supervisor.swarm.looks >= looks + 3, what="three looks with the task running")
        assert "server 127.0.0.1:9 down;" in harness.upstream() and not kinds(harness, "ready")  # no /tmp/ready: not ready

        run_in_task(swarm, task, "touch", "/tmp/ready")
        wait_for(lambda: servers(harness) == [host_member(swarm, task)], what="the task in the upstream once ready", timeout=30)
        ready = kinds(harness, "ready")
        assert [(e.target, e.details["endpoint"]) for e in ready] == [(f"task/{name}.1", engine)]
        assert ready[0].message == f"readiness probe passed: back in rotation ({engine})"

        run_in_task(swarm, task, "rm", "/tmp/ready")
        wait_for(lambda: servers(harness) == [], what="the task out of the upstream", timeout=30)
        unready = kinds(harness, "unready")
        assert [e.target for e in unready] == [f"task/{name}.1"]
        assert unready[0].message.startswith("readiness probe failed 1 times in a row: out of rotation")
        assert unready[0].details["detail"] == "exit code 1"
        assert not kinds(harness, "swarm_unreachable")
    finally:
        harness.supervisor.stop()


def test_a_task_on_a_node_without_a_configured_engine_stays_a_member_and_one_event_names_the_engine_to_add(swarm, prefix, tmp_path) -> None:
    name = f"{prefix}-noengine"
    text = spec(name, replicas=1, command=SERVES_8080, zone="a", extra=READY_WITH_FILE)  # zone a: a worker's task
    harness = applied(swarm, tmp_path, name, text, publish_mode="host")  # the manager's engine alone
    harness.supervisor.start()
    try:
        task = wait_for(lambda: running(swarm, name), what="the task running", timeout=60)[0]
        node = swarm["api"].inspect_node(task["NodeID"])
        hostname, address = node["Description"]["Hostname"], node["Status"]["Addr"]
        wait_for(lambda: servers(harness) == [host_member(swarm, task)], what="the unprobed task in the upstream", timeout=30)
        looks = harness.supervisor.swarm.looks
        wait_for(lambda: harness.supervisor.swarm.looks >= looks + 5, what="five more looks")

        said = kinds(harness, "swarm_unreachable")
        assert [e.target for e in said] == [f"node/{hostname}"]  # once, not once a look
        assert said[0].message == (f"the readiness probe of {name} cannot run in task {name}.1 on node {hostname}: no configured "
                                   f"Docker engine is that node's; its tasks there stay in the upstream unprobed; add the engine "
                                   f"of node {hostname} ({address}) as a Docker endpoint")
        assert servers(harness) == [host_member(swarm, task)]  # /tmp/ready does not exist, but nothing could run the probe
        assert not kinds(harness, "ready") and not kinds(harness, "unready")
    finally:
        harness.supervisor.stop()
