"""rtm-console's configuration: one YAML file, environment variables and flags.

Where each setting comes from, highest first:

    command-line flag  >  RTM_* environment variable  >  config file  >  default

The file is `--config`, else `RTM_CONFIG`, else `$XDG_CONFIG_HOME/rtm-console/config.yaml`
(`~/.config/...` without XDG_CONFIG_HOME); a missing file at the default place means defaults,
a missing file that was named explicitly is an error. Every key is listed once, in `KEYS`, with
its type, default, environment variable and flag; docs/config.md documents each of them.

The file is validated like a spec: every problem is reported as `PATH:LINE:COL: error:
MESSAGE` with a hint where one helps (a misspelt key gets "did you mean ..."), and all
problems are reported together in one `ConfigError`. `load_config` returns a frozen `Config`
that also knows where each value came from; `render_config` prints it for `rtm-console config`
with secrets masked.

Modules, one job each:
- settings.py     the frozen values: Config and its sections, Source, ConfigFinding, ConfigError;
                  the sections of the backends are their own types (backends/*/settings.py)
- grammars.py     value grammars: YAML nodes and environment strings -> typed values, with offsets
- endpoints.py    Docker endpoints and libvirt connections (lists, mappings, comma-separated)
- environment.py  what the environment says: the file's place, home, DOCKER_HOST, docker context,
                  AWS region, where functions run
- keys.py         the key registry (KEYS) and the file's shape built from it
- loader.py       load_config: the four sources per key, the file through rtm/reader.py
- show.py         render_config and config_as_json for `rtm-console config`
"""

from backends.aws_lambda.settings import AwsSettings
from backends.docker.settings import DEFAULT_DOCKER_HOST, DockerEndpoint, DockerSettings, TlsSettings
from backends.libvirt.settings import DEFAULT_LIBVIRT_URI, LibvirtConnection, LibvirtSettings
from backends.localfn.settings import LocalFunctionsSettings
from console.config.environment import config_file_path, resolve_functions_target
from console.config.grammars import parse_docker_host, parse_libvirt_uri, parse_listen_address
from console.config.keys import KEYS, KEYS_BY_NAME, Key
from console.config.loader import SANDBOX_LIBVIRT_URI, flags_from_args, load_config, sandboxed
from console.config.settings import (
    FUNCTION_TARGETS, MIN_KIOSK_CYCLE_SECONDS, MIN_REFRESH_SECONDS, THEMES, AutoscalerSettings, Config, ConfigError,
    ConfigFinding, ConsoleSettings, ExporterSettings, FunctionsSettings, KioskSettings, ListenAddress,
    LoadBalancerSettings, Source,
)
from console.config.show import config_as_json, render_config

__all__ = [
    "DEFAULT_DOCKER_HOST", "DEFAULT_LIBVIRT_URI", "FUNCTION_TARGETS", "KEYS", "KEYS_BY_NAME", "MIN_KIOSK_CYCLE_SECONDS",
    "MIN_REFRESH_SECONDS", "SANDBOX_LIBVIRT_URI", "THEMES", "AutoscalerSettings", "AwsSettings", "Config", "ConfigError",
    "ConfigFinding", "ConsoleSettings", "DockerEndpoint", "DockerSettings", "ExporterSettings", "FunctionsSettings", "Key",
    "KioskSettings", "LibvirtConnection", "LibvirtSettings", "LocalFunctionsSettings", "ListenAddress", "LoadBalancerSettings", "Source",
    "TlsSettings", "config_as_json", "config_file_path", "flags_from_args", "load_config", "parse_docker_host",
    "parse_libvirt_uri", "parse_listen_address", "render_config", "resolve_functions_target", "sandboxed",
]
