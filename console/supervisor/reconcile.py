"""Reconciliation: every applied container workload keeps its desired count.

The desired state is the data folder's record of each workload (`workloads/<name>.json`,
written by a confirmed apply, updated by scale and the autoscaler; backends/docker/desired.py).
Each pass lists the replicas on the engines (one call per engine) and, for a workload whose
count differs, takes its lock (shared with apply and scale, across processes), looks again and
decides:

- fewer replicas than desired: the missing ones are created, placed by the scheduler (cordoned
  machines and lost engines take none), whatever `auto_restart` says (it governs restarts of a
  failed replica, not a missing one);
- more: the surplus is removed, containers of the workload without a replica index first, then
  the highest indexes.

Each step is a gated action and an event. While an engine does not answer, nothing is decided
(its replicas may still run); once the engine monitor declares it lost, its replicas no longer
count, except for workloads whose failover supervisor reschedules them itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from backends.docker.desired import DesiredStore, DesiredWorkload
from backends.docker.replica_service import ReplicaService, surplus, template_from_request
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.engines import Engine, replica_service
from console.supervisor.gated_actions import CREATE_MISSING, REMOVE_SURPLUS

log = logging.getLogger("rtm.supervisor.reconcile")


class Reconciler:
    def __init__(self, desired: DesiredStore, engines: Callable[[], Sequence[Engine]], gate: ActionGate, events: EventLog,
                 lost: Callable[[], Collection[str]] = frozenset, rescheduled_by_failover: Callable[[], Collection[str]] = frozenset) -> None:
        self.desired = desired
        self._engines = engines
        self.gate = gate
        self.events = events
        self._lost = lost
        self._rescheduled_by_failover = rescheduled_by_failover
        self.passes = 0
        self.last_problems: tuple[str, ...] = ()
        self.waiting_for: dict[str, str] = {}  # engines that did not answer in the last pass
        self._failures: dict[str, str] = {}  # workload -> the last failure, said once until it changes

    def tick(self) -> None:
        """One pass over every desired-state record."""
        self.passes += 1
        records, problems = self.desired.all()
        if tuple(problems) != self.last_problems:
            for problem in problems:
                log.warning("desired state skipped: %s", problem)
            self.last_problems = tuple(problems)
        if not records:
            return
        lost = set(self._lost())
        service = replica_service(self._engines(), self.desired)
        counts, self.waiting_for = service.counts(skip=lost)
        if self.waiting_for:
            return  # an engine that does not answer may still run replicas: decide once it answers or is lost
        for record in records:
            if counts.get(record.workload, 0) != record.replicas:
                if lost and record.workload in self._rescheduled_by_failover():
                    continue
                self._reconcile(record.workload, service, lost)

    def _reconcile(self, workload: str, service: ReplicaService, lost: Collection[str]) -> None:
        with service.holding(workload):
            record = self.desired.get(workload)  # again, under the lock: a scaling may have changed it
            if record is None:
                return
            fleet = service.survey(workload, engines=[b.engine.name for b in service.backends if b.engine.name not in lost])
            if fleet.unreachable:
                return
            current = fleet.of(workload)
            if len(current) < record.replicas:
                self._create(record, service, len(current), lost)
            elif len(current) > record.replicas:
                self._remove(record, service, current)

    def _create(self, record: DesiredWorkload, service: ReplicaService, current: int, lost: Collection[str]) -> None:
        missing = record.replicas - current
        template = template_from_request(record.request(), record.requirements, record.algorithm)
        result = self.gate.run(CREATE_MISSING.name, f"workload/{record.workload}", {"desired": record.replicas, "running": current},
                               lambda: [f"{r.name}@{r.engine}" for r in service.add(template, missing, exclude=lost)])
        if result.ok:
            self._event("reconcile_create", f"{current} of {record.replicas} replicas: created {', '.join(result.value or [])}",
                        record, created=result.value)
        else:
            self._event("reconcile_failed", f"{current} of {record.replicas} replicas; {missing} not created: {result.message}", record)

    def _remove(self, record: DesiredWorkload, service: ReplicaService, current: Sequence[Any]) -> None:
        extra = surplus(current, record.replicas)
        result = self.gate.run(REMOVE_SURPLUS.name, f"workload/{record.workload}", {"desired": record.replicas, "found": len(current)},
                               lambda: service.remove(extra), destructive=True)
        if result.ok:
            self._event("reconcile_remove", f"{len(current)} replicas for {record.replicas} desired: removed {', '.join(result.value or [])}",
                        record, removed=result.value)
        else:
            self._event("reconcile_failed", f"{len(current)} replicas for {record.replicas} desired; not removed: {result.message}", record)

    def _event(self, kind: str, message: str, record: DesiredWorkload, **details: Any) -> None:
        if kind == "reconcile_failed":
            if self._failures.get(record.workload) == message:
                return  # the same refusal again (a cordon, a full engine): tried every pass, said once
            self._failures[record.workload] = message
        else:
            self._failures.pop(record.workload, None)
        self.events.record(kind, message, workload=record.workload, target=f"workload/{record.workload}", details=details)
        log.info("%s workload/%s: %s", kind, record.workload, message)

    def state(self) -> dict[str, Any]:
        return {"passes": self.passes, "problems": list(self.last_problems), "waiting_for": dict(self.waiting_for)}
