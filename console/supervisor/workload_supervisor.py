"""The failover supervisor of one workload: probes, restarts, replacement, rescheduling and
load-balancer membership, driven by `tick(fleet, now)` from the supervisor's loop.

Per replica (a container labelled with the workload, keyed by engine and name):

- its probes are `rtm.probes.ReplicaProbes`; due probes run in a thread pool so a slow one
  never holds the loop, and each outcome is recorded when it arrives;
- a `rtm.recovery.Detector` checks every `detection.interval` that the container is running;
  `retries` failed checks in a row declare it failed (a `docker kill`, a crash);
- a liveness (or startup) failure, Docker's `unhealthy` without a liveness probe, or a failed
  detection asks the replica's `RestartBudget`: restart after `restart_delay` (doubling per
  attempt), and after `max_restart_attempts` give up: the replica is removed and a new one is
  placed by the scheduler;
- the ready replicas (all running ones when `load_balancing.health_check` is off) are its
  members in the nginx upstream.

When the engine monitor declares an engine lost, `engine_lost` starts the replicas last seen
there on other engines; the old containers are removed if that engine comes back.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from backends.base import one_line
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.gated_actions import REMOVE_STALE, REPLACE, RESCHEDULE, RESTART
from backends.docker.replica_service import Fleet, workload_lock
from backends.docker.replicas import Replica
from console.supervisor.engines import Engine, replica_service
from console.supervisor.membership import UpstreamWriter
from console.supervisor.probe_runner import ProbeOutcome, run_probe
from console.supervisor.supervised import Workload
from rtm.loadbalancer import Member
from rtm.probes import ReplicaProbes, Transition
from rtm.recovery import Detector, RestartBudget, RestartDecision

log = logging.getLogger("rtm.supervisor.failover")
Key = tuple[str, str]  # (engine, container name)


@dataclass
class ReplicaTrack:
    replica: Replica
    probes: ReplicaProbes
    detector: Detector
    pending: RestartDecision | None = None  # a restart waiting for its delay
    pending_reason: str = ""
    inflight: dict[str, Future] = field(default_factory=dict)  # probe name -> running probe
    last_results: dict[str, str] = field(default_factory=dict)  # probe name -> detail


class WorkloadSupervisor:
    def __init__(
        self,
        workload: Workload,
        engines: Callable[[], Sequence[Engine]],
        gate: ActionGate,
        events: EventLog,
        membership: UpstreamWriter | None,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.workload = workload
        self._engines = engines
        self.gate = gate
        self.events = events
        self.membership = membership
        self.pool = pool
        self.tracks: dict[Key, ReplicaTrack] = {}
        self.budgets: dict[Key, RestartBudget] = {}
        self.last_seen: dict[Key, Replica] = {}  # including replicas on engines that stopped answering
        self.moved: dict[Key, str] = {}  # replaced while their engine was lost: key -> container id
        self.last_tick: float | None = None

    # --- settings --------------------------------------------------------------------------

    def update_workload(self, workload: Workload) -> None:
        """New specs: keep the replicas' histories, use the new settings from now on."""
        changed_probes = workload.timings != self.workload.timings
        self.workload = workload
        if changed_probes:
            for track in self.tracks.values():
                track.probes = self._new_probes(track.replica)

    def _new_probes(self, replica: Replica) -> ReplicaProbes:
        return ReplicaProbes.create(replica.started_at or time.time(), self.workload.timings)

    def _new_detector(self) -> Detector:
        detection = self.workload.failover.detection
        return Detector(detection.interval, detection.timeout, detection.retries)

    def _budget(self, key: Key) -> RestartBudget:
        recovery = self.workload.failover.recovery
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = RestartBudget(recovery.auto_restart, recovery.max_restart_attempts, recovery.restart_delay)
        return budget

    def _event(self, kind: str, message: str, replica: Replica | None = None, **details: Any) -> None:
        target = f"container/{replica.name}@{replica.engine}" if replica is not None else None
        self.events.record(kind, message, workload=self.workload.name, target=target, details=details)
        log.info("%s %s: %s", kind, target or self.workload.name, message)

    def _engine(self, name: str) -> Engine | None:
        return next((e for e in self._engines() if e.name == name), None)

    # --- the tick --------------------------------------------------------------------------

    def tick(self, fleet: Fleet, now: float) -> None:
        self.last_tick = now
        with workload_lock(self.workload.name):
            self._remove_stale(fleet)
            current = {r.key: r for r in fleet.of(self.workload.name) if r.key not in self.moved}
            self._forget_gone(fleet, current)
            for key, replica in current.items():
                self.last_seen[key] = replica
                self._supervise(key, replica, now)
        self._publish_members()

    def _forget_gone(self, fleet: Fleet, current: dict[Key, Replica]) -> None:
        for key in list(self.tracks):
            engine = key[0]
            if engine in fleet.unreachable:
                continue  # not gone: its engine did not answer (the engine monitor decides)
            if key not in current:
                del self.tracks[key]
                self.last_seen.pop(key, None)
                self.budgets.pop(key, None)  # a later container of the same name starts afresh

    def _supervise(self, key: Key, replica: Replica, now: float) -> None:
        track = self.tracks.get(key)
        if track is None or track.replica.id != replica.id:
            track = self.tracks[key] = ReplicaTrack(replica, self._new_probes(replica), self._new_detector())
        elif replica.started_at != track.replica.started_at:
            # (Re)started since the last look: probes start over, as for a new container.
            track.probes = self._new_probes(replica)
            track.inflight.clear()
        track.replica = replica

        if track.detector.due(now):
            track.detector, change = track.detector.record(replica.running, now)
            if change == "failed":
                self._event("replica_failed", f"not running (state {replica.state}) at {track.detector.failures} checks in a row", replica)
                self._on_failure(key, track, f"the container is {replica.state}", now)
            elif change == "recovered":
                self._event("replica_recovered", "running again", replica)

        if track.pending is not None:
            if now >= track.pending.at:
                self._restart(key, track, now)
            return
        if not replica.running:
            return
        self._harvest(key, track, now)
        for name in track.probes.due(now):
            if name not in track.inflight:
                engine = self._engine(replica.engine)
                if engine is not None:
                    track.inflight[name] = self.pool.submit(self._timed_probe, self.workload.probes[name], replica, engine)
        for transition in track.probes.docker_health(replica.health):
            self._on_failure(key, track, transition.message, now)

    def _timed_probe(self, probe: Any, replica: Replica, engine: Engine) -> tuple[ProbeOutcome, float]:
        outcome = run_probe(probe, replica, engine)
        return outcome, time.time()

    def _harvest(self, key: Key, track: ReplicaTrack, now: float) -> None:
        for name, future in list(track.inflight.items()):
            if not future.done():
                continue
            del track.inflight[name]
            try:
                outcome, finished = future.result()
            except Exception as error:  # a bug in a probe is a failed probe, not a dead loop
                log.exception("probe %s of %s raised", name, track.replica.name)
                outcome, finished = ProbeOutcome(False, one_line(str(error), 200)), now
            track.last_results[name] = outcome.detail
            track.probes, transitions = track.probes.record(name, outcome.ok, finished, outcome.detail)  # type: ignore[arg-type]
            for transition in transitions:
                self._on_transition(key, track, transition, now)
                if track.pending is not None:
                    return

    def _on_transition(self, key: Key, track: ReplicaTrack, transition: Transition, now: float) -> None:
        replica = track.replica
        if transition.kind in ("probe_failed", "probe_passed"):
            self._event(transition.kind, transition.message, replica, probe=transition.probe)
        elif transition.kind in ("ready", "unready", "started"):
            self._event(transition.kind, transition.message, replica, probe=transition.probe)
        elif transition.kind == "restart":
            self._on_failure(key, track, transition.message, now)

    # --- recovery --------------------------------------------------------------------------

    def _on_failure(self, key: Key, track: ReplicaTrack, reason: str, now: float) -> None:
        if track.pending is not None:
            return
        budget, decision = self._budget(key).on_failure(now)
        self.budgets[key] = budget
        replica = track.replica
        if decision.action == "disabled":
            self._event("restart_skipped", f"{reason}; {decision.message}", replica)
        elif decision.action == "restart":
            track.pending, track.pending_reason = decision, reason
            self._event("restart_scheduled", f"{reason}; {decision.message}", replica,
                        attempt=decision.attempt, delay=round(decision.at - now, 3))
        else:
            self._event("give_up", f"{reason}; {decision.message}", replica, attempts=decision.attempt)
            self._replace(key, track, now)

    def _restart(self, key: Key, track: ReplicaTrack, now: float) -> None:
        decision, track.pending = track.pending, None
        replica = track.replica
        engine = self._engine(replica.engine)
        if engine is None or decision is None:
            return
        result = self.gate.run(RESTART.name, f"container/{replica.name}@{replica.engine}",
                               {"attempt": decision.attempt, "reason": track.pending_reason},
                               lambda: engine.restart(replica.id))
        if result.ok:
            self._event("restart", f"restarted (attempt {decision.attempt}/{self.workload.failover.recovery.max_restart_attempts}): {track.pending_reason}",
                        replica, attempt=decision.attempt)
            track.probes = ReplicaProbes.create(time.time(), self.workload.timings)
            track.inflight.clear()
            track.detector = self._new_detector()
        else:
            self._event("restart_failed", result.message, replica, attempt=decision.attempt)

    def _replace(self, key: Key, track: ReplicaTrack, now: float) -> None:
        replica = track.replica
        engines = list(self._engines())

        def replace() -> list[str]:
            service = replica_service(engines)
            service.remove([replica])
            created = service.add(self.workload.template, 1, known=[replica])
            return [f"{r.name}@{r.engine}" for r in created]

        result = self.gate.run(REPLACE.name, f"container/{replica.name}@{replica.engine}", {"reason": "restart budget used up"}, replace)
        self.tracks.pop(key, None)
        self.budgets.pop(key, None)
        if result.ok:
            self._event("replace", f"replaced by {', '.join(result.value or [])}", replica, new=result.value)
        else:
            self._event("replace_failed", result.message, replica)

    # --- lost engines ----------------------------------------------------------------------

    def engine_lost(self, engine_name: str, since: float, now: float) -> None:
        """Start the replicas last seen on `engine_name` on the other engines."""
        with workload_lock(self.workload.name):
            lost = [r for key, r in self.last_seen.items() if key[0] == engine_name and key not in self.moved]
            if not lost:
                return
            service = replica_service([e for e in self._engines() if e.name != engine_name])
            fleet = service.survey(self.workload.name)
            deadline = since + self.workload.failover.load_balancing.failover_timeout
            for replica in lost:
                def move(replica: Replica = replica) -> list[str]:
                    created = service.add(self.workload.template, 1, fleet=fleet, exclude=[engine_name], known=list(self.last_seen.values()))
                    return [f"{r.name}@{r.engine}" for r in created]

                result = self.gate.run(RESCHEDULE.name, f"container/{replica.name}@{engine_name}", {"from": engine_name}, move)
                elapsed = time.time() - since
                self.moved[replica.key] = replica.id
                self.tracks.pop(replica.key, None)
                if result.ok:
                    late = "" if time.time() <= deadline else f" (later than failover_timeout {self.workload.failover.load_balancing.failover_timeout:g}s)"
                    self._event("reschedule", f"engine {engine_name} lost: moved to {', '.join(result.value or [])} {elapsed:.1f}s after the first failed check{late}",
                                replica, to=result.value, elapsed_seconds=round(elapsed, 3), within_failover_timeout=not late)
                else:
                    self._event("reschedule_failed", result.message, replica)

    def _remove_stale(self, fleet: Fleet) -> None:
        """Replicas that were replaced while their engine was away: remove them when it is back."""
        for key, container_id in list(self.moved.items()):
            engine_name = key[0]
            if engine_name in fleet.unreachable or engine_name not in fleet.replicas:
                continue
            stale = [r for r in fleet.replicas[engine_name] if r.id == container_id]
            engine = self._engine(engine_name)
            if stale and engine is not None:
                result = self.gate.run(REMOVE_STALE.name, f"container/{key[1]}@{engine_name}", {"reason": "replaced while its engine was lost"},
                                       lambda: replica_service([engine]).remove(stale))
                if not result.ok:
                    continue
                self.events.record("cleanup", f"engine {engine_name} is back: removed {key[1]}, replaced while it was lost",
                                   workload=self.workload.name, target=f"container/{key[1]}@{engine_name}")
            del self.moved[key]
            self.last_seen.pop(key, None)

    # --- membership and state ------------------------------------------------------------------

    def members(self) -> list[Member]:
        port = self.workload.serving_port
        if port is None:
            return []
        use_health = self.workload.failover.load_balancing.health_check
        return [
            Member(f"{track.replica.address}:{port}")
            for track in self.tracks.values()
            if track.replica.running and track.replica.address and track.pending is None
            and (track.probes.ready or not use_health)
        ]

    def _publish_members(self) -> None:
        if self.membership is not None and self.workload.has_failover_spec:
            self.membership.update(self.workload.name, self.workload.failover.load_balancing.algorithm, self.members())

    def state(self) -> dict[str, Any]:
        replicas = []
        for key, track in sorted(self.tracks.items()):
            budget = self.budgets.get(key)
            replicas.append({
                "name": track.replica.name,
                "engine": track.replica.engine,
                "state": track.replica.state,
                "address": track.replica.address,
                "started": track.probes.started,
                "ready": track.probes.ready,
                "probes": {name: {"verdict": s.verdict, "failures": s.failures, "last": track.last_results.get(name)} for name, s in track.probes.probes},
                "restart_attempts": budget.attempts if budget else 0,
                "pending_restart_at": track.pending.at if track.pending else None,
            })
        return {
            "workload": self.workload.name,
            "last_tick": self.last_tick,
            "replicas": replicas,
            "members": [m.address for m in self.members()],
            "moved": [f"{name}@{engine}" for engine, name in self.moved],
        }
