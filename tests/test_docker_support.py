"""Helpers shared by the Docker tests (this module holds no tests of its own).

Every container made here carries the session's test labels, so a crashed test's leftovers are
removed when the session ends (tests/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rtm.documents import Document, load_text

T = TypeVar("T")
SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"


def eventually(probe: Callable[[], T], timeout: float = 30.0, step: float = 0.2) -> T:
    """The first truthy value of `probe()` within `timeout` seconds (the engine works at its
    own pace on a shared machine), else the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def run_container(client: Any, image: str, command: list[str] | str, labels: Mapping[str, str], **options: Any) -> Any:
    """A detached, labelled container (init=True so that stopping it is quick)."""
    options.setdefault("init", True)
    return client.containers.run(image, command, detach=True, labels=dict(labels), **options)


def remove_all(client: Any, label: str) -> None:
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True)
        except Exception:  # already gone
            pass


def workload_document(name: str, image: str, labels: Mapping[str, str], *, replicas: int | None = None,
                      edit: Callable[[str], str] = lambda text: text, path: str = "web.yaml") -> Document:
    """The sample web workload, run from `image`, named `name`, its containers labelled."""
    text = (SAMPLES / "workload-web.yaml").read_text()
    text = text.replace('base_image: "alpine:3.18"', f'base_image: "{image}"').replace("name: web\n", f"name: {name}\n", 1)
    label_lines = "".join(f'    {key}: "{value}"\n' for key, value in labels.items())
    text = text.replace("ContainerRuntime:\n", f"ContainerRuntime:\n  labels:\n{label_lines}", 1)
    if replicas is not None:
        text = f"replicas: {replicas}\n" + text
    result = load_text(edit(text), str(SAMPLES / path))
    assert result.ok, result.findings
    (document,) = result.documents
    return document
