"""The sample function through the CLI on the local runtime: apply, get, invoke, logs, delete."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backends.localfn import local_host_state, make_local_runtime
from backends.localfn.signing import credentials_path
from console.config import load_config
from localfn_support import process_exists, spec_document, wait_until, write_function

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample-specs" / "serverless-runtime.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RTM_"))}
    values.update(RTM_DATA_DIR=str(tmp_path / "data"), RTM_FUNCTIONS_TARGET="local",
                  RTM_FUNCTIONS_GATEWAY_LISTEN=f"127.0.0.1:{_free_port()}", XDG_CONFIG_HOME=str(tmp_path / "config"))
    return values


def rtm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_apply_invoke_logs_delete(env: dict[str, str]) -> None:
    applied = rtm(env, "apply", str(SAMPLE), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "create    function/hello" in applied.stdout
    assert "not hosted: functions are stored but not served" in applied.stdout
    gateway = "http://" + env["RTM_FUNCTIONS_GATEWAY_LISTEN"]
    with pytest.raises(urllib.error.URLError, match="Connection refused"):  # nothing serves the route yet
        urllib.request.urlopen(urllib.request.Request(gateway + "/api/function", data=b"{}", method="POST"), timeout=30)
    listed = json.loads(rtm(env, "get", "functions", "--json").stdout)
    assert [(f["name"], f["target"], f["memory_mb"]) for f in listed] == [("hello", "local", 256)]

    not_hosted = rtm(env, "invoke", "function/hello")
    assert not_hosted.returncode == 1 and "not running" in not_hosted.stderr

    config = load_config({}, env, None)
    runtime = make_local_runtime(config)
    runtime.start()
    try:
        invoked = rtm(env, "invoke", "function/hello", "--payload", json.dumps({"body": json.dumps({"name": "ops"})}))
        assert invoked.returncode == 0, invoked.stderr
        result = json.loads(invoked.stdout)
        assert result["status"] == "ok" and json.loads(result["result"]["body"]) == {"message": "hello, ops"}
        with urllib.request.urlopen(urllib.request.Request(runtime.url + "/api/function", data=b'{"name": "http"}', method="POST"), timeout=30) as response:
            assert json.loads(response.read()) == {"message": "hello, http"}
        logs = rtm(env, "logs", "function/hello")
        assert logs.returncode == 0 and logs.stdout.count("REPORT RequestId") == 2
        described = json.loads(rtm(env, "describe", "function/hello").stdout)
        assert described["name"] == "hello"
    finally:
        runtime.stop()
    deleted = rtm(env, "delete", "function/hello", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(rtm(env, "get", "functions", "--json").stdout) == []


SPAWNER = """
import subprocess, sys

def handler(event, context):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    return {"child": child.pid}
"""


def test_the_quick_start_with_the_agent_hosting_and_its_sigterm_ending_every_child(env: dict[str, str], tmp_path: Path) -> None:
    agent = subprocess.Popen([sys.executable, "-m", "console.cli", "agent", "--listen", f"127.0.0.1:{_free_port()}"],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        state = wait_until(lambda: (s := local_host_state(env["RTM_DATA_DIR"])).url and s, timeout=60)
        assert state.role == "agent"
        assert rtm(env, "apply", str(SAMPLE), "--yes").returncode == 0
        with urllib.request.urlopen(urllib.request.Request(state.url + "/api/function", data=b'{"name": "Ada"}', method="POST"), timeout=30) as response:
            assert json.loads(response.read()) == {"message": "hello, Ada"}
        unsigned = urllib.request.Request(state.url + "/2015-03-31/functions/hello/invocations", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unsigned, timeout=30)
        assert refused.value.code == 403 and refused.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

        write_function(tmp_path / "spawner", SPAWNER)
        spec_document(tmp_path, "spawner", code="spawner")
        assert rtm(env, "apply", str(tmp_path / "spawner.yaml"), "--yes").returncode == 0
        invoked = rtm(env, "invoke", "function/spawner")  # signed with the key pair in the data folder
        assert invoked.returncode == 0, invoked.stderr
        child = json.loads(invoked.stdout)["result"]["child"]
        assert process_exists(child)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(60) == 0
        wait_until(lambda: not process_exists(child), timeout=10)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_the_local_credentials_file_exported_for_rtm_console_makes_auto_choose_aws(env: dict[str, str], tmp_path: Path) -> None:
    # Why docs/functions-local.md says to set AWS_SHARED_CREDENTIALS_FILE for the boto3 script alone.
    config = load_config({}, env, None)
    runtime = make_local_runtime(config)
    runtime.start()
    runtime.stop()
    exported = {**env, "RTM_FUNCTIONS_TARGET": "auto", "HOME": str(tmp_path / "home"),
                "AWS_SHARED_CREDENTIALS_FILE": str(credentials_path(runtime.store.root))}
    assert load_config({}, exported, None).functions.target == "aws"
    assert load_config({}, {**exported, "AWS_SHARED_CREDENTIALS_FILE": ""}, None).functions.target == "local"
