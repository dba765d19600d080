"""What TaskWatch reports between two looks at a cluster, for what the shared test swarm cannot
be put through without disturbing other tests (a drained node, a rolling update, a task that
cannot be placed): Engine API objects written here stand in for the manager's answers."""

from __future__ import annotations

from typing import Any

from backends.docker.swarm.task_addresses import reachable_members
from backends.docker.swarm.task_changes import TaskWatch, view_from_api
from rtm.loadbalancer import Member

SERVICE = {"s1": {"ID": "s1", "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 1}}},
                  "Endpoint": {"Ports": [{"TargetPort": 8080, "PublishMode": "host"}]}}}


def node(node_id: str, hostname: str, state: str = "ready", availability: str = "active") -> dict[str, Any]:
    return {"ID": node_id, "Description": {"Hostname": hostname}, "Spec": {"Availability": availability},
            "Status": {"State": state, "Addr": f"10.0.0.{node_id[-1]}"}}


def task(task_id: str, node_id: str, state: str, desired: str = "running", created: str = "1", err: str = "", port: int = 0) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Message": state, "Err": err}
    if port:
        status["PortStatus"] = {"Ports": [{"TargetPort": 8080, "PublishedPort": port, "PublishMode": "host"}]}
    return {"ID": task_id, "ServiceID": "s1", "Slot": 1, "NodeID": node_id, "DesiredState": desired, "CreatedAt": created, "Status": status}


def look(watch: TaskWatch, tasks: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c.kind, c.message) for c in watch.update(view_from_api(SERVICE, tasks, nodes))]


NODES = [node("n1", "a"), node("n2", "b")]


def test_simulated_first_look_reports_nothing_already_there() -> None:
    watch = TaskWatch("docker@m")
    assert look(watch, [task("t0", "n1", "failed", "shutdown", "0", "task: non-zero exit (1)"), task("t1", "n1", "running", created="1")],
                [node("n1", "a"), node("n2", "b", state="down")]) == []
    assert look(watch, [task("t0", "n1", "failed", "shutdown", "0", "task: non-zero exit (1)"), task("t1", "n1", "running", created="1")],
                [node("n1", "a"), node("n2", "b", state="down")]) == []


def test_simulated_drained_node_reschedules_and_says_so_once_the_new_task_is_placed() -> None:
    watch = TaskWatch("docker@m")
    look(watch, [task("t1", "n1", "running")], NODES)
    drained = [node("n1", "a", availability="drain"), node("n2", "b")]
    unplaced = [task("t1", "n1", "running", "shutdown"), task("t2", "", "pending", created="2")]
    assert look(watch, unplaced, drained) == []  # not placed yet
    placed = [task("t1", "n1", "shutdown", "shutdown"), task("t2", "n2", "running", created="2")]
    assert look(watch, placed, drained) == [("swarm_task_rescheduled", "task web.1 rescheduled from a (drained) to b"),
                                            ("swarm_service_converged", "service web converged: 1/1 tasks running")]
    assert look(watch, placed, drained) == []


def test_simulated_rolling_update_replacement_and_unplaceable_task_are_said_once() -> None:
    watch = TaskWatch("docker@m")
    look(watch, [task("t1", "n1", "running")], NODES)
    updated = [task("t1", "n1", "shutdown", "shutdown"), task("t2", "n1", "running", created="2")]
    assert look(watch, updated, NODES) == [("swarm_task_replaced", "task web.1 replaced by Swarm on a (its previous task: shutdown, desired shutdown)")]
    stuck = [*updated[:1], task("t2", "n1", "shutdown", "shutdown", "2"), task("t3", "", "pending", created="3", err="no suitable node (2 nodes not available for new tasks)")]
    assert look(watch, stuck, NODES) == [("swarm_task_pending", "task web.1 cannot be placed: no suitable node (2 nodes not available for new tasks)")]
    assert look(watch, stuck, NODES) == []


def test_simulated_host_mode_members_are_the_running_tasks_at_their_node_and_port() -> None:
    tasks = [task("t1", "n1", "running", port=30001), task("t2", "n2", "starting", port=30002)]
    assert reachable_members(view_from_api(SERVICE, tasks, NODES), "web", 8080) == ([Member("10.0.0.1:30001")], None)
