"""Faults: an engine that stops and comes back, bad specs, image pulls and unreachable registries.

Tests that stop an engine use one of their own (fixtures.engines.private_dockerd), so the rest
of the suite keeps the shared engine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from backends.base import BackendUnavailable
from backends.docker import make_docker_handlers
from backends.docker.backend import DockerBackend
from backends.docker.errors import SpecMappingError
from backends.handlers import ApplyError
from fixtures.engines import private_dockerd
from test_docker_support import SAMPLES, eventually, workload_document

pytestmark = pytest.mark.docker


# ------------------------------------------------------------------------ no engine call for a bad spec


@pytest.fixture
def counting_socket(tmp_path: Path):
    """A unix socket that counts the connections made to it (and closes them at once)."""
    path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.05)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}", accepted
    stop.set()
    thread.join(2)
    server.close()


def test_an_invalid_spec_is_refused_before_any_engine_is_contacted(counting_socket, tmp_path, test_labels) -> None:
    host, accepted = counting_socket
    handler = make_docker_handlers([host]).handler
    bad = workload_document("bad", "busybox", test_labels, edit=lambda t: t.replace('"runtime/default"', '"profiles/missing.json"'))
    with pytest.raises(SpecMappingError, match="cannot read"):
        handler.plan(bad, tmp_path)
    with pytest.raises(SpecMappingError):
        handler.apply(bad, tmp_path, [], lambda _line: None)
    # A knock of the test's own, once the socket has closed it, was accepted after every
    # connection made before it: the handler's would be counted ahead of it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as knock:
        knock.settimeout(30)
        knock.connect(host.removeprefix("unix://"))
        assert knock.recv(1) == b""
    assert accepted == [1]
    # The same handler with a valid spec does knock: the counter sees connections.
    with pytest.raises(BackendUnavailable):
        handler.plan(workload_document("good", "busybox", test_labels), tmp_path)
    assert eventually(lambda: len(accepted) > 1, 5)


# ------------------------------------------------------------------------ an engine of the test's own


@pytest.fixture(scope="module")
def engine(docker_client, test_image):
    with private_dockerd(images=[test_image]) as private:
        yield private


def test_engine_down_is_a_typed_error_at_once_and_recovery_is_automatic(engine, test_image, test_labels, run_id) -> None:
    client = engine.client()
    kept = client.containers.run(test_image, ["sleep", "600"], detach=True, init=True, name=f"{run_id}-kept",
                                 labels=test_labels, restart_policy={"Name": "always"})
    files = DockerBackend(engine.host, stats="cgroup")
    streams = DockerBackend(engine.host, stats="stream")
    try:
        for backend in (files, streams):
            before = {c.id: c for c in backend.poll().items}
            assert before[kept.id].state == "running" and before[kept.id].cpu_ratio is not None
        engine.stop()
        for backend in (files, streams):
            with pytest.raises(BackendUnavailable) as down:  # the very next poll says so
                backend.poll()
            availability = down.value.availability
            assert availability.state == "unreachable" and availability.endpoint == engine.host
            assert availability.cause in ("connection refused", f"no socket at {engine.host.removeprefix('unix://')}")
            assert "start the Docker daemon" in availability.hint
            assert engine.host in str(down.value)
            assert backend.availability().state == "unreachable"
        engine.start()
        for backend in (files, streams):
            recovered = eventually(lambda b=backend: _poll_or_none(b, kept.id), 30, 0.5)
            assert recovered is not None, f"{backend.name} did not recover"
            assert recovered.state == "running" and recovered.cpu_ratio is not None
            assert backend.availability().connected
        late = client.containers.run(test_image, ["sleep", "600"], detach=True, init=True, name=f"{run_id}-late", labels=test_labels)
        for backend in (files, streams):
            assert eventually(lambda b=backend: _poll_or_none(b, late.id), 15) is not None  # the event stream is back
    finally:
        files.close()
        streams.close()
        for container in client.containers.list(all=True, filters={"label": "rtm.test=1"}):
            container.remove(force=True)
        client.close()


def _poll_or_none(backend: DockerBackend, container_id: str):
    try:
        record = next((c for c in backend.poll().items if c.id == container_id), None)
    except BackendUnavailable:
        return None
    return record if record is not None and record.cpu_ratio is not None else None


class FreezingProxy:
    """tcp://127.0.0.1:PORT in front of an engine's unix socket. `partition()` freezes every open
    connection (data is swallowed both ways, nothing is closed: a half-open path) and refuses new
    ones; `heal()` lets new connections through again, while the frozen ones stay frozen."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.generation = 0
        self.partitioned = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.partitioned:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.socket_path)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, self.generation), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, generation: int) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if generation == self.generation:
                try:
                    target.sendall(data)
                except OSError:
                    break
        for end in (source, target):
            end.close()

    def partition(self) -> None:
        self.generation += 1
        self.partitioned = True

    def heal(self) -> None:
        self.partitioned = False

    def close(self) -> None:
        self.listener.close()


