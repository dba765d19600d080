"""Command modules of the CLI. Each has `register(subparsers)` and sets `handler` on its parsers.

Handlers return the process exit code: 0 success, 1 the command ran and found errors or
failed, 2 a usage error (bad arguments, unreadable path). docs/cli.md lists them per command.
"""

from __future__ import annotations

import argparse

from console.commands import agent_cmd, exporter_cmd, resources, scaling, scheduling, spec_commands

COMMAND_MODULES = [spec_commands, resources, scheduling, scaling, exporter_cmd, agent_cmd]


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Options that apply to the console and to every command."""
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: $RTM_CONFIG, else $XDG_CONFIG_HOME/rtm-console/config.yaml)")
    parser.add_argument("--kiosk", action="store_true", help="read-only console for wall screens and shared sessions")
    parser.add_argument("--kiosk-lock", action="store_true", help="with --kiosk: the keyboard cannot quit the console")
    parser.add_argument("--theme", metavar="NAME", help="dark, light or high-contrast")
    parser.add_argument("--sandbox", action="store_true", help="use built-in sandboxes (libvirt test driver, local functions) so every pane is alive")
    parser.add_argument("--metrics-listen", metavar="ADDR:PORT", help="serve the Prometheus exporter while the console runs")
