"""What an operator (or the agent) does to containers: start, stop, restart, remove, exec,
change limits in place, read logs, and scale a workload to N replicas.

Plain methods: the caller wraps each in the action gate. Containers are named by name or id
on any configured engine; errors are typed (ContainerNotFound, ExecTimeout, DockerRequestError,
BackendUnavailable).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.base import BackendUnavailable
from backends.docker.backend import DockerBackend
from backends.docker.errors import DockerRequestError, ExecTimeout
from backends.docker.mapping import cpu_shares, nano_cpus, resource_values
from backends.docker.replica_service import ReplicaService
from backends.docker.replicas import find_container, remove_quietly, update_body, update_resources

if TYPE_CHECKING:
    from rtm.documents import Document

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when it timed out
    output: str  # stdout and stderr interleaved, as a terminal shows them
    timed_out: bool = False


def swap_for(live_memory: int, live_swap: int, new_memory: int) -> int:
    """MemorySwap for a new memory limit that keeps the container's swap allowance: none stays
    none (swap == memory), unlimited (-1) stays unlimited, N bytes of swap stay N bytes."""
    if live_swap == -1:
        return -1
    if live_memory > 0 and live_swap > live_memory:
        return new_memory + (live_swap - live_memory)
    return new_memory


class ContainerActions:
    def __init__(self, replicas: ReplicaService) -> None:
        self.replicas = replicas
        self.backends = replicas.backends

    def _find(self, name: str) -> tuple[DockerBackend, dict[str, Any]]:
        return find_container(self.backends, name)

    def _refresh(self, backend: DockerBackend, container_id: str) -> None:
        """The cached table sees the change now, not only when its event arrives."""
        if backend.watch.synced:
            backend.watch.refresh(container_id)

    # .. lifecycle

    def start(self, name: str) -> str:
        backend, data = self._find(name)
        backend.client.call(lambda api: api.start(data["Id"]))
        self._refresh(backend, data["Id"])
        return f"started {name} on {backend.name}"

    def stop(self, name: str, timeout: float = 10.0) -> str:
        backend, data = self._find(name)
        backend.client.call(lambda api: api.stop(data["Id"], timeout=int(timeout)))
        self._refresh(backend, data["Id"])
        return f"stopped {name} on {backend.name}"

    def restart(self, name: str, timeout: float = 10.0) -> str:
        backend, data = self._find(name)
        backend.client.call(lambda api: api.restart(data["Id"], timeout=int(timeout)))
        self._refresh(backend, data["Id"])
        return f"restarted {name} on {backend.name}"

    def remove(self, name: str, *, volumes: bool = False) -> str:
        backend, data = self._find(name)
        remove_quietly(backend, data["Id"], volumes=volumes)
        return f"removed {name} from {backend.name}"

    # .. exec

    def exec(self, name: str, command: Sequence[str] | str, *, timeout: float = 30.0, user: str | None = None,
             workdir: str | None = None) -> ExecResult:
        """Runs a command in a running container and waits for it at most `timeout` seconds.
        On timeout the command is killed when the engine is local (its process is visible
        here); a remote engine has no API to stop an exec, so it is left to finish."""
        backend, data = self._find(name)
        client = backend.client
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        created = client.call(lambda api: api.exec_create(data["Id"], argv, stdout=True, stderr=True, user=user or "", workdir=workdir))
        exec_id = created["Id"]
        chunks: list[bytes] = []
        failure: list[BaseException] = []

        def read() -> None:
            try:
                for chunk in client.call(lambda api: api.exec_start(exec_id, stream=True)):
                    chunks.append(chunk)
            except BaseException as error:  # handed to the caller's thread below
                failure.append(error)

        reader = threading.Thread(target=read, name=f"rtm-docker-exec:{exec_id[:12]}", daemon=True)
        reader.start()
        reader.join(timeout)
        output = b"".join(chunks).decode(errors="replace")
        if reader.is_alive():
            killed = self._kill_exec(backend, exec_id)
            raise ExecTimeout(f"{' '.join(argv)} in {name} ran longer than {timeout:g} s" + (" and was killed" if killed else ""),
                              output, "" if killed else "the command may still be running in the container")
        if failure:
            error = failure[0]
            if isinstance(error, (DockerRequestError, BackendUnavailable)):
                raise error
            raise client.unavailable(error) or DockerRequestError(f"exec in {name} broke off: {error}") from None
        exit_code = client.call(lambda api: api.exec_inspect(exec_id)).get("ExitCode")
        return ExecResult(int(exit_code if exit_code is not None else -1), output)

    @staticmethod
    def _kill_exec(backend: DockerBackend, exec_id: str) -> bool:
        pid = int(backend.client.call(lambda api: api.exec_inspect(exec_id)).get("Pid") or 0)
        if pid <= 0 or not backend.client.is_local():
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    # .. limits

    def update_limits(self, name: str, *, cpu_millis: int | None = None, memory_bytes: int | None = None,
                      cpu_request_millis: int | None = None, memory_request_bytes: int | None = None) -> str:
        """Changes CPU and memory limits and requests in place (no restart). The memory swap
        limit moves with the memory limit, keeping the container's swap allowance."""
        backend, data = self._find(name)
        before = resource_values(data.get("HostConfig") or {})
        want = dict(before)
        if cpu_millis is not None:
            want["NanoCpus"] = nano_cpus(cpu_millis)
        if memory_bytes is not None:
            want["Memory"] = memory_bytes
            want["MemorySwap"] = swap_for(before["Memory"], before["MemorySwap"], memory_bytes)
        if cpu_request_millis is not None:
            want["CpuShares"] = cpu_shares(cpu_request_millis)
        if memory_request_bytes is not None:
            want["MemoryReservation"] = memory_request_bytes
        body = update_body(before, want)
        if not body:
            return f"{name}: limits already as asked"
        update_resources(backend, data["Id"], body)
        self._refresh(backend, data["Id"])
        return f"updated {name} in place: " + ", ".join(f"{k} {before[k]} -> {v}" for k, v in body.items() if before[k] != v)

    # .. logs

    def logs(self, name: str, *, tail: int | None = 100, follow: bool = False, timestamps: bool = False,
             since: float | None = None) -> Iterator[str]:
        """Lines of the container's output: the last `tail` (all when None) of those written at or
        after `since` (epoch seconds; all when None), then, with `follow`, new ones as they come
        until the container stops or the caller stops iterating."""
        backend, data = self._find(name)
        stream = backend.client.call(lambda api: api.logs(data["Id"], stream=True, follow=follow, tail="all" if tail is None else tail,
                                                          timestamps=timestamps, since=since))
        return _lines(stream, backend)

    # .. scale

    def scale(self, workload: str, replicas: int, *, document: Document | None = None, base_dir: Path | None = None,
              progress: Progress = lambda _line: None) -> list[str]:
        """Sets the workload's replica count through the replica service. New replicas copy the
        spec when `document` is given, else the applied spec of its desired-state record, else
        the configuration of the workload's lowest replica (with its current limits)."""
        result = self.replicas.scale(self.replicas.template(workload, document, base_dir), replicas, progress)
        return result.lines or [f"{workload} already has {replicas} replicas"]


def _lines(chunks: Any, backend: DockerBackend) -> Iterator[str]:
    """Whole lines from a stream of byte chunks; a broken stream ends in a typed error."""
    pending = b""
    try:
        for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace").rstrip("\r")
    except Exception as error:
        raise backend.client.unavailable(error) or DockerRequestError(f"the log stream broke: {error}") from None
    if pending:
        yield pending.decode(errors="replace")
