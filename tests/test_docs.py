"""The documentation stays true: every spec field and every CLI command is documented."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from rtm.kinds import KINDS
from rtm.kinds.nodes import NodeSpec
from rtm.schema import FrozenMap

ROOT = Path(__file__).resolve().parent.parent


def _field_names(cls: type) -> set[str]:
    names: set[str] = set()
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if f.name == "where":
            continue
        names.add(f.name)
        stack = [hints[f.name]]
        while stack:
            tp = stack.pop()
            if typing.get_origin(tp) is typing.Annotated:
                continue  # a grammar value, not a nested spec
            if dataclasses.is_dataclass(tp) and tp is not FrozenMap:
                names |= _field_names(tp)
            else:
                stack.extend(typing.get_args(tp))
    return names


@pytest.mark.parametrize("kind", [*KINDS, "Nodes"])
def test_every_spec_field_is_in_docs_specs(kind: str) -> None:
    text = (ROOT / "docs" / "specs.md").read_text()
    assert f"## {kind}" in text
    cls = NodeSpec if kind == "Nodes" else KINDS[kind]
    # a field counts as documented when it appears as a name or a dotted path component in code
    missing = sorted(n for n in _field_names(cls) if not re.search(rf"[`.{{ ]{n}[`.\[,:}}]", text))
    assert not missing, f"docs/specs.md does not mention {missing} of {kind}"
