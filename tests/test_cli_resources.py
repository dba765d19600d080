"""`apply`, `delete`, `get`, `describe`, `events`, `config`, `cordon` as people run them.

Most tests run the CLI in this process with `RecordingTestHandler`, a runtime handler that keeps
its containers in memory and records every call, wired into the context the commands open (the
gate, the audit log, the event log and the data folder stay the real ones). The node tests use
the real host backend through a separate `rtm-console` process.
"""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from backends.handlers import ApplyError, Change
from backends.host import HostBackend
from backends.records import ContainerInfo, VmInfo
from console import diagnostics
from console.cli import main
from console.commands import resources
from console.context import open_context
from console.cordons import CordonStore
from console.eventlog import EventLog
from console.gate import ACTIONS
from rtm.documents import Document

ROOT = Path(__file__).resolve().parent.parent
MI = 1024 * 1024
STARTED_AT = 1_700_000_000.0  # when every test replica "started"


# ------------------------------------------------------------------ the test runtime handler


class RecordingTestHandler:
    """A RuntimeHandler (backends/handlers.py) kept in memory, for tests.

    It plans like a real handler: replicas `<name>-<index>`, `create` for a missing one,
    `replace` when the image differs, `update` with a field diff when only the limits differ,
    `delete` for replicas above the count. Workloads named in `fail_on` fail to apply before
    anything changes (a real handler undoes what it made, so the effect is the same).
    """

    runtime_kind = "ContainerRuntime"

    def __init__(self, resource: str = "container", fail_on: tuple[str, ...] = ()) -> None:
        self.resource = resource
        self.fail_on = set(fail_on)
        self.live: dict[str, dict[str, Any]] = {}  # replica name -> workload, image, limits
        self.calls: list[tuple[str, str]] = []  # (method, workload or name), in call order

    def changing_calls(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in ("apply", "delete")]

    @staticmethod
    def wanted(document: Document) -> dict[str, Any]:
        spec = document.get("ContainerRuntime")
        return {"workload": document.name, "image": spec.base_image,
                "cpu_millis": spec.resources.limits.cpu, "memory_bytes": spec.resources.limits.memory}

    def render(self, document: Document, base_dir: Path) -> dict[str, Any]:
        return self.wanted(document)

    def plan(self, document: Document, base_dir: Path) -> list[Change]:
        self.calls.append(("plan", document.name))
        wanted = self.wanted(document)
        count = document.desired_replicas
        changes = [self._compare(f"{document.name}-{i}", wanted) for i in range(count)]
        extra = sorted(name for name, live in self.live.items()
                       if live["workload"] == document.name and int(name.rsplit("-", 1)[1]) >= count)
        return changes + [Change("delete", f"{self.resource}/{name}") for name in extra]

    def _compare(self, name: str, wanted: dict[str, Any]) -> Change:
        resource = f"{self.resource}/{name}"
        live = self.live.get(name)
        if live is None:
            return Change("create", resource)
        diff = tuple((key, live[key], wanted[key]) for key in ("image", "cpu_millis", "memory_bytes") if live[key] != wanted[key])
        if any(key == "image" for key, _old, _new in diff):
            return Change("replace", resource, diff, "the image changed")
        return Change("update", resource, diff) if diff else Change("unchanged", resource)

    def apply(self, document: Document, base_dir: Path, changes: list[Change], progress: Callable[[str], None]) -> list[str]:
        self.calls.append(("apply", document.name))
        if document.name in self.fail_on:
            raise ApplyError([], f"{self.resource}/{document.name}-0", "the test engine refused the request")
        done = []
        for change in changes:
            name = change.resource.split("/", 1)[1]
            if change.action == "delete":
                del self.live[name]
            elif change.action != "unchanged":
                self.live[name] = self.wanted(document)
            if change.action != "unchanged":
                done.append(f"{change.action}d {change.resource}")
        return done

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        self.calls.append(("delete", name))
        names = [n for n, live in self.live.items() if live["workload"] == name] or [n for n in self.live if n == name]
        if not names:
            raise LookupError(f'no {self.resource} is named "{name}"')
        for found in names:
            del self.live[found]
        return [f"deleted {self.resource}/{found}" for found in names]

    def list(self) -> list[Any]:
        self.calls.append(("list", ""))
        return [self._record(name, live) for name, live in sorted(self.live.items())]

    def describe(self, name: str) -> dict[str, Any]:
        self.calls.append(("describe", name))
        if name not in self.live:
            raise LookupError(f'no {self.resource} is named "{name}"')
        return {"name": name, **self.live[name], "started_at": STARTED_AT}

    def _record(self, name: str, live: dict[str, Any]) -> Any:
        if self.resource == "vm":
            return VmInfo(name=name, uuid=f"uuid-{name}", host="test-host", state="running", vcpus=1,
                          memory_current_bytes=live["memory_bytes"], memory_max_bytes=live["memory_bytes"],
                          cpu_time_seconds=3.5, cpu_ratio=0.1, block_read_bytes=0, block_write_bytes=0,
                          net_rx_bytes=0, net_tx_bytes=0, started_at=STARTED_AT)
        return ContainerInfo(
            id=f"id-{name}", name=name, workload=live["workload"], replica=int(name.rsplit("-", 1)[1]),
            engine="test-engine", state="running", health=None, image=live["image"], ports=(),
            started_at=STARTED_AT, cpu_ratio=0.25, cpu_seconds_total=12.5, memory_working_set_bytes=48 * MI,
            memory_limit_bytes=live["memory_bytes"], restarts=0, net_rx_bytes=1000, net_tx_bytes=2000,
            net_rx_packets=10, net_tx_packets=20, block_read_bytes=4096, block_write_bytes=8192,
            labels={"rtm.workload": live["workload"]},
        )


