"""Loading the configuration: each key's value from the highest source that offers a valid one
(flag > RTM_* variable > file > default), every problem found reported together."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from backends.aws_lambda.settings import AwsSettings
from backends.docker.settings import DockerSettings
from backends.libvirt.settings import LibvirtConnection, LibvirtSettings
from console.config.environment import config_file_path, home_dir, resolve_functions_target
from console.config.grammars import STR_TAG, InvalidValue, ParseContext, describe_node, did_you_mean
from console.config.keys import KEYS, KEYS_BY_NAME, SCHEMA, Key
from console.config.settings import (
    AutoscalerSettings, Config, ConfigError, ConfigFinding, ConsoleSettings, ExporterSettings, FunctionsSettings,
    KioskSettings, ListenAddress, LoadBalancerSettings, Source,
)
from rtm import reader
from rtm.errors import SpecValueError


@dataclass
class _Layer:
    """A value offered for a key by one source, not yet parsed."""

    node: Node
    source: Source
    ctx: ParseContext
    label: str  # where to point findings that have no line (an env var, a flag)
    key_node: Node | None = None  # the key in the file, for file values


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | str | None = None,
) -> Config:
    """The effective configuration. `flags` maps dotted keys (`"exporter.listen"`) to the
    values given on the command line; None values mean "not given" (so boolean flags need
    `default=None` in argparse, or a `--kiosk` left off would override the file). Strings are
    parsed like environment values; typed values (bool, numbers, lists, Path) are taken as is.
    `path` is `--config`. `KEYS_BY_NAME[key].flag` is the flag's documented name.

    Raises ConfigError listing every problem found, in the file and in the environment.
    """
    flags = flags or {}
    env = os.environ if env is None else env
    findings: list[ConfigFinding] = []
    unknown_flags = [name for name in flags if name not in KEYS_BY_NAME]
    if unknown_flags:
        raise ValueError(f"not configuration keys: {', '.join(unknown_flags)}")
    home = home_dir(env)
    cwd_ctx = ParseContext(Path.cwd(), home)

    file_path, file_source, must_exist = config_file_path(path, env)
    file_layers, file_found = _read_file(file_path, must_exist, home, findings)

    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for key in KEYS:
        layers = []
        if flags.get(key.name) is not None:
            layers.append(_Layer(_node_from_python(flags[key.name]), Source("flag", key.flag or key.name),
                                 cwd_ctx, f"{key.flag or key.name} (command line)"))
        if env.get(key.env):
            layers.append(_Layer(ScalarNode(STR_TAG, env[key.env]), Source("env", key.env),
                                 cwd_ctx, f"{key.env} (environment)"))
        if key.name in file_layers:
            layers.append(file_layers[key.name])
        raw_default, note = key.default(env)
        default_label = f"{note} (environment)" if note in env else f"default of {key.name}"
        layers.append(_Layer(_node_from_python(raw_default), Source("default", note), cwd_ctx,
                             default_label))
        # Every offered value is checked, so a bad line in the file is reported even while a
        # flag overrides it; the first (highest) valid layer wins.
        chosen = False
        for layer in layers:
            value = _parse_layer(key, layer, str(file_path), findings)
            if value is not _BAD and not chosen:
                values[key.name], sources[key.name] = value, layer.source
                chosen = True
    if findings:
        # File problems in file order, then those from the environment and the command line.
        findings.sort(key=lambda f: (f.line is None, f.path if f.line else "", f.line or 0, f.column or 0))
        raise ConfigError(findings)
    return _build(values, sources, env, file_path if file_found else None, file_source)


_BAD = object()


def _parse_layer(key: Key, layer: _Layer, file_path: str, findings: list[ConfigFinding]) -> Any:
    node = layer.node
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        if key.optional:
            return None
        findings.append(_finding(layer, file_path, key, InvalidValue(
            f"{key.name} needs a value", "remove the line to use the default"), node))
        return _BAD
    try:
        return key.parse(node, layer.ctx)
    except InvalidValue as exc:
        findings.append(_finding(layer, file_path, key, exc, exc.node or node))
    except SpecValueError as exc:
        findings.append(_finding(layer, file_path, key, exc, node))
    return _BAD


def _finding(layer: _Layer, file_path: str, key: Key, exc: SpecValueError, node: Node) -> ConfigFinding:
    message = f"{key.name}: {exc.message}"
    if layer.source.kind != "file" or node.start_mark is None:
        return ConfigFinding(layer.label, None, None, message, exc.hint, key.name)
    mark = node.start_mark
    quote = 1 if isinstance(node, ScalarNode) and node.style in ("'", '"') else 0
    offset = exc.offset if isinstance(node, ScalarNode) and node.style in (None, "", "'", '"') else 0
    return ConfigFinding(file_path, mark.line + 1, mark.column + 1 + quote + offset, message,
                         exc.hint, key.name)


def _node_from_python(value: Any) -> Node:
    if isinstance(value, str):
        return ScalarNode(STR_TAG, value)
    return yaml.compose(yaml.safe_dump(_to_plain(value)))


def _to_plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, ListenAddress):
        return str(value)
    return value


def _read_file(path: Path, must_exist: bool, home: Path,
               findings: list[ConfigFinding]) -> tuple[dict[str, _Layer], bool]:
    try:
        try:
            text = reader.read_yaml_text(path, "the config file")  # a regular file of at most 16 MiB
        except FileNotFoundError:
            if must_exist:
                findings.append(ConfigFinding(str(path), None, None, "config file not found"))
            return {}, False
        except OSError as exc:
            raise reader.cannot_read(path, "the config file", exc) from None
        root = reader.compose_document(text, path)  # nesting is capped: a finding, not a RecursionError
    except reader.YamlFileError as exc:
        problem = exc.problem
        findings.append(ConfigFinding(str(path), problem.line, problem.column, problem.message, problem.hint))
        return {}, True
    layers: dict[str, _Layer] = {}
    if root is None:
        return layers, True  # an empty file: every key keeps its default
    ctx = ParseContext(path.resolve().parent, home)
    _collect(root, SCHEMA, "", path, ctx, layers, findings)
    return layers, True


def _collect(node: Node, schema: Mapping[str, Any], prefix: str, path: Path, ctx: ParseContext,
             layers: dict[str, _Layer], findings: list[ConfigFinding]) -> None:
    """Walk a mapping of the file against the schema, recording each key's value node."""
    where = prefix.rstrip(".") or "the config file"
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null" and prefix:
        return  # `docker:` with nothing under it: an empty section
    if not isinstance(node, MappingNode):
        findings.append(_file_finding(path, node, f"{where}: expected a mapping of settings, "
                                                  f"got {describe_node(node)}"))
        return
    seen: set[str] = set()
    all_names = [key.name for key in KEYS]
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, ScalarNode) else None
        if not isinstance(name, str):
            findings.append(_file_finding(path, key_node, f"{where}: keys must be names"))
            continue
        dotted = prefix + name
        if name in seen:
            findings.append(_file_finding(path, key_node, f"duplicate key {dotted!r}",
                                          "each key may appear once; remove one of them"))
            continue
        seen.add(name)
        entry = schema.get(name)
        if entry is None:
            hint = did_you_mean(name, list(schema)) or did_you_mean(dotted, all_names) or \
                _placed_elsewhere(name, all_names)
            findings.append(_file_finding(path, key_node, f"unknown key {dotted!r}", hint))
        elif isinstance(entry, dict):
            _collect(value_node, entry, dotted + ".", path, ctx, layers, findings)
        else:
            line = key_node.start_mark.line + 1
            layers[entry.name] = _Layer(value_node, Source("file", f"{path}:{line}"), ctx,
                                        str(path), key_node)


