"""The resource handler and backend for local functions: render, plan, apply, list, describe,
logs, delete, invoke, and what the poller sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import Backend
from backends.handlers import ApplyError
from backends.localfn import local_host_state, make_local_backends
from backends.localfn.settings import LocalFunctionsSettings
from backends.localfn.backend import LocalFunctionsBackend
from backends.localfn.definition import UnsupportedRuntime
from backends.localfn.handler import LocalFunctionsHandler, NotHosted, RouteConflict
from backends.localfn.functions_host import LocalFunctionsRuntime
from backends.localfn.store import FunctionNotFound
from localfn_support import SAMPLES, request, spec_document, write_function
from rtm.documents import load_file

SIMPLE = """
def handler(event, context):
    print("called with", event)
    if event.get("fail"):
        raise KeyError("missing")
    return {"statusCode": 200, "body": "v1"}
"""


def _sample_document():
    return load_file(SAMPLES / "serverless-runtime.yaml").documents[0]


def _apply(handler: LocalFunctionsHandler, document, base: Path) -> list[str]:
    return handler.apply(document, base, handler.plan(document, base), progress=lambda line: None)


def test_render_shows_what_would_be_stored_and_served_without_storing_it(tmp_path: Path) -> None:
    handler = LocalFunctionsHandler(tmp_path, "http://127.0.0.1:8790")
    document = _sample_document()
    rendered = handler.render(document, SAMPLES)
    assert rendered["target"] == "local"
    assert rendered["function"]["handler"] == "main.handler" and rendered["function"]["memory_mb"] == 256
    assert rendered["function"]["code"]["kind"] == "folder"
    assert rendered["routes"] == [{"route": "POST /api/function", "url": "http://127.0.0.1:8790/api/function"}]
    assert rendered["schedules"] == [{"schedule": "0 0 * * *", "rule": "hello-cron-1"}]
    assert "vpc settings do not apply to the local runtime" in rendered["notes"]
    assert handler.store.current() == {}


def test_render_masks_secret_environment_values(tmp_path: Path) -> None:
    write_function(tmp_path / "secretive", SIMPLE)
    document, base = spec_document(tmp_path, "secretive", code="secretive",
                                   environment={"DB_PASSWORD": "hunter2", "REGION": "eu"})
    rendered = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790").render(document, base)
    assert rendered["function"]["environment"] == {"DB_PASSWORD": "***", "REGION": "eu"}


def test_plan_says_create_then_unchanged_then_update_with_the_differences(tmp_path: Path) -> None:
    handler = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790")
    write_function(tmp_path / "planned", SIMPLE)
    document, base = spec_document(tmp_path, "planned", code="planned", memory="128Mi")
    [create] = handler.plan(document, base)
    assert (create.action, create.resource) == ("create", "function/planned")
    _apply(handler, document, base)
    [same] = handler.plan(document, base)
    assert same.action == "unchanged" and same.note == "version 1"
    assert _apply(handler, document, base) == ["function/planned unchanged (version 1)"]

    write_function(tmp_path / "planned", SIMPLE.replace("v1", "v2"))
    document, base = spec_document(tmp_path, "planned", code="planned", memory="256Mi")
    [update] = handler.plan(document, base)
    assert update.action == "update"
    fields = {field: (old, new) for field, old, new in update.diff}
    assert set(fields) == {"memory_bytes", "code"}
    assert fields["memory_bytes"] == (128 * 1024 * 1024, 256 * 1024 * 1024)
    assert "stores version 2" in update.note
    assert _apply(handler, document, base)[0].startswith("stored function/planned version 2")


def test_other_runtimes_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    handler = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790")
    write_function(tmp_path / "nodey", "exports.handler = async () => 1\n", name="index.js")
    document, base = spec_document(tmp_path, "nodey", code="nodey", runtime="nodejs22.x", handler="index.handler")
    with pytest.raises(UnsupportedRuntime, match='"nodejs22.x" is not supported by the local runtime'):
        handler.plan(document, base)
    with pytest.raises(ApplyError, match="not supported by the local runtime"):
        handler.apply(document, base, [], progress=lambda line: None)
    assert handler.store.current() == {}


def test_a_route_another_function_serves_is_refused(tmp_path: Path) -> None:
    handler = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790")
    _apply(handler, _sample_document(), SAMPLES)
    write_function(tmp_path / "rival", SIMPLE)
    document, base = spec_document(tmp_path, "rival", code="rival", triggers="""
        - type: http
          path: /api/function
          method: ANY
    """)
    with pytest.raises(RouteConflict, match="function hello serves"):
        handler.plan(document, base)


def test_list_describe_logs_and_delete_show_the_stored_function_and_its_invocations(tmp_path: Path) -> None:
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0)
    runtime.start()
    try:
        handler = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790", runtime=runtime)
        write_function(tmp_path / "listed", SIMPLE)
        document, base = spec_document(tmp_path, "listed", code="listed", timeout="5s", triggers="""
            - type: http
              path: /listed
              method: GET
        """)
        _apply(handler, document, base)
        assert request(runtime.url, "GET", "/listed").status == 200
        assert handler.invoke("listed", {"fail": True})["status"] == "error"

        [info] = handler.list()
        assert (info.name, info.target, info.runtime, info.memory_mb, info.timeout_seconds) == \
            ("listed", "local", "python3.12", 128, 5.0)
        assert info.triggers == ("http GET /listed",)
        assert (info.invocations, info.errors, info.version) == (2, 1, "1")
        assert info.duration is not None and info.duration_histogram.count == 2

        details = handler.describe("listed")
        assert details["routes"] == [{"route": "GET /listed", "url": f"{runtime.url}/listed"}]
        assert details["hosting"]["this_process"] is True
        assert [r["outcome"] for r in details["recent_invocations"]] == ["error", "ok"]
        assert details["recent_invocations"][0]["error"] == "KeyError: 'missing'"
        assert details["workers"] == [{"version": 1, "idle": 1, "busy": 0, "current": True}]

        lines = list(handler.logs("listed"))
        assert sum(line.startswith("REPORT RequestId:") for line in lines) == 2
        assert "[ERROR] KeyError: 'missing'" in lines

        assert handler.delete("listed") == ["deleted function/listed (1 stored version)"]
        assert handler.list() == []
        assert request(runtime.url, "GET", "/listed").status == 404
        with pytest.raises(FunctionNotFound):
            handler.describe("listed")
    finally:
        runtime.stop()


def test_invoke_from_a_process_that_does_not_host_goes_through_the_hosts_gateway(tmp_path: Path) -> None:
    handler = LocalFunctionsHandler(tmp_path / "data", "http://127.0.0.1:8790")  # no runtime attached
    write_function(tmp_path / "remote", SIMPLE)
    document, base = spec_document(tmp_path, "remote", code="remote")
    _apply(handler, document, base)
    with pytest.raises(NotHosted, match="not running"):
        handler.invoke("remote", {})
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0, role="agent")
    runtime.start()
    try:
        answer = handler.invoke("remote", {"x": 1})
        assert answer["status"] == "ok" and answer["result"] == {"statusCode": 200, "body": "v1"}
        assert "called with {'x': 1}" in answer["log_tail"]
        failed = handler.invoke("remote", {"fail": True})
        assert failed["status"] == "error" and failed["error"]["errorType"] == "KeyError"
    finally:
        runtime.stop()


def test_the_backend_is_a_labelled_sandbox_that_says_who_hosts_the_runtime(tmp_path: Path) -> None:
    [backend], handlers = make_local_backends(LocalFunctionsSettings(tmp_path / "data", "127.0.0.1", 8790))
    assert isinstance(backend, Backend) and isinstance(backend, LocalFunctionsBackend)
    assert handlers["function"].resource == "function"
    idle = backend.availability()
    assert idle.connected and idle.sandbox
    assert "not hosted" in idle.cause and "agent" in idle.hint

    _apply(handlers["function"], _sample_document(), SAMPLES)
    snapshot = backend.poll()
    assert snapshot.kind == "functions" and [f.name for f in snapshot.items] == ["hello"]

    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0, role="agent")
    runtime.start()
    try:
        hosted = backend.availability()
        assert hosted.endpoint == runtime.url
        assert f"hosted by this process at {runtime.url}" in hosted.cause
        state = local_host_state(tmp_path / "data")
        assert (state.hosted, state.role) == (True, "agent")
    finally:
        runtime.stop()
    assert not local_host_state(tmp_path / "data").hosted


def test_logs_follow_yields_the_lines_of_new_invocations(tmp_path: Path) -> None:
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0)
    runtime.start()
    try:
        handler = LocalFunctionsHandler(tmp_path / "data", runtime.url, runtime=runtime)
        write_function(tmp_path / "followed", SIMPLE)
        document, base = spec_document(tmp_path, "followed", code="followed")
        _apply(handler, document, base)
        handler.invoke("followed", {"n": 1})
        lines = handler.logs("followed", follow=True, poll_interval=0.05)
        first = [next(lines) for _ in range(4)]
        assert first[0].split(" ", 1)[1].startswith("START RequestId:") and first[1] == "called with {'n': 1}"
        handler.invoke("followed", {"n": 2})
        later = [next(lines) for _ in range(4)]
        assert later[1] == "called with {'n': 2}" and later[3].startswith("REPORT RequestId:")
        lines.close()
    finally:
        runtime.stop()
