"""Docker Swarm series (docs/swarm.md): per service, replicas desired and running and the task
replacements observed; per node, availability and state as state sets. Read from what the
pollers of manager engines last saw (backends/docker/swarm/observer.py)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

AVAILABILITIES = ("active", "pause", "drain")
NODE_STATES = ("ready", "down", "unknown", "disconnected")


def swarm_families(manager_backends: Iterable[str]) -> list[Metric]:
    """The series of every cluster whose manager engine's backend is named (and up)."""
    names = sorted(manager_backends)
    if not names:
        return []  # no Docker engine: nothing to import or read
    from backends.docker.swarm.observer import latest

    desired = GaugeMetricFamily("rtm_swarm_service_replicas_desired", "Replicas the Swarm service's spec asks for.", labels=["cluster", "service"])
    running = GaugeMetricFamily("rtm_swarm_service_replicas_running", "Tasks of the Swarm service running now.", labels=["cluster", "service"])
    replaced = CounterMetricFamily("rtm_swarm_task_replacements", "Tasks that replaced another in the same slot, as observed by the poller.",
                                   labels=["cluster", "service"])
    availability = GaugeMetricFamily("rtm_swarm_node_availability", "1 for the node's Swarm availability.", labels=["cluster", "node", "availability"])
    state = GaugeMetricFamily("rtm_swarm_node_state", "1 for the node's Swarm state.", labels=["cluster", "node", "state"])
    for name in names:
        status = latest(name)
        if status is None:
            continue
        for service, wanted, now in status.services:
            desired.add_metric([status.cluster, service], wanted)
            running.add_metric([status.cluster, service], now)
        for service, count in status.replacements:
            replaced.add_metric([status.cluster, service], count)
        for node, current_availability, current_state in status.nodes:
            for value in (*AVAILABILITIES, *((current_availability,) if current_availability not in AVAILABILITIES else ())):
                availability.add_metric([status.cluster, node, value], int(value == current_availability))
            for value in (*NODE_STATES, *((current_state,) if current_state not in NODE_STATES else ())):
                state.add_metric([status.cluster, node, value], int(value == current_state))
    return [desired, running, replaced, availability, state]
