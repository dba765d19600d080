"""The control loops inside an interactive console, when no agent runs them.

One supervisor at a time per data folder: the console takes the same lock the agent takes
(with role "console"), so it runs the loops only while no agent holds it, and an agent started
meanwhile refuses and names the console. A kiosk console never runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backends.base import Backend
from console.context import AppContext, supervisor_engines
from console.datadir import FileLock, agent_lock_path, lock_holder
from console.supervisor.engines import Engine
from console.supervisor.loops import Supervisor


class EmbeddedLoops:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.supervisor: Supervisor | None = None
        self._lock = FileLock(agent_lock_path(ctx.config.data_dir), role="console")
        self._engines: list[Engine] = []

    def start(self, backends: Iterable[Backend] = ()) -> bool:
        """Run the loops here if this console may: not read-only and no agent holds the lock.
        The Docker backends among `backends` (the console's) share their connections."""
        if self.ctx.read_only or not self._lock.acquire():
            return False
        config = self.ctx.config
        self._engines = supervisor_engines(self.ctx, backends)
        self.supervisor = Supervisor(
            config.specs_dir, self._engines, self.ctx.gate, self.ctx.events, config.data_dir,
            upstream_path=config.load_balancer.upstream_path, reload_command=config.load_balancer.reload_command,
            tolerance=config.autoscaler.tolerance,
        )  # fmt: skip
        self.supervisor.start()
        return True

    @property
    def running(self) -> bool:
        return self.supervisor is not None

    def holder(self) -> dict[str, Any] | None:
        """Who runs the loops when this console does not (see console.agent.running_agent)."""
        return None if self.running else lock_holder(self._lock.path)

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        self._lock.release()
