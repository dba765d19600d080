"""`rtm-console` with no command: the interactive console (or, with --kiosk, the read-only one).

Builds everything from the shared start-up (console/context.py): configuration, data folder,
debug log, action gate and backends; starts the poller; runs the textual app; stops the poller
and closes the backends on the way out. Only this function and console/tui import textual.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from backends.base import Availability
from console.config import ConfigError
from console.diagnostics import log_exception
from console.context import AppContext, open_context
from console.gate import AUDIT_LOG_NAME, ActionGate
from console.poller import Poller

POLLER_STOP_TIMEOUT = 3.0


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
    gate = ctx.gate
    ctx.mode = "kiosk"
    ctx.gate = ActionGate("kiosk", ctx.config.data_dir / AUDIT_LOG_NAME, user=gate.user)


def _run(ctx: AppContext, args: argparse.Namespace) -> int:
    from console.cordons import CordonStore
    from console.tui.app import RtmConsole
    from console.tui.services import ConsoleOptions, ConsoleServices

    config = ctx.config
    backends, handlers, unavailable = _backends(ctx)
    poller = Poller(backends, interval=config.refresh_interval)
    kiosk = ctx.mode == "kiosk"
    options = ConsoleOptions(
        mode="kiosk" if kiosk else "interactive",
        kiosk_lock=kiosk and bool(getattr(args, "kiosk_lock", False) or config.kiosk.lock),
        cycle_interval=config.kiosk.cycle_interval if kiosk else 0.0,
        theme=config.theme,
        sandbox=ctx.sandbox,
        refresh_interval=config.refresh_interval,
        autoscaler_tolerance=config.autoscaler.tolerance,
    )
    exporter_note, stop_exporter = _start_exporter(ctx, poller, args)
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
        exporter_note=exporter_note,
        poll_clock=poller.clock,
    )
    app = RtmConsole(services, options)
    poller.start()
    try:
        code = app.run()
    finally:
        if stop_exporter is not None:
            stop_exporter()
        poller.stop(timeout=POLLER_STOP_TIMEOUT)
    return int(code or 0) if app.return_code in (None, 0) else int(app.return_code)


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


def _start_exporter(ctx: AppContext, poller: Poller, args: argparse.Namespace) -> tuple[str, Any]:
    """--metrics-listen: serve the exporter from this process over the console's poller."""
    listen = getattr(args, "metrics_listen", None) or ctx.config.exporter.console_listen
    if not listen:
        return "", None
    try:
        from console.exporter import start_exporter  # type: ignore[attr-defined]
    except ImportError:
        return f"metrics: not served ({listen}: the exporter is not part of this installation)", None
    stop = start_exporter(poller, str(listen), ctx)
    return f"metrics on {listen}", stop
