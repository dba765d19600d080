"""AWS locations, credentials and endpoints: what the Lambda backend reports when it cannot work."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

import pytest

from backends.aws_lambda import LambdaSpecError, make_lambda_backends
from backends.base import Backend, BackendUnavailable
from console.config import AwsSettings
from test_lambda_mapping import SAMPLES, sample_document, with_spec  # tests/ is on sys.path

ROLE = "arn:aws:iam::123456789012:role/lambda-exec"


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on (a port bound and released again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment whose only AWS configuration is what the test writes to tmp_path/config."""
    config = tmp_path / "config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return config


def test_locations_cover_every_profile_in_every_region(no_aws_files: Path) -> None:
    no_aws_files.write_text("[profile dev]\nregion = eu-central-1\n[profile prod]\n")
    backends, handlers = make_lambda_backends(AwsSettings(("us-east-1", "eu-west-1"), ("dev", "prod"), None, ROLE))
    assert [b.name for b in backends] == ["lambda@dev/us-east-1", "lambda@dev/eu-west-1", "lambda@prod/us-east-1", "lambda@prod/eu-west-1"]
    assert all(isinstance(b, Backend) and b.kind == "functions" for b in backends)
    assert handlers["function"].primary is backends[0]
    assert backends[1].endpoint == "https://lambda.eu-west-1.amazonaws.com"

    backends, _ = make_lambda_backends(AwsSettings((), ("dev", "prod"), None, None))
    assert [b.name for b in backends] == ["lambda@dev/eu-central-1", "lambda@prod/us-east-1"]  # each profile's region, else us-east-1


def test_unreachable_endpoint_names_region_cause_and_what_to_try(closed_port_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (backend,), handlers = make_lambda_backends(AwsSettings(("eu-west-1",), (), closed_port_url, ROLE))
    assert backend.availability().state == "pending"
    with pytest.raises(BackendUnavailable) as caught:
        backend.poll()
    availability = caught.value.availability
    assert availability.state == "unreachable"
    assert "eu-west-1" in availability.endpoint and closed_port_url in availability.endpoint
    assert "Could not connect" in availability.cause
    assert closed_port_url in availability.hint and "aws.endpoint_url" in availability.hint
    assert backend.availability() == availability
    with pytest.raises(BackendUnavailable):  # the handler's calls too: never a raw botocore error
        handlers["function"].plan(sample_document(), SAMPLES)


@pytest.mark.parametrize("changes", [
    {"runtime": "python3.9"}, {"timeout": 901.0},
], ids=["deprecated-runtime", "timeout-901s"])
def test_refusals_come_before_any_connection_attempt(closed_port_url: str, changes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an endpoint nothing listens on, any call would raise BackendUnavailable."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _, handlers = make_lambda_backends(AwsSettings(("us-east-1",), (), closed_port_url, ROLE))
    with pytest.raises(LambdaSpecError):
        handlers["function"].apply(with_spec(sample_document(), **changes), SAMPLES, [], lambda _line: None)


def test_missing_credentials_are_reported_with_how_to_configure_them(no_aws_files: Path, closed_port_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    (backend,), _ = make_lambda_backends(AwsSettings(("ap-south-1",), (), closed_port_url, None))
    with pytest.raises(BackendUnavailable) as caught:
        backend.poll()
    availability = caught.value.availability
    assert "ap-south-1" in availability.describe()
    assert "credentials" in availability.cause.lower()
    assert "aws configure" in availability.hint and "AWS_PROFILE" in availability.hint


def test_unknown_profile_is_reported_with_where_to_add_it(no_aws_files: Path) -> None:
    no_aws_files.write_text("[profile dev]\nregion = eu-central-1\n")
    (backend,), _ = make_lambda_backends(AwsSettings(("eu-west-1",), ("nosuch",), None, None))
    with pytest.raises(BackendUnavailable) as caught:
        backend.poll()
    text = caught.value.availability.describe()
    assert "eu-west-1" in text and "profile nosuch" in text and "'nosuch' is not in the AWS config files" in text
    assert "~/.aws/config" in caught.value.availability.hint


def test_no_secret_reaches_errors_or_logs(closed_port_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret, token = f"secret-{uuid.uuid4().hex}", f"token-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    caplog.set_level(logging.DEBUG, logger="rtm")
    (backend,), handlers = make_lambda_backends(AwsSettings(("us-east-1",), (), closed_port_url, ROLE))
    with pytest.raises(BackendUnavailable) as caught:
        handlers["function"].plan(sample_document(), SAMPLES)
    shown = " ".join([str(caught.value), caught.value.availability.hint, caplog.text, repr(backend.availability())])
    assert "GetFunctionConfiguration" in shown or "get_function_configuration" in shown  # the logs say what was tried
    assert secret not in shown and token not in shown


@pytest.mark.aws
def test_a_good_poll_reports_connected(aws_endpoint: str) -> None:
    (backend,), _ = make_lambda_backends(AwsSettings(("us-east-1",), (), aws_endpoint, None))
    snapshot = backend.poll()
    assert (snapshot.kind, snapshot.backend) == ("functions", "lambda@us-east-1")
    assert all(f.target == "aws" for f in snapshot.items)
    assert backend.availability().connected


def test_invoke_decodes_the_log_tail_with_stubbed_response(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto without Docker returns no log tail, so a botocore Stubber gives Lambda's answer."""
    import base64
    import io

    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _, handlers = make_lambda_backends(AwsSettings(("us-east-1",), (), "http://127.0.0.1:9", ROLE))
    handler = handlers["function"]
    client = handler.primary.clients.client("lambda")
    log = "START RequestId: 1\nhello called with 2 bytes, LOG_LEVEL=info\nEND RequestId: 1\n"
    body = b'{"statusCode": 200}'
    with Stubber(client) as stub:
        stub.add_response("get_function_configuration", {"FunctionName": "hello"}, {"FunctionName": "hello"})
        stub.add_response("invoke", {"StatusCode": 200, "LogResult": base64.b64encode(log.encode()).decode(),
                                     "Payload": StreamingBody(io.BytesIO(body), len(body))},
                          {"FunctionName": "hello", "Payload": b"{}", "LogType": "Tail"})
        result = handler.invoke("hello", {})
    assert result.payload == '{"statusCode": 200}' and result.status_code == 200
    assert result.log_tail == log
