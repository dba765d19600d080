"""The local function store: code copied and hashed, versions kept, deploys atomic, delete."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from backends.localfn.definition import (
    CodeError,
    UnsupportedRuntime,
    check_runtime,
    definition_from_spec,
    function_name,
    locate_code,
)
from backends.localfn.store import FunctionNotFound, FunctionStore
from localfn_support import SAMPLES, spec_document, write_function
from rtm.documents import load_file


def _sample():
    document = load_file(SAMPLES / "serverless-runtime.yaml").documents[0]
    spec = document.get("ServerlessRuntime")
    code = locate_code(spec, SAMPLES)
    return spec, code, definition_from_spec(spec, function_name(spec, document.name), code)


def test_the_sample_function_is_stored_with_its_code_and_definition(tmp_path: Path) -> None:
    spec, code, definition = _sample()
    store = FunctionStore(tmp_path)
    stored = store.deploy(definition, code)
    assert stored.version == 1
    assert (stored.code_dir / "main.py").read_bytes() == (SAMPLES / "functions/hello/main.py").read_bytes()
    assert store.get("hello").definition == definition
    assert [t.describe() for t in definition.triggers] == ["http POST /api/function", "cron 0 0 * * *"]
    assert definition.memory_mb == 256 and definition.timeout_seconds == 30
    assert dict(definition.environment) == {"NODE_ENV": "production", "LOG_LEVEL": "info"}
    on_disk = json.loads((tmp_path / "functions" / "index.json").read_text())
    assert on_disk["functions"]["hello"]["version"] == 1


def test_a_zip_of_the_same_files_hashes_like_the_folder_and_unpacks_the_same(tmp_path: Path) -> None:
    folder = write_function(tmp_path / "src", "def handler(e, c):\n    return 1\n")
    write_function(folder / "lib", "VALUE = 2\n", name="helpers.py")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"compiled")
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(folder / "main.py", "main.py")
        zipped.write(folder / "lib" / "helpers.py", "lib/helpers.py")
    document, base = spec_document(tmp_path, "zipped", code="code.zip")
    spec = document.get("ServerlessRuntime")
    from_zip = locate_code(spec, base)
    document_folder, _ = spec_document(tmp_path, "foldered", code="src")
    from_folder = locate_code(document_folder.get("ServerlessRuntime"), base)
    assert from_zip.kind == "zip" and from_folder.kind == "folder"
    assert from_zip.sha256 == from_folder.sha256  # bytecode caches are not part of the code

    stored = FunctionStore(tmp_path / "data").deploy(definition_from_spec(spec, "zipped", from_zip), from_zip)
    assert (stored.code_dir / "lib" / "helpers.py").read_text() == "VALUE = 2\n"


def test_a_zip_that_would_unpack_outside_its_folder_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../escape.py", "x = 1\n")
    document, base = spec_document(tmp_path, "evil", code="evil.zip")
    with pytest.raises(CodeError, match="outside its folder"):
        locate_code(document.get("ServerlessRuntime"), base)


def test_missing_code_is_reported_with_the_path_looked_at(tmp_path: Path) -> None:
    document, base = spec_document(tmp_path, "nocode", code="functions/absent")
    with pytest.raises(CodeError, match="does not exist"):
        locate_code(document.get("ServerlessRuntime"), base)


def test_runtimes_other_than_python_are_not_supported_by_the_local_runtime() -> None:
    with pytest.raises(UnsupportedRuntime, match="not supported by the local runtime"):
        check_runtime("nodejs22.x")
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert check_runtime("python3.99") == f"python3.99 runs on this machine's {here}"
    assert check_runtime(here) == ""


def test_each_deploy_is_a_new_version_and_old_ones_are_pruned(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path / "data", keep_versions=2)
    source = tmp_path / "src"
    document, base = spec_document(tmp_path, "counter", code="src")
    spec = document.get("ServerlessRuntime")
    for number in range(1, 5):
        write_function(source, f"def handler(e, c):\n    return {number}\n")
        code = locate_code(spec, base)
        stored = store.deploy(definition_from_spec(spec, "counter", code), code)
        assert stored.version == number
    assert [v.version for v in store.versions("counter")] == [3, 4]
    assert "return 4" in (store.get("counter").code_dir / "main.py").read_text()
    assert "return 3" in (store.versions("counter")[0].code_dir / "main.py").read_text()


def test_the_index_stamp_changes_on_every_deploy_and_delete(tmp_path: Path) -> None:
    spec, code, definition = _sample()
    store = FunctionStore(tmp_path)
    assert store.stamp() is None
    store.deploy(definition, code)
    first = store.stamp()
    store.deploy(definition, code)
    second = store.stamp()
    store.delete("hello")
    assert len({first, second, store.stamp()}) == 3


def test_delete_removes_every_version_and_the_name(tmp_path: Path) -> None:
    spec, code, definition = _sample()
    store = FunctionStore(tmp_path)
    store.deploy(definition, code)
    store.deploy(definition, code)
    assert store.delete("hello") == 2
    assert store.current() == {}
    assert not (tmp_path / "functions" / "hello").exists()
    with pytest.raises(FunctionNotFound, match='no local function is named "hello"'):
        store.delete("hello")


def test_a_crash_between_copying_and_the_index_leaves_the_old_version_current(tmp_path: Path, monkeypatch) -> None:
    spec, code, definition = _sample()
    store = FunctionStore(tmp_path)
    store.deploy(definition, code)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("backends.localfn.store.os.rename", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.deploy(definition, code)
    monkeypatch.undo()
    assert store.get("hello").version == 1
    versions_dir = tmp_path / "functions" / "hello" / "versions"
    assert sorted(p.name for p in versions_dir.iterdir()) == ["1"]  # the staging copy was removed
    assert store.deploy(definition, code).version == 2