# ------------------------------------------------------------------------- running the CLI


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


class Cli:
    """`rtm-console ARGS...` in this process, with the test handlers wired into its context."""

    def __init__(self, data_dir: Path, handlers: dict[str, RecordingTestHandler]) -> None:
        self.data_dir = data_dir
        self.handlers = handlers

    @property
    def containers(self) -> RecordingTestHandler:
        return self.handlers["container"]

    def __call__(self, *argv: str | Path) -> Run:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(arg) for arg in argv])
        return Run(code, out.getvalue(), err.getvalue())

    def audit(self) -> list[dict[str, Any]]:
        path = self.data_dir / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI sends the project's logs to the data folder's debug log; put logging back after."""
    names = (*diagnostics.PROJECT_LOGGERS, "")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    saved_path = diagnostics._log_path
    yield
    for name, (handlers, level, propagate) in saved.items():
        target = logging.getLogger(name)
        for handler in [h for h in target.handlers if h not in handlers]:
            target.removeHandler(handler)
            handler.close()
        target.setLevel(level)
        target.propagate = propagate
    logging.captureWarnings(False)
    diagnostics._log_path = saved_path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> Path:
    """A fresh data folder, no config file of the user's, and no terminal on stdin."""
    data = tmp_path / "data"
    monkeypatch.setenv("RTM_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RTM_CONFIG", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    return data


@pytest.fixture
def cli(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    handlers = {"container": RecordingTestHandler()}

    def open_with_test_handlers(args: Any, mode: Any, env: Any = None) -> Any:
        ctx = open_context(args, mode, env)
        ctx._handlers = handlers
        ctx._backends = [HostBackend(cordoned=CordonStore(ctx.config.data_dir).is_cordoned)]
        return ctx

    monkeypatch.setattr(resources, "open_context", open_with_test_handlers)
    return Cli(data_dir, handlers)


def workload_yaml(name: str, replicas: int | None = None, memory: str = "128Mi", image: str = "test-image:1") -> str:
    return (
        f"name: {name}\n"
        + (f"replicas: {replicas}\n" if replicas is not None else "")
        + "ContainerRuntime:\n"
        f'  base_image: "{image}"\n'
        '  security: {user: "1000:1000"}\n'
        f'  resources: {{limits: {{cpu: "500m", memory: "{memory}"}}}}\n'
    )


def write(path: Path, *documents: str) -> Path:
    path.write_text("---\n".join(documents))
    return path


def lines_matching(pattern: str, text: str) -> list[str]:
    return re.findall(pattern, text, flags=re.MULTILINE)


# ------------------------------------------------------------------------------------- apply


def test_an_invalid_document_anywhere_stops_apply_before_any_handler_call(cli: Cli, tmp_path: Path) -> None:
    good = write(tmp_path / "a.yaml", workload_yaml("alpha"))
    bad = write(tmp_path / "b.yaml", workload_yaml("beta"), workload_yaml("gamma", memory="lots"))
    run = cli("apply", good, bad, "--yes")
    assert run.code == 1
    assert re.search(rf"^{re.escape(str(bad))}:\d+:\d+: error: .*memory", run.out, re.MULTILINE), run.out
    assert "nothing was applied" in run.err
    assert cli.containers.calls == []
    assert cli.audit() == []


def test_apply_creates_every_replica_in_file_order(cli: Cli, tmp_path: Path) -> None:
    first = write(tmp_path / "first.yaml", workload_yaml("zeta", replicas=2), workload_yaml("alpha"))
    second = write(tmp_path / "second.yaml", workload_yaml("mid"))
    run = cli("apply", first, second)
    assert run.code == 0, run.err
    assert lines_matching(r"^create\s+(\S+)$", run.out) == ["container/zeta-0", "container/zeta-1", "container/alpha-0", "container/mid-0"]
    assert cli.containers.changing_calls() == [("apply", "zeta"), ("apply", "alpha"), ("apply", "mid")]
    assert sorted(cli.containers.live) == ["alpha-0", "mid-0", "zeta-0", "zeta-1"]
    assert [(r["action"], r["target"], r["result"]) for r in cli.audit()] == [  # the intent, then the outcome
        ("workload.apply", "ContainerRuntime/zeta", "started"), ("workload.apply", "ContainerRuntime/zeta", "ok"),
        ("workload.apply", "ContainerRuntime/alpha", "started"), ("workload.apply", "ContainerRuntime/alpha", "ok"),
        ("workload.apply", "ContainerRuntime/mid", "started"), ("workload.apply", "ContainerRuntime/mid", "ok"),
    ]


def test_dry_run_prints_create_update_and_unchanged_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "old.yaml", workload_yaml("web", replicas=1, memory="64Mi"), workload_yaml("db"))).code == 0
    live_before, audit_before = dict(cli.containers.live), cli.audit()
    new = write(tmp_path / "new.yaml", workload_yaml("web", replicas=2, memory="128Mi"), workload_yaml("db"))
    run = cli("apply", new, "--dry-run")
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "update    container/web-0",
        f"            memory_bytes: {64 * MI} -> {128 * MI}",
        "create    container/web-1",
        "unchanged container/db-0",
    ]
    assert cli.containers.changing_calls() == [("apply", "web"), ("apply", "db")]  # the first apply only
    assert cli.containers.live == live_before
    assert cli.audit() == audit_before


