"""What the console app is given: where live data comes from and how changes are made.

No textual here. `run_console` builds `ConsoleServices` from the shared start-up
(console/context.py) and a running poller; tests build it from a recorded poll state or a
poller over the real host backend. The app never reaches past these services.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from backends.base import Availability, Backend, BackendKind
from backends.handlers import RuntimeHandler
from console.cordons import CordonStore
from console.eventlog import EventLog
from console.gate import ActionGate
from console.poller import PollState
from console.resource_kinds import kind_of_backend_type

Mode = Literal["interactive", "kiosk"]


class StateSource(Protocol):
    """The poller's reading side (console.poller.Poller satisfies it)."""

    def latest(self) -> PollState: ...

    def subscribe(self, callback: Callable[[PollState], None]) -> Callable[[], None]: ...

    def refresh_now(self, backend_name: str | None = None) -> None: ...

    def set_interval(self, backend_name: str, seconds: float) -> float: ...


@dataclass(frozen=True)
class ConsoleOptions:
    mode: Mode = "interactive"
    kiosk_lock: bool = False  # the keyboard cannot quit (wall screens)
    cycle_interval: float = 0.0  # kiosk: seconds per pane, 0 = stay
    theme: str = "dark"
    sandbox: bool = False
    refresh_interval: float = 2.0
    hidden_interval_factor: float = 5.0  # panes out of sight poll this much less often
    autoscaler_tolerance: float | None = None  # the config's autoscaler.tolerance
    shell: tuple[str, ...] = ("/bin/sh",)  # console.shell: what `e` runs in a container
    session_idle_timeout: float = 900.0  # console.shell_idle_timeout: shells and VM consoles close after it
    # Move everything alive once the screen is up (imports, widgets) out of the garbage
    # collector's way: full collections then walk only what changes (see app.on_mount).
    freeze_startup_objects: bool = False

    @property
    def kiosk(self) -> bool:
        return self.mode == "kiosk"


@dataclass
class ConsoleServices:
    source: StateSource
    gate: ActionGate
    specs_dir: Path
    data_dir: Path
    events: EventLog | None = None
    handlers: Mapping[str, RuntimeHandler] = field(default_factory=dict)
    unavailable: tuple[Availability, ...] = ()  # backends that could not even be built
    cordons: CordonStore | None = None
    debug_log: Path | None = None
    samples_dir: Path | None = None
    clock: Callable[[], float] = time.time  # wall clock, for uptimes and decisions
    poll_clock: Callable[[], float] = time.monotonic  # the poller's clock, for snapshot ages
    backends: Mapping[str, Backend] = field(default_factory=dict)  # by name, as polled

    alerts: Any = None  # console.exporter.firing.AlertWatch; the app makes a display-only one without
    header_notes: tuple[str, ...] = ()  # what runs beside the screen (loops, runtime, exporter)
    # Called once on the event loop after the first paint: run_console starts what the first
    # screen does not need (backends but the host's, the loops, the functions runtime) there.
    after_first_paint: Callable[[], None] | None = None
    # Called on the event loop when a pane is shown; True when backends of its kind were
    # connected just now (run_console connects libvirt hosts when the VMs pane is first shown).
    on_pane_shown: Callable[[str], bool] | None = None

    def handler(self, resource: str) -> RuntimeHandler | None:
        return self.handlers.get(resource)

    def unavailable_for(self, kind: BackendKind) -> tuple[Availability, ...]:
        """Reports for this pane: its backend types, and those of no known type (they may
        concern every pane, e.g. backends that could not be built at all)."""
        owners = {report.backend: kind_of_backend_type(report.backend) for report in self.unavailable}
        return tuple(a for a in self.unavailable if owners[a.backend] is None or owners[a.backend].name == kind)

    @property
    def backend_kinds(self) -> dict[str, BackendKind]:
        return {name: backend.kind for name, backend in self.backends.items()}

    def backend_names(self, kind: str) -> tuple[str, ...]:
        return tuple(name for name, backend in self.backends.items() if backend.kind == kind)
