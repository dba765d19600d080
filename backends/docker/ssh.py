"""ssh:// engines through the `ssh` command, as the docker CLI reaches them: one
`ssh HOST docker system dial-stdio` process per HTTP connection, speaking the Engine API over
its stdin and stdout.

So the operator's own ssh setup applies (~/.ssh/config, keys, ssh-agent, known_hosts), and no
paramiko is needed. Unlike docker-py's shell-out transport, ssh runs in batch mode (it never
prompts: the console owns the terminal), in a session of its own (Ctrl-C in the console does not
reach it), with its messages kept instead of printed over the screen; when it fails, what it said
becomes an `SshError` with a cause and a hint for people (key refused, host key changed, ...).
"""

from __future__ import annotations

import io
import os
import select
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests.adapters
import urllib3
import urllib3.connection
from docker.transport.basehttpadapter import BaseHTTPAdapter

# Seconds ssh waits for the TCP connection and the handshake: below the engine's 10 s request
# timeout, so a host that does not answer is named by ssh's own words.
CONNECT_TIMEOUT = 8
EXIT_WAIT = 2.0  # seconds to wait for ssh to exit once its output ended, to read why
BASE_URL = "http+docker://ssh"  # what docker-py's APIClient uses for ssh:// (and checks for)


@dataclass(frozen=True)
class SshDestination:
    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def of(cls, url: str) -> SshDestination:
        parts = urlsplit(url)
        return cls(parts.hostname or "", parts.username, parts.port)

    def command(self) -> list[str]:
        args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2"]
        if self.user:
            args += ["-l", self.user]
        if self.port:
            args += ["-p", str(self.port)]
        return args + ["--", self.host, "docker system dial-stdio"]

    def __str__(self) -> str:
        return (f"{self.user}@" if self.user else "") + self.host + (f":{self.port}" if self.port else "")


class SshError(ConnectionError):
    """ssh ended the connection; `cause` and `hint` say why in words for people."""

    def __init__(self, destination: SshDestination, status: int | None, said: str) -> None:
        self.destination = destination
        self.status = status
        self.said = said
        self.cause, self.hint = explain(destination, status, said)
        super().__init__(self.cause)


class SshTimeout(TimeoutError):
    """Nothing came back through ssh in time (a socket timeout, as urllib3 expects)."""

    def __init__(self, destination: SshDestination, seconds: float) -> None:
        self.cause = f"ssh: no answer from {destination} in time (nothing came back within {seconds:g} s)"
        self.hint = f"check that {destination.host} is up and that its sshd and dockerd answer (`ssh {destination.host} docker version`)"
        super().__init__(self.cause)


def _telling_line(said: str) -> str:
    lines = [line.strip() for line in said.splitlines() if line.strip() and not line.startswith("@")]
    for marker in ("Permission denied", "Host key", "REMOTE HOST IDENTIFICATION", "Could not resolve", "connect to host",
                   "closed by", "Connection closed", "Connection reset", "Cannot connect to the Docker daemon",
                   "raw stream connection", "not found"):
        found = next((line for line in lines if marker in line), None)
        if found:
            return found
    return lines[-1] if lines else ""


