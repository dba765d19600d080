"""Swarm tasks as container rows (ContainerInfo): one per slot, with the task's cluster, node,
service and states in `rtm.swarm.*` labels. A task whose container a configured engine lists keeps
that engine's row (statistics, container state, exec and shell); the others are rows of their
own, which say which engine to add. A slot's history: every task Swarm still keeps for it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.docker.swarm.spec import LABEL_WORKLOAD
from backends.records import ContainerInfo

WANTED_RUNNING = ("running", "ready", "accepted")
EXITED_STATES = ("complete", "failed", "shutdown")  # states in which the container's exit code means something
LABEL_TASK = "rtm.swarm.task"
LABEL_CLUSTER = "rtm.swarm.cluster"  # the manager engine's backend name
LABEL_STATS = "rtm.swarm.stats"


@dataclass(frozen=True)
class Task:
    """One task of a service: where it runs, what Swarm wants of it and what it is now."""

    @property
    def name(self) -> str:
        return f"{self.service}.{self.slot}"

    id: str
    service: str
    slot: int
    node: str  # the node's hostname
    desired_state: str  # running, shutdown, ...
    state: str  # new, pending, running, failed, rejected, ...
    message: str
    error: str  # Swarm's error text, e.g. "task: non-zero exit (3)"
    container_id: str  # empty while no container exists
    created_at: str
    updated_at: str = ""
    state_since: str = ""  # when the task entered its current state (Status.Timestamp)
    exit_code: int | None = None  # the container's, once it exited
    node_id: str = ""  # the node's Swarm id


def task_of(raw: Mapping[str, Any], service: str, hostnames: Mapping[str, str]) -> Task:
    """A task from the Engine API's task object."""
    status = raw.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    exited = status.get("State") in EXITED_STATES and "ExitCode" in container
    return Task(
        id=str(raw["ID"]), service=service, slot=int(raw.get("Slot") or 0),
        node=hostnames.get(raw.get("NodeID", ""), raw.get("NodeID", "")), desired_state=str(raw.get("DesiredState", "")),
        state=str(status.get("State", "")), message=str(status.get("Message", "")), error=str(status.get("Err", "")),
        container_id=str(container.get("ContainerID", "")), created_at=str(raw.get("CreatedAt", "")),
        updated_at=str(raw.get("UpdatedAt", "")), state_since=str(status.get("Timestamp", "")),
        exit_code=int(container["ExitCode"]) if exited else None, node_id=str(raw.get("NodeID", "")),
    )  # fmt: skip


def current_tasks(tasks: Iterable[Task]) -> list[Task]:
    """One task per slot: the one Swarm wants running, else the newest (a failed task with its
    error, when the restart policy started no other)."""
    by_slot: dict[tuple[str, int], Task] = {}
    for task in sorted(tasks, key=lambda t: t.created_at):
        kept = by_slot.get((task.service, task.slot))
        if kept is None or task.desired_state in WANTED_RUNNING or kept.desired_state not in WANTED_RUNNING:
            by_slot[(task.service, task.slot)] = task
    return list(by_slot.values())


def task_record(task: Task, cluster: str, image: str, address: str) -> ContainerInfo:
    """A task as a row of its own: node, service, desired and current state; no statistics."""
    labels = {
        LABEL_WORKLOAD: task.service, "rtm.swarm.service": task.service, "rtm.swarm.node": task.node,
        LABEL_TASK: task.id, "rtm.swarm.desired_state": task.desired_state, "rtm.swarm.state": task.state,
        "rtm.swarm.message": task.error or task.message, LABEL_CLUSTER: cluster,
        LABEL_STATS: f"add the engine of node {task.node} ({address}) as a Docker endpoint for its stats, exec and shell",
    }  # fmt: skip
    return ContainerInfo(
        id=task.container_id or task.id, name=task.name, workload=task.service, replica=task.slot, engine=f"{cluster}/{task.node}",
        state=task.state, health=None, image=image, ports=(), started_at=None, cpu_ratio=None, cpu_seconds_total=0.0,
        memory_working_set_bytes=0, memory_limit_bytes=None, restarts=0, net_rx_bytes=0, net_tx_bytes=0, net_rx_packets=0,
        net_tx_packets=0, block_read_bytes=0, block_write_bytes=0, labels=labels,
    )  # fmt: skip


