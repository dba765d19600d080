"""What is stored is what runs: a function that rewrites its own stored code is refused with a
clear error and `apply` stores a fresh copy; symlinks in a code folder that dangle, loop or point
outside it are refused with the link's path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.localfn.definition import CodeError, locate_code
from backends.localfn.handler import LocalFunctionsHandler
from backends.localfn.functions_host import LocalFunctionsRuntime
from localfn_support import request, spec_document, write_function

SELF_HARMING = """
import os

def handler(event, context):
    if event.get("rawPath") == "/vandalise":
        with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "main.py"), "w") as code:
            code.write("this is not python(")
        return {"statusCode": 500, "body": "vandalised"}
    if event.get("rawPath") == "/exit":
        os._exit(1)
    return {"statusCode": 200, "body": "intact"}
"""
ROOT = Path(__file__).resolve().parent.parent


def _apply(handler: LocalFunctionsHandler, document, base: Path) -> list[str]:
    return handler.apply(document, base, handler.plan(document, base), progress=lambda line: None)


def _self_harming(tmp_path: Path):
    write_function(tmp_path / "selfharm", SELF_HARMING)
    return spec_document(tmp_path, "selfharm", code="selfharm", triggers="""
        - type: http
          path: /{any+}
          method: ANY
    """)


@pytest.fixture
def runtime(tmp_path: Path):
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0)
    runtime.start()
    yield runtime
    runtime.stop()


def test_a_function_that_rewrites_its_stored_code_is_refused_and_apply_restores_it(tmp_path, runtime) -> None:
    document, base = _self_harming(tmp_path)
    handler = LocalFunctionsHandler(tmp_path / "data", runtime.url, runtime=runtime)
    _apply(handler, document, base)
    assert request(runtime.url, "GET", "/ok").body == b"intact"
    assert handler.describe("selfharm")["code"]["intact"] is True
    assert request(runtime.url, "GET", "/vandalise").status == 500
    assert request(runtime.url, "GET", "/ok").body == b"intact"  # the warm worker keeps the module it loaded
    request(runtime.url, "GET", "/exit")  # the warm worker ends: the next request is a cold start

    refused = request(runtime.url, "GET", "/ok")
    assert refused.status == 502
    runtime.log.refresh()
    record = runtime.log.recent("selfharm", 1)[0]
    assert "stored code of function/selfharm version 1 was changed after it was deployed (modified: main.py)" in record.error
    assert "rtm-console apply" in record.error

    assert handler.describe("selfharm")["code"]["intact"] is False
    changes = handler.plan(document, base)
    assert changes[0].action == "update" and "stored copy changed" in str(changes[0].diff)
    lines = _apply(handler, document, base)
    assert lines[0].startswith("stored function/selfharm version 2")
    assert request(runtime.url, "GET", "/ok").body == b"intact"


def test_an_intact_version_is_hashed_once_however_many_workers_start(tmp_path, runtime) -> None:
    document, base = _self_harming(tmp_path)
    _apply(LocalFunctionsHandler(tmp_path / "data", runtime.url, runtime=runtime), document, base)
    for _ in range(4):
        assert request(runtime.url, "GET", "/ok").body == b"intact"
        request(runtime.url, "GET", "/exit")  # every request is a cold start
    assert runtime.pool.cold_starts == 4
    assert runtime.pool.verifier.full_checks == 1


def _code_spec(tmp_path: Path):
    folder = write_function(tmp_path / "linked", "def handler(event, context):\n    return 1\n")
    document, base = spec_document(tmp_path, "linked", code="linked")
    return folder, document.get("ServerlessRuntime"), base


@pytest.mark.parametrize("make_link, words", [
    (lambda folder, outside: os.symlink(folder / "missing.py", folder / "dangling.py"), "which does not exist"),
    (lambda folder, outside: os.symlink("loop.py", folder / "loop.py"), "that loops"),
    (lambda folder, outside: os.symlink(outside, folder / "secret.txt"), "outside the code folder"),
    (lambda folder, outside: os.symlink(outside.parent, folder / "up"), "outside the code folder"),
    (lambda folder, outside: os.symlink(folder, folder / "again"), "a folder that contains it"),
])
def test_bad_symlinks_in_a_code_folder_are_refused_with_the_links_path(tmp_path, make_link, words) -> None:
    folder, spec, base = _code_spec(tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the function")
    make_link(folder, outside)
    with pytest.raises(CodeError, match=words) as raised:
        locate_code(spec, base)
    assert str(raised.value).startswith(str(folder) + "/")


def test_a_symlink_inside_the_folder_is_followed(tmp_path) -> None:
    folder, spec, base = _code_spec(tmp_path)
    write_function(folder / "lib", "VALUE = 1\n", name="shared.py")
    os.symlink("lib/shared.py", folder / "alias.py")
    assert locate_code(spec, base).size_bytes == len((folder / "main.py").read_bytes()) + 2 * len(b"VALUE = 1\n")


def test_apply_with_a_dangling_symlink_fails_with_a_message_not_a_crash(tmp_path) -> None:
    folder, _spec, _base = _code_spec(tmp_path)
    os.symlink("/nonexistent/file.py", folder / "dangling.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RTM_"))}
    env.update(RTM_DATA_DIR=str(tmp_path / "data"), RTM_FUNCTIONS_TARGET="local", XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    done = subprocess.run([sys.executable, "-m", "console.cli", "apply", str(tmp_path / "linked.yaml"), "--yes"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert f'{folder}/dangling.py: a symlink to "/nonexistent/file.py", which does not exist' in done.stderr
    assert "Traceback" not in done.stderr
