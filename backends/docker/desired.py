"""Desired state of applied container workloads: one JSON record per workload in the data
folder (`workloads/<name>.json`), read by the reconciliation loop and written under a lock.

Format (version 1):

    {"version": 1, "workload": "web", "replicas": 3, "spec_replicas": 2,
     "spec_hash": "95817ff4d0d3f3bf", "template": {...the Engine API create body...},
     "requirements": {"cpu_millis": 100, "memory_bytes": 33554432, "runtime": "docker",
                      "affinity": [[{"key": "zone", "operator": "In", "values": ["a"]}]]},
     "algorithm": "least_connections", "applied_at": 1700000000.0, "source": "/srv/specs/web.yaml"}

`replicas` is the count to keep (scale and the autoscaler change it); `spec_replicas` is what
the spec said at the last apply, so a re-apply of an unchanged file keeps `replicas` and one
whose `replicas:` changed sets it. `template` is the create body without the replica label, as
`rtm-console render` shows it: a replica made later is made exactly as the apply made it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backends.files import atomic_write, ensure_private_dir, exclusive
from backends.docker.mapping import WorkloadRequest
from rtm.scheduling import AffinityExpr, Requirements

FORMAT_VERSION = 1
FOLDER = "workloads"


class DesiredFormatError(ValueError):
    """A record that cannot be read: its path and what is wrong."""


@dataclass(frozen=True)
class DesiredWorkload:
    workload: str
    replicas: int
    spec_replicas: int
    spec_hash: str
    template: dict[str, Any]
    requirements: Requirements
    algorithm: str
    applied_at: float
    source: str | None = None

    def request(self) -> WorkloadRequest:
        return WorkloadRequest(self.workload, self.replicas, self.spec_hash, self.template, ())

    def to_json(self) -> dict[str, Any]:
        r = self.requirements
        return {
            "version": FORMAT_VERSION, "workload": self.workload, "replicas": self.replicas, "spec_replicas": self.spec_replicas,
            "spec_hash": self.spec_hash, "template": self.template,
            "requirements": {"cpu_millis": r.cpu_millis, "memory_bytes": r.memory_bytes, "runtime": r.runtime,
                             "affinity": [[{"key": e.key, "operator": e.operator, "values": list(e.values)} for e in term] for term in r.affinity]},
            "algorithm": self.algorithm, "applied_at": self.applied_at, "source": self.source,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Any, where: str) -> DesiredWorkload:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            found = data.get("version") if isinstance(data, dict) else type(data).__name__
            raise DesiredFormatError(f"{where}: not a version {FORMAT_VERSION} desired-state record (version {found!r})")
        try:
            req = data["requirements"]
            affinity = tuple(tuple(AffinityExpr(e["key"], e["operator"], tuple(e.get("values") or ())) for e in term)
                             for term in req.get("affinity") or ())
            return cls(
                str(data["workload"]), int(data["replicas"]), int(data["spec_replicas"]), str(data["spec_hash"]), dict(data["template"]),
                Requirements(int(req["cpu_millis"]), int(req["memory_bytes"]), affinity, req.get("runtime")),
                str(data["algorithm"]), float(data["applied_at"]), data.get("source"),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise DesiredFormatError(f"{where}: {type(error).__name__}: {error}") from None


class DesiredStore:
    """The records of one data folder; every write is a read-modify-write under one lock."""

    def __init__(self, data_dir: Path | str) -> None:
        self.folder = Path(data_dir) / FOLDER

    def path(self, workload: str) -> Path:
        return self.folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', workload)}.json"

    def lock_file(self, workload: str) -> Path:
        """Held while the workload's replicas change (ReplicaService.holding)."""
        ensure_private_dir(self.folder)
        return self.path(workload).with_suffix(".lock")

    def get(self, workload: str) -> DesiredWorkload | None:
        """The record, None when the workload was never applied; DesiredFormatError when damaged."""
        path = self.path(workload)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            return DesiredWorkload.from_json(json.loads(text), str(path))
        except json.JSONDecodeError as error:
            raise DesiredFormatError(f"{path}:{error.lineno}:{error.colno}: {error.msg}") from None

    def all(self) -> tuple[list[DesiredWorkload], list[str]]:
        """Every readable record, and one line per damaged one."""
        records, problems = [], []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                record = self.get(path.stem)
            except DesiredFormatError as error:
                problems.append(str(error))
                continue
            if record is not None:
                records.append(record)
        return records, problems

    def counts(self) -> dict[str, int]:
        """The count to keep of every readable record (a damaged one is left out)."""
        records, _problems = self.all()
        return {record.workload: record.replicas for record in records}

    def count_for(self, workload: str, spec_replicas: int) -> int:
        """The count an apply of a spec saying `spec_replicas` should keep: the recorded count
        while the spec's `replicas:` is unchanged since the last apply, else the spec's."""
        try:
            record = self.get(workload)
        except DesiredFormatError:
            return spec_replicas
        return record.replicas if record is not None and record.spec_replicas == spec_replicas else spec_replicas

    def record_apply(self, request: WorkloadRequest, spec_replicas: int, requirements: Requirements, algorithm: str, now: float,
                     source: str | None) -> DesiredWorkload:
        """After a confirmed apply: the applied spec, the count it kept (`request.replicas`) and
        the spec's own `replicas:`."""
        record = DesiredWorkload(request.workload, request.replicas, spec_replicas, request.spec_hash, dict(request.template),
                                 requirements, algorithm, now, source)
        return self._update(request.workload, lambda _old: record)  # type: ignore[return-value]

    def set_count(self, workload: str, replicas: int) -> DesiredWorkload | None:
        """A scaling: the new count, for a workload that has a record (others are left alone)."""
        return self._update(workload, lambda old: replace(old, replicas=replicas) if old is not None else None)

    def remove(self, workload: str) -> bool:
        with self._locked():
            try:
                self.path(workload).unlink()
            except FileNotFoundError:
                return False
            return True

    def _update(self, workload: str, change: Callable[[DesiredWorkload | None], DesiredWorkload | None]) -> DesiredWorkload | None:
        with self._locked():
            try:
                old = self.get(workload)
            except DesiredFormatError:
                old = None  # a damaged record is replaced by the next confirmed write
            new = change(old)
            if new is not None:
                atomic_write(self.path(workload), json.dumps(new.to_json(), indent=1, sort_keys=True) + "\n")
            return new

    def _locked(self) -> Any:
        ensure_private_dir(self.folder)
        return exclusive(self.folder / ".lock")
