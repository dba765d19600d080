"""What the configuration gives the embedded local functions runtime. console/config builds it
(`Config.local_functions`); `make_local_backends` and `make_local_runtime` take it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalFunctionsSettings:
    data_dir: Path  # the function store, key pair and host lock live here
    gateway_host: str  # the HTTP gateway's address; an empty host means every interface
    gateway_port: int
