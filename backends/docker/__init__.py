"""The containers backend: Docker engines driven by ContainerRuntime specs.

Modules, one job each:
- client.py   one engine: address, lazy connection, errors for people, `docker info`, the engine as a scheduler node
- mapping.py  PURE: a ContainerRuntime spec (and its workload) -> Engine API create requests; render output
- watch.py    the container table of an engine, kept current by its /events stream
- stats.py    live statistics: cgroup files for a local engine, one stats stream per container otherwise
- backend.py  DockerBackend: the Backend protocol for the poller (kind "containers")
- images.py   image present, or pulled with progress, or why not
- replicas.py find (typed Replica records, Swarm's containers left out), create, wait for and place one replica
- engine_nodes.py engines as scheduler nodes: engine names and machines (node ids, cordons) mapped in one place
- replica_service.py  ReplicaService: every caller's way to a workload's replicas (survey, add, remove,
              scale), one lock per workload, typed results
- desired.py  the desired state of applied workloads (DATA/workloads/NAME.json), written under a lock
- diff.py     what differs between a live container and a request (for plans)
- handler.py  ContainerHandler: render / plan / apply / delete / list / describe
- container_actions.py  ContainerActions: start, stop, restart, remove, exec, update limits, logs, scale
- swarm/      Docker Swarm: clusters among the engines, nodes, workloads as services (docs/swarm.md)

`make_docker_handlers(endpoints)` builds all of it for the configured engines;
`make_docker_backends(endpoints)` returns it in the console's (backends, handlers) shape. Importing this
package does not import docker-py (the first call that contacts an engine does), nor its own
modules: they are imported on first use, so the configuration reads DockerEndpoint (settings.py)
without loading the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.lazy import on_first_use

if TYPE_CHECKING:
    from backends.docker.backend import DockerBackend
    from backends.docker.client import EngineEndpoint
    from backends.docker.container_actions import ContainerActions, ExecResult
    from backends.docker.desired import DesiredStore
    from backends.docker.handler import ContainerHandler
    from backends.docker.replica_service import ReplicaService
    from backends.docker.replicas import Placement, default_placement
    from backends.docker.stats import StatsMode
    from rtm.scheduling import SchedNode

_ON_FIRST_USE = {
    "ContainerActions": "container_actions", "ContainerHandler": "handler", "DesiredStore": "desired",
    "DockerBackend": "backend", "EngineEndpoint": "client", "ExecResult": "container_actions",
    "Placement": "replicas", "ReplicaService": "replica_service",
    "default_placement": "replicas",
}
__getattr__ = on_first_use(__name__, _ON_FIRST_USE)


@dataclass(frozen=True)
class DockerSetup:
    """Everything the console needs for containers, over the same engine connections:
    `backends` for the poller, `handler` for apply/plan/delete/get/describe/logs, `actions`
    for start/stop/restart/remove/exec/update-limits/scale (to be wrapped in the gate)."""

    backends: tuple[DockerBackend, ...]
    handler: ContainerHandler
    actions: ContainerActions

    def nodes(self) -> list[SchedNode]:
        """Each engine that answers, as a scheduler node (runtime "docker")."""
        from backends.docker.engine_nodes import engine_nodes

        return engine_nodes(self.backends)

    @property
    def replicas(self) -> ReplicaService:
        return self.handler.replicas

    def close(self) -> None:
        for backend in self.backends:
            backend.close()


def make_docker_handlers(
    endpoints: Iterable[Any],
    *,
    read_only: bool = False,
    placement: Placement | None = None,
    stats: StatsMode = "auto",
    stop_timeout: float = 10.0,
    cordoned: Callable[[str], bool] = lambda _node: False,
    data_dir: Path | None = None,
    publish_mode: str = "ingress",
    strict: bool = False,
    target: str = "cluster",
) -> DockerSetup:
    """One DockerBackend per endpoint (an EngineEndpoint, an address such as
    "unix:///var/run/docker.sock", or the console's configured endpoint with name/host/tls),
    and the handler and actions over them. `cordoned(node id)` says whether a machine takes new
    replicas; `data_dir` keeps the desired state of applied workloads (none when None);
    `publish_mode` (ingress or host) publishes the ports of Swarm services; `strict` refuses a
    Swarm service that cannot carry every setting of its spec; `target` (cluster or standalone)
    says where container workloads go when a Swarm manager is configured (docs/swarm.md);
    `placement` defaults to replicas.default_placement."""
    from backends.docker.backend import DockerBackend
    from backends.docker.client import EngineEndpoint
    from backends.docker.desired import DesiredStore
    from backends.docker.handler import ContainerHandler
    from backends.docker.replicas import default_placement

    backends = tuple(DockerBackend(EngineEndpoint.of(e), read_only=read_only, stats=stats, cordoned=cordoned) for e in endpoints)
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"two Docker endpoints share a name: {', '.join(sorted(n for n in names if names.count(n) > 1))}")
    desired = DesiredStore(data_dir) if data_dir is not None else None
    handler = ContainerHandler(backends, placement=placement or default_placement, stop_timeout=stop_timeout, desired=desired,
                               publish_mode=publish_mode, strict=strict, target=target)
    return DockerSetup(backends, handler, handler.actions)


def make_docker_backends(endpoints: Iterable[Any], read_only: bool = False, **options: Any) -> tuple[list[DockerBackend], dict[str, ContainerHandler]]:
    """The console's convention: (backends for the poller, {"container": handler}). The
    handler's `actions` offers start/stop/restart/remove/exec/update_limits/logs/scale over
    the same engines. Options as for make_docker_handlers."""
    setup = make_docker_handlers(endpoints, read_only=read_only, **options)
    return list(setup.backends), {"container": setup.handler}


def render_container_runtime(document: Any, _spec: Any, base_dir: Any) -> Any:
    """The renderer for console/render.py RENDERERS["ContainerRuntime"] (pure)."""
    from backends.docker.mapping import render

    return render(document, base_dir)


__all__ = [
    "ContainerActions",
    "ContainerHandler",
    "DockerBackend",
    "DesiredStore",
    "DockerSetup",
    "EngineEndpoint",
    "ExecResult",
    "Placement",
    "ReplicaService",
    "default_placement",
    "make_docker_backends",
    "make_docker_handlers",
    "render_container_runtime",
]
