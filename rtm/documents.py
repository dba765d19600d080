"""Spec files: YAML documents whose top-level keys are kinds, and workloads assembled from them.

A document with `name:`, an optional `replicas:`, exactly one runtime kind and the policies that
govern it is a *workload*. A document without a name holds standalone specs (one per kind, as
in the seed). `Nodes:` holds an inventory for placement previews.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from rtm import reader
from rtm.findings import Finding
from rtm.kinds import KINDS, RUNTIME_KINDS
from rtm.kinds.container import ContainerRuntime, calls_curl, is_alpine_image
from rtm.kinds.node_inventory import NodeSpec
from rtm.schema import BuildContext, FrozenMap, Where, build, convert, did_you_mean, node_position, scalar_value

WORKLOAD_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
TOP_LEVEL_KEYS = ("name", "replicas", "Nodes", *KINDS)
MAX_ALIAS_EXPANSION = 200_000  # values aliases may add to a document: a small file can expand into a huge tree
REPLICAS_WARNING_ABOVE = 1_000  # `replicas:` above this is warned at validate
ASK_BEFORE_CREATING_ABOVE = 50  # apply asks before creating more replicas than this at once


@dataclass(frozen=True)
class Document:
    path: str
    index: int  # position of the document in its file, from 0
    name: str | None
    replicas: int | None
    specs: FrozenMap  # kind -> spec value
    nodes: tuple[NodeSpec, ...] | None
    where: Where

    @property
    def runtime_kind(self) -> str | None:
        return next((k for k in RUNTIME_KINDS if k in self.specs), None)

    @property
    def is_workload(self) -> bool:
        return self.name is not None and self.runtime_kind is not None

    def get(self, kind: str) -> Any:
        return self.specs.get(kind)

    @property
    def desired_replicas(self) -> int:
        """`replicas:`, else the autoscaler's minimum, else the scheduling policy's, else 1."""
        if self.replicas is not None:
            return self.replicas
        autoscaling = self.get("AutoScalingPolicy")
        if autoscaling is not None and autoscaling.horizontal is not None:
            return autoscaling.horizontal.min_replicas
        scheduling = self.get("SchedulingPolicy")
        if scheduling is not None:
            return scheduling.scaling.min_replicas
        return 1

    @property
    def label(self) -> str:
        return f"{self.runtime_kind or 'document'}/{self.name}" if self.name else f"{self.path}#{self.index + 1}"


@dataclass(frozen=True)
class LoadResult:
    path: str
    documents: tuple[Document, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


class _TooLarge(Exception):
    pass


def load_text(text: str, path: str = "<text>", today: date | None = None) -> LoadResult:
    """Validate every document of a YAML text; documents with errors are left out of the result."""
    ctx = BuildContext(path, today)
    documents: list[Document] = []
    if len(text) > reader.MAX_FILE_BYTES:
        ctx.report("error", 1, 1, f"the text is larger than {reader.MAX_FILE_BYTES // (1024 * 1024)} MiB", "split it into several files")
        return LoadResult(path, (), tuple(ctx.findings))
    with reader.gc_paused():
        _build_documents(text, ctx, documents)
    return LoadResult(path, tuple(documents), tuple(ctx.findings))


def _build_documents(text: str, ctx: BuildContext, documents: list[Document]) -> None:
    try:
        for index, root in enumerate(reader.compose_all(text)):
            if root is None:
                continue
            try:
                _check_size(root)
            except _TooLarge:
                ctx.error_at(root, "this document expands to too many values", "avoid deeply repeated YAML aliases (&anchor / *alias)")
                continue
            document = _build_document(root, index, ctx)
            if document is not None:
                documents.append(document)
    except yaml.YAMLError as exc:
        problem = reader.yaml_problem(exc)
        ctx.report("error", problem.line or 1, problem.column or 1, problem.message, problem.hint)
    except RecursionError:
        ctx.report("error", 1, 1, "invalid YAML: nested too deeply", "flatten the structure")


def load_file(path: Path, today: date | None = None) -> LoadResult:
    """Read and validate a spec file. OSError propagates: an unreadable path is a usage error, and
    so is a path that is not a regular file or is over reader.MAX_FILE_BYTES (reader.FileRefused)."""
    try:
        text = reader.read_yaml_text(path)
    except reader.YamlFileError as exc:
        problem = exc.problem
        return LoadResult(str(path), (), (Finding(str(path), problem.line or 1, problem.column or 1, "error", problem.message, problem.hint),))
    return load_text(text, str(path), today)


def spec_files(paths: list[Path]) -> list[Path]:
    """The files named, and every *.yaml / *.yml below the folders named, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            files.append(path)
    return files


