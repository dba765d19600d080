"""Records -> table rows: what each pane shows, as plain strings with their sort values.

Pure (no textual): the panes turn these rows into DataTable cells, the benchmark times them,
and tests check them without a terminal. A row's cells are strings so two polls can be
compared cheaply; only the cells that differ are pushed to the screen (see table_diff.py).

`RowBuilder` keeps the row of each record it built: a record equal to the one of the previous
poll (records are frozen values) reuses its row, so a 5,000-container refresh in which a fifth
of the containers changed formats only that fifth, plus the one time-dependent cell (uptime).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.records import ContainerInfo, FunctionInfo, NodeInfo, Record, VmInfo
from console.eventlog import Event
from console.datadir import iso_utc
from console.resource_kinds import KINDS, kind_named, kind_of_record
from console.tables import Column, duration

PANE_KINDS = tuple(kind.name for kind in KINDS)
MISSING = "-"


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: `key` is stable across polls; `name` is what `:` and `/` match."""

    key: str
    name: str
    backend: str
    cells: tuple[str, ...]
    sort_values: tuple[Any, ...]

    @property
    def search_text(self) -> str:
        return " ".join(self.cells).lower()


# ------------------------------------------------------------------------------ formatting


def human_bytes(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return MISSING


def human_rate(bytes_per_second: float | None) -> str:
    return MISSING if bytes_per_second is None else human_bytes(bytes_per_second) + "/s"


def percent(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return MISSING
    return f"{ratio * 100:.1f}%"


def human_duration(seconds: float | None) -> str:
    """Uptime-style: 45s, 3m, 5h4m, 2d3h. Seconds only in the first minute, so an uptime cell
    changes at most once a minute after that (a refresh of a big, quiet table repaints
    nothing rather than every row)."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    return duration(seconds, with_seconds=False) or MISSING


def short_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"


def _num(value: float | int | None) -> tuple[int, float]:
    """A sort value for numbers where a missing one sorts first."""
    return (0, 0.0) if value is None else (1, float(value))


def _text(value: str | None) -> tuple[int, str]:
    return (0, "") if value is None else (1, value.lower())


# ------------------------------------------------------------------------------ columns

# The resource kinds' columns are their descriptors' (console/resource_kinds.py).
EVENT_COLUMNS = (
    Column("time", "TIME"),
    Column("kind", "KIND"),
    Column("workload", "WORKLOAD"),
    Column("target", "TARGET"),
    Column("message", "MESSAGE"),
)
ALERT_COLUMNS = (
    Column("alert", "ALERT"),
    Column("severity", "SEVERITY"),
    Column("subject", "WORKLOAD/BACKEND"),
    Column("value", "VALUE", numeric=True),
    Column("threshold", "THRESHOLD", numeric=True),
    Column("since", "SINCE"),
    Column("status", "STATUS"),
    Column("message", "MESSAGE"),
)
COLUMNS: Mapping[str, tuple[Column, ...]] = {
    **{kind.name: kind.columns for kind in KINDS},
    "events": EVENT_COLUMNS,
    "alerts": ALERT_COLUMNS,
}


# ------------------------------------------------------------------------------ rows


@dataclass(frozen=True)
class NodeRates:
    """Per-second rates a node's cumulative counters gave between its last two polls."""

    disk_bytes: float | None = None  # read + written
    net_rx_bytes: float | None = None
    net_tx_bytes: float | None = None


def row_key(record: Record, backend: str) -> str:
    """The row's identity across polls (its kind's descriptor says how)."""
    return kind_of_record(record).row_key(record, backend)


def record_name(record: Record) -> str:
    return record.id if isinstance(record, NodeInfo) else record.name


def fullest_filesystem(node: NodeInfo) -> float | None:
    return max((fs.used_ratio for fs in node.filesystems), default=None)


def node_row(node: NodeInfo, backend: str, now: float | None = None, rates: NodeRates | None = None) -> Row:
    """`now` is taken as by every row builder; a node's cells do not age between polls."""
    rates = rates or NodeRates()
    memory_ratio = node.memory_bytes_used / node.memory_bytes_total if node.memory_bytes_total else None
    disk_ratio = fullest_filesystem(node)
    net = (
        MISSING
        if rates.net_rx_bytes is None
        else f"{human_rate(rates.net_rx_bytes)} {human_rate(rates.net_tx_bytes)}"
    )
    status = "Cordoned" if node.cordoned else "Ready"
    if node.warnings:
        status += " !"
    runtimes = ",".join(sorted(node.runtimes)) or MISSING
    cells = (
        node.id,
        status,
        percent(node.cpu_usage_ratio),
        f"{percent(memory_ratio)} of {human_bytes(node.memory_bytes_total)}",
        percent(disk_ratio),
        net,
        f"{node.load1:.2f}",
        node.zone,
        runtimes,
    )
    sort_values = (
        _text(node.id),
        _text(status),
        _num(node.cpu_usage_ratio),
        _num(memory_ratio),
        _num(disk_ratio),
        _num(rates.net_rx_bytes),
        _num(node.load1),
        _text(node.zone),
        _text(runtimes),
    )
    return Row(row_key(node, backend), node.id, backend, cells, sort_values)


def _uptime(started_at: float | None, running: bool, now: float) -> float | None:
    return now - started_at if running and started_at is not None else None


def container_row(container: ContainerInfo, backend: str, now: float) -> Row:
    uptime = _uptime(container.started_at, container.state == "running", now)
    memory = human_bytes(container.memory_working_set_bytes)
    if container.memory_limit_bytes:
        memory += f" / {human_bytes(container.memory_limit_bytes)}"
    ports = ",".join(container.ports) or MISSING
    cells = (
        container.name,
        container.state,
        container.health or MISSING,
        percent(container.cpu_ratio),
        memory,
        str(container.restarts),
        human_duration(uptime),
        container.image,
        container.engine,
        ports,
    )
    sort_values = (
        _text(container.name),
        _text(container.state),
        _text(container.health),
        _num(container.cpu_ratio),
        _num(container.memory_working_set_bytes),
        _num(container.restarts),
        _num(uptime),
        _text(container.image),
        _text(container.engine),
        _text(ports),
    )
    return Row(row_key(container, backend), container.name, backend, cells, sort_values)


def vm_row(vm: VmInfo, backend: str, now: float) -> Row:
    uptime = _uptime(vm.started_at, vm.state == "running", now)
    cells = (
        vm.name,
        vm.state,
        str(vm.vcpus),
        percent(vm.cpu_ratio),
        f"{human_bytes(vm.memory_current_bytes)} / {human_bytes(vm.memory_max_bytes)}",
        human_duration(uptime),
        vm.host,
    )
    sort_values = (
        _text(vm.name),
        _text(vm.state),
        _num(vm.vcpus),
        _num(vm.cpu_ratio),
        _num(vm.memory_current_bytes),
        _num(uptime),
        _text(vm.host),
    )
    return Row(row_key(vm, backend), vm.name, backend, cells, sort_values)


def function_row(function: FunctionInfo, backend: str, now: float | None = None) -> Row:
    """`now` is taken as by every row builder; a function's cells do not age between polls."""
    target = function.target if function.region is None else f"{function.target} {function.region}"
    average = function.duration.average_seconds if function.duration else None
    triggers = ", ".join(function.triggers) or MISSING
    cells = (
        function.name,
        target,
        function.runtime,
        f"{function.memory_mb}MB",
        f"{function.timeout_seconds:g}s",
        str(function.invocations),
        str(function.errors),
        short_seconds(average),
        triggers,
    )
    sort_values = (
        _text(function.name),
        _text(target),
        _text(function.runtime),
        _num(function.memory_mb),
        _num(function.timeout_seconds),
        _num(function.invocations),
        _num(function.errors),
        _num(average),
        _text(triggers),
    )
    return Row(row_key(function, backend), function.name, backend, cells, sort_values)


def event_row(event: Event, identity: str) -> Row:
    """Events have no id of their own: the caller gives each a stable identity."""
    cells = (
        iso_utc(event.time)[:19].replace("T", " "),
        event.kind,
        event.workload or MISSING,
        event.target or MISSING,
        event.message,
    )
    sort_values = ((1, event.time), _text(event.kind), _text(event.workload), _text(event.target), _text(event.message))
    return Row(f"event/{identity}", event.target or event.workload or event.kind, "events", cells, sort_values)


def _alert_number(value: float, percent_kind: bool) -> str:
    text = f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.2f}"
    return text + "%" if percent_kind else text


def alert_row(alert: Any, now: float) -> Row:
    """A firing alert (console.exporter.firing.FiringAlert). Its status says in words whether
    it is silenced, and until when."""
    percent_kind = alert.alert.endswith("AboveTarget")
    status = "firing" if alert.silenced_until is None else f"silenced until {iso_utc(alert.silenced_until)[11:16]} UTC"
    cells = (
        alert.alert,
        alert.severity,
        alert.subject,
        "down" if alert.alert == "RtmBackendDown" else _alert_number(alert.value, percent_kind),
        "up for 1m" if alert.alert == "RtmBackendDown" else _alert_number(alert.limit, percent_kind),
        f"{iso_utc(alert.since)[11:19]} ({human_duration(max(0.0, now - alert.since))} ago)",
        status,
        alert.message,
    )
    sort_values = (_text(alert.alert), _text(alert.severity), _text(alert.subject), _num(alert.value),
                   _num(alert.limit), (1, alert.since), _text(status), _text(alert.message))
    return Row(f"alert/{alert.alert}/{alert.subject}", alert.subject, "alerts", cells, sort_values)


ALERT_MARK = "ALERT"


def mark_alerted(rows: Sequence[Row], alerted: frozenset[str]) -> list[Row]:
    """The rows whose resource or workload an alert names get the word ALERT in their state
    cell (the second), so the mark reads in monochrome too."""
    if not alerted:
        return list(rows)
    marked = []
    for row in rows:
        if row.name in alerted or row.key in alerted:
            cells = (row.cells[0], f"{row.cells[1]} {ALERT_MARK}", *row.cells[2:])
            row = Row(row.key, row.name, row.backend, cells, row.sort_values)
        marked.append(row)
    return marked


def alerted_names(pairs: Iterable[tuple[str, Record]], alerts: Sequence[Any]) -> frozenset[str]:
    """Names of the containers and VMs that firing alerts concern: named as the alert's subject,
    or a replica of its workload (a container's workload label; a VM named WORKLOAD or
    WORKLOAD-N)."""
    if not alerts:
        return frozenset()
    subjects = {alert.subject for alert in alerts}
    workloads = {alert.workload for alert in alerts if alert.workload}
    found = set()
    for _backend, record in pairs:
        if isinstance(record, ContainerInfo):
            if record.name in subjects or record.workload in workloads:
                found.add(record.name)
        elif isinstance(record, VmInfo):
            base, _, index = record.name.rpartition("-")
            if record.name in subjects or record.name in workloads or (index.isdigit() and base in workloads):
                found.add(record.name)
    return frozenset(found)


class RowBuilder:
    """Builds the rows of one pane, reusing the row of every record that did not change."""

    def __init__(self, kind: str) -> None:
        described = kind_named(kind)
        if described is None or kind != described.name:
            raise ValueError(f"no rows for kind {kind!r}")
        self.kind = kind
        self._row = described.row
        # The one cell that changes while a record does not: it is redone as the record ages.
        self._uptime_column = next((i for i, column in enumerate(described.columns) if column.key == "uptime"), None)
        # Two plain dicts rather than (record, row) pairs: fewer objects for the garbage
        # collector to walk on every full collection (it matters at thousands of rows).
        self._records: dict[str, Record] = {}
        self._rows: dict[str, Row] = {}

    def build(
        self,
        pairs: Iterable[tuple[str, Record]],
        now: float,
        node_rates: Mapping[str, NodeRates] | None = None,
    ) -> list[Row]:
        """Rows for (backend name, record) pairs; `now` is wall-clock epoch seconds."""
        records: dict[str, Record] = {}
        built: dict[str, Row] = {}
        rows: list[Row] = []
        old_records, old_rows = self._records, self._rows
        for backend, record in pairs:
            key = row_key(record, backend)
            if isinstance(record, NodeInfo):
                # Nodes are few and their rates move with every poll: always rebuilt.
                row = node_row(record, backend, now, (node_rates or {}).get(key))
            elif key in old_rows and (old_records[key] is record or old_records[key] == record):
                row = self._refresh_time_cells(old_rows[key], record, now)
            else:
                row = self._row(record, backend, now)
            records[key] = record
            built[key] = row
            rows.append(row)
        self._records, self._rows = records, built
        return rows

    def _refresh_time_cells(self, row: Row, record: Any, now: float) -> Row:
        """An unchanged record still ages: redo its uptime cell (a kind with an `uptime` column
        has records with `started_at` and `state`), and the row only if it moved."""
        column = self._uptime_column
        if column is None:
            return row
        uptime = _uptime(record.started_at, record.state == "running", now)
        text = human_duration(uptime)
        if text == row.cells[column]:
            return row
        cells = row.cells[:column] + (text,) + row.cells[column + 1:]
        sorts = row.sort_values[:column] + (_num(uptime),) + row.sort_values[column + 1:]
        return Row(row.key, row.name, row.backend, cells, sorts)


def matches_filter(row: Row, query: str) -> bool:
    """`/` filter: every word of the query appears somewhere in the row (case-insensitive)."""
    words = query.lower().split()
    if not words:
        return True
    text = row.search_text
    return all(word in text for word in words)


def sort_rows(rows: Sequence[Row], column: int | None, reverse: bool) -> list[Row]:
    if column is None:
        return list(rows)
    return sorted(rows, key=lambda row: row.sort_values[column], reverse=reverse)

