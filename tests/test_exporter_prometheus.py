"""A real Prometheus server (Debian's prometheus) scrapes the exporter over TLS with basic auth,
computes a rate from its counters and loads the generated alert rules."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from backends.host import HostBackend
from console.config import ListenAddress
from console.exporter.alert_rules import render_alert_rules
from console.exporter.assembly import load_specs, serve_exporter
from console.poller import Poller
from test_exporter_helpers import ScriptedBackend, container, make_pki, wait_until

PROMETHEUS = "/usr/bin/prometheus"
SAMPLES = Path(__file__).resolve().parents[1] / "sample-specs"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def prometheus_binary() -> str:
    if not Path(PROMETHEUS).exists() and not shutil.which("prometheus"):
        pytest.skip("Debian's prometheus package is not installed")
    return PROMETHEUS if Path(PROMETHEUS).exists() else shutil.which("prometheus")  # type: ignore[return-value]


def test_prometheus_scrapes_over_tls_with_basic_auth_and_computes_a_rate(tmp_path, prometheus_binary):
    pki = make_pki(tmp_path)
    (tmp_path / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: {bcrypt.hashpw(b'scrape-me', bcrypt.gensalt(4)).decode()}\n"
    )
    specs = load_specs(SAMPLES / "workload-web.yaml")
    (tmp_path / "rules.yml").write_text(render_alert_rules(specs.documents))
    poller = Poller([HostBackend(), ScriptedBackend("docker@scripted", "containers", [container("web-0")])], interval=0.5)
    poller.start()
    exporter = serve_exporter(poller, ListenAddress("127.0.0.1", 0), web_config_path=tmp_path / "web.yml", specs=specs)
    port = _free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: rtm
    scheme: https
    tls_config: {{ca_file: {pki / 'ca.crt'}}}
    basic_auth: {{username: prometheus, password: scrape-me}}
    static_configs: [{{targets: ["127.0.0.1:{exporter.server.address[1]}"]}}]
""")
    log = open(tmp_path / "prometheus.log", "wb")
    server = subprocess.Popen(
        [prometheus_binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def rate_known() -> bool:
            try:
                results = _query(base, 'rate(rtm_host_context_switches_total{job="rtm"}[5s])')
            except OSError:
                return False  # not listening yet
            return bool(results) and float(results[0]["value"][1]) > 0

        wait_until(rate_known, "Prometheus to compute a rate from the exporter's counter", timeout=60)
        assert [r["value"][1] for r in _query(base, 'up{job="rtm"}')] == ["1"]
        cpu_busy = _query(base, 'sum(rate(rtm_host_cpu_seconds_total{job="rtm", mode!="idle"}[5s]))')
        assert cpu_busy and float(cpu_busy[0]["value"][1]) > 0

        groups = _get_json(f"{base}/api/v1/rules")["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert {"RtmBackendDown", "RtmWorkloadCpuAboveTarget", "RtmWorkloadReplicasMissing"} <= set(rules)
        wait_until(lambda: all(rule.get("health") == "ok" for group in _get_json(f"{base}/api/v1/rules")["data"]["groups"]
                               for rule in group["rules"]), "every rule evaluated without error", timeout=30)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        exporter.stop()
        poller.stop()