def is_task_row(record: ContainerInfo) -> bool:
    """A row made from a task alone (no engine listed its container)."""
    return "/" in record.engine and LABEL_TASK in record.labels


def merge_task_rows(listed: Sequence[ContainerInfo], rows: Iterable[ContainerInfo]) -> list[ContainerInfo]:
    """The engines' rows with the task rows: a task whose container an engine lists gets its
    name, node, service and states on that engine's row (which keeps its statistics); the others
    are added once. Task rows already in `listed` (a manager's poll) give way to engine rows."""
    merged = merge_task_pairs([(None, record) for record in listed], [(None, row) for row in rows])
    return [record for _poll, record in merged]


def merge_task_pairs(listed: Sequence[tuple[Any, ContainerInfo]], rows: Iterable[tuple[Any, ContainerInfo]]) -> list[tuple[Any, ContainerInfo]]:
    """merge_task_rows over rows that each carry what reported them (the console's pairs of
    backend name and record: every engine's poll, a manager's task rows among them)."""
    records = [(poll, record) for poll, record in listed if not is_task_row(record)]
    by_id = {record.id: index for index, (_poll, record) in enumerate(records)}
    for poll, row in [*((poll, record) for poll, record in listed if is_task_row(record)), *rows]:
        index = by_id.get(row.id)
        if index is None:
            by_id[row.id] = len(records)
            records.append((poll, row))
        elif not is_task_row(records[index][1]):
            engine_poll, engine_row = records[index]
            records[index] = (engine_poll, dataclasses.replace(engine_row, name=row.name, workload=row.workload, replica=row.replica,
                                                               labels={**engine_row.labels, **row.labels, LABEL_STATS: "from the engine of its node"}))
    return records


def engine_missing(record: ContainerInfo | None) -> str:
    """Why a shell, exec or statistics cannot reach this row's container: it is a task row (no
    configured engine lists its container), named with its node and the endpoint to add; "" when
    the row is an engine's (or gone)."""
    if record is None or not is_task_row(record):
        return ""
    node = record.labels.get("rtm.swarm.node", "")
    return f"{record.name} is a Swarm task on node {node}, whose engine is not configured: {record.labels.get(LABEL_STATS, '')}"


def slot_history(manager: Any, service: str, slot: int) -> list[Task]:
    """Every task Swarm still keeps for one slot of a service, newest first, read from the
    manager engine (three engine calls: the service, its tasks, the nodes' hostnames)."""
    call = manager.client.call
    service_id = call(lambda api: api.inspect_service(service))["ID"]
    raw_tasks = call(lambda api: api.tasks(filters={"service": service_id}))
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", "") for n in call(lambda api: api.nodes())}
    tasks = [task_of(raw, service, hostnames) for raw in raw_tasks
             if raw.get("ServiceID") == service_id and int(raw.get("Slot") or 0) == slot]
    return sorted(tasks, key=lambda t: t.created_at, reverse=True)


def task_rows(cluster: str, services: Mapping[str, Mapping[str, Any]], raw_tasks: Iterable[Mapping[str, Any]],
              raw_nodes: Iterable[Mapping[str, Any]]) -> list[ContainerInfo]:
    """The current task rows of rtm-console services from raw API objects (services by id)."""
    nodes = list(raw_nodes)
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", "") for n in nodes}
    addresses = {(n.get("Description") or {}).get("Hostname", ""): (n.get("Status") or {}).get("Addr", "") for n in nodes}
    tasks = [task_of(raw, services[raw["ServiceID"]]["Spec"]["Name"], hostnames) for raw in raw_tasks if raw.get("ServiceID") in services]
    images = {s["Spec"]["Name"]: s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] for s in services.values()}
    return [task_record(t, cluster, images.get(t.service, ""), addresses.get(t.node, "")) for t in current_tasks(tasks)]
