"""Command modules of the CLI. Each has `register(subparsers)` and sets `handler` on its parsers.

Handlers return the process exit code: 0 success, 1 the command ran and found errors or
failed, 2 a usage error (bad arguments, unreadable path). docs/cli.md lists them per command.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

# In the order of `rtm-console --help`; imported only to parse a command (the console needs none).
COMMAND_MODULE_NAMES = ("spec_commands", "resources", "schedule_cmd", "scale_cmd", "exporter_cmd", "agent_cmd")


def command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULE_NAMES]


# Configuration keys whose flags belong to one command (exporter, agent), not to every one.
COMMAND_FLAGS = ("--listen", "--web-config", "--specs")
# Keys holding lists: their flag may be repeated, and each value may be comma-separated.
LIST_KEYS = ("docker.endpoints", "libvirt.uris", "aws.regions", "aws.profiles")


class JoinRepeated(argparse.Action):
    """A repeated flag adds to the list (`--docker-host A --docker-host B` == `--docker-host A,B`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object, option_string: str | None = None) -> None:
        before = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, f"{before},{values}" if before else values)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options that apply to the console and to every command: one per configuration key that
    has a flag (flag > RTM_* variable > config file > default; docs/config.md lists them all)."""
    from console.config import KEYS

    parser.add_argument("--config", metavar="FILE", help="configuration file (default: $RTM_CONFIG, else $XDG_CONFIG_HOME/rtm-console/config.yaml)")
    parser.add_argument("--sandbox", action="store_true", help="use built-in sandboxes (libvirt test driver, local functions) so every pane is alive")
    boolean = {"kiosk.enabled": "read-only console for wall screens and shared sessions", "kiosk.lock": "with --kiosk: the keyboard cannot quit the console"}
    for key in KEYS:
        if key.flag is None or key.flag in COMMAND_FLAGS:
            continue
        if key.name in boolean:
            # default None, not False: an absent flag must not override the config file
            parser.add_argument(key.flag, action="store_true", default=None, help=boolean[key.name])
        elif key.name in LIST_KEYS:
            parser.add_argument(key.flag, metavar="VALUE", action=JoinRepeated, help=f"{key.name}: comma-separated or repeated (also ${key.env})")
        else:
            parser.add_argument(key.flag, metavar="VALUE", help=f"{key.name} (also ${key.env})")
