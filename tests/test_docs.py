"""The documentation stays true: every spec field and every CLI command is documented."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from rtm.kinds import KINDS
from rtm.kinds.node_inventory import NodeSpec
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


# --------------------------------------------------------------- docs/specs.md: value grammars

from rtm.cron import parse_schedule  # noqa: E402
from rtm.duration import parse_duration  # noqa: E402
from rtm.errors import SpecValueError  # noqa: E402
from rtm.quantity import cpu_millis, memory_bytes  # noqa: E402
from rtm.sizes import jvm_size_bytes, mysql_size_bytes, redis_size_bytes  # noqa: E402

GRAMMAR_PARSERS = {
    "CPU quantity": cpu_millis, "memory quantity": memory_bytes, "duration": parse_duration,
    "schedule": parse_schedule, "JVM size": jvm_size_bytes, "Redis size": redis_size_bytes,
    "MySQL size": mysql_size_bytes,
}


def _grammar_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "specs.md").read_text()
    table = text.split("## Value grammars", 1)[1].split("\n\n", 2)[1]
    rows = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return [(name.strip(), examples, notes) for name, examples, notes in rows]


def _values(text: str) -> list[str]:
    """The backticked values of a cell, without the YAML quotes around some of them."""
    return [value[1:-1] if value[:1] == value[-1:] == '"' else value for value in re.findall(r"`([^`]+)`", text)]


def _rejected(notes: str) -> list[str]:
    """Values a note says are rejected or refused: those written just before the word."""
    found = []
    for match in re.finditer(r"(?:is|are) (?:rejected|refused)", notes):
        clause = re.split(r"[;(:]", notes[: match.start()].rstrip(" )"))[-1]
        found += _values(clause)
    return found


def test_every_grammar_of_docs_specs_has_a_parser_here() -> None:
    assert [name for name, _e, _n in _grammar_rows()] == list(GRAMMAR_PARSERS)


@pytest.mark.parametrize(("grammar", "examples", "notes"), _grammar_rows(), ids=[row[0] for row in _grammar_rows()])
def test_every_example_of_the_grammar_table_holds(grammar: str, examples: str, notes: str) -> None:
    parse = GRAMMAR_PARSERS[grammar]
    for example in _values(examples):
        parse(example)  # a documented example is accepted
    for refused in _rejected(notes):
        with pytest.raises(SpecValueError):
            parse(refused)
    for left, right in re.findall(r"`([^`]+)` == `([^`]+)`", notes):
        assert parse(left) == parse(right)
    for value, base, power in re.findall(r"`([^`]+)` = (\d+)\^(\d+)", notes):
        assert parse(value) == int(base) ** int(power)


def test_the_grammar_checks_find_what_the_table_claims() -> None:
    """The checks above read what they should from the table (so they cannot pass on nothing)."""
    rows = {name: (examples, notes) for name, examples, notes in _grammar_rows()}
    assert _rejected(rows["CPU quantity"][1]) == ["1e3m", "1e30"]
    assert _rejected(rows["memory quantity"][1]) == ["1K", "0.1mi", " 1", "8Ei"]
    assert _values(rows["schedule"][0])[0] == "0 0 * * *"