def test_reapplying_an_unchanged_file_says_unchanged_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    spec = write(tmp_path / "web.yaml", workload_yaml("web", replicas=2))
    assert cli("apply", spec).code == 0
    calls, audit_before = cli.containers.changing_calls(), cli.audit()
    run = cli("apply", spec)
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["unchanged container/web-0", "unchanged container/web-1"]
    assert cli.containers.changing_calls() == calls
    assert cli.audit() == audit_before


def test_a_partial_failure_names_what_succeeded_failed_and_was_not_attempted(cli: Cli, tmp_path: Path) -> None:
    cli.containers.fail_on = {"beta"}
    spec = write(tmp_path / "three.yaml", workload_yaml("alpha"), workload_yaml("beta"), workload_yaml("gamma"))
    run = cli("apply", spec)
    assert run.code == 1
    assert "failed: ContainerRuntime/beta: " in run.err
    assert "the test engine refused the request" in run.err
    assert "applied before the failure: ContainerRuntime/alpha" in run.err
    assert "not attempted: ContainerRuntime/gamma" in run.err
    assert cli.containers.changing_calls() == [("apply", "alpha"), ("apply", "beta")]
    assert sorted(cli.containers.live) == ["alpha-0"]
    assert [(r["target"], r["result"]) for r in cli.audit() if r["result"] != "started"] == [("ContainerRuntime/alpha", "ok"), ("ContainerRuntime/beta", "failed")]


