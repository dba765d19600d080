"""Engine addresses: tcp:// with TLS client certificates against an engine of the test's own,
and the words an unreachable address is reported with."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.base import BackendUnavailable
from backends.docker.backend import DockerBackend
from backends.docker.client import EngineEndpoint
from backends.docker.settings import TlsSettings
from fixtures.engines import PrivateDockerd, private_dockerd
from test_docker_support import eventually

pytestmark = pytest.mark.docker


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker --tlsverify` uses."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rtm test CA", "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n")
    (folder / "client.ext").write_text("extendedKeyUsage = clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
                 "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=folder)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tls_engine(tmp_path_factory, docker_client, test_image):
    """A private engine that also listens on tcp://127.0.0.1:PORT and demands client certificates."""
    certs = tmp_path_factory.mktemp("certs")
    make_certificates(certs)
    port = _free_port()
    original = PrivateDockerd._command
    extra = ["--host", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
             "--tlscert", str(certs / "server.pem"), "--tlskey", str(certs / "server-key.pem")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PrivateDockerd, "_command", lambda self: original(self) + extra)
        with private_dockerd(images=[test_image]) as engine:
            yield engine, f"tcp://127.0.0.1:{port}", certs


@dataclass(frozen=True)
class ConfiguredTls:
    """TLS settings as the console's configuration holds them."""

    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool = True


@dataclass(frozen=True)
class ConfiguredEndpoint:
    name: str
    host: str
    tls: ConfiguredTls | None


def test_tcp_with_client_certificates_lists_containers_with_stats(tls_engine, test_image, test_labels, run_id) -> None:
    engine, address, certs = tls_engine
    container = engine.client().containers.run(test_image, ["sleep", "600"], detach=True, init=True, labels=test_labels, name=f"{run_id}-tls")
    configured = ConfiguredEndpoint("secure", address, ConfiguredTls(certs / "ca.pem", certs / "client.pem", certs / "client-key.pem"))
    backend = DockerBackend(EngineEndpoint.of(configured))
    try:
        assert backend.name == "docker@secure"
        record = eventually(lambda: next((c for c in backend.poll().items if c.id == container.id), None), 20)
        assert record is not None and record.state == "running" and record.cpu_ratio is not None
        assert backend.availability().connected and backend.availability().endpoint == address
    finally:
        backend.close()
        container.remove(force=True)


def test_tcp_without_a_client_certificate_says_tls_failed(tls_engine) -> None:
    _engine, address, certs = tls_engine
    backend = DockerBackend(EngineEndpoint("secure", address, TlsSettings(ca=certs / "ca.pem")))
    try:
        with pytest.raises(BackendUnavailable) as failure:
            backend.poll()
        availability = failure.value.availability
        assert availability.endpoint == address and availability.state == "unreachable"
        assert availability.cause.startswith("TLS failed") and "tls.ca, tls.cert and tls.key" in availability.hint
    finally:
        backend.close()


def test_plain_http_to_a_closed_port_is_connection_refused() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    backend = DockerBackend(address)
    try:
        with pytest.raises(BackendUnavailable) as failure:
            backend.poll()
        assert failure.value.availability.cause == "connection refused"
        assert "dockerd listens there" in failure.value.availability.hint
        assert str(failure.value).startswith(f"docker at {address}: unreachable (connection refused); try: ")
    finally:
        backend.close()


def test_a_missing_socket_is_named(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/docker.sock"
    backend = DockerBackend(address)
    try:
        with pytest.raises(BackendUnavailable) as failure:
            backend.poll()
        assert failure.value.availability.cause == f"no socket at {tmp_path}/docker.sock"
        assert failure.value.availability.hint.startswith("start the Docker daemon (dockerd)")
    finally:
        backend.close()
