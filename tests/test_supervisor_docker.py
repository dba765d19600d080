"""The failover supervisor on the real Docker engine: liveness restarts and giving up, the
startup probe's gate, readiness in and out of the nginx upstream, `docker kill`, and exec
timeouts. Every step must be in the event log."""

from __future__ import annotations

import os

import pytest

from console.supervisor.engines import Engine, replica_service
from supervisor_support import labels_yaml, remove_workload, start_supervisor, wait_for

pytestmark = pytest.mark.usefixtures("docker_client")


@pytest.fixture()
def engine(docker_client):
    engine = Engine(os.environ["DOCKER_HOST"])
    yield engine
    engine.close()


@pytest.fixture()
def run(tmp_path, engine, test_image, test_labels, run_id, request):
    """run(spec_body, replicas) -> a started Harness for a workload named after the test."""
    harnesses = []
    name = f"{run_id}-{request.node.name.removeprefix('test_')[:20]}".replace("_", "-").strip("-")

    def start(body: str, replicas: int = 1):
        spec = f"name: {name}\nContainerRuntime:\n  base_image: \"{test_image}\"\n  labels: {labels_yaml(test_labels)}\n{body}"
        harness = start_supervisor(tmp_path, name, spec, [engine])
        workload = harness.supervisor.reload().workloads[name]
        replica_service([engine]).scale(workload.template, replicas)
        harness.supervisor.start()
        harnesses.append(harness)
        return harness

    yield start
    for harness in harnesses:
        assert harness.supervisor.stop(timeout=10)
        remove_workload([engine], harness.workload)


def test_liveness_failure_restarts_then_gives_up_and_replaces(run, engine):
    h = run("""  command: ["sh", "-c", "[ -e /tmp/started ] || touch /tmp/started /tmp/alive; exec sleep 3600"]
HealthCheck:
  liveness: {command: ["test", "-e", "/tmp/alive"], interval: 1s, timeout: 0.8s, retries: 2}
FailoverStrategy:
  detection: {timeout: 1s, retries: 1, interval: 1s}
  recovery: {auto_restart: true, max_restart_attempts: 2, restart_delay: 1s}
""")
    original = wait_for(lambda: h.running(), what="the replica")[0]
    target = f"container/{original.name}@{original.engine}"
    wait_for(lambda: "probe_passed" in h.kinds(target), what="a passing liveness probe")
    engine.exec(original.id, ["rm", "/tmp/alive"], 5)  # the restarts do not bring it back

    wait_for(lambda: "replace" in h.kinds(target), what="the replacement", timeout=90)
    steps = [e for e in h.log(target) if e.kind in ("probe_failed", "restart_scheduled", "restart", "give_up", "replace")]
    assert [e.kind for e in steps] == [
        "probe_failed", "probe_failed", "restart_scheduled", "restart",
        "probe_failed", "probe_failed", "restart_scheduled", "restart",
        "probe_failed", "probe_failed", "give_up", "replace",
    ]
    # Each restart waited for its back-off: 1 s, then 2 s.
    scheduled = [e for e in steps if e.kind == "restart_scheduled"]
    restarts = [e for e in steps if e.kind == "restart"]
    assert [s.details["delay"] for s in scheduled] == [1.0, 2.0]
    assert all(r.time - s.time >= s.details["delay"] for s, r in zip(scheduled, restarts))
    assert "2 restart attempts" in steps[-2].message

    # The replacement is a new container that passes its probe.
    replacement = wait_for(lambda: [r for r in h.running() if r.id != original.id], what="the new replica")[0]
    assert original.id not in {r.id for r in h.replicas()}
    wait_for(lambda: "probe_passed" in h.kinds(f"container/{replacement.name}@{replacement.engine}"), what="the new replica's probe")
    actions = [a["action"] for a in h.audit() if a["result"] == "ok"]
    assert actions.count("replica.restart") == 2 and actions.count("replica.replace") == 1


def test_startup_probe_holds_liveness_back(run):
    h = run("""  command: ["sh", "-c", "sleep 3; touch /tmp/up; exec sleep 3600"]
HealthCheck:
  startup: {command: ["test", "-e", "/tmp/up"], interval: 1s, timeout: 0.8s, retries: 15}
  liveness: {command: ["test", "-e", "/tmp/up"], interval: 1s, timeout: 0.8s, retries: 1}
FailoverStrategy:
  recovery: {restart_delay: 1s}
""")
    replica = wait_for(lambda: h.running(), what="the replica")[0]
    target = f"container/{replica.name}@{replica.engine}"
    wait_for(lambda: any(e.kind == "probe_passed" and e.details.get("probe") == "liveness" for e in h.log(target)), what="liveness")
    events = h.log(target)
    startup_failures = [e for e in events if e.kind == "probe_failed" and e.details.get("probe") == "startup"]
    started = next(e for e in events if e.kind == "started")
    first_liveness = next(e for e in events if e.details.get("probe") == "liveness")
    assert startup_failures, "the startup probe failed while the file was missing"
    assert first_liveness.time >= started.time  # liveness ran only once startup had passed
    # A liveness probe with retries 1 would have restarted it at once had it run during startup.
    assert not any(e.kind.startswith("restart") for e in events)
    assert h.running()[0].id == replica.id


