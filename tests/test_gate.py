"""The action gate (modes, confirmation, audit, masking, the registry of every change) and the
debug log that keeps tracebacks off the screen."""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import pkgutil
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import backends
import console
from console import diagnostics
from console.datadir import read_jsonl
from console.identity import login_origin
from console.gate import (
    ACTIONS,
    ActionGate,
    ActionResult,
    UndeclaredAction,
    gated_action,
    is_secret_name,
    looks_secret,
    mask_secrets,
    register_action,
    terminal_confirm,
)

REPO = Path(__file__).resolve().parents[1]
ENV = {"USER": "alice"}

register_action("test.touch", description="Create a marker file (test action)")
register_action("test.remove", destructive=True, description="Remove a marker file (test action)")


@gated_action("test.write_marker", target="file/{path}", destructive=True)
def write_marker(path: Path, text: str, password: str = "", client: object = None) -> int:
    """Write a marker file (test action)."""
    Path(path).write_text(text)
    return len(text)


def audit(gate: ActionGate) -> list[dict]:
    return read_jsonl(gate.audit_path)


class Asker:
    """A person at the terminal who answers with `answer` and remembers the questions."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.questions: list[str] = []

    def __call__(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer


# --- modes and confirmation -------------------------------------------------------------------


def test_kiosk_refuses_every_change_and_audits_the_refusal(tmp_path):
    gate = ActionGate("kiosk", tmp_path / "audit.jsonl", confirm=Asker(True), assume_yes=True, env=ENV)
    marker = tmp_path / "marker"
    result = gate.run("test.touch", "file/marker", {}, lambda: marker.touch())
    assert not marker.exists()
    assert result == ActionResult(False, "test.touch", "file/marker", None,
                                  "kiosk mode is read-only: test.touch file/marker was not run",
                                  "refused_read_only")
    (record,) = audit(gate)
    assert record["mode"] == "kiosk"
    assert (record["action"], record["target"], record["result"]) == ("test.touch", "file/marker", "refused")
    assert record["error"] == "refused_read_only"
    assert record["message"] == result.message


def test_destructive_step_asks_a_question_naming_the_target(tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    asker = Asker(True)
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=asker, env=ENV)
    result = gate.run("test.remove", "file/marker", {}, marker.unlink)
    assert result.ok and result.error is None
    assert asker.questions == ["Remove file/marker?"]
    assert not marker.exists()
    assert audit(gate)[0]["result"] == "ok"


def test_answering_no_leaves_things_as_they_were(tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=Asker(False), env=ENV)
    result = gate.run("test.remove", "file/marker", {}, marker.unlink)
    assert marker.exists()
    assert (result.ok, result.error) == (False, "not_confirmed")
    assert result.message == "test.remove file/marker was not run: not confirmed"
    (record,) = audit(gate)
    assert (record["result"], record["error"]) == ("refused", "not_confirmed")


def test_without_a_terminal_destructive_steps_need_yes(tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=None, env=ENV)
    result = gate.run("test.remove", "file/marker", {}, marker.unlink)
    assert marker.exists()
    assert result.error == "not_confirmed"
    assert "no terminal" in result.message and "pass --yes" in result.message
    assert audit(gate)[0]["result"] == "refused"


def test_yes_runs_destructive_steps_without_asking(tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    asker = Asker(False)
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=asker, assume_yes=True, env=ENV)
    assert gate.run("test.remove", "file/marker", {}, marker.unlink).ok
    assert not marker.exists() and asker.questions == []


def test_non_destructive_steps_are_not_asked_about(tmp_path):
    asker = Asker(False)
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=asker, env=ENV)
    result = gate.run("test.touch", "file/marker", {}, lambda: 42)
    assert (result.ok, result.value, asker.questions) == (True, 42, [])
    assert result.message == "test.touch file/marker: done"


def test_a_call_can_make_a_declared_action_destructive(tmp_path):
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=None, env=ENV)
    result = gate.run("test.touch", "file/all", {}, lambda: 1, destructive=True)
    assert result.error == "not_confirmed"
    assert audit(gate)[0]["destructive"] is True


def test_agent_runs_policy_driven_changes_without_asking(tmp_path):
    marker = tmp_path / "marker"
    marker.touch()
    gate = ActionGate("agent", tmp_path / "audit.jsonl", confirm=None, env=ENV)
    assert gate.run("test.remove", "file/marker", {}, marker.unlink).ok
    assert not marker.exists()
    assert audit(gate)[0]["mode"] == "agent"


def test_undeclared_actions_are_a_programming_error(tmp_path):
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", env=ENV)
    with pytest.raises(UndeclaredAction):
        gate.run("test.never_declared", "x", {}, lambda: None)


def test_declarations_must_agree():
    with pytest.raises(ValueError, match="destructive"):
        register_action("test.remove", destructive=False)
    with pytest.raises(ValueError, match="must look like"):
        register_action("Stop Container")


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="interactive, kiosk, agent"):
        ActionGate("readonly", tmp_path / "audit.jsonl")  # type: ignore[arg-type]


# --- failures ---------------------------------------------------------------------------------


def test_a_failure_is_a_typed_result_with_one_line_and_the_traceback_in_the_debug_log(tmp_path, debug_log):
    log_path = diagnostics.setup_debug_log(tmp_path / "data")
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", assume_yes=True, env=ENV)

    def explode():
        raise ConnectionError("engine at tcp://10.0.0.7:2376 refused the connection\nsecond line")

    result = gate.run("test.touch", "container/web-0", {"timeout": 5}, explode)
    assert (result.ok, result.error) == (False, "failed")
    assert result.message == (
        "test.touch container/web-0 failed: engine at tcp://10.0.0.7:2376 refused the connection "
        f"(details in {log_path})"
    )
    assert "\n" not in result.message
    logged = log_path.read_text()
    assert "Traceback" in logged and "explode" in logged and "second line" in logged
    (record,) = audit(gate)
    assert (record["result"], record["error"], record["params"]) == ("failed", "failed", {"timeout": 5})


def test_an_unwritable_audit_log_stops_the_change(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    marker = tmp_path / "marker"
    gate = ActionGate("interactive", blocker / "audit.jsonl", assume_yes=True, env=ENV)
    result = gate.run("test.touch", "file/marker", {}, marker.touch)
    assert (result.ok, result.error) == (False, "failed")
    assert "audit log cannot be written" in result.message
    assert not marker.exists()


# --- who and from where -----------------------------------------------------------------------


def test_audit_record_has_time_user_origin_and_duration(tmp_path):
    env = {"USER": "bob", "SSH_CONNECTION": "203.0.113.9 52114 10.0.0.2 22"}
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", env=env, clock=lambda: 1767261600.25)
    gate.run("test.touch", "file/x", {"mode": "fast"}, lambda: None)
    (record,) = audit(gate)
    assert record["time"] == "2026-01-01T10:00:00.250Z"
    # The user and origin are the system's (tests/test_identity.py); the environment's claim is kept apart.
    assert (record["user"], record["uid"]) == (pwd.getpwuid(os.getuid()).pw_name, os.getuid())
    assert record["origin"] == login_origin(os.getpid())
    assert record["env_claim"] == env
    assert record["params"] == {"mode": "fast"}
    assert isinstance(record["duration_seconds"], float) and record["duration_seconds"] >= 0


def test_a_journaled_action_records_its_intent_before_and_what_is_left_after_an_interruption(tmp_path):
    register_action("test.journaled", journaled=True, description="A long change (test action)")
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", env=ENV)
    seen_before_running: list[list[dict]] = []

    def cut_short() -> None:
        seen_before_running.append(audit(gate))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gate.run("test.journaled", "thing/t", {"steps": 3}, cut_short, on_interrupt=lambda: "exists now: step 1")
    (intent,) = seen_before_running[0]
    assert (intent["result"], intent["params"]) == ("started", {"steps": 3})
    outcome = audit(gate)[-1]
    assert (outcome["result"], outcome["error"]) == ("interrupted", "interrupted")
    assert outcome["message"] == "test.journaled thing/t was interrupted; exists now: step 1"
    gate.run("test.touch", "file/x", {}, lambda: None)  # not journaled: one record
    assert [r["result"] for r in audit(gate)] == ["started", "interrupted", "ok"]
    gate.run("test.journaled", "thing/t", {"steps": 2}, lambda: ["created step 1", "created step 2"])
    assert [(r["result"], r.get("done")) for r in audit(gate)[-2:]] == [("started", None), ("ok", ["created step 1", "created step 2"])]


def test_explicit_user_wins(tmp_path):
    gate = ActionGate("interactive", tmp_path / "a.jsonl", user="ops-bot", env={"USER": "alice"})
    gate.run("test.touch", "x", {}, lambda: None)
    assert audit(gate)[0]["user"] == "ops-bot"


# --- secrets ------------------------------------------------------------------------------------


def test_audit_masks_secrets_in_parameters(tmp_path):
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", assume_yes=True, env=ENV)
    params = {
        "image": "nginx:1.25",
        "password": "hunter2",
        "apiKey": "k-123",
        "environment": {"DB_PASSWORD": "s3cret", "LOG_LEVEL": "debug",
                        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                        "SIGNING": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
        "env_list": ["GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz012345", "MODE=prod"],
        "args": ["--password=hunter2", "--verbose"],
        "database": "postgres://app:hunter2@db:5432/app",
        "digest": "sha256:" + "ab" * 32,
        "replicas": 3,
    }
    gate.run("test.touch", "container/web", params, lambda: None)
    text = gate.audit_path.read_text()
    for secret in ("hunter2", "k-123", "s3cret", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "ghp_abc"):
        assert secret not in text
    logged = audit(gate)[0]["params"]
    assert logged["password"] == "***" and logged["apiKey"] == "***"
    assert logged["environment"] == {"DB_PASSWORD": "***", "LOG_LEVEL": "debug",
                                     "AWS_ACCESS_KEY_ID": "***", "SIGNING": "***"}
    assert logged["env_list"] == ["GITHUB_TOKEN=***", "MODE=prod"]
    assert logged["args"] == ["--password=***", "--verbose"]
    assert logged["database"] == "postgres://app:***@db:5432/app"
    assert logged["image"] == "nginx:1.25" and logged["digest"] == params["digest"]
    assert logged["replicas"] == 3


@pytest.mark.parametrize("name", ["password", "DB_PASSWORD", "apiKey", "api_key", "AWS_SECRET_ACCESS_KEY",
                                  "token", "x-auth-token", "credentials", "key", "ssh_key", "Authorization"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["keyboard", "monkey", "replicas", "image", "client_auth_type", "keys_total"])
def test_names_that_are_not_secret(name):
    assert not is_secret_name(name)


def test_values_that_look_secret_and_values_that_do_not():
    assert looks_secret("-----BEGIN RSA PRIVATE KEY-----\nMIIE...")
    assert looks_secret("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig")
    assert looks_secret("xoxb-1234567890-abcdefghij")
    assert not looks_secret("/home/Alice/Projects2024/service-config")
    assert not looks_secret("3f2b8c1e-9d4a-4b7e-8f6a-2c1d0e9b8a7f")
    assert not looks_secret("hello world")
    assert mask_secrets({"nested": [{"token": None}]}) == {"nested": [{"token": None}]}


# --- the decorator and the registry ------------------------------------------------------------


def test_gated_action_runs_through_the_gate_and_audits_plain_arguments(tmp_path):
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=Asker(True), env=ENV)
    marker = tmp_path / "m.txt"
    result = write_marker(gate, marker, "hello", password="pw-123", client=object())
    assert (result.ok, result.value, result.target) == (True, 5, f"file/{marker}")
    assert marker.read_text() == "hello"
    (record,) = audit(gate)
    assert record["action"] == "test.write_marker" and record["destructive"] is True
    assert record["params"] == {"path": str(marker), "text": "hello", "password": "***"}  # no client


def test_gated_action_needs_the_gate_first(tmp_path):
    with pytest.raises(TypeError, match="ActionGate"):
        write_marker(tmp_path / "m", "x")


def test_gated_action_is_registered_with_its_entry_point():
    spec = ACTIONS["test.write_marker"]
    assert spec.entry is write_marker and spec.destructive
    assert spec.description == "Write a marker file (test action)."


def _all_project_modules() -> list[str]:
    names = []
    for package in (console, backends):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return names


class Untouchable:
    """An argument that fails the test if the action's body ever uses it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __format__(self, spec: str) -> str:
        return f"<{self._name}>"

    def __str__(self) -> str:
        return f"<{self._name}>"

    def __getattr__(self, attribute: str):
        raise AssertionError(f"the body ran and used {self._name}.{attribute}")


