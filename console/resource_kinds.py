"""One descriptor per resource kind: nodes, containers, VMs and functions.

Everything that makes a kind a kind for the faces of rtm-console is here: its record type
(backends/records.py), its pane (id, title, number key), the words the `:` prompt and the
CLI's KIND/NAME take for it, its table columns in the console and in `rtm-console get`, its
exporter metric families, the verbs the console offers on it (each carried by a protocol of
backends/verbs.py) and the spec kind that creates it. The CLI, the console's panes and
actions, the exporter and the start-up read these descriptors; none of them keeps a list of
kinds of its own, so adding a kind means its backend and its descriptor here.

Light on purpose: the CLI imports it, so it imports no SDK, no textual and not the exporter
(whose metric functions are imported at the first scrape).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from backends.records import ContainerInfo, FunctionInfo, NodeInfo, VmInfo
from console.tables import Column, duration, human_bytes, percent


@dataclass(frozen=True)
class ModuleFunction:
    """A function of another module, imported when first called: the exporter's (so reading a
    descriptor does not load prometheus_client) and the console's row builders (which read
    these descriptors themselves)."""

    module: str
    name: str

    @cached_property
    def _function(self) -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(importlib.import_module(self.module), self.name)
        return function

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)


def exporter(name: str) -> ModuleFunction:
    """A metric family builder of console/exporter/collector.py: (records, host selection of a
    ResourceMetrics spec; only host families are selectable) -> metric families."""
    return ModuleFunction("console.exporter.collector", name)


def pane_rows(name: str) -> ModuleFunction:
    """A row builder of console/tui/views.py: (record, backend name, now) -> the pane's row,
    its cells in the order of the kind's `columns`."""
    return ModuleFunction("console.tui.views", name)


@dataclass(frozen=True)
class ResourceKind:
    name: str  # plural: the pane's id, the word of `get`, a backend's `kind`
    resource: str  # singular: KIND/NAME, the runtime handler's key, audit targets
    title: str  # the pane's tab
    key: str  # the number key that shows the pane
    record: type  # what its backends report
    aliases: tuple[str, ...]  # what `:` and the CLI's KIND/ and `get` take (k9s-style short forms included)
    columns: tuple[Column, ...]  # the console's table; an `uptime` column is refreshed as records age
    row: ModuleFunction  # a record -> its row in the pane (console/tui/views.py)
    row_key: Callable[[Any, str], str]  # (record, backend name) -> the row's identity across polls
    cli_columns: tuple[Column, ...]  # `rtm-console get`'s table (each with its cell)
    metric_families: ModuleFunction
    verbs: tuple[str, ...]  # what the console offers on a row (console/tui/offered_actions.py VERBS)
    empty_hint: str  # what its pane says while it shows no row
    # Its resources are replicas of workloads: their rows keep a usage history for the details'
    # sparklines and are marked ALERT when an alert names them or their workload.
    runs_replicas: bool = False
    backend_types: tuple[str, ...] = ()  # the `backend` of its backends' availability reports
    spec_kind: str | None = None  # the runtime kind of a spec that creates it
    node_runtime: str | None = None  # what a machine lists under RUNTIMES when a backend of this kind runs


def _since(started_at: float | None) -> str | None:
    return duration(time.time() - started_at) if started_at else None