def test_after_a_network_partition_a_silent_event_stream_is_replaced(engine, test_image, test_labels, run_id) -> None:
    proxy = FreezingProxy(engine.host.removeprefix("unix://"))
    backend = DockerBackend(proxy.address, timeout=2)
    client = engine.client()
    try:
        backend.poll()
        proxy.partition()
        with pytest.raises(BackendUnavailable):
            backend.poll()
        created = client.containers.run(test_image, ["sleep", "600"], detach=True, init=True, name=f"{run_id}-unseen", labels=test_labels)
        proxy.heal()
        # The old event stream is still open but will never speak again: only a new
        # subscription can show the container started during the partition.
        seen = eventually(lambda: any(c.id == created.id for c in _poll_quietly(backend)), 20, 0.5)
        assert seen
    finally:
        backend.close()
        proxy.close()
        for container in client.containers.list(all=True, filters={"label": "rtm.test=1"}):
            container.remove(force=True)
        client.close()


def _poll_quietly(backend: DockerBackend) -> tuple:
    try:
        return backend.poll().items
    except BackendUnavailable:
        return ()


def test_listing_over_two_engines_keeps_the_one_that_answers(engine, test_labels) -> None:
    engine.stop()
    try:
        setup = make_docker_handlers([os.environ["DOCKER_HOST"], _Endpoint("spare", engine.host)])
        records = setup.handler.list()
        assert all(r.engine == "docker@local" for r in records)
        (problem,) = setup.handler.unreachable
        assert problem.availability.endpoint == engine.host
        only_spare = make_docker_handlers([_Endpoint("spare", engine.host)])
        with pytest.raises(BackendUnavailable):
            only_spare.handler.list()
        setup.close()
        only_spare.close()
    finally:
        engine.start()


class _Endpoint:
    """An endpoint as the console's configuration describes one (name, host, tls)."""

    def __init__(self, name: str, host: str) -> None:
        self.name, self.host, self.tls = name, host, None


def test_the_engine_is_a_docker_node_less_what_its_containers_requested(engine, test_image, test_labels, run_id) -> None:
    setup = make_docker_handlers([_Endpoint("spare", engine.host)], stop_timeout=1)
    client = engine.client()
    try:
        info = client.info()
        (empty,) = setup.nodes()
        assert (empty.id, empty.runtimes, empty.labels["engine"]) == ("spare", frozenset({"docker"}), "spare")
        assert empty.cpu_millis == info["NCPU"] * 1000 and empty.memory_bytes == info["MemTotal"]
        document = workload_document(f"{run_id}-node", test_image, test_labels, replicas=2)
        setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)
        # The table follows the engine's events: wait until both replicas are in it.
        busy = eventually(lambda: next((n for n in setup.nodes() if n.connections == 2), None), 10)
        assert busy is not None
        assert busy.cpu_millis == info["NCPU"] * 1000 - 2 * 100  # requests.cpu 100m each
        assert busy.memory_bytes == info["MemTotal"] - 2 * 32 * 1024 * 1024  # requests.memory 32Mi each
    finally:
        setup.close()
        for container in client.containers.list(all=True, filters={"label": "rtm.test=1"}):
            container.remove(force=True)
        client.close()


