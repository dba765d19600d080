"""Session setup for tests that use the real services from `scripts/services.sh up`.

At session start the services' environment file (.services/env) is loaded into os.environ, so
`pytest` works the same whether or not it was started through `make test`; values already set
win. Fixtures here hand out clients for those services; a test whose service is missing is
skipped on a developer machine and fails in CI (CI=true), where the setup must provide it.

Label containers with `test_labels` (or at least rtm.test=1): what a crashed test leaves behind
is removed when the session ends.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (  # needs the path above
    PID_LABEL,
    RUN_LABEL,
    TEST_LABEL,
    load_services_env,
    require_service,
    services_dir,
)


def pytest_configure(config: pytest.Config) -> None:
    load_services_env(services_dir() / "env")
    try:
        import libvirt
    except ImportError:
        return
    # libvirt prints every error to stderr besides raising it; the exceptions are enough.
    libvirt.registerErrorHandler(lambda _context, _error: None, None)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A prefix unique to this test session, for names of containers, domains, functions..."""
    return f"rtmt-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def test_labels(run_id: str) -> dict[str, str]:
    """Labels for every container a test creates, so leftovers can be found and removed."""
    return {TEST_LABEL: "1", RUN_LABEL: run_id, PID_LABEL: str(os.getpid())}


@pytest.fixture(scope="session")
def docker_client():
    """A docker.DockerClient for the test engine ($DOCKER_HOST)."""
    import docker
    import requests

    host = os.environ.get("DOCKER_HOST")
    if not host:
        require_service("Docker engine", "DOCKER_HOST is not set")
    try:
        client = docker.DockerClient(base_url=host, timeout=60)  # asks the engine's API version
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        problem = f"no answer on {host}: {error}"
    else:
        yield client
        client.close()
        return
    require_service("Docker engine", problem)


@pytest.fixture(scope="session")
def test_image(docker_client) -> str:
    """The locally imported BusyBox image (sleep, httpd, wget, nc, sh); no registry is reachable."""
    import docker

    name = os.environ.get("RTM_TEST_IMAGE", "rtm-busybox:1.0")
    try:
        docker_client.images.get(name)
    except docker.errors.ImageNotFound:
        require_service(f"test image {name}", "the engine does not have it")
    return name


@pytest.fixture(scope="session")
def libvirt_uri() -> str:
    """The libvirt URI of the test setup's libvirtd (qemu:///system), checked to answer."""
    uri = os.environ.get("LIBVIRT_DEFAULT_URI", "qemu:///system")
    try:
        import libvirt
    except ImportError:
        require_service("libvirt-python", "not installed: `make venv` adds it once libvirt-dev is there")
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError as error:
        problem = f"cannot connect to {uri}: {error}"
    else:
        return uri
    require_service("libvirtd", problem)


@pytest.fixture(scope="session")
def aws_endpoint() -> str:
    """The URL of moto's AWS server ($AWS_ENDPOINT_URL), checked to answer."""
    import urllib.error
    import urllib.request

    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        require_service("moto server", "AWS_ENDPOINT_URL is not set")
    try:
        urllib.request.urlopen(f"{url}/moto-api/config", timeout=5).close()
    except (urllib.error.URLError, OSError) as error:
        problem = f"no answer on {url}: {error}"
    else:
        return url
    require_service("moto server", problem)


def _left_by_crashed_or_this_run(labels: dict[str, str]) -> bool:
    """True for containers of this session, or of a session whose process is gone. Another
    session still running on the same engine keeps its containers."""
    pid = labels.get(PID_LABEL, "")
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="session", autouse=True)
def remove_leftover_test_containers() -> Iterator[None]:
    """After the session, removes containers labelled rtm.test=1 that tests left behind."""
    yield
    host = os.environ.get("DOCKER_HOST")
    if not host:
        return
    import docker
    import requests

    try:
        client = docker.DockerClient(base_url=host, timeout=30)
        leftovers = client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return  # no engine, nothing to clean
    try:
        for container in leftovers:
            if _left_by_crashed_or_this_run(container.labels):
                try:
                    container.remove(force=True)
                except docker.errors.APIError:
                    pass  # already gone
    finally:
        client.close()


@pytest.fixture(scope="session")
def swarm(run_id: str) -> Iterator[dict[str, Any]]:
    """The test setup's 3-node Docker Swarm (scripts/services.sh up-swarm): its manager and
    worker endpoints, node hostnames and zones, and a docker.APIClient on the manager. Services
    named after this session's run id are removed afterwards, every node made active again and
    the rtm.affinity.* labels removed."""
    import docker

    manager = os.environ.get("RTM_TEST_SWARM_MANAGER")
    if not manager:
        require_service("Docker Swarm", "RTM_TEST_SWARM_MANAGER is not set: run scripts/services.sh up-swarm")
    api = docker.APIClient(base_url=manager, timeout=60)
    try:
        nodes = api.nodes()
    except docker.errors.DockerException as error:
        require_service("Docker Swarm", f"the manager {manager} does not answer: {error}")
    yield {
        "manager": manager, "workers": os.environ["RTM_TEST_SWARM_WORKERS"].split(","), "api": api,
        "hostnames": os.environ["RTM_TEST_SWARM_HOSTNAMES"].split(","), "zones": os.environ["RTM_TEST_SWARM_ZONES"].split(","),
        "hub": os.environ.get("RTM_TEST_SWARM_HUB", ""), "node_count": len(nodes),
    }  # fmt: skip
    for service in api.services():
        if service["Spec"]["Name"].startswith(run_id):
            api.remove_service(service["ID"])
    for node in api.nodes():
        spec = dict(node["Spec"])
        labels = {k: v for k, v in (spec.get("Labels") or {}).items() if not k.startswith("rtm.affinity.")}
        if spec.get("Availability") != "active" or labels != (spec.get("Labels") or {}):
            api.update_node(node["ID"], node["Version"]["Index"], {**spec, "Availability": "active", "Labels": labels})
    api.close()
