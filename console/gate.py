"""The action gate: the one way anything in rtm-console changes the world.

Start, stop, delete, scale, apply, save, cordon — from the CLI, the console or the agent —
run through `ActionGate.run`. The gate

- refuses everything in kiosk mode ("kiosk mode is read-only: ... was not run");
- asks for confirmation of destructive steps when a person is there to answer, and without a
  terminal refuses them unless `--yes` was given;
- writes one audit record per attempt (JSON lines in the data folder: time, user, uid, origin,
  what the environment claims, mode, action, target, parameters with secrets masked, result,
  duration); the user and origin come from the system (console/identity.py), not from `USER`
  or `SSH_CONNECTION`. An action declared `journaled` (a long change such as an apply) also
  gets a `started` record before it runs, so a change cut short by `kill -9` still leaves its
  intent, and its `ok` record lists what was done (the function's lines) beside the plan;
- turns exceptions into a typed, failed `ActionResult` with a one-line message, the traceback
  going to the debug log;
- records an event (console/eventlog.py) for every successful action that changes what runs
  (`EVENT_OF_ACTION`), whichever face ran it, unless the caller says it records a richer one.

Every action is declared in the module-level registry `ACTIONS`, either with the
`@gated_action(...)` decorator (which also makes the decorated function callable only through
a gate) or with `register_action(...)` for code that calls `gate.run` directly. `gate.run`
refuses names that were never declared, so the registry lists every kind of change the product
can make, and a test walks it to prove each one stops at a read-only gate.

The agent's changes come from policies the operator applied (restart on liveness failure,
scale on load); in agent mode they run without a question and are audited like the rest.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from console.datadir import append_jsonl, ensure_private_dir, iso_utc
from console.diagnostics import user_message
from console.eventlog import EventLog
from console.identity import current_identity
from rtm.secrets import MASK, is_secret_name, looks_secret, mask_secrets  # noqa: F401 - re-exported

T = TypeVar("T")
Mode = Literal["interactive", "kiosk", "agent"]
ErrorKind = Literal["refused_read_only", "not_confirmed", "failed", "interrupted"]
MODES: tuple[str, ...] = ("interactive", "kiosk", "agent")
AUDIT_LOG_NAME = "audit.jsonl"

logger = logging.getLogger("console.gate")


@dataclass(frozen=True)
class ActionResult(Generic[T]):
    """What came of one attempt: ok with the function's value, or why not."""

    ok: bool
    action: str
    target: str
    value: T | None = None
    message: str = ""
    error: ErrorKind | None = None


@dataclass(frozen=True)
class ActionSpec:
    """A declared kind of change. `entry` is the gated callable when declared by decorator."""

    name: str
    destructive: bool
    description: str = ""
    entry: Callable[..., ActionResult[Any]] | None = None
    journaled: bool = False  # a `started` record is written before it runs


ACTIONS: dict[str, ActionSpec] = {}

# The event kind each action that changes what runs leaves in the event log when it succeeds.
EVENT_OF_ACTION: dict[str, str] = {
    "resource.start": "start",
    "resource.stop": "stop",
    "resource.restart": "restart",
    "resource.delete": "delete",
    "workload.apply": "apply",
    "workload.scale": "scale",
    "node.drain": "drain",
}
# Changes run only by the agent's control loops, which record each one with its reason.
RECORDED_BY_ITS_LOOP = frozenset({
    "replica.restart", "replica.replace", "replica.reschedule", "replica.remove_stale",
    "replica.create_missing", "replica.remove_surplus", "workload.resize",
})
# Actions that leave what runs as it is (files, placement of future replicas, sessions).
LEAVES_WHAT_RUNS = frozenset({
    "spec.save", "node.cordon", "node.uncordon", "alert.silence", "function.invoke",
    "container.exec", "container.shell", "vm.console", "load_balancer.write_upstream",
})

_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class UndeclaredAction(LookupError):
    """A programming error: `gate.run` was called with a name nobody declared."""


def register_action(name: str, *, destructive: bool = False, description: str = "", journaled: bool = False) -> ActionSpec:
    """Declare an action for code that calls `gate.run` directly. Declaring twice is fine
    when both declarations agree. A `journaled` action (one that takes long and changes
    several things) is audited before it runs too."""
    return _declare(ActionSpec(name, destructive, description, journaled=journaled))


def _declare(spec: ActionSpec) -> ActionSpec:
    if not _ACTION_NAME.match(spec.name):
        raise ValueError(f"action name {spec.name!r} must look like 'container.stop'")
    known = ACTIONS.get(spec.name)
    if known is not None:
        if known.destructive != spec.destructive:
            raise ValueError(f"action {spec.name!r} declared both destructive and not")
        if known.entry is not None and spec.entry is not None and known.entry is not spec.entry:
            raise ValueError(f"action {spec.name!r} is declared by two functions")
        spec = ActionSpec(
            spec.name,
            spec.destructive,
            spec.description or known.description,
            spec.entry or known.entry,
            spec.journaled or known.journaled,
        )
    ACTIONS[spec.name] = spec
    return spec