def test_readiness_failure_leaves_the_upstream_and_recovery_brings_it_back_without_restart(run, engine):
    h = run("""  command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www"]
  ports: ["8080"]
HealthCheck:
  readiness: {http: {path: "/ready", port: 8080}, interval: 1s, timeout: 0.8s, retries: 1}
FailoverStrategy:
  load_balancing: {algorithm: "least_connections", health_check: true}
""")
    replica = wait_for(lambda: h.running(), what="the replica")[0]
    member = f"server {replica.address}:8080;"
    wait_for(lambda: member in h.upstream(), what="the replica in the upstream")
    assert "least_conn;" in h.upstream()

    engine.exec(replica.id, ["rm", "/www/ready"], 5)
    wait_for(lambda: member not in h.upstream(), what="the replica out of the upstream")
    assert "down;  # no ready replica" in h.upstream()  # nginx keeps a valid file

    engine.exec(replica.id, ["sh", "-c", "echo ok > /www/ready"], 5)
    wait_for(lambda: member in h.upstream(), what="the replica back in the upstream")
    again = engine.inspect(replica.id)
    assert again.started_at == replica.started_at  # never restarted
    kinds = h.kinds(f"container/{replica.name}@{replica.engine}")
    assert kinds.index("unready") < len(kinds) - 1 - kinds[::-1].index("ready")
    assert not any(k.startswith("restart") for k in kinds)
    membership = [e for e in h.log() if e.kind == "membership"]
    assert [bool(e.details["added"]) for e in membership] == [True, False, True]


def test_docker_kill_is_restarted_after_restart_delay(run, docker_client):
    h = run("""  command: ["sleep", "3600"]
FailoverStrategy:
  detection: {timeout: 1s, retries: 1, interval: 1s}
  recovery: {auto_restart: true, max_restart_attempts: 3, restart_delay: 2s}
""")
    replica = wait_for(lambda: h.running(), what="the replica")[0]
    target = f"container/{replica.name}@{replica.engine}"
    docker_client.containers.get(replica.id).kill()
    wait_for(lambda: "restart" in h.kinds(target), what="the restart")
    events = h.log(target)
    failed = next(e for e in events if e.kind == "replica_failed")
    restart = next(e for e in events if e.kind == "restart")
    assert "exited" in failed.message
    assert restart.time - failed.time >= 2.0  # restart_delay
    after = wait_for(lambda: h.running(), what="the running replica")[0]
    assert after.id == replica.id and after.started_at != replica.started_at


def test_command_probes_are_cut_at_their_timeout(engine, docker_client, test_image, test_labels):
    container = docker_client.containers.run(test_image, ["sleep", "3600"], detach=True, labels=test_labels)
    try:
        result = engine.exec(container.id, ["sleep", "30"], timeout=0.5)
        assert result.timed_out and result.exit_code is None
        wait_for(lambda: not any("sleep 30" in " ".join(p) for p in container.top()["Processes"]), what="the probe's process to end", timeout=10)
        assert engine.exec(container.id, ["sh", "-c", "echo out; exit 4"], timeout=5).exit_code == 4
    finally:
        container.remove(force=True)


def test_docker_unhealthy_counts_as_liveness_failure_without_a_liveness_probe(run, engine):
    h = run("""  command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
  health_check: {command: ["test", "-e", "/tmp/ok"], interval: 1s, timeout: 0.5s, retries: 1}
FailoverStrategy:
  recovery: {auto_restart: true, max_restart_attempts: 3, restart_delay: 1s}
""")
    replica = wait_for(lambda: [r for r in h.running() if r.health == "healthy"], what="a healthy replica")[0]
    target = f"container/{replica.name}@{replica.engine}"
    engine.exec(replica.id, ["rm", "/tmp/ok"], 5)
    wait_for(lambda: "restart" in h.kinds(target), what="the restart")
    scheduled = next(e for e in h.log(target) if e.kind == "restart_scheduled")
    assert "Docker reports the container unhealthy" in scheduled.message
    wait_for(lambda: [r for r in h.running() if r.health == "healthy"], what="healthy again after the restart")


def test_the_lost_engine_checks_keep_one_client_and_a_failed_check_connects_afresh(engine, monkeypatch):
    """Each check used a new client, which asked the engine its API version before the ping (two
    requests a check on every engine); now the first check negotiates and the others only ping."""
    import docker.api.client

    negotiations: list[str] = []
    negotiate = docker.api.client.APIClient._retrieve_server_version

    def counted(api):
        negotiations.append(api.base_url)
        return negotiate(api)

    monkeypatch.setattr(docker.api.client.APIClient, "_retrieve_server_version", counted)
    assert [engine.ping(5.0) for _ in range(4)] == [True] * 4
    assert len(negotiations) == 1
    unreachable = Engine("unix:///nonexistent/docker.sock")
    try:
        assert [unreachable.ping(1.0) for _ in range(2)] == [False, False]
    finally:
        unreachable.close()
    assert len(negotiations) == 3  # a failed check keeps no client: the next one connects afresh
    assert engine.ping(5.0) and len(negotiations) == 3
