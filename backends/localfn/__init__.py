"""The embedded local functions runtime: ServerlessRuntime specs really run on this machine.

Entry points for the console and the agent (they never import the modules below directly):

- `make_local_backends(config, read_only=False)` -> ([LocalFunctionsBackend], {"function": handler})
  for the poller and the resource commands; works in any process (it reads the data folder).
- `make_local_runtime(config, role="console", **options)` -> LocalFunctionsRuntime, not started:
  the process that hosts the runtime calls `.start()` / `.stop()` and hands it to the handler
  with `handler.attach_runtime(runtime)`.
- `local_host_state(data_dir)` -> HostState: who hosts the runtime now (for the console header).

`config` is the console's Config; only `config.data_dir` and `config.functions.gateway_listen`
(`.host`, `.port`) are read, so backends never import the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.localfn.backend import LocalFunctionsBackend
    from backends.localfn.handler import LocalFunctionsHandler
    from backends.localfn.hosting import HostState
    from backends.localfn.runtime import LocalFunctionsRuntime


def make_local_backends(config: Any, read_only: bool = False) -> tuple[list[LocalFunctionsBackend], dict[str, LocalFunctionsHandler]]:
    from backends.localfn.backend import LocalFunctionsBackend
    from backends.localfn.gateway import gateway_url
    from backends.localfn.handler import LocalFunctionsHandler

    listen = config.functions.gateway_listen
    handler = LocalFunctionsHandler(Path(config.data_dir), gateway_url(listen.host, listen.port))
    return [LocalFunctionsBackend(handler, read_only=read_only)], {"function": handler}


def make_local_runtime(config: Any, role: str = "console", **options: Any) -> LocalFunctionsRuntime:
    """Options: max_body_bytes, max_response_bytes, max_workers, idle_seconds, queue_timeout,
    containment, clock (see the runtime)."""
    from backends.localfn.runtime import LocalFunctionsRuntime

    listen = config.functions.gateway_listen
    return LocalFunctionsRuntime(Path(config.data_dir), listen.host, listen.port, role=role, **options)


def local_host_state(data_dir: Path | str) -> HostState:
    from backends.localfn.hosting import read_host_state
    from backends.localfn.store import STORE_FOLDER

    return read_host_state(Path(data_dir) / STORE_FOLDER)
