"""Fixtures for the console's tests: apps over recorded snapshots or over the real backends.

- `recorded_app(...)` builds the console from the recorded backend snapshots in fixtures/
  (deterministic: frozen clocks), for snapshot tests and for checks of what is shown.
- `live_console(...)` builds it over a real poller with real backends (this host through
  psutil, libvirt's test driver as the VM sandbox, or a libvirt URI nobody answers), with its
  own data folder, audit log and cordon store.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from console.cordons import CordonStore
from console.eventlog import EventLog
from console.gate import AUDIT_LOG_NAME, ActionGate
from console.poller import Poller
from console.tui.app import RtmConsole
from console.tui.console_services import ConsoleOptions, ConsoleServices
from tui.fixtures.recorded import (
    FIXTURES,
    RecordedSource,
    frozen_clock,
    load_recording,
    merge_recordings,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample-specs"
FAST = 0.5  # the poller's lower bound: tests wait as little as possible for a refresh


def recorded_states() -> list[Any]:
    return merge_recordings(
        load_recording("host-recorded.json"),
        load_recording("containers-recorded.json"),
        load_recording("vms-recorded.json"),
        load_recording("functions-recorded.json"),
    )


def recorded_app(
    data_dir: Path,
    theme: str = "dark",
    mode: str = "interactive",
    kiosk_lock: bool = False,
    specs_dir: Path | None = None,
    **options: Any,
) -> RtmConsole:
    """The console over the recorded snapshots. Paths shown on screen are relative (the tests
    run from the repository root), so the pictures are the same on every machine."""
    source = RecordedSource(recorded_states())
    events = data_dir / "events.jsonl"
    shutil.copy(FIXTURES / "events-handmade.jsonl", events)
    services = ConsoleServices(
        source=source,
        gate=ActionGate(mode, data_dir / AUDIT_LOG_NAME),  # type: ignore[arg-type]
        specs_dir=specs_dir or Path("tests/tui/fixtures/specs"),
        data_dir=data_dir,
        events=EventLog(events),
        cordons=CordonStore(data_dir),
        samples_dir=Path("sample-specs"),
        clock=frozen_clock,
        poll_clock=frozen_clock,
        backends={},
    )
    settings = ConsoleOptions(mode=mode, kiosk_lock=kiosk_lock, theme=theme, **options)  # type: ignore[arg-type]
    return RtmConsole(services, settings)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests here in a fresh event loop (textual's Pilot needs one)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@dataclass
class LiveConsole:
    app: RtmConsole
    poller: Poller
    data_dir: Path
    specs_dir: Path

    @property
    def audit_path(self) -> Path:
        return self.data_dir / AUDIT_LOG_NAME

    def audit(self) -> list[dict[str, Any]]:
        from console.datadir import read_jsonl

        return read_jsonl(self.audit_path)


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[Any]:
    """A factory: live_console(backends, mode=..., handlers=...) -> LiveConsole (poller started).

    Everything it starts is stopped and closed at the end of the test."""
    made: list[tuple[Poller, Sequence[Backend]]] = []

    def make(backends: Sequence[Backend], mode: str = "interactive", kiosk_lock: bool = False,
             handlers: dict[str, Any] | None = None, specs: Path | None = None) -> LiveConsole:
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        specs_dir = specs or tmp_path / "specs"
        poller = Poller(list(backends), interval=FAST)
        services = ConsoleServices(
            source=poller,
            gate=ActionGate(mode, data_dir / AUDIT_LOG_NAME),  # type: ignore[arg-type]
            specs_dir=specs_dir,
            data_dir=data_dir,
            events=EventLog.in_data_dir(data_dir),
            handlers=handlers or {},
            cordons=CordonStore(data_dir),
            samples_dir=SAMPLES,
            backends={backend.name: backend for backend in backends},
            poll_clock=poller.clock,
        )
        options = ConsoleOptions(mode=mode, kiosk_lock=kiosk_lock, refresh_interval=FAST)  # type: ignore[arg-type]
        app = RtmConsole(services, options)
        poller.start()
        made.append((poller, backends))
        return LiveConsole(app, poller, data_dir, specs_dir)

    yield make
    for poller, backends in made:
        poller.stop(timeout=5)
        for backend in backends:
            backend.close()


def host_backend(data_dir: Path | None = None) -> Backend:
    from backends.host import HostBackend

    store = CordonStore(data_dir) if data_dir is not None else None
    return HostBackend(cordoned=store.is_cordoned if store else (lambda node: False))


def libvirt_sandbox(read_only: bool = False) -> Backend:
    """libvirt's built-in test driver (test:///default): a real libvirt connection with
    made-up numbers, the console's VM sandbox."""
    libvirt = pytest.importorskip("libvirt")  # noqa: F841  (the binding is needed, not used here)
    from backends.libvirt import LibvirtBackend

    return LibvirtBackend.sandbox(read_only=read_only)


async def wait_for(pilot: Any, condition: Any, timeout: float = 10.0, step: float = 0.1) -> bool:
    """Let the app run until `condition()` holds (polls arrive on their own cadence)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(step)
        if condition():
            return True
    return condition()


async def show_pane(pilot: Any, app: Any, pane: str) -> Any:
    """Switch to a resource pane with its number key, wait for its rows, focus its table and
    return the table (the first steps of most tests that act on a row)."""
    from console.tui.app import PANES

    await pilot.press(next(key for pane_id, _, key in PANES if pane_id == pane))
    table = app.pane(pane).table
    assert await wait_for(pilot, lambda: table.rows_shown), f"the {pane} pane showed no rows"
    table.focus()
    return table


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (the way an operator reads it)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """The debug log set up as rtm-console does it (in a folder of the test's), and the
    logging configuration put back afterwards."""
    import logging

    from console import diagnostics

    names = [*diagnostics.PROJECT_LOGGERS, ""]
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in names}
    path = diagnostics.setup_debug_log(tmp_path / "debug")
    yield path
    for name, (handlers, level, propagate) in saved.items():
        target = logging.getLogger(name)
        for handler in list(target.handlers):
            if handler not in handlers:
                target.removeHandler(handler)
                handler.close()
        target.setLevel(level)
        target.propagate = propagate
    logging.captureWarnings(False)
    diagnostics._log_path = None


HOT_SPEC = """\
name: {name}
ContainerRuntime:
  base_image: "{image}"
  security: {{user: "1000:1000"}}
  resources:
    requests: {{cpu: "100m", memory: "16Mi"}}
AutoScalingPolicy:
  horizontal: {{min_replicas: 1, max_replicas: 2, target_cpu_utilization: 50}}
"""


@pytest.fixture
def hot_workload(docker_client, test_image, test_labels, run_id, tmp_path):
    """A spec asking for 50 % of a 100m CPU request, and one replica of it spinning at about
    a fifth of a core (200 % of its request)."""
    name = f"{run_id}-hot"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "hot.yaml").write_text(HOT_SPEC.format(name=name, image=test_image))
    container = docker_client.containers.run(
        test_image, ["sh", "-c", "while :; do :; done"], name=f"{name}-0", detach=True, init=True,
        labels={**test_labels, "rtm.workload": name, "rtm.replica": "0"}, nano_cpus=200_000_000,
    )
    yield name, specs, container
    container.remove(force=True)