def test_replicas_are_placed_across_engines(engine, docker_client, test_labels, test_image, run_id) -> None:
    setup = make_docker_handlers([os.environ["DOCKER_HOST"], _Endpoint("spare", engine.host)], stop_timeout=1)
    name = f"{run_id}-spread"
    round_robin = lambda t: t.replace('algorithms: ["least_connections", "round_robin"]', 'algorithms: ["round_robin"]')
    document = workload_document(name, test_image, test_labels, replicas=2, edit=round_robin)
    try:
        done = setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)
        assert done == [f"created container/{name}-0 on docker@local", f"created container/{name}-1 on docker@spare"]
        engines = {r.name: r.engine for r in setup.handler.list() if r.workload == name}
        assert engines == {f"{name}-0": "docker@local", f"{name}-1": "docker@spare"}
        assert [c.action for c in setup.handler.plan(document, SAMPLES)] == ["unchanged", "unchanged"]
        grown = setup.actions.scale(name, 4)  # least_connections: where depends on the engines' other replicas
        assert [line.rsplit(" on ", 1)[0] for line in grown] == [f"created container/{name}-2", f"created container/{name}-3"]
        assert {line.rsplit(" on ", 1)[1] for line in grown} <= {"docker@local", "docker@spare"}
        assert len(setup.handler.delete(name)) == 4
    finally:
        setup.close()
        for client in (docker_client, engine.client()):
            for container in client.containers.list(all=True, filters={"label": f"rtm.workload={name}"}):
                container.remove(force=True)


# ------------------------------------------------------------------------ image pulls


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry (the distribution registry) on a loopback port of its own."""
    binary = "/usr/bin/docker-registry"
    if not os.access(binary, os.X_OK):
        pytest.skip("docker-registry is not installed (scripts/services.sh install adds it)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {root}/data}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).status == 200
        except OSError:
            return False

    try:
        assert eventually(answers, 20), "the registry did not answer"
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_a_missing_image_is_pulled_with_progress(engine, registry, test_image, test_labels, run_id) -> None:
    client = engine.client()
    remote = f"{registry}/{run_id}-pulled:1.0"
    # An image with a layer of its own (3 MB of random bytes), so that pulling downloads it.
    maker = client.containers.run(test_image, ["sh", "-c", "head -c 3000000 /dev/urandom > /blob"], detach=True, labels=test_labels)
    assert maker.wait(timeout=30)["StatusCode"] == 0
    maker.commit(repository=remote.rsplit(":", 1)[0], tag="1.0")
    maker.remove()
    for message in client.api.push(remote, stream=True, decode=True):
        assert "error" not in message, message
    client.images.remove(remote)
    setup = make_docker_handlers([_Endpoint("spare", engine.host)], stop_timeout=1)
    try:
        document = workload_document(f"{run_id}-pull", remote, test_labels, replicas=1)
        lines: list[str] = []
        done = setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lines.append)
        assert done == [f"created container/{run_id}-pull-0 on docker@spare"]
        assert lines[0] == f"{remote} is not on docker@spare: pulling from {registry}"
        assert any(line.startswith(f"pulling {remote}: 100% (") for line in lines), lines
        assert lines.index(f"pulled {remote}") < lines.index(done[0])
        assert client.containers.get(f"{run_id}-pull-0").status == "running"
    finally:
        setup.close()
        for container in client.containers.list(all=True, filters={"label": "rtm.test=1"}):
            container.remove(force=True)
        client.close()


@pytest.mark.parametrize(("where", "says"), [("unreachable", "is unreachable"), ("missing", "has no such image")])
def test_a_pull_that_cannot_happen_says_why(engine, registry, test_labels, run_id, where: str, says: str) -> None:
    image = f"127.0.0.1:{_free_port()}/nothing:1" if where == "unreachable" else f"{registry}/{run_id}-missing:1"
    setup = make_docker_handlers([_Endpoint("spare", engine.host)])
    try:
        document = workload_document(f"{run_id}-{where}", image, test_labels, replicas=1)
        with pytest.raises(ApplyError) as failure:
            setup.handler.apply(document, SAMPLES, setup.handler.plan(document, SAMPLES), lambda _line: None)
        registry_name = image.split("/")[0]
        assert f"cannot pull {image}: " in failure.value.cause and says in failure.value.cause
        assert registry_name in failure.value.cause
        if where == "unreachable":
            assert "load the image into the engine" in failure.value.hint
        assert engine.client().containers.list(all=True, filters={"label": f"rtm.workload={run_id}-{where}"}) == []
    finally:
        setup.close()
