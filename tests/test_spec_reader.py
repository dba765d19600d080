"""The bounded, position-aware reader behind specs: libyaml's C parser with PyYAML's positions
and messages, costs that grow linearly (counted, not timed), and files refused before reading."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml

from rtm import reader
from rtm.documents import load_file, load_text
from rtm.findings import Finding

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"
TODAY = date(2026, 11, 27)

# Texts whose findings (positions and messages) users already know; several are invalid YAML.
KNOWN_TEXTS = [p.read_text() for p in sorted(SAMPLES.glob("*.yaml"))] + [
    "ContainerRuntime:\n  base_image: a\n   runtime: b\n",
    "ContainerRuntime:\n\tbase_image: x\n",
    'ContainerRuntime:\n  base_image: "alpine\n',
    "HealthCheck:\n  liveness: {command: [true], retries: three\n",
    "a: b: c\n",
    "- [1, 2\n- 3\n",
    "ContainerRuntime: {base_image: x, resources: {limits: {cpu: \"1.1.5\"}}}\n",
    "ServerlessRuntime:\n  runtime: python3.12\n",
    "---\nname: a\n---\nname: [\n",
    "key: !!map scalar\n",
    "x: *unknown\n",
    "ContainerRuntime:\n  base_image: é\n  labels: {ü: 1, \"two\": [x]}\n",
]


def _findings(text: str) -> list[tuple[int, int, str, str, str | None]]:
    result = load_text(text, "s.yaml", today=TODAY)
    return [(f.line, f.column, f.severity, f.message, f.hint) for f in result.findings]


@pytest.mark.parametrize("text", KNOWN_TEXTS, ids=range(len(KNOWN_TEXTS)))
def test_libyaml_gives_the_findings_of_the_pure_python_parser_simulated_without_libyaml(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert reader.HAS_LIBYAML, "PyYAML is built with libyaml on the project's machines"
    with_libyaml = _findings(text)
    monkeypatch.setattr(reader, "HAS_LIBYAML", False)
    assert _findings(text) == with_libyaml


def test_a_valid_file_is_composed_by_libyaml_not_the_pure_python_composer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = yaml.composer.Composer.compose_node
    monkeypatch.setattr(yaml.composer.Composer, "compose_node", lambda self, *a: calls.append(1) or original(self, *a))
    result = load_file(SAMPLES / "nodes.yaml", today=TODAY)
    assert len(result.documents[0].nodes) == 12 and result.findings == ()
    assert calls == []


def test_missing_libyaml_is_said_once_in_the_debug_log_simulated(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(reader, "HAS_LIBYAML", False)
    monkeypatch.setattr(reader, "_told_pure_python", False)
    with caplog.at_level(logging.DEBUG, logger="rtm.reader"):
        for _ in range(3):
            assert load_file(SAMPLES / "nodes.yaml", today=TODAY).findings == ()
    told = [r for r in caplog.records if r.name == "rtm.reader"]
    assert len(told) == 1 and "pure-Python" in told[0].getMessage()


@pytest.mark.parametrize("simulate_without_libyaml", [False, True])
def test_nesting_deeper_than_the_limit_is_an_invalid_yaml_finding_with_a_position(
    simulate_without_libyaml: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "HAS_LIBYAML", not simulate_without_libyaml)
    limit = sys.getrecursionlimit()
    depth = reader.MAX_DEPTH + 5
    (finding,) = load_text("a: " + "[" * depth + "]" * depth + "\n", "deep.yaml").findings
    assert finding.message.startswith("invalid YAML") and "nesting depth" in finding.message
    if simulate_without_libyaml:  # held to what the recursion limit leaves room for, at the bracket too deep
        assert finding.line == 1 and 3 + 200 <= finding.column < 3 + reader.MAX_DEPTH
    else:
        assert (finding.line, finding.column) == (1, 3 + reader.MAX_DEPTH)  # the bracket that goes one level too deep
    assert sys.getrecursionlimit() == limit  # the reader never changes the process-wide limit


def test_an_error_behind_nesting_the_pure_python_composer_cannot_follow_keeps_libyamls_words() -> None:
    """libyaml's errors are worded again by PyYAML's composer when it can follow the text; a text
    nested deeper than the recursion limit leaves it room for keeps libyaml's error and position,
    and the limit is left as it was."""
    limit = sys.getrecursionlimit()
    depth = 900
    (finding,) = load_text("a: " + "[" * depth + "]" * depth + "\nb: [1, 2\n", "deep.yaml").findings
    assert finding.message.startswith("invalid YAML") and "nesting depth" not in finding.message
    assert finding.line in (2, 3)
    assert sys.getrecursionlimit() == limit


# --- costs, counted -------------------------------------------------------------------------


def _documents_with_an_error_each(count: int) -> str:
    return "".join(f"---\nname: w{i}\nContainerRuntime: {{base_image: x, restart_policy: sometimes}}\n" for i in range(count))


class _CountedFinding(Finding):
    reads = 0

    def __getattribute__(self, name: str):
        if name == "severity":
            type(self).reads += 1
        return super().__getattribute__(name)


def _severity_reads(count: int, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("rtm.schema.Finding", _CountedFinding)
    _CountedFinding.reads = 0
    result = load_text(_documents_with_an_error_each(count), "many.yaml")
    assert sum(f.severity == "error" for f in result.findings) == count
    return _CountedFinding.reads - count


def test_counting_errors_does_not_reread_every_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step asked how many errors there were by recounting all findings: 1,000 / 4,000 /
    8,000 documents took 0.8 / 3.4 / 9.7 s, and 100,000 never finished."""
    small, large = _severity_reads(200, monkeypatch), _severity_reads(800, monkeypatch)
    assert large <= 4 * small + 10  # linear: four times the documents, at most four times the reads


