"""Helpers for the local functions runtime tests: functions written to disk, specs, HTTP calls."""

from __future__ import annotations

import http.client
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rtm.documents import Document, load_text

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"


def write_function(folder: Path, source: str, name: str = "main.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))
    return folder


def spec_document(folder: Path, name: str, *, code: str, handler: str = "main.handler",
                  runtime: str = "python3.12", timeout: str = "3s", memory: str = "128Mi",
                  environment: dict[str, str] | None = None, triggers: str = "") -> tuple[Document, Path]:
    """A ServerlessRuntime document written to folder/NAME.yaml and loaded (with errors raised)."""
    lines = [
        "ServerlessRuntime:",
        f"  name: {name}",
        f"  runtime: {runtime}",
        f"  handler: {handler}",
        f"  code: {code}",
        f"  timeout: {timeout}",
        f"  memory: {memory}",
    ]
    if environment:
        lines.append("  environment:")
        lines += [f"    {key}: {json.dumps(value)}" for key, value in environment.items()]
    if triggers:
        lines.append("  triggers:")
        lines += ["    " + line for line in textwrap.dedent(triggers).strip().splitlines()]
    text = "\n".join(lines) + "\n"
    path = folder / f"{name}.yaml"
    path.write_text(text)
    result = load_text(text, str(path))
    errors = [f for f in result.findings if f.severity == "error"]
    assert not errors, errors
    return result.documents[0], folder


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # the last value of each header, by lower-case name
    body: bytes
    header_list: tuple[tuple[str, str], ...] = ()

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30.0) -> Reply:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        pairs = tuple((k.lower(), v) for k, v in response.getheaders())
        return Reply(response.status, dict(pairs), response.read(), pairs)
    finally:
        connection.close()


@contextmanager
def serving(data_dir: Path, name: str, source: str, route: str, **options: Any) -> Iterator[Any]:
    """One function stored with an http route (`METHOD /path`), and a runtime serving it."""
    from backends.localfn.functions_host import LocalFunctionsRuntime

    method, path = route.split(" ", 1)
    deploy(data_dir, data_dir.parent, name, source, triggers=f"- type: http\n  path: {path}\n  method: {method}")
    runtime = LocalFunctionsRuntime(data_dir, "127.0.0.1", 0, **options)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def signed_request(url: str, store_root: Path, path: str, body: bytes = b"{}",
                   headers: dict[str, str] | None = None) -> Reply:
    """A POST to Lambda's API on the gateway, signed with the runtime's key pair as boto3 signs."""
    from backends.localfn.signing import read_key_pair, sign

    key = read_key_pair(store_root)
    assert key is not None, "the runtime creates its key pair when it starts"
    return request(url, "POST", path, body, sign("POST", url + path, dict(headers or {}), body, key))


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def process_exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone in all but name
    except FileNotFoundError:
        return False


def deploy(data_dir: Path, folder: Path, name: str, source: str, **spec: Any):
    """Write `source` as the function's main.py, and store it as the function's next version."""
    from backends.localfn.definition import definition_from_spec, locate_code
    from backends.localfn.store import FunctionStore

    write_function(folder / name, source)
    document, base = spec_document(folder, name, code=name, **spec)
    serverless = document.get("ServerlessRuntime")
    code = locate_code(serverless, base)
    return FunctionStore(data_dir).deploy(definition_from_spec(serverless, name, code), code)
