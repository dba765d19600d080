"""Typed errors of the Docker backend: what crosses the backend boundary instead of SDK errors.

An engine that cannot be reached is `backends.base.BackendUnavailable`. A request the engine
refused, or one that cannot be made (a bad spec value, a missing container or image, a runtime
the engine lacks), is one of the `ValueError` subclasses below, with a one-line message and,
where there is something to try, a hint.
"""

from __future__ import annotations


class DockerRequestError(ValueError):
    """A request the engine refused or that cannot be made; `str()` is one line for people."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}; try: {self.hint}"


class SpecMappingError(DockerRequestError):
    """The spec cannot become a create request (raised before any engine is contacted)."""


class ContainerNotFound(DockerRequestError, LookupError):
    """No container of that name or id on any configured engine (also a LookupError, as
    every "nothing is named that" is)."""


class RuntimeNotAvailable(DockerRequestError):
    """The spec names an OCI runtime the engine does not have."""


class ImagePullError(DockerRequestError):
    """The image is not on the engine and could not be pulled (registry unreachable, unknown image)."""


class ExecTimeout(DockerRequestError):
    """An exec ran past its timeout; `output` holds what it printed until then."""

    def __init__(self, message: str, output: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.output = output
