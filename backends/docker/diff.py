"""What differs between a live container and the create request a spec now makes.

Only for showing a plan: whether a replica is replaced is decided by its spec-hash label. The
engine fills unset fields from the image (command, user, working folder, environment, labels,
exposed ports), so the request's effective value is its own, else the image's. Secret-looking
environment values are masked in the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.docker.mapping import MANAGED_LABELS, RESOURCE_FIELDS, mask_env_value, shown_body

CONFIG_FIELDS = ("Image", "Cmd", "Entrypoint", "WorkingDir", "User", "Healthcheck", "ExposedPorts")
UNORDERED = frozenset({"Binds", "CapAdd", "CapDrop", "SecurityOpt"})  # sets, whatever their order
HOST_FIELDS = ("PortBindings", "Binds", "CapAdd", "CapDrop", "SecurityOpt", "ReadonlyRootfs", "RestartPolicy", "Runtime")


def _env(entries: list[str] | None) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in entries or ())


def effective_config(body: Mapping[str, Any], image_config: Mapping[str, Any]) -> dict[str, Any]:
    """The Config a container created from `body` ends up with, given its image's Config."""
    config = {field: body.get(field, image_config.get(field)) for field in CONFIG_FIELDS}
    if body.get("Entrypoint") is not None and body.get("Cmd") is None:
        config["Cmd"] = None  # the engine drops the image's command when the entrypoint is set
    config["ExposedPorts"] = {**(image_config.get("ExposedPorts") or {}), **(body.get("ExposedPorts") or {})}
    config["Env"] = {**_env(image_config.get("Env")), **_env(body.get("Env"))}
    config["Labels"] = {**(image_config.get("Labels") or {}), **(body.get("Labels") or {})}
    return config


def _empty(value: Any) -> bool:
    return value in (None, "", [], {}, 0, False)


def _normal(value: Any) -> Any:
    """Unset and empty are the same to the engine: drop them from mappings."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if not _empty(v)}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _same(live: Any, spec: Any, unordered: bool = False) -> bool:
    if _empty(live) and _empty(spec):
        return True
    if unordered and isinstance(live, list) and isinstance(spec, list):
        return sorted(map(repr, _normal(live))) == sorted(map(repr, _normal(spec)))
    return _normal(live) == _normal(spec)


def config_diff(inspect: Mapping[str, Any], body: Mapping[str, Any], image_config: Mapping[str, Any],
                default_runtime: str) -> list[tuple[str, Any, Any]]:
    """(field, live value, spec value) for each field that differs."""
    live_config = dict(inspect.get("Config") or {})
    live_host = dict(inspect.get("HostConfig") or {})
    want = effective_config(body, image_config)
    diff: list[tuple[str, Any, Any]] = []
    for field in CONFIG_FIELDS:
        if not _same(live_config.get(field), want[field]):
            diff.append((field, live_config.get(field), want[field]))
    live_env = _env(live_config.get("Env"))
    for key in sorted(live_env.keys() | want["Env"].keys()):
        old, new = live_env.get(key), want["Env"].get(key)
        if old != new:
            shown = [mask_env_value(key, v) if v is not None else None for v in (old, new)]
            if shown[0] == shown[1]:
                shown[1] = f"{shown[1]} (changed)"
            diff.append((f"Env.{key}", shown[0], shown[1]))
    live_labels = {k: v for k, v in (live_config.get("Labels") or {}).items() if k not in MANAGED_LABELS}
    want_labels = {k: v for k, v in want["Labels"].items() if k not in MANAGED_LABELS}
    for key in sorted(live_labels.keys() | want_labels.keys()):
        if live_labels.get(key) != want_labels.get(key):
            diff.append((f"Labels.{key}", live_labels.get(key), want_labels.get(key)))
    want_host = shown_body(body)["HostConfig"]
    live_host["SecurityOpt"] = shown_body({"HostConfig": {"SecurityOpt": live_host.get("SecurityOpt") or []}})["HostConfig"]["SecurityOpt"]
    want_host.setdefault("Runtime", default_runtime)
    for field in (*HOST_FIELDS, *RESOURCE_FIELDS):
        if not _same(live_host.get(field), want_host.get(field), unordered=field in UNORDERED):
            diff.append((f"HostConfig.{field}", live_host.get(field), want_host.get(field)))
    return diff
