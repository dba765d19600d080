"""What every backend offers: a poll, an availability report, and typed unavailability.

A backend adapts one configured runtime (the host through psutil, a Docker engine, a libvirt
host, an AWS account, the local functions runtime) to the records in backends/records.py.
The poller calls `poll()` from a worker thread; nothing here may touch the UI.

Raw SDK exceptions never cross this boundary: a backend that cannot reach its runtime raises
`BackendUnavailable` carrying an `Availability` that says where it looked, what went wrong and
what to try. Heavy SDKs (docker, libvirt, boto3) are imported inside the backend that needs
them, so configuring no Docker endpoint means docker-py is never imported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from backends.records import KindSnapshot

BackendKind = Literal["nodes", "containers", "vms", "functions"]

# "pending" means the backend has not been contacted yet (the poller's state before a
# backend's first poll ends); the other four are answers from an attempt or from the config.
AvailabilityState = Literal["pending", "connected", "unreachable", "not_installed", "disabled"]

_STATE_WORDS: dict[str, str] = {
    "pending": "not contacted yet",
    "connected": "connected",
    "unreachable": "unreachable",
    "not_installed": "not installed",
    "disabled": "disabled",
}


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and newlines so a message fits one table cell or log line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Availability:
    """Whether a backend can be used, and if not, why and what to try."""

    backend: str  # backend type: "host", "docker", "libvirt", "lambda", "local-functions"
    endpoint: str  # address or URI the backend talks to
    state: AvailabilityState
    cause: str = ""  # what went wrong, for people ("connection refused")
    hint: str = ""  # what to try or what to install
    sandbox: bool = False  # an embedded stand-in (libvirt test driver, local functions)
    read_only: bool = False  # opened read-only (kiosk mode, or the endpoint only allows reads)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def describe(self) -> str:
        """One line for people, e.g. `docker at unix:///var/run/docker.sock: unreachable
        (connection refused); try: start the Docker daemon`."""
        text = f"{self.backend} at {self.endpoint}: {_STATE_WORDS.get(self.state, self.state)}"
        notes = [note for note, on in (("sandbox", self.sandbox), ("read-only", self.read_only)) if on]
        if notes:
            text += f" [{', '.join(notes)}]"
        if self.cause:
            text += f" ({self.cause})"
        if self.hint:
            text += f"; try: {self.hint}"
        return one_line(text, limit=500)


class BackendUnavailable(Exception):
    """Raised by poll() and by actions when the backend's runtime cannot be used."""

    def __init__(self, availability: Availability) -> None:
        super().__init__(availability.describe())
        self.availability = availability


@runtime_checkable
class Backend(Protocol):
    """The interface every backend implements; kind-specific action protocols extend it.

    - `name` is unique per configured instance ("host", "docker@local", "libvirt@qemu:///system").
    - `poll()` blocks; it is called from one poller worker thread at a time and returns a fresh
      `KindSnapshot` or raises `BackendUnavailable` (other exceptions are bugs, which the poller
      logs with their traceback and shows as a one-line error).
    - `availability()` reports what the backend knows now without blocking for long; the poller
      calls it after each successful poll.
    - `close()` releases connections; the owner of the backend calls it, not the poller.
    """

    name: str
    kind: BackendKind
    endpoint: str

    def poll(self) -> KindSnapshot: ...

    def availability(self) -> Availability: ...

    def close(self) -> None: ...


@runtime_checkable
class FocusableBackend(Protocol):
    """A backend whose per-resource statistics cost a read per resource (container cgroups):
    `focus(ids)` names the resources someone is looking at, read on every poll, while the
    others are read less often; `focus(None)` (the default) reads them all on every poll."""

    def focus(self, resource_ids: Collection[str] | None) -> None: ...
