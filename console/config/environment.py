"""What the environment says before any setting is read: where the config file is, where home
and XDG folders are, which Docker engine (DOCKER_HOST, the current `docker context`), libvirt
host and AWS region to default to, and whether functions go to AWS or the local runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from backends.aws_lambda.settings import AwsSettings
from backends.docker.settings import DEFAULT_DOCKER_HOST
from backends.libvirt.settings import DEFAULT_LIBVIRT_URI
from console.config.grammars import endpoint_name
from console.config.settings import Source
from console.datadir import APP_NAME


def config_file_path(path: Path | str | None, env: Mapping[str, str]) -> tuple[Path, str, bool]:
    """(the config file, how it was chosen, whether it must exist)."""
    if path is not None:
        return Path(path).expanduser(), "flag --config", True
    if env.get("RTM_CONFIG"):
        return Path(env["RTM_CONFIG"]).expanduser(), "env RTM_CONFIG", True
    return xdg_config_home(env) / APP_NAME / "config.yaml", "default location", False


def xdg_config_home(env: Mapping[str, str]) -> Path:
    configured = env.get("XDG_CONFIG_HOME", "")
    if configured and os.path.isabs(configured):
        return Path(configured)
    return home_dir(env) / ".config"


def home_dir(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def default_docker(env: Mapping[str, str]) -> tuple[Any, str]:
    host = env.get("DOCKER_HOST", "")
    if host:
        endpoint: dict[str, Any] = {"name": endpoint_name(host), "host": host}
        if host.startswith("tcp://") and env.get("DOCKER_TLS_VERIFY", "") not in ("", "0"):
            certs = Path(env.get("DOCKER_CERT_PATH") or home_dir(env) / ".docker")
            endpoint["tls"] = {"ca": str(certs / "ca.pem"), "cert": str(certs / "cert.pem"),
                               "key": str(certs / "key.pem"), "verify": True}
        return [endpoint], "DOCKER_HOST"
    context = _docker_context_host(env)
    if context:
        return [{"name": endpoint_name(context[1]), "host": context[1]}], f"docker context {context[0]}"
    return [{"name": "local", "host": DEFAULT_DOCKER_HOST}], ""


def _docker_context_host(env: Mapping[str, str]) -> tuple[str, str] | None:
    """(context name, host) of the current `docker context`, when it is not the default one."""
    import hashlib
    import json

    docker_config = Path(env.get("DOCKER_CONFIG") or home_dir(env) / ".docker")
    name = env.get("DOCKER_CONTEXT", "")
    try:
        if not name:
            name = json.loads((docker_config / "config.json").read_text()).get("currentContext", "")
        if not name or name == "default":
            return None
        digest = hashlib.sha256(name.encode()).hexdigest()
        meta = json.loads((docker_config / "contexts" / "meta" / digest / "meta.json").read_text())
        host = meta["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (name, host) if isinstance(host, str) and host else None


def default_libvirt(env: Mapping[str, str]) -> tuple[Any, str]:
    uri = env.get("LIBVIRT_DEFAULT_URI", "")
    if uri:
        return [uri], "LIBVIRT_DEFAULT_URI"
    return [DEFAULT_LIBVIRT_URI], ""


def default_regions(env: Mapping[str, str]) -> tuple[Any, str]:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return [env[name]], name
    return [], "each profile's own region, else us-east-1"


def resolve_functions_target(
    requested: str, aws: AwsSettings, sources: Mapping[str, Source], env: Mapping[str, str]
) -> tuple[Literal["aws", "local"], str]:
    """`auto` means AWS when an AWS account or endpoint is configured, else the local runtime.

    Returns the target and, for people, why.
    """
    if requested in ("aws", "local"):
        return requested, f"set to {requested}"  # type: ignore[return-value]
    if aws.endpoint_url:
        return "aws", f"auto: aws.endpoint_url is set ({sources['aws.endpoint_url']})"
    if aws.profiles:
        return "aws", f"auto: AWS profile {aws.profiles[0]!r} is configured ({sources['aws.profiles']})"
    if env.get("AWS_ACCESS_KEY_ID"):
        return "aws", "auto: AWS_ACCESS_KEY_ID is set in the environment"
    credentials = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home_dir(env) / ".aws" / "credentials")
    if credentials.is_file():
        return "aws", f"auto: AWS credentials file {credentials} exists"
    return "local", "auto: no AWS endpoint, profile or credentials are configured"
