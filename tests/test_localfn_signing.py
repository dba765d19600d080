"""Lambda's API on the local gateway needs Signature Version 4 with the runtime's key pair, checked
against real boto3 clients over real HTTP; http-trigger routes stay open."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from backends.localfn.functions_host import LocalFunctionsRuntime
from backends.localfn.signing import PROFILE, credentials_path, read_key_pair
from localfn_support import deploy, request, serving

ECHO = """
def handler(event, context):
    print("secret log line")
    return {"statusCode": 200, "body": "open"}
"""
INVOKE = "/2015-03-31/functions/guarded/invocations"


@pytest.fixture
def runtime(tmp_path: Path):
    with serving(tmp_path / "data", "guarded", ECHO, "GET /open") as runtime:
        yield runtime


def _client(runtime: LocalFunctionsRuntime, monkeypatch, key_id: str | None = None, secret: str | None = None):
    """boto3 as a user would set it up: the shared credentials file and the rtm-local profile."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_path(runtime.store.root)))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(runtime.store.root / "no-config"))
    config = Config(retries={"max_attempts": 1})
    if key_id is None:
        session = boto3.Session(profile_name=PROFILE, region_name="eu-west-1")
        return session.client("lambda", endpoint_url=runtime.url, config=config)
    return boto3.client("lambda", endpoint_url=runtime.url, region_name="us-east-1", config=config,
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def test_the_key_pair_is_created_private_and_kept_across_restarts(tmp_path: Path, runtime) -> None:
    path = credentials_path(runtime.store.root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_key_pair(runtime.store.root)
    runtime.stop()
    again = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0)
    again.start()
    try:
        assert read_key_pair(again.store.root) == first
    finally:
        again.stop()
    path.unlink()  # deleting the file gives a new pair on the next start
    renewed = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0)
    renewed.start()
    try:
        assert read_key_pair(renewed.store.root) not in (None, first)
    finally:
        renewed.stop()


def test_boto3_with_the_runtimes_credentials_invokes(runtime, monkeypatch) -> None:
    client = _client(runtime, monkeypatch)
    answer = client.invoke(FunctionName="guarded", Payload=json.dumps({"a": 1}), LogType="Tail")
    assert answer["StatusCode"] == 200 and json.loads(answer["Payload"].read())["body"] == "open"
    asynchronous = client.invoke(FunctionName="guarded", InvocationType="Event", Payload=b"{}")
    assert asynchronous["StatusCode"] == 202


def test_an_unsigned_invoke_is_refused_without_running_the_function(runtime) -> None:
    reply = request(runtime.url, "POST", INVOKE, b"{}", {"X-Amz-Log-Type": "Tail"})
    assert reply.status == 403
    assert reply.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert reply.json() == {"message": "Missing Authentication Token"}
    assert "x-amz-log-result" not in reply.headers
    runtime.log.refresh()
    assert runtime.log.stats("guarded").invocations == 0


def test_every_lambda_api_path_needs_a_signature(runtime, monkeypatch) -> None:
    for method, path in (("GET", "/2015-03-31/functions/"), ("GET", "/2015-03-31/functions/guarded"),
                         ("DELETE", "/2015-03-31/functions/guarded"), ("GET", "/2021-10-31/functions/guarded/url")):
        reply = request(runtime.url, method, path)
        assert (reply.status, reply.headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException"), path
    with pytest.raises(ClientError) as raised:  # signed, but not an operation the local runtime has
        _client(runtime, monkeypatch).list_functions()
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"


def test_http_trigger_routes_stay_open(runtime) -> None:
    reply = request(runtime.url, "GET", "/open")
    assert (reply.status, reply.body) == (200, b"open")


def test_a_wrong_secret_gets_invalid_signature(runtime, monkeypatch) -> None:
    key = read_key_pair(runtime.store.root)
    client = _client(runtime, monkeypatch, key.access_key_id, key.secret_access_key + "x")
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="guarded", Payload=b"{}")
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in error["Error"]["Message"]


