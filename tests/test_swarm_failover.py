"""Failover belongs to Swarm, on the test setup's real 3-node swarm (zones b/a/a): the control
loops report what Swarm does as events (a task failed and restarted in its slot, a worker lost
and its tasks rescheduled, the service converged), never restart a task themselves, and keep the
nginx upstream of a balanced service at its running tasks' addresses reachable from this host."""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from supervisor_support import Harness, start_supervisor, wait_for
from test_cli_resources import rtm_console

from backends.docker.client import EngineEndpoint
from console.supervisor.engines import Engine
from console.supervisor.gated_actions import WRITE_UPSTREAM

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")
LOOP_EVENTS = ("restart_scheduled", "restart", "restart_failed", "replica_failed", "give_up", "replace", "reschedule", "reconcile_create")
SERVER = re.compile(r"^\s*server (\S+);$", re.MULTILINE)


@pytest.fixture()
def prefix(swarm: dict[str, Any]) -> Iterator[str]:
    """q2-<random>: this test's services, removed afterwards."""
    prefix = f"q2-{uuid.uuid4().hex[:6]}"
    yield prefix
    for service in swarm["api"].services():
        if service["Spec"]["Name"].startswith(prefix):
            swarm["api"].remove_service(service["ID"])


def cli_env(swarm: dict[str, Any], folder: Path, publish_mode: str) -> dict[str, str]:
    env = {**os.environ, "DOCKER_HOST": swarm["manager"], "RTM_DATA_DIR": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "xdg"),
           "RTM_DOCKER_PUBLISH_MODE": publish_mode}
    env.pop("RTM_CONFIG", None)
    return env


def ok(run: Any) -> Any:
    assert run.returncode == 0, f"{' '.join(run.args[3:])} exited {run.returncode}:\n{run.stderr}{run.stdout}"
    return run


def spec(name: str, *, replicas: int, command: str, extra: str = "", zone: str = "") -> str:
    """A workload spec; `zone` keeps its tasks on the nodes of that zone (b: the manager, which
    no test takes down, so other tests' outages do not move them)."""
    policy = f'SchedulingPolicy:\n  constraints:\n    - {{type: "node_affinity", key: "zone", operator: "In", values: ["{zone}"]}}\n' if zone else ""
    return f"""name: {name}
replicas: {replicas}
ContainerRuntime:
  base_image: "{IMAGE}"
  command: {command}
  security: {{user: "1000:1000"}}
  resources:
    limits: {{cpu: "250m", memory: "32Mi"}}
{extra}{policy}FailoverStrategy:
  detection: {{interval: 1s, timeout: 2s, retries: 1}}
  recovery: {{auto_restart: true, max_restart_attempts: 3, restart_delay: 1s}}
  load_balancing: {{algorithm: round_robin, health_check: true}}
"""


def applied(swarm: dict[str, Any], folder: Path, name: str, text: str, publish_mode: str = "ingress", every_node: bool = False) -> Harness:
    """The workload applied as a service through rtm-console, and the control loops over it
    (not started) with the manager's engine, and with every node's when `every_node`."""
    env = cli_env(swarm, folder, publish_mode)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    ok(rtm_console(env, "apply", "--yes", str(path)))
    sockets = [swarm["manager"], *(swarm["workers"] if every_node else [])]
    return start_supervisor(folder, name, text, [Engine(EngineEndpoint(f"sw{i}", socket)) for i, socket in enumerate(sockets, 1)])


def node_engines(swarm: dict[str, Any]) -> dict[str, str]:
    """hostname -> the unix socket of that node's engine."""
    return dict(zip(swarm["hostnames"], [swarm["manager"], *swarm["workers"]]))


def running(swarm: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in swarm["api"].tasks(filters={"service": name, "desired-state": "running"}) if t["Status"]["State"] == "running"]


def hostname_of(swarm: dict[str, Any], node_id: str) -> str:
    return next(n["Description"]["Hostname"] for n in swarm["api"].nodes() if n["ID"] == node_id)


EXITS_ON_USR1 = """["sh", "-c", "trap 'exit 3' USR1; while true; do sleep 0.2; done"]"""