def test_every_declared_change_stops_at_a_read_only_gate(tmp_path):
    """Import every module of the product, so every @gated_action is declared, then call each
    entry point with a kiosk gate: each is refused and audited, and its body never runs."""
    failures = {}
    for name in _all_project_modules():
        try:
            importlib.import_module(name)
        except Exception as exc:  # a module that cannot load would hide its actions
            failures[name] = repr(exc)
    assert failures == {}
    gate = ActionGate("kiosk", tmp_path / "audit.jsonl", assume_yes=True, env=ENV)
    entries = {name: spec.entry for name, spec in ACTIONS.items() if spec.entry is not None}
    assert "test.write_marker" in entries
    for name, entry in entries.items():
        args, kwargs = [], {}
        for parameter in inspect.signature(entry).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.kind == parameter.KEYWORD_ONLY:
                kwargs[parameter.name] = Untouchable(parameter.name)
            else:
                args.append(Untouchable(parameter.name))
        result = entry(gate, *args, **kwargs)
        assert (result.ok, result.error) == (False, "refused_read_only"), name
    assert sorted(r["action"] for r in audit(gate)) == sorted(entries)
    assert {r["result"] for r in audit(gate)} == {"refused"}


# --- asking on a terminal ---------------------------------------------------------------------


def test_terminal_confirm_asks_on_a_real_terminal():
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "r", closefd=True) as stdin, open(os.devnull, "w") as out:
        ask = terminal_confirm(stdin, out)
        assert ask is not None
        os.write(controller, b"y\n")
        assert ask("Delete container/web-0?") is True
        os.write(controller, b"\n")
        assert ask("Delete container/web-0?") is False  # the default is no
    os.close(controller)