def test_an_unknown_access_key_is_unrecognized(runtime, monkeypatch) -> None:
    client = _client(runtime, monkeypatch, "AKIAUNKNOWNKEY000000", "whatever")
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="guarded", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_signed_request_whose_body_was_changed_is_refused(runtime) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key = read_key_pair(runtime.store.root)
    signed = AWSRequest(method="POST", url=runtime.url + INVOKE, data=b'{"amount": 1}')
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "lambda", "us-east-1").add_auth(signed)
    honest = request(runtime.url, "POST", INVOKE, b'{"amount": 1}', dict(signed.headers.items()))
    assert honest.status == 200
    tampered = request(runtime.url, "POST", INVOKE, b'{"amount": 9}', dict(signed.headers.items()))
    assert (tampered.status, tampered.headers["x-amzn-errortype"]) == (403, "InvalidSignatureException")
    other_service = AWSRequest(method="POST", url=runtime.url + INVOKE, data=b"{}")
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "s3", "us-east-1").add_auth(other_service)
    wrong_scope = request(runtime.url, "POST", INVOKE, b"{}", dict(other_service.headers.items()))
    assert wrong_scope.status == 403 and "correct service: 'lambda'" in wrong_scope.json()["message"]


def test_malformed_authorizations_are_refused_with_lambdas_names(runtime) -> None:
    key = read_key_pair(runtime.store.root)
    bearer = request(runtime.url, "POST", INVOKE, b"{}", {"Authorization": "Bearer abc"})
    assert (bearer.status, bearer.headers["x-amzn-errortype"]) == (403, "IncompleteSignatureException")
    no_signature = request(runtime.url, "POST", INVOKE, b"{}", {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key.access_key_id}/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host"})
    assert no_signature.headers["x-amzn-errortype"] == "IncompleteSignatureException"
    assert "requires 'Signature' parameter" in no_signature.json()["message"]
    signed = dict(signed_request_headers(runtime, key))
    day = signed["X-Amz-Date"][:8]
    signed["Authorization"] = signed["Authorization"].replace(f"/{day}/", "/20200101/")
    wrong_day = request(runtime.url, "POST", INVOKE, b"{}", signed)
    assert wrong_day.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert "Date in Credential scope does not match" in wrong_day.json()["message"]
    unsigned_host = dict(signed_request_headers(runtime, key))
    unsigned_host["Authorization"] = unsigned_host["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    assert "'Host' must be a 'SignedHeader'" in request(runtime.url, "POST", INVOKE, b"{}", unsigned_host).json()["message"]


def signed_request_headers(runtime, key) -> dict[str, str]:
    from backends.localfn.signing import sign

    return sign("POST", runtime.url + INVOKE, {}, b"{}", key)


@pytest.mark.parametrize("offset, words", [(timedelta(minutes=6), "Signature expired"),
                                           (timedelta(minutes=-6), "Signature not yet current")])
def test_a_signature_outside_the_five_minute_window_is_refused(tmp_path: Path, monkeypatch, offset, words) -> None:
    # The gateway's clock runs `offset` ahead of the machine's, which boto3 signs with.
    deploy(tmp_path / "data", tmp_path, "guarded", ECHO)
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0, clock=lambda: datetime.now(timezone.utc) + offset)
    runtime.start()
    try:
        with pytest.raises(ClientError) as raised:
            _client(runtime, monkeypatch).invoke(FunctionName="guarded", Payload=b"{}")
        assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert words in raised.value.response["Error"]["Message"]
    finally:
        runtime.stop()
    within = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0,
                                   clock=lambda: datetime.now(timezone.utc) + offset * 0.5)
    within.start()
    try:
        assert _client(within, monkeypatch).invoke(FunctionName="guarded", Payload=b"{}")["StatusCode"] == 200
    finally:
        within.stop()