def exit_3(swarm: dict[str, Any], task: dict[str, Any]) -> str:
    """Makes the task's container exit with code 3 (USR1, through its node's engine); its node."""
    node = hostname_of(swarm, task["NodeID"])
    engine = docker.APIClient(base_url=node_engines(swarm)[node])
    engine.kill(task["Status"]["ContainerStatus"]["ContainerID"], signal="SIGUSR1")
    engine.close()
    return node


def event(harness: Harness, kind: str, target: str | None = None) -> Any:
    """The first event of this kind (and target) about the workload, or about a node."""
    found = harness.events.read() if target and target.startswith("node/") else harness.log()
    return next((e for e in found if e.kind == kind and (target is None or e.target == target)), None)


def of_task(events: list[Any], task_id: str, key: str = "task") -> list[Any]:
    """The events about one task (by its id; `previous_task` for the task a new one replaced)."""
    return [e for e in events if e.details.get(key) == task_id]


def kinds(harness: Harness, kind: str) -> list[Any]:
    return [e for e in harness.log() if e.kind == kind]


def servers(harness: Harness) -> list[str]:
    """The servers of the workload's upstream block (an empty block's `down` server left out)."""
    block = harness.upstream().split(f"workload {harness.workload} ", 1)[-1]
    return sorted(SERVER.findall(block.split("}", 1)[0]))


def test_a_task_that_fails_is_restarted_by_swarm_and_reported_once_never_restarted_by_the_loops(swarm, prefix, tmp_path) -> None:
    name = f"{prefix}-exit"
    # USR1 makes the task exit with code 3; the readiness port 9000 is not published.
    text = spec(name, replicas=1, command=EXITS_ON_USR1, zone="b",
                extra="HealthCheck:\n  readiness: {tcp: {port: 9000}, interval: 2s, timeout: 1s, retries: 1}\n")
    harness = applied(swarm, tmp_path, name, text, every_node=True)  # the loops see the task's container too
    audited = len(harness.audit())  # the apply's
    harness.supervisor.start()
    try:
        first = wait_for(lambda: running(swarm, name), what="the task running", timeout=60)[0]
        wait_for(lambda: name in harness.supervisor.swarm.services, what="the workload known as a service")
        unreachable = wait_for(lambda: event(harness, "swarm_unreachable"), what="the unreachable upstream said")
        assert "does not publish port 9000" in unreachable.message and "publish it (ports: - container_port: 9000)" in unreachable.message
        assert "server 127.0.0.1:9 down;" in harness.upstream()

        converged = len(kinds(harness, "swarm_service_converged"))
        node = exit_3(swarm, first)

        failed = wait_for(lambda: of_task(kinds(harness, "swarm_task_failed"), first["ID"]), what="the failure reported", timeout=60)[0]
        assert failed.message == f"task {name}.1 failed on {node}: task: non-zero exit (3)"
        restarted = wait_for(lambda: of_task(kinds(harness, "swarm_task_restarted"), first["ID"], "previous_task"),
                             what="Swarm's restart reported", timeout=60)[0]
        assert restarted.message.startswith(f"task {name}.1 restarted by Swarm in its slot on ")
        assert restarted.message.endswith("after: task: non-zero exit (3)")
        wait_for(lambda: len(kinds(harness, "swarm_service_converged")) > converged, what="the service converged again", timeout=60)

        # One event per change: more looks add nothing.
        seen = [(e.kind, e.target) for e in harness.log()]
        looks = harness.supervisor.swarm.looks
        wait_for(lambda: harness.supervisor.swarm.looks >= looks + 3, what="three more looks")
        assert [(e.kind, e.target) for e in harness.log()] == seen
        assert len(of_task(kinds(harness, "swarm_task_failed"), first["ID"])) == 1
        assert seen.count(("swarm_unreachable", f"upstream/{name}")) == 1
        assert name in harness.supervisor.state()["swarm"]["services"]
    finally:
        harness.supervisor.stop()
    watch = harness.supervisor.swarm
    assert watch.calls == 3 * watch.looks  # services, tasks, nodes per look
    assert not [e for e in harness.log() if e.kind in LOOP_EVENTS]  # Swarm's failover, not the loops'
    assert {record["action"] for record in harness.audit()[audited:]} <= {WRITE_UPSTREAM.name}

    shown = ok(rtm_console(cli_env(swarm, tmp_path, "ingress"), "events")).stdout
    assert f"swarm_task_restarted  {name} task/{name}.1  task {name}.1 restarted by Swarm" in shown


