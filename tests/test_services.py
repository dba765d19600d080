"""The test setup's services really work: what later tests rely on, checked end to end."""

from __future__ import annotations

import io
import json
import os
import stat
import time
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from fixtures import load_services_env, parse_env_file, require_service
from fixtures.engines import LIBVIRTD, free_bridge_cidr, private_dockerd, private_libvirtd

TINY_GUEST_XML = """
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices/>
</domain>
"""


def _wait_until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.2)


def _http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        require_service(what, "needs root to start a daemon of its own")


# --- environment file ----------------------------------------------------------------------------


def test_services_env_file_fills_missing_variables_without_overriding(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("export DOCKER_HOST=unix:///x/docker.sock\nexport AWS_DEFAULT_REGION='us-east-1'\n")
    environ = {"AWS_DEFAULT_REGION": "eu-west-1"}

    added = load_services_env(env_file, environ)

    assert environ == {"DOCKER_HOST": "unix:///x/docker.sock", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert added == {"DOCKER_HOST": "unix:///x/docker.sock"}
    assert parse_env_file("# comment\n\nexport A='b c'\n") == {"A": "b c"}


# --- Docker engine + test image ------------------------------------------------------------------


@pytest.mark.docker
def test_test_image_runs_httpd_that_answers_its_own_wget(docker_client, test_image, test_labels, run_id) -> None:
    assert docker_client.ping()
    container = docker_client.containers.run(
        test_image, ["httpd", "-f", "-p", "8080"], name=f"{run_id}-httpd", labels=test_labels, detach=True
    )
    try:

        def fetch() -> str | None:
            code, output = container.exec_run(["wget", "-q", "-O-", "http://127.0.0.1:8080/health"])
            return output.decode().strip() if code == 0 else None

        assert _wait_until(fetch) == "ok"
        code, output = container.exec_run(["sh", "-c", "command -v sleep nc wget httpd && id app"])
        assert code == 0, output
        assert "uid=1000(app)" in output.decode()
    finally:
        container.remove(force=True)


# --- libvirt + QEMU ------------------------------------------------------------------------------


@pytest.mark.libvirt
def test_system_libvirt_has_qemu_guests_and_an_active_default_pool(libvirt_uri) -> None:
    import libvirt

    conn = libvirt.open(libvirt_uri)
    try:
        capabilities = ET.fromstring(conn.getCapabilities())
        x86_domain_types = {
            domain.get("type")
            for guest in capabilities.iter("guest")
            if guest.find("arch").get("name") == "x86_64"
            for domain in guest.iter("domain")
        }
        assert "qemu" in x86_domain_types
        pool = conn.storagePoolLookupByName("default")
        assert pool.isActive()
        assert ET.fromstring(pool.XMLDesc()).get("type") == "dir"
    finally:
        conn.close()


@pytest.mark.libvirt
def test_system_libvirt_starts_and_destroys_a_tiny_guest(libvirt_uri, run_id) -> None:
    import libvirt

    conn = libvirt.open(libvirt_uri)
    try:
        guest = conn.createXML(TINY_GUEST_XML.format(name=f"{run_id}-tiny"), 0)
        try:
            assert guest.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        finally:
            guest.destroy()
        assert f"{run_id}-tiny" not in [domain.name() for domain in conn.listAllDomains()]
    finally:
        conn.close()


@pytest.mark.libvirt
def test_kvm_device_is_open_to_the_qemu_user(libvirt_uri) -> None:
    if not Path("/dev/kvm").exists():
        pytest.skip("this machine has no /dev/kvm: only TCG guests can run")
    mode = stat.S_IMODE(os.stat("/dev/kvm").st_mode)
    assert mode & 0o006 == 0o006, f"/dev/kvm is {oct(mode)}: KVM guests run by libvirt-qemu would fail"


# --- moto (AWS) ----------------------------------------------------------------------------------


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def main(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.mark.aws
def test_moto_answers_sts_iam_and_invokes_lambda_without_docker(aws_endpoint, run_id) -> None:
    import boto3

    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"
    iam = boto3.client("iam")
    awslambda = boto3.client("lambda")
    role_name = f"{run_id}-role"
    function_name = f"{run_id}-echo"
    role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]
    try:
        assert iam.get_role(RoleName=role_name)["Role"]["Arn"] == role["Arn"]
        awslambda.create_function(
            FunctionName=function_name, Runtime="python3.12", Role=role["Arn"],
            Handler="handler.main", Code={"ZipFile": _function_zip()},
        )  # fmt: skip
        try:
            result = awslambda.invoke(FunctionName=function_name, Payload=json.dumps({"ping": 1}))
            assert result["StatusCode"] == 200
            assert "FunctionError" not in result
            # moto's docker-free Lambda echoes the event: proof the setup switched it over.
            assert json.loads(result["Payload"].read()) == {"ping": 1}
        finally:
            awslambda.delete_function(FunctionName=function_name)
    finally:
        iam.delete_role(RoleName=role_name)


# --- engines of a test's own ---------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_private_dockerd_goes_down_and_comes_back_with_its_containers(test_image, test_labels) -> None:
    import requests

    _require_root("private dockerd")
    with private_dockerd(bridge_cidr=free_bridge_cidr(), images=[test_image]) as engine:
        client = engine.client()
        assert client.images.get(test_image)
        container = client.containers.run(
            test_image, ["httpd", "-f", "-p", "8080"], labels=test_labels, detach=True,
            init=True, restart_policy={"Name": "always"},
        )  # fmt: skip
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        # Reached from the host over the engine's own bridge.
        assert _wait_until(lambda: _http_get(f"http://{address}:8080/health")) == "ok\n"

        engine.stop()
        with pytest.raises(requests.exceptions.ConnectionError):
            client.ping()
        assert _http_get(f"http://{address}:8080/health") is None

        engine.start()
        client = engine.client()
        assert client.ping()
        container = client.containers.get(container.id)
        assert _wait_until(lambda: container.reload() or container.status == "running")
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        assert _wait_until(lambda: _http_get(f"http://{address}:8080/health")) == "ok\n"
        client.close()


@pytest.mark.libvirt
@pytest.mark.slow
def test_private_libvirtd_goes_down_and_comes_back_with_its_guest(libvirt_uri, run_id) -> None:
    try:
        import libvirt
    except ImportError:
        require_service("libvirt-python", "not installed")
    _require_root("private libvirtd")
    if not Path(LIBVIRTD).exists():
        require_service("libvirtd", f"{LIBVIRTD} is not installed")
    name = f"{run_id}-guest"
    with private_libvirtd() as daemon:
        conn = libvirt.open(daemon.uri)
        guest = conn.createXML(TINY_GUEST_XML.format(name=name), 0)
        assert guest.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        shared = libvirt.open(libvirt_uri)
        assert name not in [domain.name() for domain in shared.listAllDomains()]
        shared.close()

        daemon.stop()
        with pytest.raises(libvirt.libvirtError):
            conn.getVersion()
        with pytest.raises(libvirt.libvirtError):
            libvirt.open(daemon.uri)

        daemon.start()
        conn = libvirt.open(daemon.uri)
        # The guest kept running while its daemon was away, and the new daemon found it again.
        assert conn.lookupByName(name).state()[0] == libvirt.VIR_DOMAIN_RUNNING
        conn.close()
