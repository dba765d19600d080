"""`rtm-console` with no command: the interactive console (or, with --kiosk, the read-only one).

Builds everything from the shared start-up (console/context.py): configuration, data folder,
debug log, action gate and backends; starts the poller; in an interactive console also the
control loops and the local functions runtime when no agent runs them (never in kiosk mode),
and the exporter with --metrics-listen; runs the textual app; stops all of it on the way out.
Only this function and console/tui import textual.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import Availability, one_line
from console.config import ConfigError
from console.context import AppContext, open_context
from console.diagnostics import log_exception
from console.gate import AUDIT_LOG_NAME, ActionGate
from console.poller import Poller

POLLER_STOP_TIMEOUT = 3.0
RUNTIME_STOP_TIMEOUT = 5.0

log = logging.getLogger("console.interactive")


def run_console(args: argparse.Namespace) -> int:
    kiosk = bool(getattr(args, "kiosk", False) or getattr(args, "kiosk_lock", False))
    try:
        ctx = open_context(args, "kiosk" if kiosk else "interactive")
    except ConfigError as exc:
        print(f"rtm-console: the configuration has errors:\n{exc}", file=sys.stderr)
        return 2
    if not kiosk and ctx.config.kiosk.enabled:
        _become_kiosk(ctx)
    try:
        return _run(ctx, args)
    finally:
        ctx.close()


def _become_kiosk(ctx: AppContext) -> None:
    """kiosk.enabled in the config: the same as --kiosk (before any backend is opened, so
    backends that can be opened read-only are)."""
    ctx.mode = "kiosk"
    ctx.gate = ActionGate("kiosk", ctx.config.data_dir / AUDIT_LOG_NAME, user=ctx.gate.user)


@dataclass
class Background:
    """What runs beside the screen, and how to stop it."""

    notes: list[str] = field(default_factory=list)  # for the header
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            try:
                stop()
            except Exception:  # stopping is best effort; the reason goes to the debug log
                log.exception("stopping a background service failed")


def _run(ctx: AppContext, args: argparse.Namespace) -> int:
    from console.cordons import CordonStore
    from console.exporter.firing import AlertWatch
    from console.tui.app import RtmConsole
    from console.tui.services import ConsoleOptions, ConsoleServices

    config = ctx.config
    backends, handlers, unavailable = _backends(ctx)
    poller = Poller(backends, interval=config.refresh_interval)
    kiosk = ctx.mode == "kiosk"
    background = Background()
    exporting = _start_exporter(ctx, poller, background)
    loops_here = False
    if not kiosk:
        loops_here = _start_loops(ctx, backends, background)
        _host_functions(ctx, handlers, background)
    options = ConsoleOptions(
        mode="kiosk" if kiosk else "interactive",
        kiosk_lock=kiosk and bool(getattr(args, "kiosk_lock", False) or config.kiosk.lock),
        cycle_interval=config.kiosk.cycle_interval if kiosk else 0.0,
        theme=config.theme,
        sandbox=ctx.sandbox,
        refresh_interval=config.refresh_interval,
        # The exporter reads the same poller: hidden panes then keep the normal cadence.
        hidden_interval_factor=1.0 if exporting else 5.0,
        autoscaler_tolerance=config.autoscaler.tolerance,
        shell=config.console.shell,
        session_idle_timeout=config.console.shell_idle_timeout,
        freeze_startup_objects=True,
    )
    services = ConsoleServices(
        source=poller,
        gate=ctx.gate,
        specs_dir=config.specs_dir,
        data_dir=config.data_dir,
        events=ctx.events,
        handlers=handlers,
        unavailable=unavailable,
        cordons=CordonStore(config.data_dir),
        debug_log=ctx.debug_log,
        samples_dir=_samples_dir(),
        backends={backend.name: backend for backend in backends},
        header_notes=tuple(background.notes),
        poll_clock=poller.clock,
        # Alerts are shown by every console; only the process running the loops writes their events.
        alerts=AlertWatch(config.specs_dir, config.data_dir, ctx.events, write_events=loops_here),
    )
    app = RtmConsole(services, options)
    poller.start()
    try:
        app.run()
    finally:
        background.stop()
        poller.stop(timeout=POLLER_STOP_TIMEOUT)
    return app.return_code or 0


def _backends(ctx: AppContext) -> tuple[list[Any], dict[str, Any], tuple[Availability, ...]]:
    """The configured backends; if building them fails, the console still starts with the
    host alone and says why in the header (the traceback goes to the debug log)."""
    try:
        return ctx.backends(), dict(ctx.handlers()), tuple(ctx.unavailable)
    except Exception as exc:
        from backends.host import HostBackend
        from console.cordons import CordonStore

        cause = log_exception(exc, "building the backends")
        failed = Availability("backends", "configuration", "unreachable", cause=cause,
                              hint="read the debug log; meanwhile only this host is shown")
        host = HostBackend(cordoned=CordonStore(ctx.config.data_dir).is_cordoned)
        return [host], {}, (*ctx.unavailable, failed)


def _samples_dir() -> Any:
    from console.commands.spec_commands import samples_folder

    try:
        return samples_folder()
    except FileNotFoundError:
        return None


def _start_exporter(ctx: AppContext, poller: Poller, background: Background) -> bool:
    """--metrics-listen (exporter.console_listen): serve the exporter over this poller."""
    listen = ctx.config.exporter.console_listen
    if listen is None:
        return False
    try:
        from console.exporter import start_exporter
    except ImportError:
        background.notes.append(f"metrics not served on {listen}: the exporter is not installed")
        return False
    try:
        background.stops.append(start_exporter(poller, listen, ctx))
    except Exception as exc:  # address in use, bad web config, a spec it refuses: the console
        # still opens (its editor may be how the operator fixes the spec), and says why.
        log.warning("exporter not started on %s: %s", listen, exc)
        background.notes.append(f"metrics NOT served on {listen}: {one_line(str(exc), 160)}")
        return False
    background.notes.append(f"metrics on {listen}")
    return True


def _start_loops(ctx: AppContext, backends: list[Any], background: Background) -> bool:
    """The control loops (probes, failover, autoscaling) run here when no agent runs them;
    True when they do."""
    try:
        from console.supervisor.embedded import EmbeddedLoops
    except ImportError:
        return False
    loops = EmbeddedLoops(ctx)
    engines = {b.engine.name: b for b in backends if getattr(b, "kind", "") == "containers" and hasattr(b, "engine")}
    try:
        started = loops.start(engines)
    except Exception as exc:  # the console still works without its loops
        background.notes.append(f"control loops not started: {log_exception(exc, 'starting the control loops')}")
        return False
    if started:
        background.stops.append(loops.stop)
        background.notes.append("control loops: here")
    else:
        holder = loops.holder() or {}
        background.notes.append(f"control loops: {holder.get('role', 'agent')} pid {holder.get('pid', '?')}")
    return bool(started)


def _host_functions(ctx: AppContext, handlers: dict[str, Any], background: Background) -> None:
    """Serve the local functions runtime from this console while it is open, unless another
    process (the agent) already does."""
    if ctx.config.functions.target != "local":
        return
    try:
        from backends.localfn import make_local_runtime
    except ImportError:
        return
    runtime = make_local_runtime(ctx.config, role="console")
    try:
        runtime.start()
    except Exception as exc:  # hosted by the agent, or the gateway's address is taken
        background.notes.append(f"functions: {one_line(str(exc), 120)}")
        return
    handler = handlers.get("function")
    if handler is not None and hasattr(handler, "attach_runtime"):
        handler.attach_runtime(runtime)

    def stop() -> None:
        if handler is not None and hasattr(handler, "attach_runtime"):
            handler.attach_runtime(None)
        runtime.stop(timeout=RUNTIME_STOP_TIMEOUT)

    background.stops.append(stop)
    background.notes.append(f"functions served at {runtime.url}")
