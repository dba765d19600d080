"""Putting the exporter together: specs, collector, registry, web config and server.

Shared by the headless `rtm-console exporter` command and the console's `--metrics-listen`,
so both serve exactly the same thing. Nothing here imports textual.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from prometheus_client.process_collector import ProcessCollector

from backends.base import Availability
from backends.docker.desired import DesiredStore
from console.config import ListenAddress, parse_listen_address
from console.context import AppContext
from console.eventlog import EventLog
from console.exporter.collector import RtmCollector
from console.exporter.event_counts import EventCounter
from console.exporter.exposition import RtmRegistry
from console.exporter.server import ExporterServer
from console.exporter.web_config import WebConfig, WebConfigError, load_web_config
from console.poller import Poller
from rtm.documents import Document, load_file, spec_files
from rtm.errors import SpecValueError
from rtm.findings import Finding


class ExporterStartError(Exception):
    """The exporter cannot start; the message says why and what to change (one or more lines)."""


@dataclass(frozen=True)
class ExporterSpecs:
    """What the exporter takes from the spec files."""

    documents: tuple[Document, ...] = ()
    warnings: tuple[Finding, ...] = ()
    files: tuple[Path, ...] = ()

    @property
    def host_selection(self) -> frozenset[str] | None:
        """The host metrics the ResourceMetrics specs select (their union); None without one."""
        chosen = [doc.get("ResourceMetrics").selected() for doc in self.documents if doc.get("ResourceMetrics") is not None]
        return frozenset().union(*chosen) if chosen else None

    @property
    def desired_replicas(self) -> Mapping[str, int]:
        return MappingProxyType({doc.name: doc.desired_replicas for doc in self.documents if doc.is_workload and doc.name})


def load_specs(folder: Path | None, required: bool = False) -> ExporterSpecs:
    """Read every spec below `folder` (a folder or one file). A missing folder is fine unless
    `required` (it was named on the command line); any error stops the exporter, because a
    ResourceMetrics spec that does not load would otherwise silently export everything."""
    if folder is None or not folder.exists():
        if required:
            raise ExporterStartError(f"the specs folder {folder} does not exist")
        return ExporterSpecs()
    documents: list[Document] = []
    warnings: list[Finding] = []
    errors: list[str] = []
    files = spec_files([folder])
    for file in files:
        try:
            result = load_file(file)
        except OSError as exc:
            errors.append(f"{file}: cannot read: {exc.strerror or exc}")
            continue
        errors += [f.format() for f in result.findings if f.severity == "error"]
        warnings += [f for f in result.findings if f.severity != "error"]
        documents += result.documents
    if errors:
        raise ExporterStartError("\n".join([*errors, f"the specs in {folder} have errors; fix them (rtm-console validate {folder})"]))
    return ExporterSpecs(tuple(documents), tuple(warnings), tuple(files))


def build_registry(
    poller: Poller,
    specs: ExporterSpecs = ExporterSpecs(),
    events: EventLog | None = None,
    unavailable: Sequence[Availability] = (),
    desired: DesiredStore | None = None,
) -> RtmRegistry:
    """A registry with the rtm collector and the process' own metrics (process_*). `desired`:
    the data folder's desired state, whose counts rtm_workload_replicas_desired reports."""
    registry = RtmRegistry(
        RtmCollector(
            poller,
            host_selection=specs.host_selection,
            events=EventCounter(events) if events is not None else None,
            unavailable=unavailable,
            desired_replicas=specs.desired_replicas,
            desired_counts=desired.counts if desired is not None else None,
        )
    )
    ProcessCollector(registry=registry)
    return registry


def read_web_config(path: Path | None) -> WebConfig | None:
    if path is None:
        return None
    try:
        return load_web_config(path)
    except WebConfigError as exc:
        raise ExporterStartError(str(exc)) from None


@dataclass
class Exporter:
    """A running exporter: its server and what it was built from."""

    server: ExporterServer
    specs: ExporterSpecs
    web_config: WebConfig | None
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


def serve_exporter(
    poller: Poller,
    listen: ListenAddress,
    *,
    web_config_path: Path | None = None,
    specs: ExporterSpecs = ExporterSpecs(),
    events: EventLog | None = None,
    unavailable: Sequence[Availability] = (),
    started: bool = True,
    desired: DesiredStore | None = None,
) -> Exporter:
    """Bind `listen` and serve in a background thread.

    /startup answers 200 once `started` is true or `exporter.server.mark_started()` is called
    (the headless command calls it after starting the poller). Raises ExporterStartError for a
    bad web config or an address that cannot be bound.
    """
    web_config = read_web_config(web_config_path)
    registry = build_registry(poller, specs, events, unavailable, desired)
    try:
        server = ExporterServer(
            registry,
            listen,
            web_config,
            ready=poller.ready,
            describe_not_ready=lambda: _not_ready(poller),
        )
    except OSError as exc:
        hint = "another process uses it; pick another port with --listen" if exc.errno == errno.EADDRINUSE else "check the address"
        raise ExporterStartError(f"cannot listen on {listen}: {exc.strerror or exc} ({hint})") from None
    server.start()
    if started:
        server.mark_started()
    notes = [f"{w.format()}" for w in specs.warnings]
    return Exporter(server, specs, web_config, notes)


def _not_ready(poller: Poller) -> str:
    waiting = [state.name for state in poller.latest().backends.values() if not state.settled]
    return "not ready: waiting for the first poll of " + ", ".join(waiting) if waiting else "not ready"


def serve_from_context(ctx: AppContext, poller: Poller, listen: ListenAddress | str | None = None, *, started: bool = True) -> Exporter:
    """The exporter as configured: web config, specs folder, event log and unbuilt backends
    from the shared start-up; `listen` overrides exporter.listen (the console passes its
    --metrics-listen). Raises ExporterStartError."""
    config = ctx.config
    if isinstance(listen, str):
        try:
            listen = parse_listen_address(listen)
        except SpecValueError as exc:
            raise ExporterStartError(f"{listen!r} is not a listen address: {exc}") from None
    specs_named = config.source("specs_dir").kind != "default"
    return serve_exporter(
        poller,
        listen or config.exporter.listen,
        web_config_path=config.exporter.web_config,
        specs=load_specs(config.specs_dir, required=specs_named),
        events=ctx.events,
        unavailable=ctx.unavailable,
        started=started,
        desired=DesiredStore(config.data_dir),
    )
