"""PURE: what Swarm did between two looks at a cluster, as one change per thing that happened.

A look (`ClusterView`) holds the rtm-console services, their tasks and the nodes. `TaskWatch`
compares each look with the previous one and says, once each:

- a task failed (Swarm's error text, e.g. `task: non-zero exit (3)`) or cannot be placed;
- a slot got a new task: restarted in its slot after a failure, rescheduled to another node
  because its node is down or drained, or replaced (a rolling update);
- a node went down or came back;
- a service converged (every desired task running) after it was not.

The first look only sets what is known: nothing is reported for what was already there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backends.docker.swarm.tasks import Task, current_tasks, task_of

FAILED_STATES = ("failed", "rejected")
Slot = tuple[str, int]  # (service, slot)


@dataclass(frozen=True)
class NodeView:
    hostname: str
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    address: str
    message: str = ""


@dataclass(frozen=True)
class PortBinding:
    target: int
    published: int
    mode: str  # ingress or host


@dataclass(frozen=True)
class ServiceView:
    name: str
    desired: int
    ports: tuple[PortBinding, ...] = ()  # the service's published ports (ingress and host)


@dataclass(frozen=True)
class ClusterView:
    services: Mapping[str, ServiceView]
    tasks: tuple[Task, ...]
    nodes: Mapping[str, NodeView]
    task_ports: Mapping[str, tuple[PortBinding, ...]] = field(default_factory=dict)  # task id -> host-mode ports

    def running(self, service: str) -> list[Task]:
        return [t for t in self.tasks if t.service == service and t.state == "running" and t.desired_state == "running"]


@dataclass(frozen=True)
class SwarmChange:
    kind: str  # an event kind: swarm_task_failed, swarm_task_restarted, ...
    message: str
    service: str | None
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _bindings(raw: Iterable[Mapping[str, Any]]) -> tuple[PortBinding, ...]:
    found = {PortBinding(int(p.get("TargetPort") or 0), int(p.get("PublishedPort") or 0), str(p.get("PublishMode") or "ingress"))
             for p in raw}  # fmt: skip
    return tuple(sorted(found, key=lambda b: (b.target, b.published)))


def view_from_api(services: Mapping[str, Mapping[str, Any]], raw_tasks: Iterable[Mapping[str, Any]],
                  raw_nodes: Iterable[Mapping[str, Any]]) -> ClusterView:
    """A look from the Engine API's objects (services by id, as listed with the rtm.workload label)."""
    nodes = list(raw_nodes)
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", "") for n in nodes}
    tasks, task_ports = [], {}
    for raw in raw_tasks:
        service = services.get(raw.get("ServiceID", ""))
        if service is None:
            continue
        task = task_of(raw, service["Spec"]["Name"], hostnames)
        tasks.append(task)
        task_ports[task.id] = _bindings(((raw.get("Status") or {}).get("PortStatus") or {}).get("Ports") or [])
    views = {}
    for service in services.values():
        spec = service["Spec"]
        desired = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)
        views[spec["Name"]] = ServiceView(spec["Name"], desired, _bindings((service.get("Endpoint") or {}).get("Ports") or []))
    node_views = {}
    for node in nodes:
        hostname = hostnames[node["ID"]]
        status = node.get("Status") or {}
        address = str(status.get("Addr", ""))
        if address in ("", "0.0.0.0"):  # some managers report no address of their own: their cluster address then
            address = str((node.get("ManagerStatus") or {}).get("Addr", "")).rpartition(":")[0]
        node_views[hostname] = NodeView(hostname, str(status.get("State", "")), str((node.get("Spec") or {}).get("Availability", "")),
                                        address, str(status.get("Message", "")))
    return ClusterView(views, tuple(tasks), node_views, task_ports)