def _placed_elsewhere(name: str, all_names: list[str]) -> str | None:
    matches = [full for full in all_names if full.rsplit(".", 1)[-1] == name]
    return f"did you mean '{matches[0]}'?" if len(matches) == 1 else None


def _file_finding(path: Path, node: Node, message: str, hint: str | None = None) -> ConfigFinding:
    mark = node.start_mark
    return ConfigFinding(str(path), mark.line + 1, mark.column + 1, message, hint)


def _build(values: dict[str, Any], sources: dict[str, Source], env: Mapping[str, str],
           file: Path | None, file_source: str) -> Config:
    aws = AwsSettings(values["aws.regions"], values["aws.profiles"], values["aws.endpoint_url"],
                      values["aws.role_arn"])
    target, reason = resolve_functions_target(values["functions.target"], aws, sources, env)
    return Config(
        refresh_interval=values["refresh_interval"],
        theme=values["theme"],
        specs_dir=values["specs_dir"],
        data_dir=values["data_dir"],
        docker=DockerSettings(values["docker.endpoints"], values["docker.publish_mode"], values["docker.target"]),
        libvirt=LibvirtSettings(values["libvirt.uris"], values["libvirt.shutdown_timeout"]),
        aws=aws,
        functions=FunctionsSettings(target, values["functions.target"], reason,
                                    values["functions.gateway_listen"]),
        exporter=ExporterSettings(values["exporter.listen"], values["exporter.web_config"],
                                  values["exporter.console_listen"]),
        kiosk=KioskSettings(values["kiosk.enabled"], values["kiosk.cycle_interval"],
                            values["kiosk.lock"]),
        load_balancer=LoadBalancerSettings(values["load_balancer.upstream_path"],
                                           values["load_balancer.reload_command"]),
        autoscaler=AutoscalerSettings(values["autoscaler.tolerance"]),
        console=ConsoleSettings(values["console.shell"], values["console.shell_idle_timeout"]),
        file=file,
        file_source=file_source,
        sources=MappingProxyType(dict(sources)),
    )


SANDBOX_LIBVIRT_URI = "test:///default"


def sandboxed(config: Config) -> Config:
    """What `--sandbox` puts in effect: libvirt's test driver and the local functions runtime."""
    sandbox = Source("flag", "--sandbox")
    sources = {**config.sources, "libvirt.uris": sandbox, "functions.target": sandbox}
    return replace(
        config,
        libvirt=replace(config.libvirt, uris=(LibvirtConnection("sandbox", SANDBOX_LIBVIRT_URI),)),  # libvirt@sandbox
        functions=replace(config.functions, target="local", target_reason="--sandbox: the embedded local runtime"),
        sources=MappingProxyType(sources),
    )


def flags_from_args(args: Any) -> dict[str, Any]:
    """The configuration keys given on the command line (argparse's namespace), by dotted key."""
    flags = {}
    for key in KEYS:
        if key.flag is not None:
            value = getattr(args, key.flag.lstrip("-").replace("-", "_"), None)
            if value is not None:
                flags[key.name] = value
    return flags
