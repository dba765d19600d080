"""Changes from the console: every one runs in a thread worker through the action gate.

`services.gate.run` refuses in kiosk mode, asks before destructive steps (its question is
shown in a modal dialog, named after the target) and writes the audit log. Results come back
as notifications; failures name the debug log, never show a traceback. Mixed into the app.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from textual import work

from console.gate import register_action
from console.resource_kinds import kind_named, kind_of_spec
from console.tui import offered_actions
from console.tui.screens.dialogs import ConfirmScreen, OutputScreen, TextPromptScreen
from console.tui.views import Row
from rtm.documents import reasons_to_ask
from rtm.duration import parse_duration

EXEC_TIMEOUT = 30.0  # seconds a command run with exec may take
SHELL_ACTION = register_action("container.shell", description="open an interactive shell in a container (docker exec -it)").name
CONSOLE_ACTION = register_action("vm.console", description="attach to a VM's serial console").name


class GatedActions:
    """The app's action runner (a mixin of RtmConsole: `self` is the app)."""

    services: Any
    options: Any

    # ------------------------------------------------------------------ actions

    def run_verb(self, pane: str, verb: str, row: Row) -> None:
        spec = offered_actions.VERB_BY_NAME[verb]
        do = offered_actions.carrier(verb, pane, self.services, row.backend)
        if do is None:
            self.notify(f"{row.backend} cannot {verb} {row.name}.", severity="warning")
            return
        kind = kind_named(pane)  # a resource kind's pane: carrier() found the verb in its descriptor
        name, target = row.name, f"{kind.resource if kind else pane}/{row.name}"
        if pane == "containers" and self._is_swarm_task(row):
            if verb != "exec":  # a stopped or restarted container ends its task: the restart policy decides what follows
                self.notify(f"{row.name} is a task of Swarm service {row.name.rsplit('.', 1)[0]}, which Swarm runs: stopping, "
                            "restarting or removing its container ends the task. Scale or delete the workload instead "
                            "(rtm-console scale / delete).", severity="warning", timeout=10)
                return
            if not self._reaches_container(row):
                return
            name = row.key.rsplit("/", 1)[-1]  # the container's id on its node's engine: a task's row is named service.slot
        if verb == "exec":

            def run(command: str | None) -> None:
                if command:
                    self.run_gated(spec.action, target, {"command": command, "backend": row.backend},
                                   lambda: do(name, command, timeout=EXEC_TIMEOUT),
                                   on_done=lambda value: self.push_screen(OutputScreen(f"{target}: {command}", value)))

            self.ask_text(f"Command to run in {target} (sh -c, at most {EXEC_TIMEOUT:g} s):", run)
            return
        if verb == "invoke":
            def invoke(text: str | None) -> None:
                try:
                    payload = json.loads(text) if text else {}
                except ValueError as exc:
                    self.notify(f"The payload is not JSON: {exc}", severity="error")
                    return
                self.run_gated(spec.action, target, {"payload": payload}, lambda: do(name, payload),
                               on_done=lambda value: self.push_screen(OutputScreen(f"{target} invoked", value)))

            self.ask_text(f"JSON payload for {target} (empty: {{}}):", invoke)
            return
        record = self._find_record(pane, row)  # type: ignore[attr-defined]
        workload = getattr(record, "workload", None)  # a replica's restart counts for its workload
        self.run_gated(spec.action, target, {"backend": row.backend, **({"workload": workload} if workload else {})}, lambda: do(name))

    def run_gated(self, action: str, target: str, params: dict[str, Any], fn: Callable[[], Any],
                  destructive: bool = False, confirm: str | None = None,
                  on_done: Callable[[Any], None] | None = None) -> None:
        """Run `fn` through the gate in a thread worker. `confirm` asks first in the console (for
        steps the operator confirms though the gate would not ask, such as executing a
        scaling decision); `on_done` gets the value of a successful run on the event loop."""
        if confirm is None:
            self._gated_worker(action, target, params, fn, destructive, on_done)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._gated_worker(action, target, params, fn, destructive, on_done)

        self.push_screen(ConfirmScreen(confirm), callback=answered)

    @work(thread=True, group="actions")
    def _gated_worker(self, action: str, target: str, params: dict[str, Any], fn: Callable[[], Any],
                      destructive: bool, on_done: Callable[[Any], None] | None) -> None:
        result = self.services.gate.run(action, target, params, fn, destructive=destructive)
        self.call_from_thread(self._action_done, result, on_done)
        self.services.source.refresh_now()

    def _action_done(self, result: Any, on_done: Callable[[Any], None] | None = None) -> None:
        if result.ok:
            self.notify(result.message)
            if on_done is not None:
                on_done(result.value)
        elif result.error in ("refused_read_only", "not_confirmed"):
            self.notify(result.message, severity="warning")
        else:
            self.notify(result.message, severity="error", timeout=10)

    def confirm_from_worker(self, question: str) -> bool:
        """The gate's confirm: called on an action's worker thread, answered in a modal dialog."""
        answer: Future[bool] = Future()
        try:
            self.call_from_thread(lambda: self.push_screen(ConfirmScreen(question), callback=answer.set_result))
        except RuntimeError:  # the app is not running (closing): nobody can answer
            return False
        while True:
            try:
                return bool(answer.result(timeout=0.2))
            except TimeoutError:
                if not self.is_running:
                    return False

    def apply_documents(self, path: Path, documents: Iterable[Any]) -> None:
        runtimes = [d for d in documents if d.runtime_kind]
        if not runtimes:
            self.notify("Nothing to apply: the spec names no runtime.", severity="warning")
            return
        self.plan_apply(path, runtimes)

    @work(thread=True, group="actions")
    def plan_apply(self, path: Path, documents: list[Any]) -> None:
        plans = []
        for document in documents:
            resource = kind_of_spec(document.runtime_kind).resource
            handler = self.services.handler(resource)
            if handler is None:
                self.call_from_thread(self.notify, f"{document.label}: no {resource} backend is available", severity="error")
                return
            try:
                plans.append((document, handler, handler.plan(document, path.parent)))
            except Exception as exc:  # one line for people; the traceback goes to the debug log
                from console.diagnostics import log_exception

                self.call_from_thread(self.notify, log_exception(exc, f"planning {document.label}"), severity="error")
                return
        lines = [f"{c.action:<9} {c.resource}" + (f"  ({c.note})" if c.note else "") for _, _, changes in plans for c in changes]
        if all(c.action == "unchanged" for _, _, changes in plans for c in changes):
            self.call_from_thread(self.notify, "Nothing to apply: the live state matches the spec.")
            return
        # Host-level settings and many replicas at once: the CLI's reasons, shown in this one question.
        reasons = {document.label: reasons_to_ask(document, sum(c.action == "create" for c in changes))
                   for document, _, changes in plans if any(c.action != "unchanged" for c in changes)}
        lines += [f"{label}: confirm first: {reason}" for label, found in reasons.items() for reason in found]

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            for document, handler, changes in plans:
                replacing = any(c.action in ("replace", "delete") for c in changes)
                self.run_gated(
                    "workload.apply", document.label,
                    {"file": document.path, "document": document.index + 1, "changes": [c.to_json() for c in changes],
                     "confirmed": reasons.get(document.label, [])},
                    lambda d=document, h=handler, c=changes: h.apply(d, path.parent, c, progress=lambda line: None),
                    destructive=replacing,
                )

        self.call_from_thread(self.push_screen, ConfirmScreen(f"Apply {path.name}?", "\n".join(lines)), confirmed)

    def ask_text(self, prompt: str, callback: Callable[[str | None], None]) -> None:
        self.push_screen(TextPromptScreen(prompt), callback=callback)


    def silence_alert(self, row: Row) -> None:
        """`S` on the Alerts pane: silence the alert for a duration (`30m`, `2h`), through the gate."""
        from console.silences import SILENCE

        alert = next((a for a in self.alerts.current() if f"alert/{a.alert}/{a.subject}" == row.key), None)  # type: ignore[attr-defined]
        if alert is None:
            self.notify(f"{row.name}: that alert no longer fires.", severity="warning")  # type: ignore[attr-defined]
            return

        def silence(text: str | None) -> None:
            if not text:
                return
            try:
                seconds = parse_duration(text.strip())
            except ValueError as exc:
                self.notify(f"Not a duration: {exc} (try 30m, 2h or 24h)", severity="error")  # type: ignore[attr-defined]
                return
            gate = self.services.gate
            store = self.alerts.silences  # type: ignore[attr-defined]
            self.run_gated(SILENCE.name, f"alert/{alert.key}", {"duration": text.strip(), "seconds": seconds},
                           lambda: store.add(alert.alert, alert.subject, seconds, gate.user, gate.origin))

        self.ask_text(f"Silence {alert.alert} on {alert.subject} for how long? (30m, 2h, 24h)", silence)

    # ------------------------------------------------------------------ interactive sessions

    def open_shell(self, row: Row) -> None:
        """`e` on a container: `docker exec -it` with the configured shell, the console suspended."""
        from console.tui.sessions import docker_exec_argv

        if not self._reaches_container(row) or not self._is_running_now("containers", row):
            return
        backend = self.services.backends.get(row.backend)
        argv, problem = docker_exec_argv(backend, row.key.rsplit("/", 1)[-1], self.options.shell)
        params = {"backend": row.backend, "shell": " ".join(self.options.shell),
                  "idle_timeout": self.options.session_idle_timeout}
        self.attach_session(SHELL_ACTION, f"container/{row.name}", params, argv, problem,
                            f"shell in container/{row.name} on {row.backend}: `exit` (or Ctrl+D) returns to rtm-console")

    def open_serial_console(self, row: Row) -> None:
        """`e` on a VM: its serial console through libvirt (`virsh console`); Ctrl+] detaches."""
        from console.tui.sessions import virsh_console_argv

        backend = self.services.backends.get(row.backend)
        argv, problem = virsh_console_argv(backend, row.name)
        if argv is not None and not self._is_running_now("vms", row):
            return  # (a guest without a serial device is told so first, whatever its state)
        self.attach_session(CONSOLE_ACTION, f"vm/{row.name}", {"backend": row.backend}, argv, problem,
                            f"serial console of vm/{row.name} on {row.backend}: Ctrl+] detaches and returns to rtm-console",
                            escape=b"\x1d")

    def _is_swarm_task(self, row: Row) -> bool:
        from backends.docker.swarm.tasks import LABEL_TASK

        record = self._find_record("containers", row)  # type: ignore[attr-defined]
        return record is not None and LABEL_TASK in record.labels

    def _reaches_container(self, row: Row) -> bool:
        """A Swarm task on a node whose engine is not configured: say which endpoint to add."""
        from backends.docker.swarm.tasks import engine_missing

        missing = engine_missing(self._find_record("containers", row))  # type: ignore[attr-defined]
        if missing:
            self.notify(missing, severity="warning", timeout=10)  # type: ignore[attr-defined]
        return not missing

    def _is_running_now(self, kind: str, row: Row) -> bool:
        """A session needs a running container or VM: say so instead of handing over the terminal."""
        record = self._find_record(kind, row)  # type: ignore[attr-defined]
        state = getattr(record, "state", None)
        if state != "running":
            what = "container" if kind == "containers" else "vm"
            self.notify(f"{what}/{row.name} is {state or 'no longer reported'}: start it first (s).",  # type: ignore[attr-defined]
                        severity="warning")
        return state == "running"

    def attach_session(self, action: str, target: str, params: dict[str, Any], argv: list[str] | None,
                       problem: str, banner: str, escape: bytes | None = None) -> None:
        """Through the gate: refused (and audited) in kiosk mode before anything runs; otherwise
        the screen is suspended, the session runs on the terminal, and the console comes back
        where it was."""
        from console.terminal import run_attached

        gate = self.services.gate
        if gate.read_only or argv is None:
            def unavailable() -> None:
                raise RuntimeError(problem)

            self._action_done(gate.run(action, target, params, unavailable))
            return

        def session() -> Any:
            from textual.app import SuspendNotSupported

            try:
                with self.suspend():  # type: ignore[attr-defined]
                    print(f"\r\nrtm-console: {banner}\r\n", flush=True)
                    end = run_attached(argv, idle_timeout=self.options.session_idle_timeout, escape=escape)
            except SuspendNotSupported:
                raise RuntimeError("this terminal cannot be handed to another program (no real terminal)") from None
            if end.reason == "idle":
                return f"closed after {self.options.session_idle_timeout:g} s without a key or output"
            if end.reason == "escape":
                return "detached"
            return f"ended (exit code {end.exit_code})"

        result = gate.run(action, target, params, session)
        self._action_done(result)
        if result.ok:
            self.notify(f"{target}: {result.value}")  # type: ignore[attr-defined]
