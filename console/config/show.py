"""Showing the effective configuration (`rtm-console config`, `--json`): each key, its value and
its source, secrets masked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from console.config.keys import KEYS
from console.config.settings import Config, ListenAddress
from console.gate import MASK, is_secret_name, mask_secrets
from rtm.secrets import shell_join


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) for each simple value inside `value`, lists indexed."""
    if is_dataclass(value) and not isinstance(value, ListenAddress):
        for item in fields(value):
            yield from _leaves(f"{name}.{item.name}", getattr(value, item.name))
    elif isinstance(value, tuple) and value and is_dataclass(value[0]):
        for index, item in enumerate(value):
            yield from _leaves(f"{name}[{index}]", item)
    else:
        yield name, value


def _masked(name: str, value: Any) -> Any:
    leaf = name.rsplit(".", 1)[-1]
    if value is not None and is_secret_name(leaf):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return tuple(mask_secrets(list(value)))  # a command: `-u user:pass`, `-H "X-Api-Key: ..."`
    return value


def _show(value: Any, unit: str | None) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return shell_join([str(item) for item in value]) if value else "(none)"
    if isinstance(value, float) and unit:
        return f"{value:g} {unit}"
    return str(value)


def _rows(config: Config) -> Iterator[tuple[str, str, str]]:
    for key in KEYS:
        source = str(config.source(key.name))
        value = config.get(key.name)
        if key.name == "functions.target":
            yield key.name, f"{value} ({config.functions.target_reason})", source
            continue
        for name, leaf in _leaves(key.name, value):
            yield name, _show(_masked(name, leaf), key.unit), source


def render_config(config: Config) -> str:
    """The effective configuration for `rtm-console config`: each key, value and source."""
    if config.file is not None:
        header = f"config file: {config.file} ({config.file_source})"
    else:
        header = f"config file: none found ({config.file_source}); using defaults"
    rows = list(_rows(config))
    name_width = max(len(name) for name, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 48)
    lines = [header, ""]
    lines += [f"{name:<{name_width}}  {value:<{value_width}}  {source}" for name, value, source in rows]
    return "\n".join(lines) + "\n"


def config_as_json(config: Config) -> dict[str, Any]:
    """The effective configuration as JSON-ready data (for `rtm-console config --json`).

    `{"file": PATH|null, "file_source": ..., "settings": {KEY: {"value": ..., "source": ...}}}`;
    `functions.target` also carries `requested` and `reason`. Secrets are masked.
    """
    settings: dict[str, Any] = {}
    for key in KEYS:
        entry: dict[str, Any] = {
            "value": _json_value(key.name, config.get(key.name)),
            "source": str(config.source(key.name)),
        }
        if key.name == "functions.target":
            entry["requested"] = config.functions.requested_target
            entry["reason"] = config.functions.target_reason
        settings[key.name] = entry
    return {
        "file": str(config.file) if config.file is not None else None,
        "file_source": config.file_source,
        "settings": settings,
    }


def _json_value(name: str, value: Any) -> Any:
    value = _masked(name, value)
    if isinstance(value, (Path, ListenAddress)):
        return str(value)
    if is_dataclass(value):
        return {item.name: _json_value(item.name, getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple):
        return [_json_value(name, item) for item in value]
    return value
