"""The embedded local functions runtime: ServerlessRuntime specs really run on this machine.

Entry points for the console and the agent (they never import the modules below directly):

- `make_local_backends(settings, read_only=False)` -> ([LocalFunctionsBackend], {"function": handler})
  for the poller and the resource commands; works in any process (it reads the data folder).
- `make_local_runtime(settings, role="console", **options)` -> LocalFunctionsRuntime, not started:
  the process that hosts the runtime calls `.start()` / `.stop()` and hands it to the handler
  with `handler.attach_runtime(runtime)`.
- `local_host_state(data_dir)` -> HostState: who hosts the runtime now (for the console header).

`settings` is a LocalFunctionsSettings (backends/localfn/settings.py: the data folder and the
gateway's address), or the console's Config, which builds one as `config.local_functions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.localfn.settings import LocalFunctionsSettings

if TYPE_CHECKING:
    from backends.localfn.backend import LocalFunctionsBackend
    from backends.localfn.handler import LocalFunctionsHandler
    from backends.localfn.hosting import HostState
    from backends.localfn.functions_host import LocalFunctionsRuntime


def make_local_backends(settings: LocalFunctionsSettings | Any, read_only: bool = False) -> tuple[list[LocalFunctionsBackend], dict[str, LocalFunctionsHandler]]:
    from backends.localfn.backend import LocalFunctionsBackend
    from backends.localfn.gateway import gateway_url
    from backends.localfn.handler import LocalFunctionsHandler

    settings = _settings(settings)
    handler = LocalFunctionsHandler(Path(settings.data_dir), gateway_url(settings.gateway_host, settings.gateway_port))
    return [LocalFunctionsBackend(handler, read_only=read_only)], {"function": handler}


def make_local_runtime(settings: LocalFunctionsSettings | Any, role: str = "console", **options: Any) -> LocalFunctionsRuntime:
    """Options: max_body_bytes, max_response_bytes, max_workers, idle_seconds, queue_timeout,
    containment, clock (see the runtime)."""
    from backends.localfn.functions_host import LocalFunctionsRuntime

    settings = _settings(settings)
    return LocalFunctionsRuntime(Path(settings.data_dir), settings.gateway_host, settings.gateway_port, role=role, **options)


def _settings(settings: LocalFunctionsSettings | Any) -> LocalFunctionsSettings:
    """The settings themselves, or the console's Config that builds them."""
    return settings if isinstance(settings, LocalFunctionsSettings) else settings.local_functions


def local_host_state(data_dir: Path | str) -> HostState:
    from backends.localfn.hosting import read_host_state
    from backends.localfn.store import STORE_FOLDER

    return read_host_state(Path(data_dir) / STORE_FOLDER)
