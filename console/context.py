"""The shared start-up of every face (CLI, console, exporter, agent): config, gate, event log,
backends and runtime handlers, built once from the configuration.

Backends for Docker, libvirt and functions are built only when their modules can be imported
and their endpoints are configured; one that cannot be built is reported through an
`Availability` ("not installed", with what to install) instead of failing the whole program.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

from backends.base import Availability, Backend
from backends.handlers import RuntimeHandler
from backends.verbs import HostedRuntime
from console.config import Config, flags_from_args, load_config
from console.datadir import ensure_private_dir
from console.diagnostics import log_exception, setup_debug_log
from console.eventlog import EventLog
from console.gate import AUDIT_LOG_NAME, ActionGate, Mode, terminal_confirm
from console.resource_kinds import node_runtimes

logger = logging.getLogger("rtm.context")

@dataclass
class AppContext:
    """Everything a face of rtm-console needs, built lazily and closed once."""

    config: Config
    mode: Mode
    gate: ActionGate
    events: EventLog
    debug_log: Path
    sandbox: bool = False
    strict: bool = False  # refuse fallbacks (a VM without KVM) instead of taking them
    _backends: list[Backend] | None = field(default=None, repr=False)
    _handlers: dict[str, RuntimeHandler] | None = field(default=None, repr=False)
    unavailable: list[Availability] = field(default_factory=list)

    @property
    def read_only(self) -> bool:
        return self.mode == "kiosk"

    def backends(self) -> list[Backend]:
        if self._backends is None:
            self._backends, self._handlers = _build_backends(self)
        return self._backends

    def handlers(self) -> dict[str, RuntimeHandler]:
        """Runtime handlers by resource: "container", "vm", "function"."""
        if self._handlers is None:
            self._backends, self._handlers = _build_backends(self)
        return self._handlers

    def backends_or_host_only(self) -> list[Backend]:
        """The configured backends; if building them fails (a bug, a backend half installed),
        this host alone, and a report in `unavailable` says why (the traceback goes to the
        debug log), so a face still starts and shows `rtm_backend_up{backend="backends"} 0`."""
        try:
            return self.backends()
        except Exception as exc:  # any failure: the face goes on with this host and says why
            from backends.host import HostBackend

            cause = log_exception(exc, "building the backends")
            self.unavailable.append(Availability("backends", "configuration", "unreachable", cause=cause,
                                                 hint="read the debug log; meanwhile only this host is shown"))
            self._backends, self._handlers = [HostBackend(cordoned=_cordon_store(self))], {}
            return self._backends

    def close(self) -> None:
        for backend in self._backends or []:
            try:
                backend.close()
            except Exception:  # closing is best effort; the reason goes to the debug log
                logger.exception("closing %s failed", getattr(backend, "name", backend))


def open_context(args: argparse.Namespace, mode: Mode, env: dict[str, str] | None = None) -> AppContext:
    """Load the configuration (raises ConfigError), open the data folder, build the gate."""
    env = dict(os.environ if env is None else env)
    flags = flags_from_args(args)
    config = load_config(flags, env, getattr(args, "config", None))
    if mode == "interactive" and config.kiosk.enabled:
        mode = "kiosk"  # --kiosk, RTM_KIOSK_ENABLED or the config file: read-only everywhere
    data = ensure_private_dir(config.data_dir)
    debug_log = setup_debug_log(data)
    confirm = terminal_confirm() if mode == "interactive" else None
    gate = ActionGate(mode, data / AUDIT_LOG_NAME, confirm=confirm, assume_yes=bool(getattr(args, "yes", False)), env=env)
    return AppContext(
        config, mode, gate, EventLog.in_data_dir(data), debug_log,
        sandbox=bool(getattr(args, "sandbox", False)), strict=bool(getattr(args, "strict", False)),
    )


# ----------------------------------------------------------------------------------------------
# Backends


def _build_backends(ctx: AppContext) -> tuple[list[Backend], dict[str, RuntimeHandler]]:
    from backends.host import HostBackend

    backends: list[Backend] = []
    handlers: dict[str, RuntimeHandler] = {}
    for builder in (_docker, _libvirt, _functions):
        try:
            built = builder(ctx)
        except _NotInstalled as missing:
            ctx.unavailable.append(missing.availability)
            continue
        if built is None:
            continue
        more_backends, more_handlers = built
        backends.extend(more_backends)
        handlers.update(more_handlers)
    backends.insert(0, HostBackend(runtimes=node_runtimes(b.kind for b in backends), cordoned=_cordon_store(ctx)))
    return backends, handlers


class _NotInstalled(Exception):
    def __init__(self, availability: Availability) -> None:
        super().__init__(availability.describe())
        self.availability = availability


def _optional_module(module: str, backend: str, endpoint: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _NotInstalled(Availability(backend, endpoint, "not_installed", cause=str(exc), hint=install)) from exc


def _docker(ctx: AppContext) -> Any:
    endpoints = ctx.config.docker.endpoints
    if not endpoints:
        return None
    module = _optional_module("backends.docker", "docker", endpoints[0].host, "pip install docker")
    return module.make_docker_backends(endpoints, read_only=ctx.read_only, cordoned=_cordon_store(ctx), data_dir=ctx.config.data_dir,
                                       strict=ctx.strict, publish_mode=ctx.config.docker.publish_mode,
                                       target=ctx.config.docker.target)


def _libvirt(ctx: AppContext) -> Any:
    uris = tuple(c.uri for c in ctx.config.libvirt.uris)
    if ctx.sandbox:
        uris = ("test:///default",)
    if not uris:
        return None
    # Only whether libvirt-python is there: importing it loads ~15 MiB of shared libraries,
    # which the first contact with a host does (backends/libvirt/connection.py).
    if importlib.util.find_spec("libvirt") is None:
        hint = "pip install 'rtm-console[libvirt]' (needs Debian's libvirt-dev and pkg-config to compile)"
        raise _NotInstalled(Availability("libvirt", uris[0], "not_installed", cause="No module named 'libvirt'", hint=hint))
    module = _optional_module("backends.libvirt", "libvirt", uris[0], "reinstall rtm-console")
    options = {"read_only": ctx.read_only, "sandbox": ctx.sandbox, "shutdown_timeout": ctx.config.libvirt.shutdown_timeout,
               "cordoned": _cordon_store(ctx)}
    backends = module.make_libvirt_backends(uris, **options)
    return backends, module.make_libvirt_handlers(uris, strict=ctx.strict, backends=backends, **options)


def _functions(ctx: AppContext) -> Any:
    target = "local" if ctx.sandbox else ctx.config.functions.target  # the sandbox is all embedded
    if target == "aws":
        module = _optional_module("backends.aws_lambda", "lambda", ctx.config.aws.endpoint_url or "aws", "pip install boto3")
        return module.make_lambda_backends(ctx.config.aws, read_only=ctx.read_only)
    module = _optional_module("backends.localfn", "local-functions", str(ctx.config.functions.gateway_listen), "reinstall rtm-console")
    return module.make_local_backends(ctx.config, read_only=ctx.read_only)


def _cordon_store(ctx: AppContext) -> Callable[[str], bool]:
    from console.cordons import CordonStore

    store = CordonStore(ctx.config.data_dir)
    return store.is_cordoned


# ----------------------------------------------------------------------------------------------
# What the agent, the console and `scale --workload` start beside the backends


def supervisor_engines(ctx: AppContext, backends: Iterable[Backend] = ()) -> list[Any]:
    """The control loops' handle on each configured Docker engine (console/supervisor/engines.py),
    sharing the Docker backend of that engine among `backends` (the poller's: one event
    stream and one stats sampler serve both); cordons from the data folder."""
    from console.supervisor.engines import Engine

    shared = {b.engine.name: b for b in backends if b.kind == "containers" and hasattr(b, "engine")}
    return [Engine(endpoint, backend=shared.get(endpoint.name), cordoned=_cordon_store(ctx)) for endpoint in ctx.config.docker.endpoints]


@dataclass(frozen=True)
class HostedFunctions:
    """The local functions runtime served by this process, its function handler pointed at it."""

    runtime: Any
    handler: HostedRuntime | None

    @property
    def url(self) -> str:
        return str(self.runtime.url)

    def stop(self, timeout: float) -> None:
        if self.handler is not None:
            self.handler.attach_runtime(None)
        self.runtime.stop(timeout=timeout)


def host_local_functions(ctx: AppContext, role: str) -> HostedFunctions | None:
    """Serve the local functions runtime from this process (`role`: "agent" or "console") when
    functions run locally; None when they do not. Raises when it cannot start (another process
    hosts it, or the gateway's address is taken)."""
    if ctx.config.functions.target != "local":
        return None
    from backends.localfn import make_local_runtime

    runtime = make_local_runtime(ctx.config, role=role)
    runtime.start()
    ctx.backends_or_host_only()
    handler = ctx.handlers().get("function")
    hosted = handler if isinstance(handler, HostedRuntime) else None
    if hosted is not None:
        hosted.attach_runtime(runtime)
    return HostedFunctions(runtime, hosted)
