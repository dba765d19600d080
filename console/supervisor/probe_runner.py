"""Running one probe against one replica: a command inside the container, an HTTP GET or a
TCP connect to the container's address. Every kind is bounded by the probe's timeout.

Outcomes follow Kubernetes: a command passes on exit code 0, HTTP on a status from 200 to 399
(redirects are not followed: a 3xx is itself a pass), TCP when the connection opens.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from backends.base import BackendUnavailable, one_line
from backends.docker.errors import DockerRequestError
from backends.docker.replicas import Replica
from console.supervisor.engines import Engine
from rtm.kinds.health import Probe


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    detail: str  # one line: what was seen


def run_probe(probe: Probe, replica: Replica, engine: Engine) -> ProbeOutcome:
    if probe.command is not None:
        return command_probe(probe, replica.id, engine)
    if replica.address is None:
        return ProbeOutcome(False, "the container has no address to probe")
    if probe.http is not None:
        return http_probe(replica.address, probe.http.port, probe.http.path, probe.timeout, probe.http.scheme)
    if probe.tcp is not None:
        return tcp_probe(replica.address, probe.tcp.port, probe.timeout)
    return ProbeOutcome(False, "the probe has no command, http or tcp part")


def command_probe(probe: Probe, container_id: str, engine: Engine) -> ProbeOutcome:
    """The probe's command run in the container through its engine: passes on exit code 0."""
    command = probe.exec_command or []
    try:
        result = engine.exec(container_id, command, probe.timeout)
    except (BackendUnavailable, DockerRequestError) as error:
        return ProbeOutcome(False, one_line(str(error), 200))
    if result.timed_out:
        return ProbeOutcome(False, f"timed out after {probe.timeout:g}s")
    if result.exit_code == 0:
        return ProbeOutcome(True, "exit code 0")
    tail = one_line(result.output, 120)
    return ProbeOutcome(False, f"exit code {result.exit_code}" + (f": {tail}" if tail else ""))


def http_probe(host: str, port: int, path: str, timeout: float, scheme: str = "http") -> ProbeOutcome:
    if scheme == "https":
        # As the kubelet: HTTPS probes do not verify the certificate.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "rtm-probe/1", "Connection": "close"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return ProbeOutcome(False, f"GET {path}: {_describe(error, timeout)}")
    finally:
        connection.close()
    return ProbeOutcome(200 <= status < 400, f"GET {path}: HTTP {status}")


def tcp_probe(host: str, port: int, timeout: float) -> ProbeOutcome:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ProbeOutcome(True, f"port {port} open")
    except OSError as error:
        return ProbeOutcome(False, f"port {port}: {_describe(error, timeout)}")


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g}s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return one_line(str(error) or type(error).__name__, 120)
