"""The headless agent: the exporter plus the control loops, one per data folder.

`rtm-console agent` takes the agent lock in the data folder (a second agent refuses and says
who holds it), then runs

- the supervisor (console/supervisor): probes, failover, load-balancer membership and
  autoscaling for every workload in the specs folder, reloading the specs when they change;
- the Prometheus exporter over the shared poller, with the agent's state as JSON at
  `/agent/state` on the same address (and the same TLS and basic auth), including the alerts
  firing now (`alerts`: the spec thresholds evaluated on every poll, silences applied; the
  agent writes their firing and resolving to the event log);
- the local functions runtime, when functions run locally.

It logs JSON lines to stderr, makes every change through the action gate in agent mode (each
one audited), never imports textual, and on SIGTERM or SIGINT stops what it started within a
few seconds, leaving every workload running.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.base import one_line
from console.config import ConfigError
from console.context import AppContext, HostedFunctions, host_local_functions, open_context, supervisor_engines
from console.datadir import FileLock, agent_lock_path, atomic_write, describe_holder, iso_utc, lock_holder
from console.diagnostics import PROJECT_LOGGERS
from console.eventlog import Event, EventLog
from console.supervisor import Supervisor
from console.supervisor.autoscaler import DEFAULT_INTERVAL

log = logging.getLogger("console.agent")

STATE_PATH = "/agent/state"
STOP_TIMEOUT = 3.0  # seconds each part gets to stop
AGENT_INFO_NAME = "agent.json"


def agent_info_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / AGENT_INFO_NAME


def running_agent(data_dir: Path | str) -> dict[str, Any] | None:
    """The agent that holds this data folder's lock: {pid, host, started, url, state_url}, or
    None when no agent runs. A console uses it to show the agent's state instead of running
    the control loops itself."""
    holder = lock_holder(agent_lock_path(data_dir))
    if holder is None:
        return None
    try:
        info = json.loads(agent_info_path(data_dir).read_text())
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or info.get("pid") != holder.get("pid"):
        info = {}  # written by an earlier agent, or not yet by this one
    return {**holder, **info}


# --- logging -----------------------------------------------------------------------------------


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = one_line(self.formatException(record.exc_info), 2000)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_to_stderr_as_json(level: int = logging.INFO) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    handler.setLevel(level)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    return handler


class EchoingEventLog(EventLog):
    """The event log, with each event also written to the agent's structured log."""

    def append(self, event: Event) -> None:
        super().append(event)
        log.info(event.message, extra={"fields": {"event": event.kind, "workload": event.workload, "target": event.target}})


# --- the state endpoint ------------------------------------------------------------------------


def add_state_route(server: Any, state: Callable[[], dict[str, Any]]) -> bool:
    """Serve `state()` as JSON at /agent/state on the exporter's own server, behind its TLS and
    basic auth. The exporter has no public way to add a route, so its request handler class is
    extended; False when that class is not what this expects (then the caller serves alone)."""
    httpd = getattr(server, "_httpd", None)
    base = getattr(httpd, "RequestHandlerClass", None)
    if base is None or not all(hasattr(base, name) for name in ("_serve", "_reply")):
        return False

    class WithAgentState(base):  # type: ignore[misc, valid-type]
        def _serve(self, send_body: bool) -> None:
            exporter = self.server.exporter
            allowed = not exporter.auth.enabled or exporter.auth.check(self.headers.get("Authorization"))
            if urlsplit(self.path).path != STATE_PATH or not allowed:
                super()._serve(send_body)  # the exporter's routes, or its 401
                return
            body = json.dumps(state(), default=str).encode()
            self._reply(200, body, "application/json", send_body)

    httpd.RequestHandlerClass = WithAgentState
    return True


# --- the agent ---------------------------------------------------------------------------------


class AgentStartError(Exception):
    """The agent cannot start as configured; the message says why."""


@dataclass(frozen=True)
class _BareServer:
    """An exporter server serving no metrics (the exporter refused the specs), stopped alike."""

    server: Any

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


@dataclass(frozen=True)
class AgentOptions:
    autoscale_interval: float = DEFAULT_INTERVAL
    tick: float = 0.5