def gated_action(
    name: str,
    *,
    target: str | Callable[[Mapping[str, Any]], str],
    destructive: bool = False,
    description: str = "",
    audit: tuple[str, ...] | None = None,
) -> Callable[[Callable[..., T]], Callable[..., ActionResult[T]]]:
    """Declare `fn` as an action; the decorated name becomes `fn(gate, *args, **kwargs)`.

    `target` names what is changed, as a format string over the function's arguments
    (`"container/{name}"`) or a function of them. The audit records the arguments named in
    `audit`, or by default every argument that is plain data (strings, numbers, lists, maps);
    objects such as backend clients are left out.

        @gated_action("container.stop", target="container/{name}", destructive=True)
        def stop_container(backend, name: str, timeout: float = 10.0) -> None: ...

        result = stop_container(gate, backend, "web-0", timeout=5)
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., ActionResult[T]]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def through_gate(gate: ActionGate, /, *args: Any, **kwargs: Any) -> ActionResult[T]:
            if not isinstance(gate, ActionGate):
                raise TypeError(f"{name}: the first argument must be the ActionGate")
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            what = target.format(**arguments) if isinstance(target, str) else target(arguments)
            if audit is not None:
                params = {key: _plain(arguments[key]) for key in audit if key in arguments}
            else:
                params = {k: _plain(v) for k, v in arguments.items() if _is_plain(v)}
            return gate.run(name, what, params, lambda: fn(*bound.args, **bound.kwargs))

        _declare(ActionSpec(name, destructive, description or _first_doc_line(fn), through_gate))
        return through_gate

    return decorate


def _first_doc_line(fn: Callable[..., Any]) -> str:
    return (inspect.getdoc(fn) or "").split("\n", 1)[0]


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool, Path)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """A JSON-ready copy of plain data; anything else as its type name."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


# --- the gate ---------------------------------------------------------------------------------


