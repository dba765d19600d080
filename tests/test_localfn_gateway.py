"""The local runtime end to end: functions deployed through the handler, called over real HTTP on
loopback (an ephemeral port), with their invocations recorded in the data folder."""

from __future__ import annotations

import base64
import json
import socket
import threading
from pathlib import Path

import pytest

from backends.localfn.handler import LocalFunctionsHandler
from backends.localfn.invocations import InvocationLog
from backends.localfn.functions_host import LocalFunctionsRuntime
from localfn_support import SAMPLES, process_exists, request, signed_request, spec_document, wait_until, write_function
from rtm.documents import load_file

ECHO = """
import base64, json

def handler(event, context):
    if event.get("rawPath") == "/fail":
        raise RuntimeError("it broke")
    if event.get("rawPath") == "/malformed":
        return {"statusCode": "teapot"}
    if event.get("rawPath") == "/plain":
        return ["no", "status", "code"]
    if event.get("rawPath") == "/binary":
        return {"statusCode": 201, "headers": {"content-type": "application/octet-stream"},
                "cookies": ["a=1", "b=2"], "body": base64.b64encode(bytes(range(4))).decode(), "isBase64Encoded": True}
    if event.get("rawPath") == "/slow":
        import time; time.sleep(10)
    if event.get("rawPath") == "/hog":
        hoard = [bytearray(32 * 1024 * 1024) for _ in range(100)]
    body = event.get("body")
    size = len(base64.b64decode(body) if event.get("isBase64Encoded") else (body or "").encode())
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": {k: v for k, v in event.items() if k != "body"}, "body_bytes": size})}
"""


@pytest.fixture
def runtime(tmp_path: Path):
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0, max_body_bytes=64 * 1024, max_workers=4)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture
def handler(runtime: LocalFunctionsRuntime) -> LocalFunctionsHandler:
    return LocalFunctionsHandler(runtime.store.root.parent, runtime.url, runtime=runtime)


def apply(handler: LocalFunctionsHandler, document, base: Path) -> list[str]:
    changes = handler.plan(document, base)
    return handler.apply(document, base, changes, progress=lambda line: None)


@pytest.fixture
def echo(tmp_path: Path, handler: LocalFunctionsHandler) -> str:
    write_function(tmp_path / "echo", ECHO)
    document, base = spec_document(tmp_path, "echo", code="echo", timeout="1s", memory="128Mi", triggers="""
        - type: http
          path: /{proxy+}
          method: ANY
        - type: http
          path: /items/{id}
          method: GET
    """)
    apply(handler, document, base)
    return "echo"


def test_the_sample_function_deploys_and_answers_over_http(runtime, handler) -> None:
    document = load_file(SAMPLES / "serverless-runtime.yaml").documents[0]
    lines = apply(handler, document, SAMPLES)
    assert lines[0].startswith("stored function/hello version 1")
    assert f"route POST /api/function -> {runtime.url}/api/function" in lines
    reply = request(runtime.url, "POST", "/api/function", json.dumps({"name": "Ada"}).encode(),
                    {"content-type": "application/json"})
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"message": "hello, Ada"}
    assert request(runtime.url, "GET", "/api/function").status == 404  # the route is POST only

    runtime.log.refresh()
    record = runtime.log.recent("hello", 1)[0]
    assert record.outcome == "ok" and record.status_code == 200
    assert record.trigger == "http POST /api/function"
    assert record.log_lines == ("hello called with 15 bytes, LOG_LEVEL=info",)  # the spec's environment
    assert record.memory_limit_bytes == 256 * 1024 * 1024 and record.peak_memory_bytes > 0


