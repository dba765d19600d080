"""Workloads as `get`, `describe` and `delete` see them: the replicas the runtimes report,
grouped by workload, with the policies that govern each one in the specs folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from backends.base import BackendUnavailable
from backends.records import to_jsonable
from console.context import AppContext
from rtm.documents import Document, load_file, spec_files
from rtm.kinds import RUNTIME_KINDS

RUNNING_STATES = ("running", "active", "ok")
# What `describe workload/NAME` shows of each replica, when its record has the field.
REPLICA_FIELDS = (
    "name", "engine", "host", "target", "state", "health", "cpu_ratio", "memory_working_set_bytes",
    "memory_limit_bytes", "memory_current_bytes", "restarts", "started_at", "invocations", "errors",
)


def replicas_by_workload(ctx: AppContext, unreachable: set[str] | None = None) -> dict[tuple[str, str], list[Any]]:
    """(resource, workload) -> its records; a container belongs to its `rtm.workload` label,
    a VM or a function is a workload of its own. Resources whose backend did not answer are
    added to `unreachable`."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for resource, handler in ctx.handlers().items():
        try:
            records = handler.list()
        except BackendUnavailable:
            if unreachable is not None:
                unreachable.add(resource)
            continue
        for record in records:
            workload = getattr(record, "workload", None) or (record.name if resource != "container" else None)
            if workload:
                grouped.setdefault((resource, workload), []).append(record)
    return grouped


def workload_rows(ctx: AppContext) -> list[dict[str, Any]]:
    """`get workloads`: name, kind, replicas, running."""
    rows = [{"name": name, "kind": resource, "replicas": len(records), "running": _running(records)}
            for (resource, name), records in replicas_by_workload(ctx).items()]
    return sorted(rows, key=lambda row: (row["kind"], row["name"]))


def workload_kinds(ctx: AppContext, name: str) -> list[str]:
    """The resources (container, vm, function) that run a workload of this name."""
    return sorted(resource for resource, workload in replicas_by_workload(ctx) if workload == name)


def describe_workload(ctx: AppContext, name: str) -> dict[str, Any] | None:
    """Every replica (where it runs, state, health, usage, restarts) and the workload's
    policies from the specs folder; None when no runtime reports the workload."""
    found = [(resource, records) for (resource, workload), records in replicas_by_workload(ctx).items() if workload == name]
    if not found:
        return None
    resource, records = found[0]
    document = spec_document(ctx.config.specs_dir, name)
    return {
        "name": name,
        "kind": resource,
        "replicas": [_replica(record) for record in sorted(records, key=lambda r: r.name)],
        "running": _running(records),
        "spec": f"{document.path}" if document else None,
        "policies": _policies(document) if document else {},
    }


def spec_document(specs_dir: Path, name: str) -> Document | None:
    """The document of the specs folder that declares workload `name` (None without one)."""
    if not specs_dir.is_dir():
        return None
    for file in spec_files([specs_dir]):
        try:
            result = load_file(file)
        except OSError:
            continue
        for document in result.documents:
            if document.name == name and document.runtime_kind:
                return document
    return None


def _running(records: list[Any]) -> int:
    return sum(getattr(record, "state", "") in RUNNING_STATES for record in records)


def _replica(record: Any) -> dict[str, Any]:
    data = to_jsonable(record)
    return {key: data[key] for key in REPLICA_FIELDS if key in data}


def _policies(document: Document) -> dict[str, Any]:
    return {kind: _without_positions(spec) for kind, spec in document.specs.items() if kind not in RUNTIME_KINDS}


def _without_positions(value: Any) -> Any:
    """A spec as JSON, without the `where` (file position) each spec value carries."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _without_positions(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "where"}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _without_positions(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset)):
        return [_without_positions(item) for item in value]
    return to_jsonable(value)
