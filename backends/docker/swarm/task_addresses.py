"""PURE: where a load balancer on this host reaches a service's running tasks.

- A port published in `host` mode: each running task at its node's address and the port the
  task got there (Swarm picks one when the spec names none), so two tasks on one node are two
  members.
- A port published in `ingress` mode (the routing mesh): every ready node's address with the
  service's published port, while at least one task runs; the mesh sends each connection on to
  a running task.
- A port not published: no address a host outside the swarm can reach; the reason says so.

With a health check, Swarm reports a task `running` only once the check passed (`starting`
before), so the running tasks are the healthy ones.
"""

from __future__ import annotations

from backends.docker.swarm.task_changes import ClusterView
from rtm.loadbalancer import Member


def reachable_members(view: ClusterView, service: str, port: int) -> tuple[list[Member], str | None]:
    """The members for `port` of the service's tasks, and why there are none when nothing is published."""
    found = view.services.get(service)
    if found is None:
        return [], f"no service {service} in the cluster"
    binding = next((b for b in found.ports if b.target == port), None)
    if binding is None:
        return [], (f"service {service} does not publish port {port}, so no task is reachable from this host; "
                    f"publish it (ports: - container_port: {port}) with docker.publish_mode host or ingress")
    if binding.mode == "ingress":
        if not view.running(service) or not binding.published:
            return [], None
        return [Member(f"{node.address}:{binding.published}") for node in view.nodes.values() if node.state == "ready" and node.address], None
    return [Member(address) for address in dict.fromkeys((task_endpoints(view, service, port) or {}).values())], None


def task_endpoints(view: ClusterView, service: str, port: int) -> dict[str, str] | None:
    """Running task id -> `address:port` where this host reaches the task's `port`, when the
    service publishes that port in host mode (None otherwise: no per-task address)."""
    found = view.services.get(service)
    if found is None or not any(b.target == port and b.mode == "host" for b in found.ports):
        return None
    endpoints = {}
    for task in view.running(service):
        node = view.nodes.get(task.node)
        published = next((b.published for b in view.task_ports.get(task.id, ()) if b.target == port and b.published), None)
        if node is not None and node.address and published:
            endpoints[task.id] = f"{node.address}:{published}"
    return endpoints
