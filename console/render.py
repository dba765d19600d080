"""What applying a document would send, per kind, without contacting anything.

Each runtime backend registers a pure renderer for its kind in RENDERERS; the tuning renderer
lives in rtm. A kind without a renderer is reported as such rather than silently skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rtm.documents import Document
from rtm.tuning import render_tuning

# kind -> renderer(document, spec, base_dir) -> JSON-ready value
Renderer = Callable[[Document, Any, Path], Any]
RENDERERS: dict[str, Renderer] = {
    "PerformanceTuning": lambda _doc, spec, _base: render_tuning(spec),
}


def render_documents(documents: tuple[Document, ...], base_dir: Path) -> list[dict]:
    rendered = []
    for document in documents:
        entry: dict[str, Any] = {"document": document.index + 1}
        if document.name:
            entry["name"] = document.name
        for kind, spec in document.specs.items():
            renderer = RENDERERS.get(kind)
            if renderer is not None:
                entry[kind] = renderer(document, spec, base_dir)
        if document.nodes is not None:
            entry["Nodes"] = [{"id": n.id, "cpu_millis": n.cpu, "memory_bytes": n.memory, "labels": n.all_labels, "weight": n.weight, "connections": n.connections} for n in document.nodes]
        rendered.append(entry)
    return rendered
