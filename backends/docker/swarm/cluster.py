"""One Swarm as rtm-console sees it: which configured engines are managers and workers, its
nodes, and availability changes (cordon, uncordon, drain).

An engine whose `docker info` says Swarm.ControlAvailable is a manager: the cluster is driven
through it. A worker (LocalNodeState active, no control) refuses cluster changes with a message
naming its manager, but serves what only its own engine can: a task container's stats, exec and
shell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.errors import DockerRequestError

AVAILABILITY_OF = {"cordon": "pause", "uncordon": "active", "drain": "drain"}


@dataclass(frozen=True)
class SwarmRole:
    """What an engine is in a swarm: "manager", "worker" or "none"."""

    role: str
    node_id: str = ""
    cluster_id: str = ""
    managers: tuple[tuple[str, str], ...] = ()  # (node id, address) of the managers `docker info` lists

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> SwarmRole:
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            return cls("none")
        managers = tuple((str(m.get("NodeID", "")), str(m.get("Addr", ""))) for m in swarm.get("RemoteManagers") or [])
        cluster_id = str((swarm.get("Cluster") or {}).get("ID", ""))
        return cls("manager" if swarm.get("ControlAvailable") else "worker", str(swarm.get("NodeID", "")), cluster_id, managers)


@dataclass(frozen=True)
class SwarmNode:
    """A swarm node as a node of the console: id = its hostname."""

    id: str
    hostname: str
    node_id: str
    cluster: str  # the manager engine's backend name
    role: str
    availability: str  # active, pause, drain
    state: str  # ready, down, unknown, disconnected
    address: str
    engine_version: str
    labels: Mapping[str, str]
    cpu_count: float
    memory_bytes: int
    tasks: tuple[str, ...] = field(default=())  # running task names on the node
    leader: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any], cluster: str, tasks: Sequence[str] = ()) -> SwarmNode:
        spec, description, status = data.get("Spec") or {}, data.get("Description") or {}, data.get("Status") or {}
        resources = description.get("Resources") or {}
        hostname = str(description.get("Hostname", ""))
        return cls(
            id=hostname, hostname=hostname, node_id=str(data.get("ID", "")), cluster=cluster,
            role=str(spec.get("Role", "")), availability=str(spec.get("Availability", "")),
            state=str(status.get("State", "")), address=str(status.get("Addr", "")),
            engine_version=str((description.get("Engine") or {}).get("EngineVersion", "")),
            labels=dict(spec.get("Labels") or {}), cpu_count=int(resources.get("NanoCPUs") or 0) / 1e9,
            memory_bytes=int(resources.get("MemoryBytes") or 0), tasks=tuple(sorted(tasks)),
            leader=bool((data.get("ManagerStatus") or {}).get("Leader")),
        )  # fmt: skip


def swarm_role(backend: Any) -> SwarmRole:
    """The engine's place in a swarm (one `docker info`; BackendUnavailable when it does not answer)."""
    return SwarmRole.from_info(backend.client.call(lambda api: api.info()))


class NotAManager(DockerRequestError):
    """A cluster change asked of a worker engine."""


class SwarmCluster:
    """A swarm through its manager engine; `workers` are the configured engines of its other
    nodes; `node_engines` is the configured engine of each node by its Swarm node id."""

    def __init__(self, manager: Any, workers: Sequence[Any] = ()) -> None:
        self.manager = manager
        self.workers = list(workers)
        self.name = manager.name
        self.node_engines: dict[str, Any] = {}

    def call(self, fn: Any) -> Any:
        return self.manager.client.call(fn)

    # .. nodes

    def nodes(self) -> list[SwarmNode]:
        """Every node with its running tasks (by the tasks' names, service.slot)."""
        raw = self.call(lambda api: api.nodes())
        services = {s["ID"]: s["Spec"]["Name"] for s in self.call(lambda api: api.services())}
        running: dict[str, list[str]] = {}
        for task in self.call(lambda api: api.tasks(filters={"desired-state": "running"})):
            if (task.get("Status") or {}).get("State") == "running":
                name = f"{services.get(task.get('ServiceID'), task.get('ServiceID', '')[:12])}.{task.get('Slot', '')}"
                running.setdefault(task.get("NodeID", ""), []).append(name)
        nodes = [SwarmNode.from_api(n, self.name, running.get(n.get("ID", ""), [])) for n in raw]
        return sorted(nodes, key=lambda n: n.id)

    def node(self, hostname: str) -> SwarmNode | None:
        return next((n for n in self.nodes() if n.id == hostname), None)

    def set_availability(self, hostname: str, availability: str) -> bool:
        """Pause, activate or drain a node; True when that changed anything."""
        data = next((n for n in self.call(lambda api: api.nodes()) if (n.get("Description") or {}).get("Hostname") == hostname), None)
        if data is None:
            raise DockerRequestError(f"no node of the swarm of {self.name} is named {hostname}")
        spec = dict(data["Spec"])
        if spec.get("Availability") == availability:
            return False
        spec["Availability"] = availability
        version = data["Version"]["Index"]
        self.call(lambda api: api.update_node(data["ID"], version, spec))
        return True

    def set_node_label(self, node_id: str, key: str, value: str | None) -> None:
        """Adds (value) or removes (None) one label of a node, with the node's version index."""
        data = self.call(lambda api: api.inspect_node(node_id))
        spec = dict(data["Spec"])
        labels = dict(spec.get("Labels") or {})
        if labels.get(key) == value:
            return
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
        spec["Labels"] = labels
        self.call(lambda api: api.update_node(node_id, data["Version"]["Index"], spec))


def find_clusters(backends: Sequence[Any]) -> tuple[list[SwarmCluster], dict[str, SwarmRole]]:
    """The clusters among the engines (one per swarm, through its first manager) and each
    engine's role; engines that do not answer are left out."""
    roles: dict[str, SwarmRole] = {}
    for backend in backends:
        try:
            roles[backend.name] = swarm_role(backend)
        except (BackendUnavailable, DockerRequestError):
            continue
    clusters: dict[str, SwarmCluster] = {}
    by_name = {b.name: b for b in backends}
    for name, role in roles.items():
        if role.is_manager and role.cluster_id not in clusters:
            clusters[role.cluster_id] = SwarmCluster(by_name[name])
        if role.is_manager:
            clusters[role.cluster_id].node_engines[role.node_id] = by_name[name]
    for name, role in roles.items():
        if role.role == "worker":  # a worker's info has no cluster id: matched by its managers
            manager_ids = {node_id for node_id, _addr in role.managers}
            for cluster in clusters.values():
                if roles[cluster.name].node_id in manager_ids:
                    cluster.workers.append(by_name[name])
                    cluster.node_engines[role.node_id] = by_name[name]
    return list(clusters.values()), roles


def worker_refusal(role: SwarmRole, engine: str) -> NotAManager:
    """Why a worker engine refuses a cluster change, naming its manager."""
    addresses = ", ".join(addr for _id, addr in role.managers) or "unknown"
    return NotAManager(f"{engine} is a Swarm worker: cluster changes go through a manager (at {addresses})",
                       "configure the manager's engine as a Docker endpoint")
