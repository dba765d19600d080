"""The local functions runtime as a backend for the poller: kind "functions", a sandbox.

`poll()` lists the stored functions with their invocation counts and durations (from the
store and the invocation log in the data folder, so it answers the same in every process).
`availability()` is always a sandbox (an embedded runtime, not a cloud account) and says who
hosts the runtime: this process, the agent, or nobody (then functions are stored but not
served, and the hint says how to get them served).
"""

from __future__ import annotations

import time

from backends.base import Availability, BackendKind, BackendUnavailable
from backends.localfn.handler import LocalFunctionsHandler
from backends.records import KindSnapshot

BACKEND_TYPE = "local-functions"


class LocalFunctionsBackend:
    kind: BackendKind = "functions"

    def __init__(self, handler: LocalFunctionsHandler, *, name: str = BACKEND_TYPE, read_only: bool = False) -> None:
        self.handler = handler
        self.name = name
        self.read_only = read_only

    @property
    def endpoint(self) -> str:
        state = self.handler.host_state()
        return state.url if state.hosted and state.url else self.handler.gateway_url

    def poll(self) -> KindSnapshot:
        began = time.monotonic()
        items = tuple(self.handler.list())  # BackendUnavailable when the store cannot be read
        return KindSnapshot("functions", self.name, items, time.time(), time.monotonic() - began)

    def availability(self) -> Availability:
        try:
            state = self.handler.host_state()
        except OSError as exc:
            return Availability(BACKEND_TYPE, self.handler.gateway_url, "unreachable",
                                cause=f"cannot read the function store: {exc}", sandbox=True, read_only=self.read_only)
        if state.hosted:
            return Availability(BACKEND_TYPE, state.url or self.handler.gateway_url, "connected",
                                cause=state.describe(), sandbox=True, read_only=self.read_only)
        return Availability(BACKEND_TYPE, self.handler.gateway_url, "connected",
                            cause="not hosted: functions are stored but not served",
                            hint="open the console or start `rtm-console agent` to serve them",
                            sandbox=True, read_only=self.read_only)

    def close(self) -> None:
        """Nothing to release: the runtime itself is stopped by whoever started it."""


__all__ = ["BACKEND_TYPE", "BackendUnavailable", "LocalFunctionsBackend"]