class TaskWatch:
    """The previous look of one cluster and what changed since (`update`)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.looks = 0
        self._slots: dict[Slot, Task] = {}  # the task each slot had when last reported
        self._failed: set[str] = set()  # failed task ids already reported (or there at the first look)
        self._pending: dict[str, str] = {}  # task id -> the placement problem already reported
        self._nodes: dict[str, NodeView] = {}
        self._converged: dict[str, bool] = {}

    def update(self, view: ClusterView) -> list[SwarmChange]:
        first = self.looks == 0
        self.looks += 1
        changes = [] if first else self._node_changes(view)
        self._nodes = dict(view.nodes)
        changes += self._task_failures(view, first)
        changes += self._slot_changes(view, first)
        changes += self._convergence(view, first)
        return changes

    # .. nodes

    def _node_changes(self, view: ClusterView) -> list[SwarmChange]:
        changes = []
        for hostname, node in sorted(view.nodes.items()):
            before = self._nodes.get(hostname)
            if before is None or (before.state == "ready") == (node.state == "ready"):
                continue
            if node.state == "ready":
                changes.append(self._node_change("swarm_node_up", f"node {hostname} is ready again", node))
            else:
                why = f" ({node.message})" if node.message else ""
                changes.append(self._node_change("swarm_node_down", f"node {hostname} is {node.state}{why}", node))
        return changes

    def _node_change(self, kind: str, message: str, node: NodeView) -> SwarmChange:
        return SwarmChange(kind, message, None, f"node/{node.hostname}",
                           {"cluster": self.cluster, "state": node.state, "availability": node.availability, "address": node.address})

    # .. tasks

    def _task_failures(self, view: ClusterView, first: bool) -> list[SwarmChange]:
        changes = []
        ids = {t.id for t in view.tasks}
        self._failed &= ids
        self._pending = {k: v for k, v in self._pending.items() if k in ids}
        for task in view.tasks:
            if task.state in FAILED_STATES and task.id not in self._failed:
                self._failed.add(task.id)
                if not first:
                    error = task.error or task.message or task.state
                    changes.append(SwarmChange("swarm_task_failed", f"task {task.name} {task.state} on {task.node or 'no node'}: {error}",
                                               task.service, f"task/{task.name}", self._task_details(task, error=error)))
            elif task.state == "pending" and task.desired_state == "running" and task.error and self._pending.get(task.id) != task.error:
                self._pending[task.id] = task.error
                if not first:
                    changes.append(SwarmChange("swarm_task_pending", f"task {task.name} cannot be placed: {task.error}",
                                               task.service, f"task/{task.name}", self._task_details(task, error=task.error)))
        return changes

    def _slot_changes(self, view: ClusterView, first: bool) -> list[SwarmChange]:
        changes = []
        by_id = {t.id: t for t in view.tasks}
        current = {(t.service, t.slot): t for t in current_tasks(view.tasks)}
        for slot in [s for s in self._slots if s not in current]:
            del self._slots[slot]  # scaled down, or the service is gone
        for slot, task in current.items():
            before = self._slots.get(slot)
            if before is not None and before.id != task.id:
                if not task.node and task.state not in FAILED_STATES:
                    continue  # not placed yet: said once it has a node (or cannot be placed, above)
                if not first:
                    changes.append(self._replacement(by_id.get(before.id, before), task, view))
            self._slots[slot] = task
        return changes

    def _replacement(self, old: Task, new: Task, view: ClusterView) -> SwarmChange:
        node = view.nodes.get(old.node)
        moved = f" on {new.node}" + (f" (was on {old.node})" if new.node != old.node else "")
        details = self._task_details(new, previous_task=old.id, previous_node=old.node, previous_state=old.state)
        if node is not None and node.state != "ready":
            return SwarmChange("swarm_task_rescheduled", f"task {new.name} rescheduled from {old.node} ({node.state}) to {new.node}",
                               new.service, f"task/{new.name}", {**details, "reason": f"node {node.state}"})
        if node is not None and node.availability == "drain":
            return SwarmChange("swarm_task_rescheduled", f"task {new.name} rescheduled from {old.node} (drained) to {new.node}",
                               new.service, f"task/{new.name}", {**details, "reason": "node drained"})
        if old.state in FAILED_STATES or old.error:
            error = old.error or old.message
            return SwarmChange("swarm_task_restarted", f"task {new.name} restarted by Swarm in its slot{moved} after: {error}",
                               new.service, f"task/{new.name}", {**details, "error": error})
        return SwarmChange("swarm_task_replaced", f"task {new.name} replaced by Swarm{moved} (its previous task: {old.state}, desired {old.desired_state})",
                           new.service, f"task/{new.name}", details)

    def _task_details(self, task: Task, **extra: Any) -> dict[str, Any]:
        return {"cluster": self.cluster, "task": task.id, "node": task.node, "state": task.state, **extra}

    # .. services

    def _convergence(self, view: ClusterView, first: bool) -> list[SwarmChange]:
        changes = []
        for name in [n for n in self._converged if n not in view.services]:
            del self._converged[name]
        for name, service in sorted(view.services.items()):
            running = len(view.running(name))
            converged = running == service.desired
            if not first and converged and self._converged.get(name) is False:
                changes.append(SwarmChange("swarm_service_converged", f"service {name} converged: {running}/{service.desired} tasks running",
                                           name, f"service/{name}", {"cluster": self.cluster, "running": running, "desired": service.desired}))
            self._converged[name] = converged
        return changes
