"""What applying a document would send, per kind, without contacting anything.

Each kind's renderer is named as "module:function" and imported only when a document of that
kind is rendered, so rendering a tuning spec never loads a backend. Renderers are pure:
(document, spec, base_dir) -> a JSON-ready value.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from rtm.documents import Document

RENDERERS: dict[str, str] = {
    "PerformanceTuning": "console.render:render_tuning_spec",
    "ContainerRuntime": "backends.docker:render_container_runtime",
    "VirtualMachineRuntime": "backends.libvirt.handler:render_document",
    "ServerlessRuntime": "backends.aws_lambda.mapping:render_document",
}


def render_tuning_spec(_document: Document, spec: Any, _base_dir: Path) -> Any:
    from rtm.tuning_render import render_tuning

    return render_tuning(spec)


def renderer(kind: str) -> Callable[[Document, Any, Path], Any] | None:
    target = RENDERERS.get(kind)
    if target is None:
        return None
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def render_documents(documents: tuple[Document, ...], base_dir: Path) -> list[dict]:
    rendered = []
    for document in documents:
        entry: dict[str, Any] = {"document": document.index + 1}
        if document.name:
            entry["name"] = document.name
        for kind, spec in document.specs.items():
            render = renderer(kind)
            if render is not None:
                entry[kind] = render(document, spec, base_dir)
        if document.nodes is not None:
            entry["Nodes"] = [{"id": n.id, "cpu_millis": n.cpu, "memory_bytes": n.memory, "labels": n.all_labels, "weight": n.weight, "connections": n.connections} for n in document.nodes]
        rendered.append(entry)
    return rendered
