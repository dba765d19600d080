"""Running the supervisor in-process against real engines, for the supervisor tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from console.eventlog import Event, EventLog
from console.gate import ActionGate
from console.supervisor import Supervisor
from backends.docker.replicas import Replica
from console.supervisor.engines import Engine, replica_service


def wait_for(check: Callable[[], object], timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> object:
    """Poll until `check()` is truthy; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def labels_yaml(labels: dict[str, str]) -> str:
    return json.dumps(labels)


@dataclass
class Harness:
    workload: str
    folder: Path
    engines: list[Engine]
    supervisor: Supervisor
    events: EventLog

    def replicas(self) -> list[Replica]:
        return replica_service(self.engines).survey(self.workload).of(self.workload)

    def running(self) -> list[Replica]:
        return [r for r in self.replicas() if r.running]

    def kinds(self, target: str | None = None) -> list[str]:
        return [e.kind for e in self.log(target)]

    def log(self, target: str | None = None) -> list[Event]:
        return [e for e in self.events.read() if e.workload == self.workload and (target is None or e.target == target)]

    def upstream(self) -> str:
        path = self.folder / "upstream.conf"
        return path.read_text() if path.exists() else ""

    def audit(self) -> list[dict]:
        path = self.folder / "data" / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_supervisor(folder: Path, workload: str, spec: str, engines: Sequence[Engine], **options) -> Harness:
    specs = folder / "specs"
    data = folder / "data"
    specs.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    (specs / f"{workload}.yaml").write_text(spec)
    events = EventLog.in_data_dir(data)
    gate = ActionGate("agent", data / "audit.jsonl")
    supervisor = Supervisor(specs, list(engines), gate, events, data, upstream_path=folder / "upstream.conf", tick=0.25, **options)
    return Harness(workload, folder, list(engines), supervisor, events)


def remove_workload(engines: Sequence[Engine], workload: str) -> None:
    for engine in engines:
        try:
            replica_service([engine]).remove(engine.replicas(workload))
        except Exception:  # an engine that is down has nothing left to remove here
            pass
