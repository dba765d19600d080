"""Two real Docker engines on one machine: when one stops, its replicas are started on the
other within failover_timeout, through the scheduler; when it comes back, the replaced
containers are removed. The second engine has a bridge of its own, so HTTP readiness probes
reach its containers."""

from __future__ import annotations

import os

import pytest

from backends.docker.client import EngineEndpoint
from console.supervisor.engines import Engine, replica_service
from fixtures.engines import free_bridge_cidr, private_dockerd
from supervisor_support import labels_yaml, remove_workload, start_supervisor, wait_for


@pytest.fixture()
def two_engines(docker_client, test_image):
    if os.geteuid() != 0:
        pytest.skip("a second engine needs root")
    with private_dockerd(bridge_cidr=free_bridge_cidr(), images=[test_image]) as second:
        engines = [Engine(EngineEndpoint("first", os.environ["DOCKER_HOST"])), Engine(EngineEndpoint("second", second.host))]
        yield engines, second
        for engine in engines:
            engine.close()


def test_replicas_of_a_stopped_engine_move_to_the_other_within_failover_timeout(tmp_path, two_engines, test_image, test_labels, run_id):
    engines, second = two_engines
    name = f"{run_id}-failover"
    spec = f"""name: {name}
ContainerRuntime:
  base_image: "{test_image}"
  labels: {labels_yaml(test_labels)}
  command: ["sh", "-c", "mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www"]
  resources: {{requests: {{cpu: "50m", memory: "16Mi"}}}}
HealthCheck:
  readiness: {{http: {{path: "/ready", port: 8080}}, interval: 1s, timeout: 0.8s, retries: 1}}
FailoverStrategy:
  detection: {{timeout: 1s, retries: 2, interval: 1s}}
  recovery: {{auto_restart: true, max_restart_attempts: 3, restart_delay: 1s}}
  load_balancing: {{algorithm: "round_robin", health_check: true, failover_timeout: 20s}}
"""
    h = start_supervisor(tmp_path, name, spec, engines)
    try:
        workload = h.supervisor.reload().workloads[name]
        replica_service(engines).scale(workload.template, 2)
        assert sorted(r.engine for r in h.replicas()) == ["first", "second"]  # spread by the scheduler
        h.supervisor.start()
        on_second = next(r for r in h.replicas() if r.engine == "second")
        wait_for(lambda: f"{on_second.address}:8080" in h.upstream(), what="the second engine's replica in rotation")

        second.stop()
        wait_for(lambda: "reschedule" in h.kinds(), what="the reschedule")
        moved = next(e for e in h.log() if e.kind == "reschedule")
        assert moved.target == f"container/{on_second.name}@second"
        assert moved.details["within_failover_timeout"] is True
        assert moved.details["elapsed_seconds"] <= 20
        assert any(e.kind == "backend_down" and e.target == "engine/second" for e in h.events.read())
        replicas = wait_for(lambda: len([r for r in h.running() if r.engine == "first"]) == 2 and h.running(), what="two replicas on the first engine")
        new_addresses = {f"{r.address}:8080" for r in replicas}
        wait_for(lambda: all(a in h.upstream() for a in new_addresses), what="the new replica in rotation")
        assert f"{on_second.address}:8080" not in h.upstream()

        second.start()  # back: the container it kept is a stale copy and is removed
        wait_for(lambda: "cleanup" in h.kinds(), what="the stale replica's removal", timeout=60)
        assert [r.name for r in engines[1].replicas(name)] == []
        assert any(e.kind == "backend_up" and e.target == "engine/second" for e in h.events.read())
        assert len(h.replicas()) == 2
    finally:
        assert h.supervisor.stop(timeout=10)
        remove_workload(engines, name)