def test_terminal_confirm_is_none_without_a_terminal():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as stdin:
        assert terminal_confirm(stdin) is None
    os.close(write_end)


# --- the debug log ------------------------------------------------------------------------------


@pytest.fixture
def debug_log():
    """Put logging back as it was after a test that sets up the debug log."""
    names = (*diagnostics.PROJECT_LOGGERS, "")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}
    yield
    for n, (handlers, level, propagate) in saved.items():
        target = logging.getLogger(n)
        for handler in list(target.handlers):
            if handler not in handlers:
                target.removeHandler(handler)
                handler.close()
        target.setLevel(level)
        target.propagate = propagate
    logging.captureWarnings(False)
    diagnostics._log_path = None


_NOISY = textwrap.dedent(
    """
    import logging, sys, threading, warnings
    from console import diagnostics
    path = diagnostics.setup_debug_log(sys.argv[1])
    logging.getLogger("console.poller").error("backend docker@local hung")
    logging.getLogger("backends.docker").debug("GET /containers/json")
    logging.getLogger("urllib3.connectionpool").warning("retrying connection")
    warnings.warn("deprecated thing")
    diagnostics.install_exception_hooks()
    t = threading.Thread(target=lambda: 1 / 0, name="poll-docker")
    t.start(); t.join()
    raise RuntimeError("could not reach libvirt at qemu:///system")
    """
)


