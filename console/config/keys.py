"""The key registry: every setting once, with its parser, default, environment variable, flag
and description (docs/config.md documents each of them), and the file's shape built from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from backends.docker.settings import CONTAINER_TARGETS, PUBLISH_MODES
from console.config.endpoints import docker_endpoints, libvirt_uris
from console.config.environment import default_docker, default_libvirt, default_regions, xdg_config_home
from console.config.grammars import (
    Parser, aws_profile, aws_region, boolean, choice, command, duration, fraction, http_url, listen_address,
    path_value, role_arn, string_list,
)
from console.config.settings import FUNCTION_TARGETS, MIN_KIOSK_CYCLE_SECONDS, MIN_REFRESH_SECONDS, THEMES
from console.datadir import APP_NAME, default_data_dir

Default = Callable[[Mapping[str, str]], tuple[Any, str]]  # env -> (raw value, what it came from)


@dataclass(frozen=True)
class Key:
    """One setting: its dotted name, parser, default, flag and description."""

    name: str
    parse: Parser
    default: Default
    flag: str | None
    doc: str
    optional: bool = False
    unit: str | None = None

    @property
    def env(self) -> str:
        return "RTM_" + self.name.upper().replace(".", "_")


def _fixed(value: Any) -> Default:
    return lambda env: (value, "")


def _from_env(name: str, fallback: Any, fallback_note: str = "") -> Default:
    return lambda env: (env[name], name) if env.get(name) else (fallback, fallback_note)


def _noted(env: Mapping[str, str], name: str) -> str:
    """Name the variable a default was derived from, when it was set."""
    return name if env.get(name) else ""


KEYS: tuple[Key, ...] = (
    Key("refresh_interval", duration(MIN_REFRESH_SECONDS), _fixed(2.0), "--refresh",
        "How often backends are polled (lower bound 0.5 s).", unit="s"),
    Key("theme", choice(THEMES), _fixed("dark"), "--theme",
        "Console colours: dark, light or high-contrast."),
    Key("specs_dir", path_value,
        lambda env: (str(xdg_config_home(env) / APP_NAME / "specs"), _noted(env, "XDG_CONFIG_HOME")),
        "--specs", "Folder of spec files the console, exporter and agent read."),
    Key("data_dir", path_value,
        lambda env: (str(default_data_dir(env)), _noted(env, "XDG_STATE_HOME")),
        "--data-dir", "Folder for the audit and event logs, history, function store and lock."),
    Key("docker.endpoints", docker_endpoints, default_docker, "--docker-host",
        "Docker engines: a list of {name, host, tls}."),
    Key("docker.publish_mode", choice(PUBLISH_MODES), _fixed("ingress"), None,
        "How Swarm services publish ports: ingress (the routing mesh, needs IPVS) or host."),
    Key("docker.target", choice(CONTAINER_TARGETS), _fixed("cluster"), None,
        "Where container workloads go when a Swarm manager is configured: cluster or standalone."),
    Key("libvirt.uris", libvirt_uris, default_libvirt, "--libvirt-uri",
        "libvirt hosts: a list of {name, uri}."),
    Key("libvirt.shutdown_timeout", duration(0), _fixed(60.0), None,
        "How long a graceful VM shutdown may take before the VM is forced off.", unit="s"),
    Key("aws.regions", string_list(aws_region, "AWS regions"), default_regions, "--aws-region",
        "AWS regions to manage functions in."),
    Key("aws.profiles", string_list(aws_profile, "AWS profile names"),
        _from_env("AWS_PROFILE", [], "the default credential chain"), "--aws-profile",
        "AWS profiles (from ~/.aws) to use."),
    Key("aws.endpoint_url", http_url, _from_env("AWS_ENDPOINT_URL", None), "--aws-endpoint-url",
        "Send AWS calls to this endpoint (moto, LocalStack) instead of AWS.", optional=True),
    Key("aws.role_arn", role_arn, _fixed(None), None,
        "Execution role for functions whose spec names none.", optional=True),
    Key("functions.target", choice(FUNCTION_TARGETS), _fixed("auto"), "--functions-target",
        "Where functions run: aws, local, or auto."),
    Key("functions.gateway_listen", listen_address, _fixed("127.0.0.1:8790"), "--gateway-listen",
        "Address of the local functions runtime's HTTP gateway."),
    Key("exporter.listen", listen_address, _fixed("127.0.0.1:9465"), "--listen",
        "Address the headless exporter and agent serve metrics on."),
    Key("exporter.web_config", path_value, _fixed(None), "--web-config",
        "node_exporter-style web configuration (TLS, basic auth) for the metrics endpoint.",
        optional=True),
    Key("exporter.console_listen", listen_address, _fixed(None), "--metrics-listen",
        "Serve metrics from the interactive console too, on this address.", optional=True),
    Key("kiosk.enabled", boolean, _fixed(False), "--kiosk", "Start the console read-only."),
    Key("kiosk.cycle_interval", duration(MIN_KIOSK_CYCLE_SECONDS, zero_allowed=True), _fixed(0.0),
        "--kiosk-cycle", "In kiosk mode, move to the next pane this often (0 = stay).", unit="s"),
    Key("kiosk.lock", boolean, _fixed(False), "--kiosk-lock",
        "In kiosk mode, the console cannot be quit from the keyboard."),
    Key("load_balancer.upstream_path", path_value, _fixed(None), "--upstream-path",
        "Where the nginx upstream block of ready replicas is written.", optional=True),
    Key("load_balancer.reload_command", command, _fixed(None), "--upstream-reload",
        "Command run after the upstream file changes, e.g. nginx -s reload.", optional=True),
    Key("console.shell", command, _fixed(("/bin/sh",)), None,
        "The shell `e` opens in a container (a command line, or a list of words)."),
    Key("console.shell_idle_timeout", duration(0.0, zero_allowed=True), _fixed(900.0), None,
        "Close a container shell or VM console after this long without a key or output (0 = never).", unit="s"),
    Key("autoscaler.tolerance", fraction, _fixed(0.1), None,
        "Relative change below which the autoscaler keeps the replica count."),
)
KEYS_BY_NAME: Mapping[str, Key] = MappingProxyType({key.name: key for key in KEYS})


def _schema() -> dict[str, Any]:
    """The file's shape: section -> {name -> Key}, or name -> Key at the top level."""
    tree: dict[str, Any] = {}
    for key in KEYS:
        *sections, leaf = key.name.split(".")
        branch = tree
        for section in sections:
            branch = branch.setdefault(section, {})
        branch[leaf] = key
    return tree


SCHEMA = _schema()
