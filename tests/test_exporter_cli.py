"""The headless `exporter` command in a process of its own, and `render --alert-rules`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from console.commands.exporter_cmd import render_alert_rules_command
from test_exporter_helpers import promtool, wait_until

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample-specs"

# The command as the CLI registers it, run to its end; then the process reports whether
# textual was ever imported.
DRIVER = """
import argparse, sys
import console.cli
from console.commands import add_global_options, exporter_cmd
parser = argparse.ArgumentParser(prog="rtm-console")
add_global_options(parser)
exporter_cmd.register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
code = args.handler(args)
print("textual imported:", any(m == "textual" or m.startswith("textual.") for m in sys.modules), flush=True)
sys.exit(code)
"""


@pytest.fixture
def isolated(tmp_path) -> tuple[dict[str, str], Path]:
    """Environment and config file for a process with only the host and the local functions
    runtime (no engine of the test setup), its data folder under tmp_path."""
    config = tmp_path / "config.yaml"
    config.write_text("docker:\n  endpoints: []\nlibvirt:\n  uris: []\nfunctions:\n  target: local\n")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("RTM_CONFIG", None)
    return env, config


def start(env: dict[str, str], config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, "--config", str(config), "exporter", *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def serving_url(process: subprocess.Popen) -> str:
    for line in process.stderr:  # type: ignore[union-attr]
        found = re.search(r"serving (http\S+)/metrics", line)
        if found:
            return found.group(1)
    raise AssertionError(f"the exporter did not start (exit {process.wait()})")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_headless_exporter_serves_without_textual_and_stops_cleanly(isolated, stop_signal):
    env, config = isolated
    process = start(env, config, "--listen", "127.0.0.1:0", "--specs", str(SAMPLES))
    try:
        url = serving_url(process)
        assert url.startswith("http://127.0.0.1:")

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"{url}/ready", timeout=5).status == 200
            except OSError:
                return False

        wait_until(ready, "every backend polled once")
        body = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        assert 'rtm_backend_up{backend="host",endpoint="local"} 1.0' in body
        assert "rtm_host_cpu_seconds_total" in body
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopping" in err
    assert "textual imported: False" in out


def test_the_desired_replicas_follow_the_data_folder_s_desired_state_at_every_scrape(isolated, tmp_path):
    from backends.docker.desired import DesiredStore
    from backends.docker.mapping import WorkloadRequest
    from rtm.scheduling import Requirements

    env, config = isolated
    data = tmp_path / "data"
    env = {**env, "RTM_DATA_DIR": str(data)}
    desired = DesiredStore(data)
    request = WorkloadRequest("web", 3, "hash", {"Image": "alpine", "Labels": {}, "HostConfig": {}}, ())
    desired.record_apply(request, 2, Requirements(0, 0), "least_connections", 1_800_000_000.0, None)  # spec 2, scaled to 3
    process = start(env, config, "--listen", "127.0.0.1:0", "--specs", str(SAMPLES))
    try:
        url = serving_url(process)

        def desired_count() -> str:
            body = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
            return re.search(r'^rtm_workload_replicas_desired\{workload="web"\} (\S+)$', body, re.M).group(1)  # type: ignore[union-attr]

        assert desired_count() == "3.0"
        desired.set_count("web", 1)  # the autoscaler went down to one
        assert desired_count() == "1.0"
        desired.remove("web")  # deleted: what the spec asks for
        assert desired_count() == "2.0"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_check_reports_a_bad_web_config_with_its_position(isolated, tmp_path):
    env, config = isolated
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: hunter2\n")
    process = start(env, config, "--web-config", str(web), "--check")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"{web}:2:15: error: the password of 'prometheus' is not a bcrypt hash" in err


def test_check_reports_a_wrongly_typed_resource_metric(isolated, tmp_path):
    env, config = isolated
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "metrics.yaml").write_text("ResourceMetrics:\n  network:\n    bytes_sent: gauge\n")
    process = start(env, config, "--specs", str(specs), "--check")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "network.bytes_sent is a cumulative count, so it is a counter, not a gauge" in err


def test_check_prints_what_would_be_served(isolated):
    env, config = isolated
    process = start(env, config, "--specs", str(SAMPLES / "resource-metrics.yaml"), "--listen", "[::1]:9999", "--check")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "listen: [::1]:9999" in out
    assert "host metrics: cpu.context_switches, cpu.load_average" in out


def test_render_alert_rules_prints_rules_promtool_accepts(tmp_path, capsys):
    assert render_alert_rules_command([SAMPLES]) == 0
    path = tmp_path / "rules.yml"
    path.write_text(capsys.readouterr().out)
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_render_alert_rules_refuses_specs_with_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: web\nContainerRuntime:\n  base_image: ''\n")
    assert render_alert_rules_command([bad]) == 1
    captured = capsys.readouterr()
    assert "base_image is empty" in captured.out and "no rules rendered" in captured.err
    assert render_alert_rules_command([tmp_path / "absent"]) == 2
