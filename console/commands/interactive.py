"""`rtm-console` with no command: the interactive console (or, with --kiosk, the read-only one).

Builds everything from the shared start-up (console/context.py): configuration, data folder,
debug log, action gate and backends. Paint first, connect after: the first frame needs only
the host backend, so the poller starts with it alone and the app opens; right after the first
paint a thread of its own builds the other backends (the Docker, libvirt and AWS clients and
their modules) and adds them to the poller, then starts the exporter with --metrics-listen and,
in an interactive console, the control loops and the local functions runtime when no agent runs
them (never in kiosk mode); the header says `starting` for each until it is up. Everything
stops on the way out. Only this function and console/tui import textual.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import one_line
from console.config import ConfigError
from console.context import AppContext, host_local_functions, open_context
from console.diagnostics import log_exception
from console.gate import AUDIT_LOG_NAME, ActionGate
from console.poller import Poller

POLLER_STOP_TIMEOUT = 3.0
CONNECT_WHEN_SHOWN = ("vms",)  # kinds whose backends are first polled when their pane is shown
RUNTIME_STOP_TIMEOUT = 5.0
STARTING = "starting"

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
    """What runs beside the screen, its header notes, and how to stop it. Once stopping, no
    part starts any more (a part being started finishes first, then is stopped)."""

    parts: dict[str, str] = field(default_factory=dict)  # part -> its header note, in start order
    stops: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(note for note in self.parts.values() if note)

    def note(self, part: str, text: str) -> None:
        self.parts[part] = text

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
        for stop in reversed(self.stops):
            try:
                stop()
            except Exception:  # stopping is best effort; the reason goes to the debug log
                log.exception("stopping a background service failed")


def build_console(ctx: AppContext, args: argparse.Namespace) -> tuple[Any, Poller, Background]:
    """The app over a poller of the host backend alone, and what starts after its first paint."""
    from backends.host import HostBackend
    from console.cordons import CordonStore
    from console.exporter.firing import AlertWatch
    from console.tui.app import RtmConsole
    from console.tui.console_services import ConsoleOptions, ConsoleServices

    config = ctx.config
    kiosk = ctx.mode == "kiosk"
    cordons = CordonStore(config.data_dir)
    host = HostBackend(cordoned=cordons.is_cordoned)
    poller = Poller([host], interval=config.refresh_interval)
    background = Background()
    exporting = config.exporter.console_listen is not None
    if exporting:
        background.note("metrics", f"metrics: {STARTING}")
    background.note("backends", f"backends: {STARTING}")
    if not kiosk:
        background.note("loops", f"control loops: {STARTING}")
        if config.functions.target == "local":
            background.note("functions", f"functions: {STARTING}")
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
        cordons=cordons,
        debug_log=ctx.debug_log,
        samples_dir=_samples_dir(),
        backends={host.name: host},
        handlers={},
        header_notes=background.notes,
        poll_clock=poller.clock,
        # Alerts are shown by every console; only the process running the loops writes their
        # events (write_events is turned on once the loops run here).
        alerts=AlertWatch(config.specs_dir, config.data_dir, ctx.events, write_events=False),
    )
    app = RtmConsole(services, options)
    startup = _AfterFirstPaint(ctx, app, poller, host, background)
    services.after_first_paint = startup.begin
    services.on_pane_shown = startup.pane_shown
    return app, poller, background


def _run(ctx: AppContext, args: argparse.Namespace) -> int:
    app, poller, background = build_console(ctx, args)
    poller.start()
    try:
        app.run()
    finally:
        background.stop()
        poller.stop(timeout=POLLER_STOP_TIMEOUT)
    return app.return_code or 0


class _AfterFirstPaint:
    """Starts, in a thread of its own, what the first screen does not need: the other backends,
    the exporter, the control loops and the local functions runtime, one part after another,
    each shown in the header when it is up. If the app has gone meanwhile, nothing more starts."""

    def __init__(self, ctx: AppContext, app: Any, poller: Poller, host: Any, background: Background) -> None:
        self.ctx, self.app, self.poller, self.host, self.background = ctx, app, poller, host, background
        self.thread: threading.Thread | None = None
        self.built: list[Any] = []  # every backend built, the unused host's twin included
        # Kinds whose backends connect when their pane is first shown, unless the exporter
        # serves their series: libvirt-python alone is ~15 MiB of shared libraries.
        self.on_first_show = () if ctx.config.exporter.console_listen is not None else CONNECT_WHEN_SHOWN
        self.waiting: dict[str, list[Any]] = {}  # built, not polled yet, by kind
        self.shown: set[str] = set()  # panes shown so far
        self.waiting_lock = threading.Lock()  # the event loop and the start-up thread

    def begin(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._start_all, name="rtm-console-startup", daemon=True)
            self.thread.start()

    def _start_all(self) -> None:
        try:
            self._start_parts()
        except Exception:  # never silent: a thread's exception would not reach the screen
            log.exception("the console's start-up after the first paint failed")

    def _start_parts(self) -> None:
        parts = (("backends", "backends", self._backends), ("metrics", "metrics", self._exporter),
                 ("loops", "control loops", self._loops), ("functions", "functions", self._functions))
        for name, label, start in parts:
            with self.background.lock:  # Background.stop() waits for a part being started
                if self.background.stopping:
                    return
                try:
                    start()
                except Exception as exc:  # the console goes on with what started; why is logged
                    cause = log_exception(exc, f"starting the console's {label}")
                    self.background.note(name, f"{label} not started: {cause}")
            if not self._show():
                return

    def _show(self) -> bool:
        """New notes and backends to the screen, on the app's event loop; False once it is gone."""
        services = self.app.services

        def show() -> None:
            services.header_notes = self.background.notes
            self.app.backends_changed()

        try:
            self.app.call_from_thread(show)
        except RuntimeError:  # the app is not running (any more)
            return False
        return True

    def _backends(self) -> None:
        backends = self.ctx.backends_or_host_only()
        handlers, unavailable = dict(self.ctx.handlers()), tuple(self.ctx.unavailable)
        self.built = backends
        others = [backend for backend in backends if backend.kind != "nodes"]
        built_host = next((backend for backend in backends if backend.kind == "nodes"), None)
        if built_host is not None:
            self.host.runtimes = built_host.runtimes  # which runtimes this machine carries
        services = self.app.services
        # New mappings, swapped whole: the event loop may be reading the old ones.
        services.handlers = {**services.handlers, **handlers}
        services.backends = {**services.backends, **{backend.name: backend for backend in others}}
        services.unavailable = unavailable
        with self.waiting_lock:
            for backend in others:
                if backend.kind in self.on_first_show and backend.kind not in self.shown:
                    self.waiting.setdefault(backend.kind, []).append(backend)
            self._note_waiting()
            self.poller.add([backend for backend in others if backend not in self.waiting.get(backend.kind, [])])
        self.background.note("backends", "")

    def pane_shown(self, kind: str) -> bool:
        """On the event loop: the first time a pane is shown, its waiting backends are polled
        from now on (they connect on their first poll). True when some were."""
        with self.waiting_lock:
            self.shown.add(kind)
            backends = self.waiting.pop(kind, [])
            if not backends:
                return False
            self.poller.add(backends)
            self._note_waiting()
        self.app.services.header_notes = self.background.notes
        return True

    def _note_waiting(self) -> None:
        names = [backend.name for backends in self.waiting.values() for backend in backends]
        self.background.note("waiting", f"{', '.join(names)}: not connected yet (VMs pane)" if names else "")

    def _exporter(self) -> None:
        if self.ctx.config.exporter.console_listen is not None:
            _start_exporter(self.ctx, self.poller, self.background)

    def _loops(self) -> None:
        if self.ctx.mode != "kiosk" and _start_loops(self.ctx, self.built, self.background):
            self.app.alerts.write_events = self.ctx.events is not None

    def _functions(self) -> None:
        if self.ctx.mode != "kiosk":
            _host_functions(self.ctx, self.background)


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
    from console.exporter import start_exporter

    try:
        background.stops.append(start_exporter(poller, listen, ctx))
    except Exception as exc:  # address in use, bad web config, a spec it refuses: the console
        # still opens (its editor may be how the operator fixes the spec), and says why.
        log.warning("exporter not started on %s: %s", listen, exc)
        background.note("metrics", f"metrics NOT served on {listen}: {one_line(str(exc), 160)}")
        return False
    background.note("metrics", f"metrics on {listen}")
    return True