def test_the_event_has_api_gateway_payload_2_0_shape(runtime, echo) -> None:
    reply = request(runtime.url, "GET", "/items/42?color=red&color=blue&size=",
                    headers={"X-Custom": "one", "Cookie": "session=abc; theme=dark", "User-Agent": "tests"})
    assert reply.status == 200
    event = reply.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"  # the most specific route won over /{proxy+}
    assert event["rawPath"] == "/items/42"
    assert event["rawQueryString"] == "color=red&color=blue&size="
    assert event["queryStringParameters"] == {"color": "red,blue", "size": ""}
    assert event["pathParameters"] == {"id": "42"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-custom"] == "one" and "cookie" not in event["headers"]
    context = event["requestContext"]
    assert context["http"] == {"method": "GET", "path": "/items/42", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "tests"}
    assert context["stage"] == "$default" and context["requestId"] == reply.headers["apigw-requestid"]
    assert event["isBase64Encoded"] is False

    greedy = request(runtime.url, "DELETE", "/deep/down/here").json()["event"]
    assert greedy["routeKey"] == "ANY /{proxy+}" and greedy["pathParameters"] == {"proxy": "deep/down/here"}


def test_binary_bodies_travel_base64_both_ways(runtime, echo) -> None:
    sent = request(runtime.url, "POST", "/upload", bytes([0xFF, 0xFE, 0x00]))
    assert sent.json()["event"]["isBase64Encoded"] is True and sent.json()["body_bytes"] == 3
    reply = request(runtime.url, "GET", "/binary")
    assert reply.status == 201 and reply.body == bytes(range(4))
    assert [v for k, v in reply.header_list if k == "set-cookie"] == ["a=1", "b=2"]


def test_a_result_without_status_code_is_answered_as_json(runtime, echo) -> None:
    reply = request(runtime.url, "GET", "/plain")
    assert reply.status == 200 and reply.json() == ["no", "status", "code"]


def test_an_unknown_route_is_404(runtime, handler) -> None:
    reply = request(runtime.url, "GET", "/nothing/here")
    assert reply.status == 404 and reply.json() == {"message": "Not Found"}


def test_an_oversized_body_is_413_before_the_function_runs(runtime, echo) -> None:
    too_big = b"x" * (64 * 1024 + 1)
    reply = request(runtime.url, "POST", "/upload", too_big)
    assert reply.status == 413 and "Request Entity Too Large" in reply.json()["message"]
    assert request(runtime.url, "POST", "/upload", b"x" * (64 * 1024)).status == 200  # at the limit: fine
    runtime.log.refresh()
    assert runtime.log.stats("echo").invocations == 1  # the refused one never reached a worker


def test_an_oversized_chunked_body_is_413(runtime, echo) -> None:
    host, port = runtime.url.removeprefix("http://").split(":")
    chunk = b"y" * 40_000
    with socket.create_connection((host, int(port))) as connection:
        try:
            connection.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(3):
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the gateway may have answered and stopped reading already
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_chunked_body_within_the_limit_reaches_the_function(runtime, echo) -> None:
    host, port = runtime.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["body_bytes"] == 11


def test_a_handler_exception_is_502_and_recorded_as_an_error(runtime, echo) -> None:
    reply = request(runtime.url, "GET", "/fail")
    assert reply.status == 502 and reply.json() == {"message": "Internal Server Error"}
    runtime.log.refresh()
    record = runtime.log.recent("echo", 1)[0]
    assert record.outcome == "error" and record.status_code == 502
    assert record.error == "RuntimeError: it broke"
    assert "[ERROR] RuntimeError: it broke" in record.log_lines
    assert runtime.log.stats("echo").errors == 1


def test_a_malformed_proxy_response_is_502(runtime, echo) -> None:
    assert request(runtime.url, "GET", "/malformed").status == 502
    runtime.log.refresh()
    record = runtime.log.recent("echo", 1)[0]
    assert record.status_code == 502 and "statusCode 'teapot'" in record.error


def test_a_timeout_is_504_and_the_worker_is_killed(runtime, echo) -> None:
    reply = request(runtime.url, "GET", "/slow")
    assert reply.status == 504
    runtime.log.refresh()
    record = runtime.log.recent("echo", 1)[0]
    assert record.outcome == "timeout" and record.status_code == 504
    assert record.log_lines[-1].endswith("Task timed out after 1.00 seconds")
    assert not runtime.pool.worker_pids()  # the killed worker was not put back


def test_running_out_of_memory_is_502_and_recorded_as_oom(runtime, echo) -> None:
    assert request(runtime.url, "GET", "/hog").status == 502
    runtime.log.refresh()
    record = runtime.log.recent("echo", 1)[0]
    assert record.outcome == "oom" and record.error.startswith("Runtime.OutOfMemory")
    assert runtime.log.stats("echo").out_of_memory == 1


def test_a_redeploy_serves_new_code_without_dropping_requests_in_flight(tmp_path, runtime, handler) -> None:
    source = """
    import time
    def handler(event, context):
        time.sleep(float(event.get("queryStringParameters", {{}}).get("wait", "0")))
        return {{"statusCode": 200, "body": "{version}"}}
    """
    write_function(tmp_path / "rolling", source.format(version="v1"))
    document, base = spec_document(tmp_path, "rolling", code="rolling", timeout="10s", triggers="""
        - type: http
          path: /rolling
          method: GET
    """)
    apply(handler, document, base)
    in_flight: list = []
    callers = [threading.Thread(target=lambda: in_flight.append(request(runtime.url, "GET", "/rolling?wait=1.5")))
               for _ in range(4)]
    for caller in callers:
        caller.start()
    # a slot counts as busy from the moment it is taken; a worker's pid once it is spawned
    wait_until(lambda: len(runtime.pool.worker_pids(("rolling", 1))) == 4)
    old_workers = runtime.pool.worker_pids(("rolling", 1))

    write_function(tmp_path / "rolling", source.format(version="v2"))
    lines = apply(handler, document, base)
    assert lines[0].startswith("stored function/rolling version 2")
    after = [request(runtime.url, "GET", "/rolling") for _ in range(3)]
    for caller in callers:
        caller.join()

    assert [r.status for r in in_flight] == [200] * 4
    assert [r.body for r in in_flight] == [b"v1"] * 4  # finished on the version they started on
    assert [r.body for r in after] == [b"v2"] * 3
    # The old version's workers were stopped once their requests were done.
    assert not any(process_exists(pid) for pid in old_workers)
    assert {g.version for g in runtime.pool.state() if g.name == "rolling"} == {2}


def test_invocations_are_persisted_and_read_back_by_another_reader(tmp_path, runtime, echo) -> None:
    request(runtime.url, "GET", "/ok")
    request(runtime.url, "GET", "/fail")
    fresh = InvocationLog(runtime.store.root)  # as the CLI or the exporter in another process
    fresh.refresh()
    stats = fresh.stats("echo")
    assert (stats.invocations, stats.errors) == (2, 1)
    assert stats.histogram is not None and stats.histogram.count == 2
    lines = (runtime.store.root / "invocations.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["outcome"] for r in records] == ["ok", "error"]
    assert {"request_id", "started_at", "duration_seconds", "outcome", "peak_memory_bytes", "log_lines"} <= set(records[0])


def test_the_invoke_api_runs_a_function_and_returns_its_log_tail(runtime, echo) -> None:
    reply = signed_request(runtime.url, runtime.store.root, "/2015-03-31/functions/echo/invocations",
                           json.dumps({"rawPath": "/fail"}).encode(), {"X-Amz-Log-Type": "Tail"})
    assert reply.status == 200
    assert reply.headers["x-amz-function-error"] == "Unhandled"
    assert reply.json()["errorType"] == "RuntimeError"
    assert "it broke" in base64.b64decode(reply.headers["x-amz-log-result"]).decode()
    missing = signed_request(runtime.url, runtime.store.root, "/2015-03-31/functions/nobody/invocations")
    assert missing.status == 404 and missing.headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_a_second_host_for_the_same_data_folder_is_refused(runtime) -> None:
    from backends.localfn.hosting import RuntimeAlreadyHosted

    second = LocalFunctionsRuntime(runtime.store.root.parent, "127.0.0.1", 0)
    with pytest.raises(RuntimeAlreadyHosted, match="already hosted by this process"):
        second.start()
    state = runtime.host_state()
    assert state.hosted and state.url == runtime.url and state.this_process


def test_stopping_the_runtime_stops_its_workers_and_frees_the_host_lock(tmp_path, handler, runtime, echo) -> None:
    request(runtime.url, "GET", "/ok")
    pids = runtime.pool.worker_pids()
    assert pids
    runtime.stop()
    assert not any(process_exists(pid) for pid in pids)
    assert not runtime.host_state().hosted


def test_a_gateway_address_in_use_is_reported_with_what_to_do(tmp_path) -> None:
    from backends.localfn.functions_host import GatewayAddressInUse

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", port)
        with pytest.raises(GatewayAddressInUse, match=f"cannot listen on 127.0.0.1:{port}.*functions.gateway_listen"):
            runtime.start()
    assert not runtime.host_state().hosted  # the host lock was given back


def test_boto3_invokes_a_local_function_through_the_gateway(runtime, echo, monkeypatch) -> None:
    import boto3

    from backends.localfn.signing import read_key_pair

    key = read_key_pair(runtime.store.root)
    for name, value in (("AWS_ACCESS_KEY_ID", key.access_key_id), ("AWS_SECRET_ACCESS_KEY", key.secret_access_key),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    client = boto3.client("lambda", endpoint_url=runtime.url)
    answer = client.invoke(FunctionName="echo", Payload=json.dumps({"rawPath": "/ok"}), LogType="Tail")
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read())["statusCode"] == 200
    assert answer["ExecutedVersion"] == "1"
    failed = client.invoke(FunctionName="echo", Payload=json.dumps({"rawPath": "/fail"}))
    assert failed["FunctionError"] == "Unhandled"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nobody", Payload=b"{}")


def test_a_post_without_a_body_or_length_reaches_the_function(runtime, echo) -> None:
    host, port = runtime.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"POST /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
