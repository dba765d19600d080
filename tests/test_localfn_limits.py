"""Lambda's 6 MB response limit and RFC 9112's rule on conflicting Content-Length headers, on the
real gateway over real sockets."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from backends.localfn.functions_host import LocalFunctionsRuntime
from localfn_support import request, serving, signed_request

BIG = """
import json, os, struct, sys

def handler(event, context):
    size = int(event.get("queryStringParameters", {}).get("size") or event.get("size") or 0)
    if event.get("bypass"):  # skip the worker's own check: write an oversized frame straight to the pipe
        config = json.loads(sys.argv[1])
        os.write(config["response_fd"], struct.pack(">I", 64 * 1024 * 1024) + b"x" * 65536)
    return {"statusCode": 200, "body": "x" * size}
"""
MB = 1024 * 1024


@pytest.fixture
def runtime(tmp_path: Path):
    with serving(tmp_path / "data", "big", BIG, "GET /big") as runtime:
        yield runtime


def test_a_response_over_6_mb_is_refused_over_http(runtime) -> None:
    assert request(runtime.url, "GET", f"/big?size={5 * MB}").status == 200
    refused = request(runtime.url, "GET", f"/big?size={7 * MB}")
    assert refused.status == 502 and refused.json() == {"message": "Internal Server Error"}
    runtime.log.refresh()
    record = runtime.log.recent("big", 1)[0]
    assert record.outcome == "error"
    assert record.error == "Function.ResponseSizeTooLarge: Response payload size exceeded maximum allowed payload size (6291456 bytes)."


def test_a_response_over_6_mb_is_a_function_error_on_the_invoke_api(runtime) -> None:
    reply = signed_request(runtime.url, runtime.store.root, "/2015-03-31/functions/big/invocations",
                           json.dumps({"size": 7 * MB}).encode())
    assert reply.status == 200 and reply.headers["x-amz-function-error"] == "Unhandled"
    assert reply.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert len(reply.body) < 1024
    again = signed_request(runtime.url, runtime.store.root, "/2015-03-31/functions/big/invocations", b'{"size": 10}')
    assert again.status == 200 and "x-amz-function-error" not in again.headers  # the worker stayed usable


def test_a_worker_that_bypasses_its_check_is_killed_and_the_response_refused(runtime) -> None:
    reply = signed_request(runtime.url, runtime.store.root, "/2015-03-31/functions/big/invocations", b'{"bypass": true}')
    assert reply.headers["x-amz-function-error"] == "Unhandled"
    assert reply.json()["errorType"] == "Function.ResponseSizeTooLarge"
    assert runtime.pool.worker_pids() == []  # not kept warm: its pipe holds the rest of the frame


def _raw(runtime: LocalFunctionsRuntime, head: bytes, body: bytes) -> bytes:
    host, port = runtime.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head + b"\r\n" + body)
        answer = b""
        while chunk := connection.recv(65536):  # ends only when the gateway closes the connection
            answer += chunk
    return answer


def test_two_conflicting_content_lengths_are_refused_and_the_connection_closed(runtime) -> None:
    answer = _raw(runtime, b"GET /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n", b"hello12")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"conflicting Content-Length values (5 and 7)" in answer
    assert b"connection: close" in answer.lower()
    listed = _raw(runtime, b"GET /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 7\r\nConnection: close\r\n", b"hello12")
    assert listed.startswith(b"HTTP/1.1 400")
    runtime.log.refresh()
    assert runtime.log.stats("big").invocations == 0


def test_repeated_equal_content_lengths_are_one(runtime) -> None:
    answer = _raw(runtime, b"GET /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n", b"hello")
    assert answer.startswith(b"HTTP/1.1 200")


def test_content_length_beside_chunked_encoding_is_read_as_chunked_and_the_connection_closed(runtime) -> None:
    answer = _raw(runtime, b"GET /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n",
                  b"5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in answer.lower()
