"""ssh:// engines: the test engine driven through the test setup's sshd on loopback.

scripts/services.sh starts an sshd with a key pair and a known_hosts of its own, and writes ssh
Host blocks for it (the key accepted, a key refused, a known_hosts with another host key); the
backend runs the plain `ssh` command as it does for any ssh:// engine. The tests that stop an
sshd or point it at a dead engine start one of their own on another port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from backends.base import BackendUnavailable
from backends.docker import DockerSetup, make_docker_handlers
from backends.docker.backend import DockerBackend
from fixtures import require_service
from test_docker_support import SAMPLES, eventually, remove_all, run_container, workload_document

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent


def _ssh_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        require_service("sshd for ssh:// engines", f"{name} is not set: scripts/services.sh up (or up-ssh) starts it")
    return value


@pytest.fixture(scope="module")
def ssh_host(docker_client) -> str:
    """ssh://ALIAS of the setup's sshd, checked to reach the test engine."""
    host = _ssh_env("RTM_TEST_SSH_DOCKER_HOST")
    alias = host.removeprefix("ssh://")
    answer = subprocess.run(["ssh", alias, "docker", "version", "--format", "{{.Server.Version}}"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if answer.returncode != 0:
        require_service("sshd for ssh:// engines", f"`ssh {alias} docker version` failed: {answer.stderr.strip()}")
    return host


@pytest.fixture(scope="module")
def setup(ssh_host) -> Iterator[DockerSetup]:
    built = make_docker_handlers([ssh_host], stop_timeout=1)
    yield built
    built.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateSshd:
    """An sshd of the test's own: the setup's configuration on another port, optionally with
    another DOCKER_HOST for the sessions. `drop()` kills it with every connection it serves."""

    def __init__(self, folder: Path, docker_host: str) -> None:
        ssh_dir = Path(_ssh_env("RTM_TEST_SSH_DIR"))
        self.port = _free_port()
        text = (ssh_dir / "sshd_config").read_text()
        text = re.sub(r"(?m)^Port .*$", f"Port {self.port}", text)
        text = re.sub(r"(?m)^PidFile .*$", f"PidFile {folder}/sshd.pid", text)
        text = re.sub(r"(?m)^SetEnv DOCKER_HOST=.*$", f"SetEnv DOCKER_HOST={docker_host}", text)
        self.config = folder / "sshd_config"
        self.config.write_text(text)
        self.log = folder / "sshd.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        assert eventually(self._listening, 20, 0.1), self.log.read_text()

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def drop(self) -> None:
        """The sshd and the sessions it serves die at once (each session has a session of its own)."""
        if self.process is None:
            return
        listener = psutil.Process(self.process.pid)
        for child in listener.children(recursive=True):
            child.send_signal(signal.SIGKILL)
        self.process.kill()
        self.process.wait()
        self.process = None


@pytest.fixture
def private_sshd(tmp_path: Path) -> Iterator[Callable[..., PrivateSshd]]:
    started: list[PrivateSshd] = []

    def start(docker_host: str = os.environ.get("DOCKER_HOST", "")) -> PrivateSshd:
        sshd = PrivateSshd(tmp_path, docker_host)
        sshd.start()
        started.append(sshd)
        return sshd

    yield start
    for sshd in started:
        sshd.drop()


def _unreachable(host: str) -> BackendUnavailable:
    backend = DockerBackend(host)
    try:
        with pytest.raises(BackendUnavailable) as failure:
            backend.poll()
    finally:
        backend.close()
    assert failure.value.availability.state == "unreachable" and failure.value.availability.endpoint == host
    return failure.value


# ------------------------------------------------------------------------ list, stats, apply, logs, exec


def test_list_and_stats_through_ssh(ssh_host, docker_client, test_image, test_labels, run_id) -> None:
    container = run_container(docker_client, test_image, ["sh", "-c", "while :; do :; done"], test_labels, name=f"{run_id}-sshbusy")
    backend = DockerBackend(ssh_host)
    try:
        def busy_record():
            record = next((c for c in backend.poll().items if c.id == container.id), None)
            return record if record is not None and record.cpu_ratio else None

        record = eventually(busy_record, 60, 0.5)
        assert record is not None, "no CPU figure for the container through ssh"
        assert record.name == f"{run_id}-sshbusy" and record.state == "running" and record.memory_working_set_bytes > 0
        assert record.cpu_ratio > 0.1  # it spins: the stream through ssh carries live figures
        assert backend.availability().connected and backend.availability().describe() == f"docker at {ssh_host}: connected"
    finally:
        backend.close()
        container.remove(force=True)


def test_apply_logs_exec_and_delete_through_ssh(setup, docker_client, test_image, test_labels, run_id) -> None:
    name = f"{run_id}-sshweb"
    document = workload_document(name, test_image, test_labels)
    try:
        changes = setup.handler.plan(document, SAMPLES)
        assert [c.action for c in changes] == ["create", "create"]
        setup.handler.apply(document, SAMPLES, changes, lambda _line: None)
        first = f"{name}-0"
        assert docker_client.containers.get(first).status == "running"
        result = setup.actions.exec(first, "echo through-ssh; id -u")
        assert (result.exit_code, result.output.split()) == (0, ["through-ssh", "1000"])
        failed = setup.actions.exec(first, ["sh", "-c", "exit 3"])
        assert failed.exit_code == 3
        setup.actions.exec(first, "echo a-log-line > /proc/1/fd/1")
        assert eventually(lambda: "a-log-line" in list(setup.handler.logs(first, tail=20)), 20)
        assert [c.action for c in setup.handler.plan(document, SAMPLES)] == ["unchanged", "unchanged"]
        lines = setup.handler.delete(name)
        assert len(lines) == 2 and not docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


# ------------------------------------------------------------------------ what goes wrong, in words


def test_a_refused_key_is_named_with_what_to_do(ssh_host) -> None:
    host = _ssh_env("RTM_TEST_SSH_WRONG_KEY_DOCKER_HOST")
    failure = _unreachable(host)
    availability = failure.availability
    assert availability.cause.startswith(f"ssh: {host.removeprefix('ssh://')} refused the key (")
    assert "Permission denied (publickey)" in availability.cause
    assert "IdentityFile" in availability.hint and "never asks for a password" in availability.hint


def test_a_host_key_that_is_not_the_known_one_is_named_with_what_to_do(ssh_host) -> None:
    host = _ssh_env("RTM_TEST_SSH_WRONG_HOST_KEY_DOCKER_HOST")
    failure = _unreachable(host)
    availability = failure.availability
    assert availability.cause.startswith(f"ssh: the host key of {host.removeprefix('ssh://')} is not the one in known_hosts (")
    assert "has changed" in availability.cause and "ssh-keygen -R" in availability.hint
    assert str(failure).startswith(f"docker at {host}: unreachable (ssh: the host key")


def test_an_engine_whose_ssh_connection_drops_is_unreachable_and_comes_back(ssh_host, private_sshd) -> None:
    sshd = private_sshd()
    host = f"{ssh_host}:{sshd.port}"
    backend = DockerBackend(host)
    try:
        assert backend.poll() is not None and backend.availability().connected
        sshd.drop()
        with pytest.raises(BackendUnavailable) as dropped:
            backend.poll()
        availability = dropped.value.availability
        assert availability.state == "unreachable" and backend.availability().state == "unreachable"
        destination = host.removeprefix("ssh://")
        assert availability.cause in (f"ssh: connection refused by {destination}",) or \
            availability.cause.startswith(f"ssh: the connection to {destination} was closed (")
        assert "sshd" in availability.hint
        # While it stays down, every poll says it is refused.
        with pytest.raises(BackendUnavailable) as still:
            backend.poll()
        assert still.value.availability.cause == f"ssh: connection refused by {destination}"
        sshd.start()
        assert eventually(lambda: _polls(backend), 30, 0.5), "the engine did not come back through ssh"
        assert backend.availability().connected
    finally:
        backend.close()


def _polls(backend: DockerBackend) -> bool:
    try:
        backend.poll()
    except BackendUnavailable:
        return False
    return True


def test_an_sshd_that_does_not_answer_is_named_by_ssh_in_time(ssh_host, private_sshd) -> None:
    sshd = private_sshd()
    host = f"{ssh_host}:{sshd.port}"
    os.kill(sshd.process.pid, signal.SIGSTOP)  # it accepts connections (the kernel does) but never speaks
    try:
        failure = _unreachable(host)
    finally:
        os.kill(sshd.process.pid, signal.SIGCONT)
    assert failure.availability.cause.startswith(f"ssh: no answer from {host.removeprefix('ssh://')} in time (")
    assert "sshd" in failure.availability.hint


def test_sshd_that_answers_for_a_dead_engine_says_the_engine_is_down(ssh_host, private_sshd, tmp_path) -> None:
    sshd = private_sshd(docker_host=f"unix://{tmp_path}/no-engine.sock")
    host = f"{ssh_host}:{sshd.port}"
    failure = _unreachable(host)
    assert failure.availability.cause.startswith(f"ssh reached {ssh_host.removeprefix('ssh://')}, but the Docker daemon there does not answer (")
    assert "start dockerd" in failure.availability.hint


def test_a_host_that_is_not_in_known_hosts_at_all_is_refused_without_a_prompt(ssh_host, private_sshd) -> None:
    sshd = private_sshd()
    host = f"ssh://root@127.0.0.1:{sshd.port}"  # no Host block: the user's own known_hosts, which lacks it
    failure = _unreachable(host)
    assert failure.availability.cause.startswith("ssh: the host key of 127.0.0.1 is not known (")
    assert "connect once with `ssh 127.0.0.1`" in failure.availability.hint


def test_ssh_runs_in_batch_mode_with_a_connect_timeout_and_keep_alives() -> None:
    from backends.docker.ssh import SshDestination

    command = SshDestination.of("ssh://ops@web-02:2222").command()
    assert command[:1] == ["ssh"] and command[-3:] == ["--", "web-02", "docker system dial-stdio"]
    options = [command[i + 1] for i, arg in enumerate(command) if arg == "-o"]
    assert options == ["BatchMode=yes", "ConnectTimeout=8", "ServerAliveInterval=15", "ServerAliveCountMax=2"]
    assert command[command.index("-l") + 1] == "ops" and command[command.index("-p") + 1] == "2222"


# ------------------------------------------------------------------------ the command line


def _rtm_console(tmp_path: Path, docker_host: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": docker_host, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def test_get_containers_through_ssh_and_a_refused_key_on_the_command_line(ssh_host, docker_client, test_image, test_labels, run_id, tmp_path) -> None:
    container = run_container(docker_client, test_image, ["sleep", "600"], test_labels, name=f"{run_id}-sshcli")
    try:
        listed = _rtm_console(tmp_path, ssh_host, "get", "containers", "--json")
        assert listed.returncode == 0, listed.stderr
        record = next(c for c in json.loads(listed.stdout) if c["id"] == container.id)
        assert record["state"] == "running" and record["engine"] == f"docker@{ssh_host.removeprefix('ssh://')}"
    finally:
        container.remove(force=True)
    wrong = _ssh_env("RTM_TEST_SSH_WRONG_KEY_DOCKER_HOST")
    refused = _rtm_console(tmp_path, wrong, "get", "containers")
    assert refused.returncode != 0 and refused.stdout == ""
    assert f"docker at {wrong}: unreachable (ssh: {wrong.removeprefix('ssh://')} refused the key (" in refused.stderr


def test_ssh_runs_in_a_session_of_its_own_and_prints_nothing_over_the_screen(ssh_host, capfd) -> None:
    backend = DockerBackend(ssh_host)
    try:
        backend.poll()
        ssh_children = [p for p in psutil.Process().children(recursive=True) if p.name() == "ssh"]
        assert ssh_children, "no ssh process serves the engine"
        assert all(os.getsid(child.pid) == child.pid != os.getsid(0) for child in ssh_children)  # Ctrl-C here does not reach them
    finally:
        backend.close()
    _unreachable(_ssh_env("RTM_TEST_SSH_WRONG_KEY_DOCKER_HOST"))
    captured = capfd.readouterr()
    assert "Permission denied" not in captured.err + captured.out  # ssh's words went into the error, not onto the terminal
