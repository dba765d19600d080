"""What a resource can be asked to do, one typed protocol per verb.

A backend, a runtime handler or the `actions` object either carries (Docker's ContainerActions)
offers a verb by implementing its protocol; the console offers the verbs whose protocol
something of the resource's kind implements (console/tui/offered_actions.py), instead of
looking for methods by name. Every call takes the resource's name first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Startable(Protocol):
    def start(self, name: str) -> str: ...


@runtime_checkable
class Stoppable(Protocol):
    def stop(self, name: str) -> str: ...  # gracefully, within the runtime's timeout


@runtime_checkable
class Restartable(Protocol):
    def restart(self, name: str) -> str: ...


@runtime_checkable
class Executable(Protocol):
    def exec(self, name: str, command: Any, *, timeout: float = 30.0) -> Any: ...


@runtime_checkable
class Deletable(Protocol):
    def delete(self, name: str, *, with_disk: bool = False) -> list[str]: ...


@runtime_checkable
class Invokable(Protocol):
    def invoke(self, name: str, payload: Any = None) -> Any: ...


@runtime_checkable
class Logged(Protocol):
    """Keeps logs rtm-console can read: a container's, a local function's."""

    def logs(self, name: str, *, tail: int | None = ..., follow: bool = False) -> Iterable[str]: ...


@runtime_checkable
class HostedRuntime(Protocol):
    """A handler that reaches its runtime through this process when it hosts it (the local
    functions runtime, served by the console or the agent)."""

    def attach_runtime(self, runtime: Any) -> None: ...


@runtime_checkable
class Scalable(Protocol):
    def scale(self, workload: str, replicas: int) -> Any: ...


@runtime_checkable
class Planned(Protocol):
    """A runtime handler that plans and applies documents (`workload.apply`)."""

    def plan(self, document: Any, base_dir: Any) -> Any: ...

    def apply(self, document: Any, base_dir: Any, changes: Any, progress: Any) -> Any: ...


@runtime_checkable
class WithActions(Protocol):
    """A backend or handler that groups its changes in an `actions` object."""

    actions: object