def test_errors_go_to_the_debug_log_never_to_the_screen(tmp_path):
    run = subprocess.run([sys.executable, "-c", _NOISY, str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    log_path = tmp_path / "debug.log"
    assert run.stdout == ""
    # The screen gets one line that names the log, and no traceback.
    assert run.stderr == (f"rtm-console: error: could not reach libvirt at qemu:///system "
                          f"(details in {log_path})\n")
    logged = log_path.read_text()
    for expected in ("backend docker@local hung", "GET /containers/json", "retrying connection",
                     "deprecated thing", "ZeroDivisionError", "poll-docker", "Traceback",
                     "could not reach libvirt"):
        assert expected in logged
    assert oct(log_path.stat().st_mode & 0o777) == "0o600"


def test_user_message_is_one_line_naming_the_log(tmp_path):
    error = RuntimeError("first line\nsecond line")
    assert diagnostics.user_message(error, tmp_path / "debug.log") == \
        f"first line (details in {tmp_path / 'debug.log'})"
    assert diagnostics.user_message(KeyError(), None) in ("KeyError",)
    long = diagnostics.user_message(ValueError("x" * 1000), None)
    assert len(long) <= 240 and long.endswith("…")


def test_setting_up_twice_moves_the_log_instead_of_doubling_it(tmp_path, debug_log):
    diagnostics.setup_debug_log(tmp_path / "one")
    second = diagnostics.setup_debug_log(tmp_path / "two")
    logging.getLogger("rtm.test").warning("only once")
    assert second.read_text().count("only once") == 1
    assert "only once" not in (tmp_path / "one" / "debug.log").read_text()
    assert diagnostics.debug_log_path() == second
    assert diagnostics.log_exception(OSError("disk full"), "saving web.yaml") == \
        f"saving web.yaml: disk full (details in {second})"
    assert json.dumps(str(second))  # a plain path, printable


def test_every_declared_action_says_whether_it_changes_what_runs():
    """Each declared action (all modules imported) is in exactly one of the gate's three lists, so
    a new kind of change cannot leave the event log silently."""
    from console.gate import EVENT_OF_ACTION, LEAVES_WHAT_RUNS, RECORDED_BY_ITS_LOOP

    for name in _all_project_modules():
        importlib.import_module(name)
    product = {name for name in ACTIONS if not name.startswith("test.")}
    lists = [set(EVENT_OF_ACTION), set(RECORDED_BY_ITS_LOOP), set(LEAVES_WHAT_RUNS)]
    unclassified = product - set().union(*lists)
    assert unclassified == set()
    assert all(not (a & b) for i, a in enumerate(lists) for b in lists[i + 1:])


def test_a_successful_change_of_what_runs_writes_one_event_and_a_refused_one_none(tmp_path):
    from console.eventlog import EventLog

    register_action("resource.stop", destructive=True)
    register_action("spec.save")
    events = EventLog.in_data_dir(tmp_path)
    gate = ActionGate("interactive", tmp_path / "audit.jsonl", confirm=lambda question: False, env=ENV)
    assert not gate.run("resource.stop", "container/web-0", {}, lambda: None).ok  # declined
    gate.assume_yes = True
    assert gate.run("resource.stop", "container/web-0", {}, lambda: None).ok
    assert gate.run("spec.save", "spec/web.yaml", {}, lambda: None).ok  # changes a file, not what runs
    assert gate.run("resource.stop", "container/web-1", {}, lambda: None, records_event=True).ok
    [event] = events.read()
    assert (event.kind, event.target, event.details["user"], event.details["mode"]) == (
        "stop", "container/web-0", gate.user, "interactive")