def _start_loops(ctx: AppContext, backends: list[Any], background: Background) -> bool:
    """The control loops (probes, failover, autoscaling) run here when no agent runs them;
    True when they do."""
    from console.supervisor.embedded import EmbeddedLoops

    loops = EmbeddedLoops(ctx)
    try:
        started = loops.start(backends)
    except Exception as exc:  # the console still works without its loops
        background.note("loops", f"control loops not started: {log_exception(exc, 'starting the control loops')}")
        return False
    if started:
        background.stops.append(loops.stop)
        background.note("loops", "control loops: here")
    else:
        holder = loops.holder() or {}
        background.note("loops", f"control loops: {holder.get('role', 'agent')} pid {holder.get('pid', '?')}")
    return bool(started)


def _host_functions(ctx: AppContext, background: Background) -> None:
    """Serve the local functions runtime from this console while it is open, unless another
    process (the agent) already does."""
    try:
        hosted = host_local_functions(ctx, role="console")
    except Exception as exc:  # hosted by the agent, or the gateway's address is taken
        background.note("functions", f"functions: {one_line(str(exc), 120)}")
        return
    if hosted is not None:
        background.stops.append(lambda: hosted.stop(timeout=RUNTIME_STOP_TIMEOUT))
        background.note("functions", f"functions served at {hosted.url}")