def test_a_replacing_apply_without_a_terminal_needs_yes(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "v1.yaml", workload_yaml("web", image="test-image:1"))).code == 0
    v2 = write(tmp_path / "v2.yaml", workload_yaml("web", image="test-image:2"))
    refused = cli("apply", v2)
    assert refused.code == 1
    assert "pass --yes" in refused.err
    assert cli.containers.live["web-0"]["image"] == "test-image:1"
    done = cli("apply", v2, "--yes")
    assert done.code == 0, done.err
    assert lines_matching(r"^replace\s+(\S+)", done.out) == ["container/web-0"]
    assert cli.containers.live["web-0"]["image"] == "test-image:2"


# ------------------------------------------------------------------------------------ delete


def test_delete_by_spec_file_removes_its_workloads(cli: Cli, tmp_path: Path) -> None:
    spec = write(tmp_path / "two.yaml", workload_yaml("web", replicas=2), workload_yaml("db"))
    other = write(tmp_path / "other.yaml", workload_yaml("cache"))
    assert cli("apply", spec, other).code == 0
    run = cli("delete", spec, "--yes")
    assert run.code == 0, run.err
    assert sorted(run.out.splitlines()) == ["deleted container/db-0", "deleted container/web-0", "deleted container/web-1"]
    assert sorted(cli.containers.live) == ["cache-0"]