NODES = ResourceKind(
    name="nodes", resource="node", title="Nodes", key="1", record=NodeInfo,
    aliases=("no", "node", "nodes", "machines"),
    columns=(
        Column("node", "NODE"), Column("status", "STATUS"), Column("cpu", "CPU", numeric=True),
        Column("memory", "MEMORY", numeric=True), Column("disk", "DISK", numeric=True),
        Column("net", "NET RX/TX", numeric=True), Column("load", "LOAD", numeric=True),
        Column("zone", "ZONE"), Column("runtimes", "RUNTIMES"),
    ),
    cli_columns=(
        Column.cli("id", lambda n: n.id), Column.cli("zone", lambda n: n.zone), Column.cli("cpus", lambda n: n.cpu_count),
        Column.cli("cpu", lambda n: percent(n.cpu_usage_ratio)),
        Column.cli("memory", lambda n: f"{human_bytes(n.memory_bytes_used)}/{human_bytes(n.memory_bytes_total)}"),
        Column.cli("load1", lambda n: f"{n.load1:.2f}"), Column.cli("runtimes", lambda n: ",".join(sorted(n.runtimes)) or "-"),
        Column.cli("cordoned", lambda n: "yes" if n.cordoned else "no"),
    ),
    row=pane_rows("node_row"),
    row_key=lambda node, backend: f"{backend}/{node.id}",
    metric_families=exporter("host_families"),
    verbs=("cordon", "uncordon"),
    empty_hint="No node reported yet.",
    backend_types=("host",),
)
CONTAINERS = ResourceKind(
    name="containers", resource="container", title="Containers", key="2", record=ContainerInfo,
    aliases=("co", "container", "containers", "docker", "pods", "po"),
    columns=(
        Column("name", "NAME"), Column("state", "STATE"), Column("health", "HEALTH"), Column("cpu", "CPU", numeric=True),
        Column("memory", "MEMORY", numeric=True), Column("restarts", "RESTARTS", numeric=True),
        Column("uptime", "UPTIME", numeric=True), Column("image", "IMAGE"), Column("engine", "ENGINE"), Column("ports", "PORTS"),
    ),
    cli_columns=(
        Column.cli("name", lambda c: c.name), Column.cli("workload", lambda c: c.workload), Column.cli("engine", lambda c: c.engine),
        Column.cli("state", lambda c: c.state), Column.cli("health", lambda c: c.health), Column.cli("image", lambda c: c.image),
        Column.cli("ports", lambda c: ",".join(c.ports) or None),
        Column.cli("uptime", lambda c: _since(c.started_at) if c.state == "running" else None),
        Column.cli("cpu", lambda c: percent(c.cpu_ratio)),
        Column.cli("memory", lambda c: f"{human_bytes(c.memory_working_set_bytes)}/{human_bytes(c.memory_limit_bytes) or '-'}"),
        Column.cli("restarts", lambda c: c.restarts),
    ),
    row=pane_rows("container_row"),
    row_key=lambda container, backend: f"{container.engine or backend}/{container.id}",
    metric_families=exporter("container_families"),
    verbs=("start", "stop", "restart", "delete", "exec"),
    empty_hint="No Docker engine is configured (docker.endpoints, or DOCKER_HOST).", runs_replicas=True,
    backend_types=("docker",), spec_kind="ContainerRuntime", node_runtime="docker",
)
VMS = ResourceKind(
    name="vms", resource="vm", title="VMs", key="3", record=VmInfo,
    aliases=("vm", "vms", "domains", "virt"),
    columns=(
        Column("name", "NAME"), Column("state", "STATE"), Column("vcpus", "VCPUS", numeric=True), Column("cpu", "CPU", numeric=True),
        Column("memory", "MEMORY", numeric=True), Column("uptime", "UPTIME", numeric=True), Column("host", "HOST"),
    ),
    cli_columns=(
        Column.cli("name", lambda v: v.name), Column.cli("host", lambda v: v.host), Column.cli("state", lambda v: v.state),
        Column.cli("vcpus", lambda v: v.vcpus),
        Column.cli("memory", lambda v: f"{human_bytes(v.memory_current_bytes)}/{human_bytes(v.memory_max_bytes)}"),
        Column.cli("cpu", lambda v: percent(v.cpu_ratio)), Column.cli("uptime", lambda v: _since(v.started_at)),
    ),
    row=pane_rows("vm_row"),
    row_key=lambda vm, backend: f"{vm.host or backend}/{vm.uuid or vm.name}",
    metric_families=exporter("vm_families"),
    verbs=("start", "stop", "restart", "delete"),
    empty_hint="No libvirt host is configured (libvirt.uris, or LIBVIRT_DEFAULT_URI; --sandbox uses test:///default).",
    runs_replicas=True,
    backend_types=("libvirt",), spec_kind="VirtualMachineRuntime", node_runtime="libvirt",
)
FUNCTIONS = ResourceKind(
    name="functions", resource="function", title="Functions", key="4", record=FunctionInfo,
    aliases=("fn", "func", "function", "functions", "lambda"),
    columns=(
        Column("name", "NAME"), Column("target", "TARGET"), Column("runtime", "RUNTIME"), Column("memory", "MEMORY", numeric=True),
        Column("timeout", "TIMEOUT", numeric=True), Column("invocations", "INVOKED", numeric=True),
        Column("errors", "ERRORS", numeric=True), Column("duration", "AVG", numeric=True), Column("triggers", "TRIGGERS"),
    ),
    cli_columns=(
        Column.cli("name", lambda f: f.name), Column.cli("target", lambda f: f.target), Column.cli("runtime", lambda f: f.runtime),
        Column.cli("memory", lambda f: f"{f.memory_mb}MB"), Column.cli("timeout", lambda f: f"{f.timeout_seconds:g}s"),
        Column.cli("triggers", lambda f: "; ".join(f.triggers) or None), Column.cli("invocations", lambda f: f.invocations),
        Column.cli("errors", lambda f: f.errors),
    ),
    row=pane_rows("function_row"),
    row_key=lambda function, backend: f"{backend}/{function.region or function.target}/{function.name}",
    metric_families=exporter("function_families"),
    verbs=("delete", "invoke"),
    empty_hint="No functions backend is configured.",
    backend_types=("lambda", "local-functions"), spec_kind="ServerlessRuntime",
)

KINDS: tuple[ResourceKind, ...] = (NODES, CONTAINERS, VMS, FUNCTIONS)
_BY_WORD = {word: kind for kind in KINDS for word in (kind.name, kind.resource, *kind.aliases)}
_BY_RECORD = {kind.record: kind for kind in KINDS}


def kind_named(word: str) -> ResourceKind | None:
    """The kind a word names: its plural, its singular or an alias, in any case."""
    return _BY_WORD.get(word.lower())


def kind_of_record(record: Any) -> ResourceKind:
    """The kind of a record a backend reported (raises TypeError for anything else)."""
    kind = _BY_RECORD.get(type(record))
    if kind is None:
        raise TypeError(f"not a record: {type(record).__name__}")
    return kind


def kind_of_backend_type(backend_type: str) -> ResourceKind | None:
    """The kind whose backends report availability as `backend_type` ("docker", "lambda")."""
    return next((kind for kind in KINDS if backend_type in kind.backend_types), None)


def kind_of_spec(runtime_kind: str) -> ResourceKind:
    """The kind a spec's runtime document creates (ContainerRuntime -> containers)."""
    return next(kind for kind in KINDS if kind.spec_kind == runtime_kind)


def kinds_created_by_specs() -> tuple[ResourceKind, ...]:
    return tuple(kind for kind in KINDS if kind.spec_kind is not None)


def node_runtimes(backend_kinds: Iterable[str]) -> tuple[str, ...]:
    """What a machine carries, from the kinds of the backends configured on it."""
    found = {kind.node_runtime for name in backend_kinds if (kind := kind_named(name)) and kind.node_runtime}
    return tuple(sorted(found))