@pytest.fixture()
def lost_worker_link(swarm: dict[str, Any]) -> Iterator[list[str]]:
    """The command that sets the last worker's link (append "up" or "down"); always up again
    afterwards, and every node ready, so the swarm is left as it was found."""
    link = ["ip", "-n", swarm["hub"], "link", "set", f"n{len(swarm['hostnames'])}-p"]
    try:
        yield link
    finally:
        subprocess.run([*link, "up"], check=True)
        wait_for(lambda: all(n["Status"]["State"] == "ready" for n in swarm["api"].nodes()), what="every node ready again", timeout=60)


def test_a_lost_worker_swarm_reschedules_its_tasks_the_events_say_so_and_the_upstream_follows(swarm, prefix, tmp_path, lost_worker_link) -> None:
    name = f"{prefix}-lost"
    text = spec(name, replicas=2, command='["httpd", "-f", "-p", "8080", "-h", "/"]', extra='  ports: ["8080"]\n', zone="a")
    harness = applied(swarm, tmp_path, name, text, publish_mode="host")
    addresses = dict(zip(swarm["hostnames"], os.environ["RTM_TEST_SWARM_ADDRESSES"].split(",")))
    lost, kept = swarm["hostnames"][-1], swarm["hostnames"][-2]  # the zone-a nodes
    harness.supervisor.start()
    try:
        def spread() -> list[str] | None:
            members = servers(harness)
            hosts = sorted(m.rsplit(":", 1)[0] for m in members)
            return members if hosts == sorted([addresses[lost], addresses[kept]]) else None

        members = wait_for(spread, what="one task on each zone-a node in the upstream", timeout=90)
        for member in members:  # reachable from this host: the task's node address and its host-mode port
            host, port = member.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("GET", "/")
            assert connection.getresponse().status in (200, 403, 404)
            connection.close()

        converged = len(kinds(harness, "swarm_service_converged"))
        subprocess.run([*lost_worker_link, "down"], check=True)
        down = wait_for(lambda: event(harness, "swarm_node_down", f"node/{lost}"), what=f"{lost} reported down", timeout=60)
        assert down.message.startswith(f"node {lost} is down")
        moved = wait_for(lambda: event(harness, "swarm_task_rescheduled"), what="the task rescheduled", timeout=90)
        assert re.fullmatch(rf"task {name}\.\d rescheduled from {lost} \(down\) to {kept}", moved.message)
        after = wait_for(lambda: (m := servers(harness)) and len(m) == 2 and all(s.startswith(addresses[kept] + ":") for s in m) and m,
                         what=f"both members on {kept}", timeout=90)
        assert len(set(after)) == 2  # two tasks on one node: two host-mode ports
        wait_for(lambda: len(kinds(harness, "swarm_service_converged")) > converged, what="converged again", timeout=60)
        membership = [e for e in harness.log() if e.kind == "membership" and any(r.startswith(addresses[lost]) for r in e.details["removed"])]
        assert membership, "the lost node's member left the upstream with a membership event"
        sizes = [len(e.details["members"]) for e in harness.log() if e.kind == "membership"]
        assert 0 not in sizes[sizes.index(2):]  # one writer: never emptied by the loops' own failover
    finally:
        subprocess.run([*lost_worker_link, "up"], check=True)
        try:
            wait_for(lambda: event(harness, "swarm_node_up", f"node/{lost}"), what=f"{lost} reported ready again", timeout=60)
        finally:
            harness.supervisor.stop()
    assert [e.kind for e in harness.log()].count("swarm_task_rescheduled") == 1
    assert not [e for e in harness.log() if e.kind in LOOP_EVENTS]
    shown = ok(rtm_console(cli_env(swarm, tmp_path, "host"), "events")).stdout
    assert f"node/{lost}  node {lost} is down" in shown and moved.message in shown