def _build_document(root: yaml.Node, index: int, ctx: BuildContext) -> Document | None:
    if not isinstance(root, yaml.MappingNode):
        ctx.error_at(root, "a spec document must be a mapping whose keys are kinds", "e.g. `ContainerRuntime:` at the start of a line")
        return None
    errors_before = ctx.error_count()
    specs: dict[str, Any] = {}
    seen: set[str] = set()
    name = replicas = nodes = None
    for key_node, value_node in root.value:
        key = scalar_value(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if key in seen:
            ctx.error_at(key_node, f'"{key}" is given twice in this document', "split it into two documents with ---")
            continue
        if key == "name":
            name = convert(str, value_node, ctx, "name")
        elif key == "replicas":
            replicas = convert(int, value_node, ctx, "replicas")
            if replicas is not None and replicas < 0:
                ctx.error_at(value_node, "replicas cannot be negative")
            elif replicas is not None and replicas > REPLICAS_WARNING_ABOVE:
                line, column = node_position(value_node)
                ctx.report("warning", line, column, f"replicas: {replicas:,} is more than {REPLICAS_WARNING_ABOVE:,} replicas",
                           f"check the number: apply creates each one, and asks first when it creates more than {ASK_BEFORE_CREATING_ABOVE} at once")
        elif key == "Nodes":
            nodes = convert(tuple[NodeSpec, ...], value_node, ctx, "Nodes")
            if nodes is not None:
                _check_node_ids(nodes, ctx)
        elif key in KINDS:
            specs[key] = build(KINDS[key], value_node, ctx, key)
        else:
            hint = did_you_mean(str(key), TOP_LEVEL_KEYS)
            ctx.error_at(key_node, f'unknown kind "{key}"', hint)
        seen.add(str(key))
    line, column = node_position(root)
    where = Where(ctx.path, line, column)
    runtimes = [k for k in specs if k in RUNTIME_KINDS]
    if len(runtimes) > 1:
        ctx.error(where, None, f"a document runs one runtime kind, this one has {' and '.join(runtimes)}", "put each runtime in its own document with its own name")
    if name is not None and not WORKLOAD_NAME.fullmatch(name):
        ctx.error_at(_value_node(root, "name"), f'"{name}" is not a valid workload name', "lower-case letters, digits and -, at most 63, starting and ending with a letter or digit")
    if name is not None and not runtimes and "name" in seen and ctx.error_count() == errors_before:
        ctx.error_at(_value_node(root, "name"), "a named workload needs a runtime kind", "add ContainerRuntime, VirtualMachineRuntime or ServerlessRuntime")
    if ctx.error_count() > errors_before:
        return None
    document = Document(ctx.path, index, name, replicas, FrozenMap(specs), nodes, where)
    _check_workload(document, root, ctx)
    return document


def reasons_to_ask(document: Document, creating: int) -> list[str]:
    """Why applying this document is confirmed first: container settings that reach into the
    host, and creating more than ASK_BEFORE_CREATING_ABOVE replicas at once."""
    reasons = []
    container: ContainerRuntime | None = document.get("ContainerRuntime")
    for risk in container.host_risks() if container else ():
        line, column = risk.where.of(risk.field)
        reasons.append(f"{risk.where.path}:{line}:{column}: {risk.message}")
    if creating > ASK_BEFORE_CREATING_ABOVE:
        reasons.append(f"creates {creating:,} replicas at once (more than {ASK_BEFORE_CREATING_ABOVE})")
    return reasons


def _check_workload(document: Document, root: yaml.MappingNode, ctx: BuildContext) -> None:
    """Warnings that need more than one kind of the same workload."""
    container: ContainerRuntime | None = document.get("ContainerRuntime")
    tuning = document.get("PerformanceTuning")
    if container and tuning and tuning.jvm_tuning and container.resources.limits.memory is not None:
        if tuning.jvm_tuning.heap_size > container.resources.limits.memory:
            ctx.warning(
                tuning.jvm_tuning.where, "heap_size",
                "the JVM heap is larger than the container's memory limit",
                "the kernel will kill the JVM before the heap fills: lower heap_size or raise resources.limits.memory",
            )
    health = document.get("HealthCheck")
    if container and health and is_alpine_image(container.base_image):
        for probe_name, probe in health.probes().items():
            if probe.command is not None and calls_curl(probe.command):
                ctx.warning(probe.where, "command", f"the {probe_name} probe calls curl, which {container.base_image} lacks (BusyBox has wget)", "use: wget -q -O- http://127.0.0.1:8080/health")


def _check_node_ids(nodes: tuple[NodeSpec, ...], ctx: BuildContext) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.id in seen:
            ctx.error(node.where, "id", f'node id "{node.id}" is used twice')
        seen.add(node.id)


def _value_node(mapping: yaml.MappingNode, key: str) -> yaml.Node:
    return next(v for k, v in mapping.value if isinstance(k, yaml.ScalarNode) and k.value == key)


def _check_size(root: yaml.Node) -> None:
    """Count the values that aliases add (a node reached a second time, with all below it), as
    the builder will see them, stopping early when too many. Values written out in the file
    are bounded by its size."""
    seen: set[int] = set()
    repeated = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            repeated += 1
            if repeated > MAX_ALIAS_EXPANSION:
                raise _TooLarge()
        else:
            seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)