def test_nodes_composed_and_values_built_grow_linearly_with_the_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtm.schema

    counts = {"nodes": 0, "scalars": 0}
    node_init, scalar_value = yaml.nodes.Node.__init__, rtm.schema.scalar_value

    def counting_init(self, *args, **kwargs):
        counts["nodes"] += 1
        node_init(self, *args, **kwargs)

    def counting_scalar(node):
        counts["scalars"] += 1
        return scalar_value(node)

    monkeypatch.setattr(yaml.nodes.Node, "__init__", counting_init)
    monkeypatch.setattr(rtm.schema, "scalar_value", counting_scalar)

    def load(count: int) -> dict[str, int]:
        counts.update(nodes=0, scalars=0)
        text = "Nodes:\n" + "".join(f"  - {{id: n{i}, cpu: '4', memory: 8Gi, labels: {{disk: ssd}}, weight: 2}}\n" for i in range(count))
        assert len(load_text(text, "inventory.yaml").documents[0].nodes) == count
        return dict(counts)

    small, medium, large = load(1000), load(2000), load(3000)
    for what in ("nodes", "scalars"):
        assert large[what] - medium[what] == medium[what] - small[what], what  # the same work per node


# --- bounded reading -----------------------------------------------------------------------


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "specs.yaml"
    os.mkfifo(fifo)
    with pytest.raises(reader.FileRefused) as refused:
        load_file(fifo)
    assert "not a regular file (a pipe)" in str(refused.value)


def test_a_character_device_is_refused_before_reading() -> None:
    with pytest.raises(reader.FileRefused) as refused:
        load_file(Path("/dev/zero"))
    assert "a character device" in str(refused.value)


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(reader.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(reader.FileRefused) as refused:
        load_file(big)
    assert "larger than 16 MiB" in str(refused.value)
    exactly = tmp_path / "limit.yaml"
    exactly.write_bytes(b"#" * 10 + b"\n")
    assert reader.read_bounded(exactly, limit=11) == b"#" * 10 + b"\n"
    with pytest.raises(reader.FileRefused):
        reader.read_bounded(exactly, limit=10)


def test_text_over_the_size_limit_is_a_finding_not_a_memory_error() -> None:
    (finding,) = load_text("#" * (reader.MAX_FILE_BYTES + 1), "editor.yaml").findings
    assert finding.severity == "error" and "larger than 16 MiB" in finding.message


def test_scalar_values_are_not_kept_after_loading() -> None:
    """The scalar constructor used to remember every node it had read, for the process's life."""
    import gc

    before = len(reader._CONSTRUCTOR.constructed_objects)
    load_file(SAMPLES / "nodes.yaml", today=TODAY)
    assert len(reader._CONSTRUCTOR.constructed_objects) == before == 0
    assert gc.isenabled()


def test_quantities_over_the_engines_fields_are_refused_at_their_position() -> None:
    text = textwrap.dedent(
        """\
        ContainerRuntime:
          base_image: alpine:3.18
          security: {user: "1000"}
          resources:
            limits: {cpu: "1e30", memory: "99999999999999999999Ei"}
        """
    )
    found = _findings(text)
    assert [(line, col) for line, col, *_ in found] == [(5, 19), (5, 35)]
    assert "more CPU than an engine can be given" in found[0][3]
    assert "more memory than an engine can be given" in found[1][3]


def test_a_large_inventory_written_out_is_not_mistaken_for_an_alias_bomb() -> None:
    """The cap counted every value, so an inventory over about 10,000 nodes was refused as
    "expands to too many values"; now only what aliases add is capped (the file size bounds the rest)."""
    count = 15_000
    text = "Nodes:\n" + "".join(f"  - {{id: n{i}, cpu: '4', memory: 8Gi, labels: {{disk: ssd}}, weight: 2}}\n" for i in range(count))
    result = load_text(text, "inventory.yaml")
    assert result.findings == () and len(result.documents[0].nodes) == count
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (finding,) = load_text(bomb, "bomb.yaml").findings
    assert finding.message == "this document expands to too many values"