class ActionGate:
    """Runs changes according to the mode, asks where needed, and audits every attempt.

    `confirm` asks a person a yes/no question and returns the answer; pass None when nobody can
    be asked (no terminal: see `terminal_confirm`). `assume_yes` is `--yes`.
    """

    def __init__(
        self,
        mode: Mode,
        audit_path: Path | str,
        confirm: Callable[[str], bool] | None = None,
        assume_yes: bool = False,
        user: str | None = None,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        events: EventLog | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode: Mode = mode
        self.audit_path = Path(audit_path)
        self.confirm = confirm
        self.assume_yes = assume_yes
        identity = current_identity(env)
        self.user = user or identity.user
        self.uid = identity.uid
        self.origin = identity.origin
        self.env_claim = identity.env_claim
        self._clock = clock
        self.events = events if events is not None else EventLog.in_data_dir(self.audit_path.parent)

    @property
    def read_only(self) -> bool:
        return self.mode == "kiosk"

    def run(
        self,
        action: str,
        target: str,
        params: Mapping[str, Any],
        fn: Callable[[], T],
        destructive: bool = False,
        on_interrupt: Callable[[], str] | None = None,
        records_event: bool = False,
        question: str | None = None,
    ) -> ActionResult[T]:
        """Run `fn` if the mode and the person allow it, auditing the attempt. When Ctrl+C or an
        exit cuts `fn` short, `on_interrupt()` says what exists now, for the audit record.
        `records_event` says the caller writes its own event for this change (with its reason),
        so the gate does not write a second one. `question` replaces the default question
        ("Scale workload/web?") when the step needs more said, e.g. that it replaces tasks."""
        spec = ACTIONS.get(action)
        if spec is None:
            raise UndeclaredAction(
                f"action {action!r} was never declared: use @gated_action or register_action"
            )
        destructive = destructive or spec.destructive
        started = time.monotonic()

        def finish(result: ActionResult[T], outcome: str) -> ActionResult[T]:
            return self._audit(result, outcome, params, destructive, time.monotonic() - started)

        if self.read_only:
            message = f"kiosk mode is read-only: {action} {target} was not run"
            return finish(ActionResult(False, action, target, None, message, "refused_read_only"), "refused")
        if destructive and self.mode == "interactive" and not self.assume_yes:
            refusal = self._ask(action, target, question)
            if refusal:
                return finish(ActionResult(False, action, target, None, refusal, "not_confirmed"), "refused")
        problem = self._audit_log_problem()
        if problem:
            message = f"{action} {target} was not run: the audit log cannot be written ({problem})"
            return ActionResult(False, action, target, None, message, "failed")
        if spec.journaled:
            self._audit(ActionResult(False, action, target, None, f"{action} {target}: started"), "started", params, destructive, 0.0)
        try:
            value = fn()
        except Exception as exc:  # every failure becomes a result; the traceback goes to the log
            logger.error("%s %s failed", action, target, exc_info=exc)
            message = f"{action} {target} failed: {user_message(exc)}"
            return finish(ActionResult(False, action, target, None, message, "failed"), "failed")
        except BaseException:
            # Ctrl+C or exit during a change: record that it was cut short and what it left, then let it go on.
            message = f"{action} {target} was interrupted"
            state = _describe_interruption(on_interrupt)
            finish(ActionResult(False, action, target, None, f"{message}; {state}" if state else message, "interrupted"), "interrupted")
            raise
        if not records_event:
            self._record_event(action, target, params)
        return finish(ActionResult(True, action, target, value, f"{action} {target}: done"), "ok")

    def _record_event(self, action: str, target: str, params: Mapping[str, Any]) -> None:
        kind = EVENT_OF_ACTION.get(action)
        if kind is None:
            return
        # The workload a change is about: the target's, or the one the caller names (a replica's).
        workload = target.split("/", 1)[1] if target.startswith("workload/") else params.get("workload") or None
        try:
            self.events.record(kind, f"{action} {target} by {self.user} ({self.mode})", workload=workload,
                               target=target, details={"action": action, "user": self.user, "mode": self.mode})
        except OSError as exc:  # the change happened; a full disk must not turn it into a failure
            logger.error("event for %s %s not written", action, target, exc_info=exc)

    def _ask(self, action: str, target: str, question: str | None = None) -> str | None:
        """None when confirmed; otherwise the refusal message."""
        if self.confirm is None:
            return (
                f"{action} {target} was not run: it is destructive and there is no terminal "
                "to confirm it on; pass --yes to run it without asking"
            )
        question = question or f"{_verb(action).capitalize()} {target}?"
        try:
            confirmed = bool(self.confirm(question))
        except (EOFError, KeyboardInterrupt):
            confirmed = False
        return None if confirmed else f"{action} {target} was not run: not confirmed"

    def _audit_log_problem(self) -> str | None:
        try:
            ensure_private_dir(self.audit_path.parent)
            os.close(os.open(self.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        except OSError as exc:
            return exc.strerror or str(exc)
        return None

    def _audit(
        self,
        result: ActionResult[T],
        outcome: str,
        params: Mapping[str, Any],
        destructive: bool,
        duration: float,
    ) -> ActionResult[T]:
        record = {
            "time": iso_utc(self._clock()),
            "user": self.user,
            "uid": self.uid,
            "origin": self.origin,
            "env_claim": dict(self.env_claim) if self.env_claim else None,  # what USER, SSH_CONNECTION ... say
            "mode": self.mode,
            "action": result.action,
            "target": result.target,
            "destructive": destructive,
            "params": mask_secrets(_plain(dict(params))),
            "result": outcome,
            "error": result.error,
            "message": result.message,
            "duration_seconds": round(duration, 6),
        }
        spec = ACTIONS.get(result.action)
        if spec is not None and spec.journaled and result.ok and _is_plain(result.value):
            record["done"] = mask_secrets(_plain(result.value))  # what was done, beside the plan in params
        try:
            ensure_private_dir(self.audit_path.parent)
            append_jsonl(self.audit_path, record)
        except OSError as exc:
            logger.error("audit record for %s %s not written", result.action, result.target, exc_info=exc)
            note = f" (audit log not written: {exc.strerror or exc})"
            return ActionResult(result.ok, result.action, result.target, result.value,
                                result.message + note, result.error)
        return result


def _describe_interruption(describe: Callable[[], str] | None) -> str:
    if describe is None:
        return ""
    try:
        return describe()
    except BaseException as exc:  # a second Ctrl+C, or the backend gone: the record is written anyway
        logger.warning("could not tell what an interrupted action left", exc_info=exc)
        return ""


def audit_log_path(data_dir: Path | str) -> Path:
    """Where the audit log lives in the data folder."""
    return Path(data_dir) / AUDIT_LOG_NAME


def _verb(action: str) -> str:
    return action.rsplit(".", 1)[-1].replace("_", " ")


def terminal_confirm(
    stdin: Any = None, stdout: Any = None
) -> Callable[[str], bool] | None:
    """A confirm function that asks on the terminal, or None when stdin is not a terminal."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stderr
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        return None

    def ask(question: str) -> bool:
        stdout.write(f"{question} [y/N] ")
        stdout.flush()
        answer = stdin.readline()
        if not answer:
            raise EOFError
        return answer.strip().lower() in ("y", "yes")

    return ask


# --- masking secrets ------------------------------------------------------------------------