class Agent:
    """Everything the agent runs, started and stopped together (the lock is the caller's)."""

    def __init__(self, ctx: AppContext, options: AgentOptions = AgentOptions()) -> None:
        self.ctx = ctx
        self.options = options
        self.started_at = time.time()
        config = ctx.config
        self.events = EchoingEventLog(ctx.events.path)
        self.notes: list[str] = []
        self.backends = ctx.backends_or_host_only()
        self.notes += [f"backends could not be built for the exporter: {one_line(a.cause, 200)}" for a in ctx.unavailable if a.backend == "backends"]
        self.engines = supervisor_engines(ctx, self.backends)
        self.supervisor = Supervisor(
            config.specs_dir, self.engines, ctx.gate, self.events, config.data_dir,
            upstream_path=config.load_balancer.upstream_path, reload_command=config.load_balancer.reload_command,
            tolerance=config.autoscaler.tolerance, autoscale_interval=options.autoscale_interval, tick=options.tick,
        )  # fmt: skip
        from console.exporter.firing import AlertWatch

        # The agent runs the control loops, so it is the one that writes alert events.
        self.alerts = AlertWatch(config.specs_dir, config.data_dir, self.events, write_events=True)
        self.poller: Any = None
        self.exporter: Any = None
        self.functions: HostedFunctions | None = None
        self.url: str | None = None

    def state(self) -> dict[str, Any]:
        state = self.supervisor.state()
        state["agent"] = {
            "pid": state.pop("pid"),
            "started": iso_utc(self.started_at),
            "url": self.url,
            "functions_runtime": self.functions.url if self.functions is not None else None,
            "notes": list(self.notes),
        }
        state["alerts"] = self.alerts.to_json()
        return state

    def start(self) -> None:
        self._start_http()  # first: a bad web config or a busy address stops the agent before any loop runs
        self.supervisor.start()
        self._start_functions()

    def _start_http(self) -> None:
        """The exporter with /agent/state added. Specs the exporter refuses cost the metrics,
        not the state: it is then served by an exporter server with no metrics, still behind
        the web config. A bad web config or a busy address stops the agent (AgentStartError)."""
        from prometheus_client import CollectorRegistry

        from console.exporter.assembly import ExporterStartError, read_web_config, serve_from_context
        from console.exporter.server import ExporterServer
        from console.poller import Poller

        listen = self.ctx.config.exporter.listen
        try:
            web_config = read_web_config(self.ctx.config.exporter.web_config)
        except ExporterStartError as error:
            raise AgentStartError(str(error)) from None
        self.poller = Poller(self.backends, interval=self.ctx.config.refresh_interval)
        try:
            self.exporter = serve_from_context(self.ctx, self.poller, started=False)
            server = self.exporter.server
        except ExporterStartError as error:
            self.poller = None
            self.notes.append(f"metrics are not served: {one_line(str(error), 300)}")
            log.warning("metrics are not served: %s", error)
            try:
                server = ExporterServer(CollectorRegistry(), listen, web_config, title="rtm-console agent")
            except OSError as bind_error:
                raise AgentStartError(f"cannot listen on {listen}: {bind_error.strerror or bind_error}") from None
            server.start()
            self.exporter = _BareServer(server)
        if not add_state_route(server, self.state):
            raise AgentStartError("the exporter's server cannot take the /agent/state route")
        if self.poller is not None:
            self.poller.subscribe(self.alerts.update)
            self.poller.start()
        server.mark_started()
        self.url = server.url
        log.info("serving metrics at %s/metrics and the agent's state at %s%s", self.url, self.url, STATE_PATH)

    def _start_functions(self) -> None:
        try:
            self.functions = host_local_functions(self.ctx, role="agent")
        except Exception as error:  # hosted elsewhere, or its address is taken: the loops go on
            self.notes.append(f"local functions runtime not started: {one_line(str(error), 200)}")
            log.warning("local functions runtime not started: %s", error)
            return
        if self.functions is not None:
            log.info("local functions runtime serving at %s", self.functions.url)

    def stop(self) -> None:
        """Stop the loops, the servers and the runtime; workloads keep running."""
        if not self.supervisor.stop(timeout=STOP_TIMEOUT):
            log.warning("a control loop did not stop in time; it is abandoned")
        if self.functions is not None:
            self.functions.stop(timeout=STOP_TIMEOUT)
        if self.exporter is not None:
            self.exporter.stop()
        if self.poller is not None:
            self.poller.stop(timeout=STOP_TIMEOUT)


# --- the command -------------------------------------------------------------------------------


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    return stop


def run_agent(args: argparse.Namespace) -> int:
    """0 after a signal; 1 when another agent holds the lock or the agent cannot start;
    2 for a configuration error."""
    try:
        ctx = open_context(args, "agent")
    except ConfigError as error:
        print(f"rtm-console agent: the configuration has errors:\n{error}", file=sys.stderr)
        return 2
    handler = log_to_stderr_as_json()
    lock_path = agent_lock_path(ctx.config.data_dir)
    lock = FileLock(lock_path, role="agent")
    try:
        if not lock.acquire():
            print(f"rtm-console agent: another agent is running for {ctx.config.data_dir}: {describe_holder(lock_holder(lock_path))}", file=sys.stderr)
            return 1
        stop = _stop_on_signals()
        options = AgentOptions(autoscale_interval=getattr(args, "autoscale_interval", None) or DEFAULT_INTERVAL)
        agent = Agent(ctx, options)
        try:
            agent.start()
            atomic_write(agent_info_path(ctx.config.data_dir), json.dumps(
                {"pid": os.getpid(), "url": agent.url, "state_url": f"{agent.url}{STATE_PATH}" if agent.url else None}))
            log.info("agent started", extra={"fields": {"pid": agent.state()["agent"]["pid"], "data_dir": str(ctx.config.data_dir),
                                                        "specs_dir": str(ctx.config.specs_dir), "url": agent.url}})
            stop.wait()
            log.info("stopping: workloads keep running")
        finally:
            agent.stop()
            agent_info_path(ctx.config.data_dir).unlink(missing_ok=True)  # before the lock is released
        log.info("agent stopped")
        return 0
    except AgentStartError as error:
        print(f"rtm-console agent: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"rtm-console agent: {error.strerror or error}", file=sys.stderr)
        return 1
    finally:
        lock.release()
        ctx.close()
        for name in PROJECT_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
