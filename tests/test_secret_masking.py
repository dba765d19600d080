"""One masking rule for every output: `config`, `render` and `describe` through `rtm-console`
processes (describe on the real Docker engine), and the rule itself (rtm/secrets.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rtm.secrets import MASK, mask_secrets
from test_cli_resources import rtm_console
from test_docker_support import SAMPLES

SECRET = "hunter2-Zq"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: a fresh data folder and no config file of the user's."""
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("RTM_CONFIG", None)
    return env


def ran(run) -> str:
    assert run.returncode == 0, run.stderr
    assert SECRET not in run.stdout + run.stderr
    return run.stdout


@pytest.mark.parametrize("name", ["MY_CREDS", "GITHUB_TOKEN", "DB_PASSWORD", "APP_SECRET", "SIGNING_KEY", "apiKey", "X-Api-Key"])
def test_a_name_that_reads_like_a_credential_is_masked(name: str) -> None:
    assert mask_secrets({name: "plain"}) == {name: MASK}


@pytest.mark.parametrize("name", ["PATH", "LOG_LEVEL", "PASSENGER_COUNT", "AUTHOR", "KEYBOARD", "MONKEY"])
def test_an_ordinary_name_is_shown(name: str) -> None:
    assert mask_secrets({name: "plain"}) == {name: "plain"}


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["curl", "-fsS", "-u", "admin:pw", "http://lb/reload"], ["curl", "-fsS", "-u", "admin:***", "http://lb/reload"]),
        (["curl", "-H", "X-Api-Key: k", "http://lb"], ["curl", "-H", "X-Api-Key: ***", "http://lb"]),
        (["curl", "-H", "Authorization: Bearer k", "http://lb"], ["curl", "-H", "Authorization: ***", "http://lb"]),
        (["tool", "--password", "pw", "--token=t", "--verbose"], ["tool", "--password", "***", "--token=***", "--verbose"]),
        (["sh", "-c", "curl -u admin:pw http://lb/reload"], ["sh", "-c", "curl -u admin:*** http://lb/reload"]),
        (["ps", "-u", "root"], ["ps", "-u", "root"]),  # no password in a bare user name
    ],
)
def test_secrets_inside_a_command_are_masked(command: list[str], shown: list[str]) -> None:
    assert mask_secrets(command) == shown


def test_config_masks_the_password_and_api_key_inside_the_reload_command(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "load_balancer:\n"
        f"  reload_command: \"curl -fsS -u admin:{SECRET} -H 'X-Api-Key: {SECRET}' http://127.0.0.1/reload\"\n"
    )
    shown = ran(rtm_console(env, "--config", str(config), "config"))
    assert "-u admin:*** -H 'X-Api-Key: ***' http://127.0.0.1/reload" in shown
    as_json = json.loads(ran(rtm_console(env, "--config", str(config), "config", "--json")))
    assert as_json["settings"]["load_balancer.reload_command"]["value"] == [
        "curl", "-fsS", "-u", "admin:***", "-H", "X-Api-Key: ***", "http://127.0.0.1/reload"]


def test_render_masks_credential_named_variables_and_command_secrets(env: dict[str, str], tmp_path: Path) -> None:
    shutil.copytree(SAMPLES / "functions", tmp_path / "functions")
    spec = tmp_path / "specs.yaml"
    spec.write_text(
        "name: web\n"
        "ContainerRuntime:\n"
        "  base_image: busybox\n"
        f'  command: ["sh", "-c", "curl -u app:{SECRET} http://db && sleep 60"]\n'
        f"  environment: {{MY_CREDS: {SECRET}, API_TOKEN: {SECRET}, LOG_LEVEL: info}}\n"
        "  health_check:\n"
        f'    command: ["curl", "-H", "X-Api-Key: {SECRET}", "http://127.0.0.1/health"]\n'
        "---\n"
        "ServerlessRuntime:\n"
        "  name: hello\n"
        "  runtime: python3.12\n"
        "  handler: main.handler\n"
        "  code: functions/hello\n"
        f"  environment: {{MY_CREDS: {SECRET}, SERVICE_PASSWORD: {SECRET}, LOG_LEVEL: info}}\n"
    )
    rendered = json.loads(ran(rtm_console(env, "render", str(spec))))
    body = rendered[0]["ContainerRuntime"]["requests"][0]["body"]
    assert {"MY_CREDS=***", "API_TOKEN=***", "LOG_LEVEL=info"} <= set(body["Env"])
    assert body["Cmd"] == ["sh", "-c", "curl -u app:*** http://db && sleep 60"]
    assert body["Healthcheck"]["Test"][1:] == ["curl", "-H", "X-Api-Key: ***", "http://127.0.0.1/health"]
    variables = rendered[1]["ServerlessRuntime"]["CreateFunction"]["Environment"]["Variables"]
    assert variables == {"MY_CREDS": MASK, "SERVICE_PASSWORD": MASK, "LOG_LEVEL": "info"}


@pytest.mark.docker
def test_describe_masks_credential_named_variables_of_a_live_container(env, docker_client, test_image, test_labels, run_id) -> None:
    name = f"{run_id}-masked"
    container = docker_client.containers.run(
        test_image, ["sh", "-c", f"sleep 60 || wget --password {SECRET} http://db"], name=name, detach=True,
        labels=test_labels, environment={"MY_CREDS": SECRET, "DEPLOY_TOKEN": SECRET, "LOG_LEVEL": "info"},
    )
    try:
        details = json.loads(ran(rtm_console(env, "describe", f"container/{name}")))
    finally:
        container.remove(force=True)
    assert {"MY_CREDS=***", "DEPLOY_TOKEN=***", "LOG_LEVEL=info"} <= set(details["environment"])
    assert details["command"] == ["sh", "-c", "sleep 60 || wget --password *** http://db"]