def explain(destination: SshDestination, status: int | None, said: str) -> tuple[str, str]:
    """(cause, hint) for an ssh that ended with `status` after printing `said`."""
    line = _telling_line(said)
    host = destination.host
    if "Permission denied" in said:
        return (f"ssh: {destination} refused the key ({line})",
                f"give ssh a key {host} accepts (IdentityFile in ~/.ssh/config, or ssh-agent); rtm-console never asks for a password")
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in said or "has changed and you have requested strict checking" in said:
        return (f"ssh: the host key of {host} is not the one in known_hosts ({line})",
                f"if {host}'s key was really replaced, remove the old one (ssh-keygen -R {host}) and accept the new one with `ssh {host}` after checking its fingerprint")
    if "Host key verification failed" in said or "No matching host key" in said:
        return (f"ssh: the host key of {host} is not known ({line})",
                f"connect once with `ssh {host}` to check and accept its key (rtm-console never asks)")
    if "Could not resolve hostname" in said:
        return f"ssh: cannot resolve {host}", "check the host name in the address or in ~/.ssh/config"
    if "Connection refused" in said:
        return f"ssh: connection refused by {destination}", f"check that sshd runs on {host} and listens on that port"
    if "timed out" in said:
        return f"ssh: no answer from {destination} in time ({line})", f"check that {host} is up and that its sshd answers on that port"
    if "Cannot connect to the Docker daemon" in said or "failed to open the raw stream connection" in said:
        return (f"ssh reached {host}, but the Docker daemon there does not answer ({line})",
                f"start dockerd on {host}, or check DOCKER_HOST for its ssh sessions")
    if status == 127 or "docker: not found" in said or "command not found" in said:
        return f"ssh reached {host}, but it has no docker command ({line})", f"install the Docker CLI on {host} (Debian: docker.io)"
    if status == 255 or line:
        return (f"ssh: the connection to {destination} was closed ({line or f'ssh exited with {status}'})",
                f"it is tried again at the next refresh; check that sshd and dockerd run on {host} (`ssh {host} docker version`)")
    return f"ssh: the connection to {destination} ended (ssh exited with {status})", f"check that `ssh {host} docker version` works"


class SshProcessSocket:
    """The socket-like end of one ssh process: what urllib3, http.client and docker-py's stream
    readers use (sendall, recv, makefile, fileno, timeouts)."""

    def __init__(self, destination: SshDestination, timeout: float | None) -> None:
        self.destination = destination
        self._timeout = timeout
        self._said = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(destination.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._said,
                                     bufsize=0, start_new_session=True)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def fileno(self) -> int:
        return self.proc.stdout.fileno()  # type: ignore[union-attr]

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = self.proc.stdin.write(view)  # type: ignore[union-attr]
                view = view[written or 0:]
        except (BrokenPipeError, ValueError):
            raise self.failure() from None

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        if self._timeout is not None and not select.select([self.fileno()], [], [], self._timeout)[0]:
            raise SshTimeout(self.destination, self._timeout)
        data = os.read(self.fileno(), size)
        if not data:
            failure = self.failure()
            if failure.status not in (0, None):
                raise failure
        return data

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_kwargs: Any) -> io.BufferedReader:
        reader = io.BufferedReader(_SshOutput(self))
        reader.channel = self  # type: ignore[attr-defined]  # docker-py finds the raw socket of a stream here
        return reader

    def failure(self) -> SshError:
        """Why the connection ended, from ssh's exit status and its messages."""
        try:
            status = self.proc.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            status = None
        self._said.seek(0)
        return SshError(self.destination, status, self._said.read().decode(errors="replace"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(EXIT_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self._said):
            if stream is not None:
                stream.close()


class _SshOutput(io.RawIOBase):
    """ssh's stdout as a raw stream, for io.BufferedReader (http.client reads through one)."""

    def __init__(self, sock: SshProcessSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def readinto(self, buffer: Any) -> int:
        data = self._sock.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class SshConnection(urllib3.connection.HTTPConnection):
    def __init__(self, destination: SshDestination, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.destination = destination

    def connect(self) -> None:
        self.sock = SshProcessSocket(self.destination, self.timeout)


class SshConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, destination: SshDestination, timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self.destination = destination
        self.seconds = timeout

    def _new_conn(self) -> SshConnection:
        return SshConnection(self.destination, self.seconds)


class SshAdapter(BaseHTTPAdapter):
    """requests' adapter for BASE_URL: one pool of ssh processes for the engine."""

    __attrs__ = requests.adapters.HTTPAdapter.__attrs__ + ["destination", "timeout", "max_pool_size"]

    def __init__(self, url: str, timeout: float, max_pool_size: int) -> None:
        self.destination = SshDestination.of(url)
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self._pool: SshConnectionPool | None = None
        super().__init__()

    def get_connection(self, url: Any, proxies: Any = None) -> SshConnectionPool:
        if self._pool is None:
            self._pool = SshConnectionPool(self.destination, self.timeout, self.max_pool_size)
        return self._pool

    def close(self) -> None:
        super().close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
