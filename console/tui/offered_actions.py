"""Which changes the console offers for a resource, and through which gated action.

Pure: decides from the gate's registry (`console.gate.ACTIONS`) and the runtime handlers the
backends provide. An action is offered only when both exist: its name is declared in the
registry, and something can carry it out (a backend, handler or their `actions` implementing
the verb's protocol from backends/verbs.py, the cordon store, the editor). Nothing is offered
as a placeholder; a backend that lands adds its actions by declaring them and implementing the
verbs' protocols.

The console never checks the mode itself: every offered action runs through `gate.run`,
which refuses in kiosk mode and asks before destructive steps.

Carriers: start/stop/restart are methods of the backend that reported the resource (one
Docker engine, one libvirt host); delete is the runtime handler's (it knows about disks and
triggers); cordon and uncordon write the data folder's cordon store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from backends.verbs import (
    Deletable, Executable, Invokable, Planned, Restartable, Scalable, Startable, Stoppable, WithActions,
)
from console.gate import ACTIONS, register_action
from console.resource_kinds import kind_named

# Modules that declare actions the console offers: the resource commands (workload.apply,
# resource.delete, node.cordon, node.uncordon) and the supervisor (workload.scale). Without one
# of them, its actions are simply not offered.
for _declaring in ("console.commands.resources", "console.supervisor.gated_actions"):
    try:
        __import__(_declaring)
    except ImportError:
        pass
from console.tui.console_services import ConsoleServices

# The console's own change: writing a spec file from the editor (kept as NAME~ beforehand).
SPEC_SAVE = register_action("spec.save", description="write a spec file from the console's editor")

# Lifecycle changes the console makes on a backend (the CLI has no start/stop commands): the
# console declares them; a backend offers them by implementing the verb's protocol.
register_action("resource.start", description="start a stopped container or VM")
register_action("resource.stop", destructive=True, description="stop a running container or VM")
register_action("resource.restart", destructive=True, description="restart a container or VM")
register_action("container.exec", description="run a command in a running container and show its output")


@dataclass(frozen=True)
class ResourceVerb:
    verb: str  # the console's name (bindings, palette)
    action: str  # the gate's action name
    carried_by: type | None  # the protocol of what carries it out (backends/verbs.py)
    method: Callable[[Any], Callable[..., Any]] | None  # that protocol's call on an implementer
    on: Literal["backend", "handler", "cordons"]  # where the implementer lives
    label: str

    def carried_out_by(self, owners: Any) -> Callable[..., Any] | None:
        """The call of the first of `owners` that implements this verb's protocol."""
        for owner in owners:
            if self.carried_by is not None and self.method is not None and isinstance(owner, self.carried_by):
                return self.method(owner)
        return None


# Which kind is offered which verb is its descriptor's (console/resource_kinds.py `verbs`).
VERBS: tuple[ResourceVerb, ...] = (
    ResourceVerb("start", "resource.start", Startable, lambda o: o.start, "backend", "Start"),
    ResourceVerb("stop", "resource.stop", Stoppable, lambda o: o.stop, "backend", "Stop"),
    ResourceVerb("restart", "resource.restart", Restartable, lambda o: o.restart, "backend", "Restart"),
    ResourceVerb("delete", "resource.delete", Deletable, lambda o: o.delete, "handler", "Delete"),
    ResourceVerb("exec", "container.exec", Executable, lambda o: o.exec, "backend", "Exec"),
    ResourceVerb("invoke", "function.invoke", Invokable, lambda o: o.invoke, "handler", "Invoke"),
    ResourceVerb("cordon", "node.cordon", None, None, "cordons", "Cordon"),
    ResourceVerb("uncordon", "node.uncordon", None, None, "cordons", "Uncordon"),
)
VERB_BY_NAME = {verb.verb: verb for verb in VERBS}


def is_declared(action: str) -> bool:
    return action in ACTIONS


def carrier(verb: str, pane: str, services: ConsoleServices, backend: str | None = None) -> Callable[[str], Any] | None:
    """The callable that carries out `verb` on a resource of `pane` reported by `backend`
    (any backend of the pane's kind when None), or None when nothing can."""
    spec, kind = VERB_BY_NAME.get(verb), kind_named(pane)
    if spec is None or kind is None or verb not in kind.verbs or not is_declared(spec.action):
        return None
    if spec.on == "cordons":
        store = services.cordons
        if store is None:
            return None
        return lambda node_id: store.set(node_id, verb == "cordon")
    handler = services.handler(kind.resource)
    if spec.on == "handler":
        return spec.carried_out_by([handler])
    # Lifecycle verbs live on the backend that reported the resource (libvirt: one host),
    # or on the actions of the kind's handler, which find the resource on any engine (Docker).
    names = [backend] if backend is not None else list(services.backend_names(pane))
    owners = [owner for name in names for owner in _with_actions(services.backends.get(name))]
    return spec.carried_out_by([*owners, *_with_actions(handler)])


def _with_actions(owner: Any) -> tuple[Any, ...]:
    """An object and the `actions` it carries (backends and handlers group their changes so)."""
    if owner is None:
        return ()
    return (owner, owner.actions) if isinstance(owner, WithActions) else (owner,)


def available(verb: str, pane: str, services: ConsoleServices) -> bool:
    """Whether `verb` can be offered on `pane` now (for some backend of the pane)."""
    return carrier(verb, pane, services) is not None


def offered(pane: str, services: ConsoleServices) -> tuple[ResourceVerb, ...]:
    return tuple(spec for spec in VERBS if available(spec.verb, pane, services))


def apply_available(services: ConsoleServices, resource: str) -> bool:
    """`workload.apply` for documents whose runtime has a handler (plan + apply)."""
    return is_declared("workload.apply") and isinstance(services.handler(resource), Planned)


def scaler(services: ConsoleServices) -> Callable[..., Any] | None:
    """The callable that sets a workload's replica count (`workload.scale`), if any."""
    if not is_declared("workload.scale"):
        return None
    for owner in _with_actions(services.handler("container")):
        if isinstance(owner, Scalable):
            return owner.scale
    return None


def scale_available(services: ConsoleServices) -> bool:
    return scaler(services) is not None
