"""Build typed, immutable spec values from YAML nodes, reporting every mistake with its position.

Each spec kind is a frozen dataclass. Its type annotations say how a YAML value becomes a
Python value: `int`, `float`, `bool`, `str`, `Literal[...]` (one of a fixed set), `tuple[X, ...]`
(a YAML list), `FrozenMap` (a mapping of names to text), another dataclass (a nested mapping),
`X | None` (optional), and `Annotated[T, Parse(fn, ...)]` for values with a grammar of their own
(quantities, durations, schedules). A class may define `check(self, ctx)` for rules that span
fields; it runs only when the object itself was built without errors.

Positions come from the composed nodes (rtm/reader.py), so a finding can point at the exact line and
column — inside a string too, when the grammar parser says which character is wrong.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from datetime import date
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, get_args, get_origin, get_type_hints

import yaml

from rtm.errors import SpecValueError
from rtm.findings import Finding
from rtm.reader import scalar_value

_MISSING = object()


class FrozenMap(dict):
    """A read-only dict: spec values are immutable, and this one still prints and dumps as a dict."""

    def _readonly(self, *_args: Any, **_kwargs: Any) -> None:
        raise TypeError("spec values are immutable")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


@dataclass(frozen=True)
class Where:
    """Where a mapping stands in its file, and where each of its keys' values stands (and each
    item of a list value, as "name[index]")."""

    path: str = "<unknown>"
    line: int = 1
    column: int = 1
    fields: FrozenMap = field(default_factory=FrozenMap)

    def of(self, name: str) -> tuple[int, int]:
        return self.fields.get(name, (self.line, self.column))


NOWHERE = Where()


@dataclass(frozen=True)
class Parse:
    """Annotation marker: parse a scalar with `fn`, which raises SpecValueError on bad input."""

    fn: Callable[[Any], Any]
    expected: str  # e.g. "a CPU quantity such as 500m or 2"


@dataclass(frozen=True)
class Key:
    """Annotation marker: the YAML key differs from the Python field name."""

    name: str


class BuildContext:
    """Collects findings for one file while specs are built from it."""

    def __init__(self, path: str, today: date | None = None) -> None:
        self.path = path
        self.today = today or date.today()  # runtime deprecations depend on the date
        self.findings: list[Finding] = []
        self._errors = 0

    def error_count(self) -> int:
        """Errors reported so far (kept as a count: documents ask after every step)."""
        return self._errors

    def report(self, severity: str, line: int, column: int, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(self.path, line, column, severity, message, hint))  # type: ignore[arg-type]
        if severity == "error":
            self._errors += 1

    def error_at(self, node: yaml.Node, message: str, hint: str | None = None, offset: int = 0) -> None:
        line, column = node_position(node, offset)
        self.report("error", line, column, message, hint)

    def error(self, where: Where, name: str | None, message: str, hint: str | None = None) -> None:
        line, column = where.of(name) if name else (where.line, where.column)
        self.report("error", line, column, message, hint)

    def warning(self, where: Where, name: str | None, message: str, hint: str | None = None) -> None:
        line, column = where.of(name) if name else (where.line, where.column)
        self.report("warning", line, column, message, hint)


def node_position(node: yaml.Node, offset: int = 0) -> tuple[int, int]:
    """1-based line and column of a node, moved `offset` characters into a one-line scalar."""
    mark = node.start_mark
    column = mark.column + 1
    if isinstance(node, yaml.ScalarNode) and offset:
        quoted = node.style in ("'", '"')
        column += offset + (1 if quoted else 0)
    return mark.line + 1, column


# ----------------------------------------------------------------------------------------------
# Scalars


def _kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = scalar_value(node)
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f'the text "{value}"'


# ----------------------------------------------------------------------------------------------
# The builder: each class's fields and each type's converter are worked out once, then cached

Converter = Callable[[yaml.Node, "BuildContext", str], Any]


@dataclass(frozen=True)
class _ClassPlan:
    fields_by_key: dict[str, tuple[str, Converter]]  # YAML key -> (field name, converter)
    required: frozenset[str]  # YAML keys without a default
    has_where: bool


@functools.cache
def _plan(cls: type) -> _ClassPlan:
    hints = get_type_hints(cls, include_extras=True)
    fields_by_key: dict[str, tuple[str, Converter]] = {}
    required = set()
    for f in dataclasses.fields(cls):
        if f.name == "where":
            continue
        key = _yaml_key(f, hints[f.name])
        fields_by_key[key] = (f.name, converter_for(hints[f.name]))
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.add(key)
    has_where = any(f.name == "where" for f in dataclasses.fields(cls))
    return _ClassPlan(fields_by_key, frozenset(required), has_where)


def build(cls: type, node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    """Build dataclass `cls` from a mapping node; None when anything inside it is wrong."""
    if not isinstance(node, yaml.MappingNode):
        ctx.error_at(node, f"{what} must be a mapping of keys to values, got {_kind_of(node)}")
        return None
    plan = _plan(cls)
    fields_by_key = plan.fields_by_key
    errors_before = ctx.error_count()
    seen: dict[str, yaml.Node] = {}
    positions: dict[str, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        key = scalar_value(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            ctx.error_at(key_node, f"keys in {what} must be names, got {_kind_of(key_node)}")
            continue
        if key in seen:
            ctx.error_at(key_node, f'"{key}" is given twice in {what}', "remove one of them")
            continue
        if key not in fields_by_key:
            ctx.error_at(key_node, f'unknown key "{key}" in {what}', did_you_mean(key, fields_by_key))
            continue
        seen[key] = value_node
        mark = value_node.start_mark
        name = fields_by_key[key][0]
        positions[name] = (mark.line + 1, mark.column + 1)
        if isinstance(value_node, yaml.SequenceNode):  # each item too: "capabilities[1]"
            for index, item in enumerate(value_node.value):
                positions[f"{name}[{index}]"] = (item.start_mark.line + 1, item.start_mark.column + 1)

    values: dict[str, Any] = {}
    for key, (name, convert_value) in fields_by_key.items():
        if key in seen:
            values[name] = convert_value(seen[key], ctx, f"{what}.{key}")
        elif key in plan.required:
            ctx.error_at(node, f'{what} needs the key "{key}"', f"add `{key}:`")
            values[name] = None

    if ctx.error_count() > errors_before:
        return None
    if plan.has_where:
        line, column = node_position(node)
        values["where"] = Where(ctx.path, line, column, FrozenMap(positions))
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        before = ctx.error_count()
        check(ctx)
        if ctx.error_count() > before:
            return None
    return obj


def convert(tp: Any, node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    """Convert one YAML node to the Python type `tp`; report and return None when it does not fit."""
    return converter_for(tp)(node, ctx, what)


@functools.cache
def converter_for(tp: Any) -> Converter:
    """The function that converts a YAML node to `tp` (see the module's docstring for the types)."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = get_args(tp)
        parse = next((e for e in extras if isinstance(e, Parse)), None)
        return converter_for(base) if parse is None else functools.partial(_convert_parsed, parse)
    if origin in (typing.Union, types.UnionType):
        options = tuple(a for a in get_args(tp) if a is not type(None))
        return functools.partial(_convert_optional, options)
    if origin is Literal:
        return functools.partial(_convert_choice, get_args(tp))
    if origin is tuple:
        return functools.partial(_convert_list, converter_for(get_args(tp)[0]))
    if tp is FrozenMap:
        return _convert_text_map
    if dataclasses.is_dataclass(tp):
        return functools.partial(build, tp)
    return functools.partial(_convert_plain, tp)


def _convert_parsed(parse: Parse, node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    if not isinstance(node, yaml.ScalarNode) or scalar_value(node) is None:
        ctx.error_at(node, f"{what} must be {parse.expected}, got {_kind_of(node)}")
        return None
    try:
        return parse.fn(scalar_value(node))
    except SpecValueError as exc:
        ctx.error_at(node, f"{what}: {exc.message}", exc.hint, exc.offset)
        return None


def _convert_optional(options: tuple[Any, ...], node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    if isinstance(node, yaml.ScalarNode) and scalar_value(node) is None:
        return None
    return converter_for(_option_for(options, node))(node, ctx, what)


def _convert_choice(allowed: tuple[Any, ...], node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    value = scalar_value(node) if isinstance(node, yaml.ScalarNode) else _MISSING
    if value not in allowed:
        choices = ", ".join(str(a) for a in allowed)
        hint = did_you_mean(str(value), allowed) if isinstance(value, str) else None
        ctx.error_at(node, f"{what} must be one of {choices}, got {_kind_of(node)}", hint)
        return None
    return value


def _convert_list(convert_item: Converter, node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    if not isinstance(node, yaml.SequenceNode):
        ctx.error_at(node, f"{what} must be a list, got {_kind_of(node)}", "write it as [a, b] or one `- item` per line")
        return None
    items = [convert_item(child, ctx, f"{what}[{i}]") for i, child in enumerate(node.value)]
    return None if any(i is None for i in items) else tuple(items)


@functools.cache
def _shape(tp: Any) -> str:
    base = get_args(tp)[0] if get_origin(tp) is typing.Annotated else tp
    if get_origin(base) is tuple:
        return "list"
    if base is FrozenMap or dataclasses.is_dataclass(base):
        return "mapping"
    return "scalar"


def _option_for(options: tuple[Any, ...], node: yaml.Node) -> Any:
    """Of a union's types, the one whose YAML shape (list, mapping, scalar) matches the node."""
    wanted = {yaml.SequenceNode: "list", yaml.MappingNode: "mapping"}.get(type(node), "scalar")
    fitting = [o for o in options if _shape(o) == wanted] or list(options)
    if wanted == "scalar":
        value = scalar_value(node)  # type: ignore[arg-type]
        exact = [o for o in fitting if isinstance(o, type) and type(value) is o]
        return (exact or fitting)[0]
    return fitting[0]


def _convert_plain(tp: type, node: yaml.Node, ctx: BuildContext, what: str) -> Any:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    value = scalar_value(node) if isinstance(node, yaml.ScalarNode) else _MISSING
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        hint = 'put it in quotes to make it text' if tp is str and value is not _MISSING else None
        ctx.error_at(node, f"{what} must be {names.get(tp, tp.__name__)}, got {_kind_of(node)}", hint)
        return None
    return float(value) if tp is float else value


def _convert_text_map(node: yaml.Node, ctx: BuildContext, what: str) -> FrozenMap | None:
    """Environment variables and labels: names to text; numbers and booleans become their text."""
    if not isinstance(node, yaml.MappingNode):
        ctx.error_at(node, f"{what} must be a mapping of names to values, got {_kind_of(node)}")
        return None
    result: dict[str, str] = {}
    ok = True
    for key_node, value_node in node.value:
        key = scalar_value(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or not key:
            ctx.error_at(key_node, f"names in {what} must be text, got {_kind_of(key_node)}")
            ok = False
            continue
        if key in result:
            ctx.error_at(key_node, f'"{key}" is given twice in {what}')
            ok = False
            continue
        if not isinstance(value_node, yaml.ScalarNode):
            ctx.error_at(value_node, f"{what}.{key} must be a single value, got {_kind_of(value_node)}")
            ok = False
            continue
        value = scalar_value(value_node)
        if isinstance(value, bool):
            value = str(value).lower()
        result[key] = "" if value is None else str(value)
    return FrozenMap(result) if ok else None


def _yaml_key(f: dataclasses.Field, annotation: Any) -> str:
    if get_origin(annotation) is typing.Annotated:
        for extra in get_args(annotation)[1:]:
            if isinstance(extra, Key):
                return extra.name
    return f.name


def did_you_mean(word: str, choices: Any) -> str | None:
    matches = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    if matches:
        return f'did you mean "{matches[0]}"?'
    return "expected one of: " + ", ".join(sorted(str(c) for c in choices))


def where_field() -> Any:
    """The `where` field every spec dataclass carries: its position, ignored by equality."""
    return field(default=NOWHERE, compare=False, repr=False, kw_only=True)