def test_an_ingress_published_service_is_balanced_over_every_ready_node_at_its_published_port(swarm, prefix, tmp_path) -> None:
    name = f"{prefix}-mesh"
    text = spec(name, replicas=1, command='["httpd", "-f", "-p", "8080", "-h", "/"]', extra='  ports: ["8080"]\n')
    harness = applied(swarm, tmp_path, name, text, publish_mode="ingress")
    harness.supervisor.start()
    try:
        wait_for(lambda: running(swarm, name), what="the task running", timeout=60)
        found = next(s for s in swarm["api"].services() if s["Spec"]["Name"] == name)
        published = next(p["PublishedPort"] for p in found["Endpoint"]["Ports"] if p["TargetPort"] == 8080)

        def every_ready_node() -> bool:
            ready = sorted(f"{n['Status']['Addr']}:{published}" for n in swarm["api"].nodes() if n["Status"]["State"] == "ready")
            return servers(harness) == ready

        wait_for(every_ready_node, what="every ready node at the published port", timeout=60)
    finally:
        harness.supervisor.stop()


def test_an_interactive_console_runs_the_watch_too_for_every_service_without_specs(swarm, prefix, tmp_path) -> None:
    from console.context import open_context
    from console.supervisor.embedded import EmbeddedLoops

    name = f"{prefix}-console"
    env = cli_env(swarm, tmp_path, "ingress")
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec(name, replicas=1, command=EXITS_ON_USR1, zone="b"))
    ok(rtm_console(env, "apply", "--yes", str(path)))
    first = wait_for(lambda: running(swarm, name), what="the task running", timeout=60)[0]
    ctx = open_context(argparse.Namespace(), "interactive", env={**env, "RTM_SPECS_DIR": str(tmp_path / "specs")})
    loops = EmbeddedLoops(ctx)
    try:
        assert loops.start()  # no agent holds the lock; the specs folder is empty
        wait_for(lambda: name in loops.supervisor.swarm.services, what="the service seen")
        node = exit_3(swarm, first)

        def told(kind: str) -> list[Any]:
            return [e for e in ctx.events.read() if e.kind == kind and e.workload == name]

        wait_for(lambda: of_task(told("swarm_task_restarted"), first["ID"], "previous_task"), what="Swarm's restart in the console's event log", timeout=60)
        assert [e.message for e in of_task(told("swarm_task_failed"), first["ID"])] == [f"task {name}.1 failed on {node}: task: non-zero exit (3)"]
    finally:
        loops.stop()
        ctx.close()


def test_a_host_mode_task_is_in_the_upstream_only_while_its_readiness_probe_passes(swarm, prefix, tmp_path) -> None:
    name = f"{prefix}-ready"
    text = spec(name, replicas=1, command='["sh", "-c", "mkdir -p /tmp/www && exec httpd -f -p 8080 -h /tmp/www"]', zone="b",
                extra='  ports: ["8080"]\nHealthCheck:\n  readiness: {http: {path: /ready, port: 8080}, interval: 1s, timeout: 0.5s, retries: 1}\n')
    harness = applied(swarm, tmp_path, name, text, publish_mode="host")
    harness.supervisor.start()
    try:
        task = wait_for(lambda: running(swarm, name), what="the task running", timeout=60)[0]
        published = next(p["PublishedPort"] for p in task["Status"]["PortStatus"]["Ports"] if p["TargetPort"] == 8080)
        member = f"{swarm['api'].inspect_node(task['NodeID'])['Status']['Addr']}:{published}"
        looks = harness.supervisor.swarm.looks
        wait_for(lambda: harness.supervisor.swarm.looks >= looks + 3, what="three looks with the task running")
        assert "server 127.0.0.1:9 down;" in harness.upstream() and not kinds(harness, "ready")  # GET /ready: 404, not ready

        def run_in_task(*command: str) -> None:
            engine = docker.APIClient(base_url=swarm["manager"])  # zone b: the manager's own task
            engine.exec_start(engine.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], list(command))["Id"])
            engine.close()

        run_in_task("touch", "/tmp/www/ready")
        wait_for(lambda: servers(harness) == [member], what="the task in the upstream once ready", timeout=30)
        assert [e.target for e in kinds(harness, "ready")] == [f"task/{name}.1"]
        run_in_task("rm", "/tmp/www/ready")
        wait_for(lambda: servers(harness) == [], what="the task out of the upstream", timeout=30)
        assert kinds(harness, "unready")[0].message.startswith("readiness probe failed 1 times in a row: out of rotation")
    finally:
        harness.supervisor.stop()
