"""Supervisor parts that need no engine: spec derivation, HTTP/TCP probes against real local
servers, the upstream file, the autoscaler's history files and the engine detection settings."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.autoscaler import history_path, load_history, save_history
from console.supervisor.membership import UpstreamWriter
from console.supervisor.probe_runner import http_probe, tcp_probe
from console.supervisor.loops import engine_detection
from console.supervisor.supervised import load_workloads, workload_from_document
from rtm.autoscaling import History
from rtm.documents import load_text
from rtm.loadbalancer import Member

WORKLOAD = """
name: web
ContainerRuntime:
  base_image: "rtm-busybox:1.0"
  ports: ["9000"]
  resources:
    limits: {cpu: "500m", memory: "128Mi"}
    requests: {memory: "32Mi"}
HealthCheck:
  readiness:
    http: {path: "/ready", port: 8080}
    interval: 2s
    timeout: 1s
FailoverStrategy:
  detection: {timeout: 3s, retries: 2, interval: 4s}
"""


def _workload(text: str):
    result = load_text(text)
    assert result.ok, result.findings
    return workload_from_document(result.documents[0])


def test_workload_settings_come_from_its_specs():
    workload = _workload(WORKLOAD)
    assert workload.serving_port == 8080  # the readiness probe's port, not the first container port
    assert workload.cpu.base == 500  # no cpu request: the limit counts, as in Kubernetes
    assert workload.memory.base == 32 * 1024 * 1024
    assert workload.template.algorithm == "least_connections"
    assert workload.failover.recovery.max_restart_attempts == 3  # the spec's default recovery
    assert set(workload.timings) == {"readiness"}
    assert workload.timings["readiness"].interval == 2.0


def test_a_plain_container_without_policies_is_not_supervised():
    assert _workload("name: plain\nContainerRuntime:\n  base_image: busybox\n") is None


def test_engine_detection_takes_the_tightest_spec():
    loose = _workload(WORKLOAD)
    tight = _workload(WORKLOAD.replace("name: web", "name: api").replace("{timeout: 3s, retries: 2, interval: 4s}", "{timeout: 1s, retries: 3, interval: 1s}"))
    detection = engine_detection([loose, tight])
    assert (detection.interval, detection.timeout, detection.retries) == (1.0, 1.0, 2)


def test_specs_with_errors_are_reported_and_skipped(tmp_path):
    (tmp_path / "good.yaml").write_text(WORKLOAD)
    (tmp_path / "bad.yaml").write_text("name: bad\nContainerRuntime:\n  base_image: x\n  restart_policy: sometimes\nHealthCheck: {}\n")
    specs = load_workloads(tmp_path)
    assert list(specs.workloads) == ["web"]
    assert len(specs.problems) == 1 and "bad.yaml" in specs.problems[0]


# --- probes against real local servers -----------------------------------------------------------


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.send_header("Location", "/200")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def status_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status, ok", [(200, True), (204, True), (302, True), (399, True), (400, False), (500, False)])
def test_http_probe_passes_on_200_to_399(status_server, status, ok):
    outcome = http_probe("127.0.0.1", status_server, f"/{status}", timeout=2)
    assert outcome.ok is ok
    assert f"HTTP {status}" in outcome.detail


def test_http_probe_fails_when_nothing_answers_in_time():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        outcome = http_probe("127.0.0.1", silent.getsockname()[1], "/", timeout=0.3)
    finally:
        silent.close()
    assert not outcome.ok and "no answer within 0.3s" in outcome.detail


def test_tcp_probe_open_and_closed_ports(status_server):
    assert tcp_probe("127.0.0.1", status_server, 1).ok
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    outcome = tcp_probe("127.0.0.1", port, 1)
    assert not outcome.ok and "connection refused" in outcome.detail


# --- the upstream file -------------------------------------------------------------------------------


def _writer(tmp_path: Path, mode: str = "agent", reload_command=None) -> UpstreamWriter:
    gate = ActionGate(mode, tmp_path / "audit.jsonl")
    return UpstreamWriter(tmp_path / "upstream.conf", reload_command, gate, EventLog(tmp_path / "events.jsonl"))


def test_membership_changes_rewrite_the_upstream_and_reload(tmp_path):
    reloads = tmp_path / "reloads"
    writer = _writer(tmp_path, reload_command=["sh", "-c", f"echo reload >> {reloads}"])
    writer.update("web", "least_connections", [Member("10.0.0.2:80"), Member("10.0.0.1:80")])
    text = (tmp_path / "upstream.conf").read_text()
    assert "upstream rtm_web {" in text and "least_conn;" in text
    assert text.index("10.0.0.1:80") < text.index("10.0.0.2:80")
    writer.update("web", "least_connections", [Member("10.0.0.1:80"), Member("10.0.0.2:80")])  # same set: nothing to do
    writer.update("web", "least_connections", [Member("10.0.0.1:80")])
    assert "10.0.0.2" not in (tmp_path / "upstream.conf").read_text()
    assert reloads.read_text().count("reload") == 2
    events = EventLog(tmp_path / "events.jsonl").read()
    assert [e.kind for e in events] == ["membership", "membership"]
    assert events[1].details["removed"] == ["10.0.0.2:80"]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [a["action"] for a in audit] == ["load_balancer.write_upstream"] * 2 and all(a["result"] == "ok" for a in audit)


def test_a_failing_reload_is_reported_and_retried(tmp_path):
    writer = _writer(tmp_path, reload_command=["false"])
    writer.update("web", "round_robin", [Member("10.0.0.1:80")])
    assert writer.last_error and "exited with 1" in writer.last_error
    writer.flush()  # the content was not confirmed, so it is tried again
    assert writer.last_error


def test_a_read_only_gate_writes_no_upstream(tmp_path):
    writer = _writer(tmp_path, mode="kiosk")
    writer.update("web", "round_robin", [Member("10.0.0.1:80")])
    assert not (tmp_path / "upstream.conf").exists()
    assert "read-only" in (writer.last_error or "")


# --- autoscaler history in the data folder ------------------------------------------------------------


def test_history_is_kept_per_workload_in_the_data_folder(tmp_path):
    path = history_path(tmp_path, "web")
    assert path == tmp_path / "autoscaler" / "web.json"
    assert load_history(path) == History()
    history = History().record_recommendation(100.0, 3).record_event(100.0, 2, 3)
    save_history(path, history)
    assert load_history(path) == history
