"""Typed errors of the libvirt backend: one-line messages for people, never libvirt's raw text.

Every one is a ValueError (a bad request: wrong name, wrong state, a spec the host cannot run),
except `BackendUnavailable` from backends/base.py, which says the host cannot be reached at all.
"""

from __future__ import annotations

from dataclasses import dataclass


class VmError(ValueError):
    """A VM request that cannot be carried out; `hint` says what to try."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; try: {self.hint}" if self.hint else self.message


class LibvirtCallError(VmError):
    """libvirt refused a call; `detail` is its message (cleaned), `what` the call's purpose."""

    def __init__(self, what: str, uri: str, detail: str) -> None:
        super().__init__(f"{what} failed on {uri}: {detail}")
        self.what = what
        self.uri = uri
        self.detail = detail


class VmNotFound(VmError):
    """No domain of that name on the host (or on any configured host)."""


class VmStateError(VmError):
    """The domain is in a state that does not allow the action (e.g. suspend a shut-off VM)."""


class VmSpecError(VmError):
    """A spec that passed validation but cannot become a domain (e.g. current memory without a balloon)."""


@dataclass(frozen=True)
class HostProblem:
    """One requirement of a spec that a host does not meet."""

    requirement: str  # "security.secure_boot", "network.bridge", "storage.pool", ...
    cause: str
    hint: str = ""

    def describe(self) -> str:
        return f"{self.requirement}: {self.cause}" + (f" (try: {self.hint})" if self.hint else "")


class HostRequirementError(VmError):
    """The host cannot run the spec; found before anything was created."""

    def __init__(self, host: str, problems: tuple[HostProblem, ...]) -> None:
        self.host = host
        self.problems = problems
        causes = "; ".join(p.describe() for p in problems)
        super().__init__(f"{host} cannot run this VM: {causes}")

    def __str__(self) -> str:
        return self.message


class KvmRefused(VmError):
    """A strict apply asked for KVM on a host where KVM cannot be used."""