def test_delete_kind_slash_name_removes_that_one(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web", replicas=2))).code == 0
    run = cli("delete", "container/web-1", "--yes")
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["deleted container/web-1"]
    assert sorted(cli.containers.live) == ["web-0"]
    assert cli.audit()[-1] | {"time": None, "duration_seconds": None, "user": None, "uid": None, "origin": None, "env_claim": None} == {
        "time": None, "user": None, "uid": None, "origin": None, "env_claim": None, "mode": "interactive", "action": "resource.delete",
        "target": "container/web-1", "destructive": True, "params": {"with_disk": False}, "result": "ok",
        "error": None, "message": "resource.delete container/web-1: done", "duration_seconds": None,
    }


def test_a_bare_name_two_kinds_have_is_refused_as_ambiguous(cli: Cli, tmp_path: Path) -> None:
    cli.handlers["vm"] = vms = RecordingTestHandler("vm")
    vms.live["web-0"] = {"workload": "web", "image": "disk.qcow2", "cpu_millis": 1000, "memory_bytes": 512 * MI}
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web"))).code == 0
    for command in (("delete", "web-0", "--yes"), ("describe", "web-0")):
        run = cli(*command)
        assert run.code != 0
        assert 'rtm-console: "web-0" is ambiguous: write container/web-0 or vm/web-0' in run.err
    assert "web-0" in cli.containers.live and "web-0" in vms.live
    assert cli("delete", "vm/web-0", "--yes").code == 0
    assert "web-0" not in vms.live and "web-0" in cli.containers.live
    assert cli("delete", "web-0", "--yes").code == 0  # no longer ambiguous
    assert cli.containers.live == {}
    missing = cli("delete", "nothing-here", "--yes")
    assert (missing.code, missing.err.strip()) == (1, 'rtm-console: nothing is named "nothing-here"')  # not found: 1


def test_without_a_terminal_a_delete_needs_yes(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web"))).code == 0
    refused = cli("delete", "container/web-0")
    assert refused.code == 1
    assert "destructive and there is no terminal to confirm it on; pass --yes to run it without asking" in refused.err
    assert "web-0" in cli.containers.live
    assert ("delete", "web-0") not in cli.containers.calls
    assert (cli.audit()[-1]["result"], cli.audit()[-1]["error"]) == ("refused", "not_confirmed")
    done = cli("delete", "container/web-0", "--yes")
    assert done.code == 0, done.err
    assert cli.containers.live == {}


# ---------------------------------------------------------------------- get and describe


UNIT_STRING = re.compile(r"^-?\d+(\.\d+)?\s*(m|k|Ki|Mi|Gi|Ti|KiB|MiB|GiB|TiB|kB|MB|GB|B|ns|us|ms|s|%)$")


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_get_lists_the_handler_s_records_as_a_table_and_as_json_numbers(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web", replicas=2, memory="96Mi"))).code == 0
    table = cli("get", "containers")
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:4] == ["NAME", "WORKLOAD", "ENGINE", "STATE"]
    assert [row.split()[:4] for row in rows] == [["web-0", "web", "test-engine", "running"], ["web-1", "web", "test-engine", "running"]]
    assert "48.0MiB/96.0MiB" in rows[0]

    run = cli("get", "containers", "--json")
    assert run.code == 0, run.err
    records = json.loads(run.out)
    assert [(r["name"], r["workload"], r["replica"]) for r in records] == [("web-0", "web", 0), ("web-1", "web", 1)]
    for record in records:
        assert record["memory_limit_bytes"] == 96 * MI
        assert record["memory_working_set_bytes"] == 48 * MI
        assert record["cpu_ratio"] == 0.25 and record["started_at"] == STARTED_AT
        for key in ("cpu_seconds_total", "net_rx_bytes", "block_write_bytes", "restarts"):
            assert is_number(record[key]), key
    workloads = cli("get", "workloads", "--json")
    assert json.loads(workloads.out) == [{"name": "web", "kind": "container", "replicas": 2, "running": 2}]
    assert [s for s in strings_in([records, json.loads(workloads.out)]) if UNIT_STRING.match(s)] == []


def test_describe_shows_one_record_with_numbers(cli: Cli, tmp_path: Path) -> None:
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web"))).code == 0
    for target in ("container/web-0", "web-0"):
        run = cli("describe", target)
        assert run.code == 0, run.err
        assert json.loads(run.out) == {"name": "web-0", "workload": "web", "image": "test-image:1",
                                       "cpu_millis": 500, "memory_bytes": 128 * MI, "started_at": STARTED_AT}
    workload = json.loads(cli("describe", "workload/web").out)
    assert (workload["kind"], workload["running"], [r["name"] for r in workload["replicas"]]) == ("container", 1, ["web-0"])
    missing = cli("describe", "container/web-9")
    assert (missing.code, missing.err.strip()) == (1, 'rtm-console: no container is named "web-9"')


# ----------------------------------------------------------- kiosk: read-only, audited


def kiosk_apply(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    run = cli("--kiosk", "apply", write(tmp_path / "web.yaml", workload_yaml("web")), "--yes")
    return run, bool(cli.containers.changing_calls() or cli.containers.live)


def kiosk_delete(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    assert cli("apply", write(tmp_path / "web.yaml", workload_yaml("web"))).code == 0
    run = cli("--kiosk", "delete", "container/web-0", "--yes")
    return run, "web-0" not in cli.containers.live


def kiosk_cordon(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    run = cli("--kiosk", "cordon", f"node/{socket.gethostname()}")
    return run, bool(CordonStore(cli.data_dir).cordoned())


def kiosk_uncordon(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    assert cli("cordon", f"node/{socket.gethostname()}").code == 0
    run = cli("--kiosk", "uncordon", f"node/{socket.gethostname()}")
    return run, not CordonStore(cli.data_dir).is_cordoned(socket.gethostname())


def kiosk_drain(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    run = cli("--kiosk", "drain", "node/rtm-sw2", "--yes")
    return run, False  # refused before any engine is asked: nothing could change


def kiosk_invoke(cli: Cli, tmp_path: Path) -> tuple[Run, bool]:
    run = cli("--kiosk", "invoke", "function/hello", "--payload", "{}")
    return run, False  # refused before any backend is looked up: nothing could change


# Every action the commands declare, with the command line that tries it in kiosk mode.
KIOSK_CALLS: dict[str, Callable[[Cli, Path], tuple[Run, bool]]] = {
    "workload.apply": kiosk_apply,
    "resource.delete": kiosk_delete,
    "node.cordon": kiosk_cordon,
    "node.uncordon": kiosk_uncordon,
    "node.drain": kiosk_drain,
    "function.invoke": kiosk_invoke,
}


@pytest.mark.parametrize("action", sorted(KIOSK_CALLS))
def test_kiosk_refuses_every_change_audits_it_and_changes_nothing(cli: Cli, tmp_path: Path, action: str) -> None:
    run, changed = KIOSK_CALLS[action](cli, tmp_path)
    assert run.code == 1
    assert re.search(rf"kiosk mode is read-only: {re.escape(action)} \S+ was not run", run.err), run.err
    assert not changed
    last = cli.audit()[-1]
    assert (last["action"], last["mode"], last["result"], last["error"]) == (action, "kiosk", "refused", "refused_read_only")


def actions_declared_by_commands() -> set[str]:
    """Names passed to register_action (or gated_action) in console/commands/*.py."""
    names: set[str] = set()
    for path in sorted((ROOT / "console" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if called not in ("register_action", "gated_action"):
                continue
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), \
                f"{path.name}:{node.lineno}: declare actions with a literal name so this test can find them"
            names.add(first.value)
    return names


def test_every_action_the_commands_declare_is_refused_in_kiosk_mode_by_a_test_here() -> None:
    declared = actions_declared_by_commands()
    assert {"workload.apply", "resource.delete"} <= declared  # the scan finds them
    command_actions = {name for name in ACTIONS if name in declared}  # ACTIONS: loaded with console.cli
    assert command_actions == declared
    assert sorted(command_actions - set(KIOSK_CALLS)) == [], "add a kiosk call to KIOSK_CALLS for each new action"
    assert sorted(set(KIOSK_CALLS) - command_actions) == []


# ------------------------------------------------------------------------------------- events


def test_events_prints_what_the_event_log_holds(cli: Cli, tmp_path: Path) -> None:
    cli.data_dir.mkdir()
    log = EventLog.in_data_dir(cli.data_dir, clock=lambda: STARTED_AT)
    log.record("scale", "2 -> 3 replicas: cpu 85% above the 70% target", workload="web", target="container/web-2")
    log.record("restart", "liveness failed 3 times", workload="web", target="container/web-0", details={"attempt": 1})
    run = cli("events")
    assert run.code == 0, run.err
    assert [line.split(None, 4) for line in run.out.splitlines()] == [
        ["2023-11-14T22:13:20.000Z", "scale", "web", "container/web-2", "2 -> 3 replicas: cpu 85% above the 70% target"],
        ["2023-11-14T22:13:20.000Z", "restart", "web", "container/web-0", "liveness failed 3 times"],
    ]
    as_json = [json.loads(line) for line in cli("events", "--json", "--limit", "1").out.splitlines()]
    assert as_json == [{"time": STARTED_AT, "kind": "restart", "workload": "web",
                        "target": "container/web-0", "message": "liveness failed 3 times", "details": {"attempt": 1}}]
    assert cli("apply", write(tmp_path / "db.yaml", workload_yaml("db"))).code == 0
    assert re.search(r"\sapply\s+db\s+ContainerRuntime/db\s+applied$", cli("events").out, re.MULTILINE)


# ------------------------------------------------------------------------------------- config


def test_config_prints_each_value_with_its_source_and_masks_secrets(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "theme: light\n"
        "docker:\n"
        "  endpoints:\n"
        "    - name: remote\n"
        '      host: "tcp://admin:hunter2@10.0.0.5:2376"\n'
    )
    monkeypatch.setenv("RTM_REFRESH_INTERVAL", "5s")
    run = cli("--config", config, "config")
    assert run.code == 0, run.err
    rows = {line.split()[0]: line.split(None, 1)[1] for line in run.out.splitlines()[2:] if line.strip()}
    assert re.fullmatch(rf"light\s+file {re.escape(str(config))}:1", rows["theme"])
    assert re.fullmatch(r"5 s\s+env RTM_REFRESH_INTERVAL", rows["refresh_interval"])
    assert re.fullmatch(rf"tcp://admin:\*\*\*@10.0.0.5:2376\s+file {re.escape(str(config))}:3", rows["docker.endpoints[0].host"])
    assert re.fullmatch(rf"{re.escape(str(cli.data_dir))}\s+env RTM_DATA_DIR", rows["data_dir"])
    flagged = cli("--config", config, "--theme", "dark", "config", "--json")
    settings = json.loads(flagged.out)["settings"]
    assert settings["theme"] == {"value": "dark", "source": "flag --theme"}
    assert settings["refresh_interval"] == {"value": 5.0, "source": "env RTM_REFRESH_INTERVAL"}
    assert settings["docker.endpoints"]["value"][0]["host"] == "tcp://admin:***@10.0.0.5:2376"
    assert "hunter2" not in run.out + flagged.out


@pytest.mark.parametrize("command", [("config",), ("config", "--json"), ("get", "containers"), ("cordon", "node/x")])
def test_a_config_file_with_an_error_exits_2_naming_file_line_and_column(cli: Cli, tmp_path: Path, command: tuple[str, ...]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("theme: light\nrefresh_interval: fast\n")
    run = cli("--config", config, *command)
    assert run.code == 2
    assert run.err.startswith(f"{config}:2:19: error: refresh_interval: ")
    assert run.out == ""
    assert cli.containers.calls == [] and CordonStore(cli.data_dir).cordoned() == set()


# ------------------------------------------------------------- nodes: the real host backend


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


def rtm_console(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def this_node(env: dict[str, str]) -> dict[str, Any]:
    run = rtm_console(env, "get", "nodes", "--json")
    assert run.returncode == 0, run.stderr
    nodes = json.loads(run.stdout)
    assert [n["id"] for n in nodes] == [socket.gethostname()]
    return nodes[0]


def test_get_nodes_json_describes_this_machine_in_numbers(cli_env: dict[str, str]) -> None:
    node = this_node(cli_env)
    assert node["hostname"] == socket.gethostname()
    assert node["memory_bytes_total"] == psutil.virtual_memory().total
    assert node["memory_bytes_used"] + node["memory_bytes_available"] == node["memory_bytes_total"]
    assert node["cpu_count"] == psutil.cpu_count()
    assert node["cpu_millis_allocatable"] == 1000 * psutil.cpu_count()
    assert is_number(node["cpu_usage_ratio"]) and 0.0 <= node["cpu_usage_ratio"] <= 1.0
    assert node["boot_time"] == pytest.approx(psutil.boot_time(), abs=2)
    assert node["cordoned"] is False
    assert all(is_number(node[key]) for key in ("load1", "swap_bytes_used", "context_switches_total"))
    assert {(c["cpu"], c["mode"]) for c in node["cpu_seconds"]} >= {(0, "user"), (0, "idle")}
    assert node["filesystems"] and all(is_number(fs["size_bytes"]) and fs["size_bytes"] > 0 for fs in node["filesystems"])
    assert [s for s in strings_in(node) if UNIT_STRING.match(s)] == []


def test_describe_node_and_cordon_show_in_get_nodes(cli_env: dict[str, str]) -> None:
    host = socket.gethostname()
    described = rtm_console(cli_env, "describe", f"node/{host}")
    assert described.returncode == 0, described.stderr
    details = json.loads(described.stdout)
    assert (details["id"], details["memory_bytes_total"], details["cpu_count"]) == (host, psutil.virtual_memory().total, psutil.cpu_count())

    cordoned = rtm_console(cli_env, "cordon", f"node/{host}")
    assert (cordoned.returncode, cordoned.stdout) == (0, f"node/{host} cordoned\n"), cordoned.stderr
    table = rtm_console(cli_env, "get", "nodes")
    header, row = table.stdout.splitlines()
    assert header.split()[-1] == "CORDONED" and row.split()[0] == host and row.split()[-1] == "yes"

    uncordoned = rtm_console(cli_env, "uncordon", host)
    assert (uncordoned.returncode, uncordoned.stdout) == (0, f"node/{host} uncordoned\n"), uncordoned.stderr
    assert this_node(cli_env)["cordoned"] is False


def test_cordon_refuses_a_node_that_does_not_exist(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, RTM_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "console.cli", "cordon", "node/no-such-node"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and 'no node is named "no-such-node"' in result.stderr
    assert not (tmp_path / "cordons.json").exists()
