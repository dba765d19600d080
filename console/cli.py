"""rtm-console's command line: argument parsing and dispatch to the command modules.

With no command it starts the interactive console. Each command group lives in its own module
under console/commands and adds its subcommands through `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from console.commands import add_global_options, command_modules
from rtm import __version__

EPILOG = """\
examples:
  rtm-console                                 start the console (rtm-console --kiosk for read-only)
  rtm-console validate "$(rtm-console samples)"   check every spec below a folder
  rtm-console render "$(rtm-console samples)"/workload-web.yaml --format json
  rtm-console samples                         print where the bundled sample specs are
run `rtm-console COMMAND --help` for each command's options and examples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtm-console",
        description="Operations console for containers, VMs and serverless functions (Runtime Standard Model).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rtm-console {__version__}")
    add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def console_args(argv: list[str]) -> argparse.Namespace | None:
    """The arguments when they hold only global options (the console, no command), parsed
    without importing the command modules; None for anything else (a command, --help, a typo),
    which the full parser reads and reports."""
    if any(arg in ("-h", "--help") or arg == "--version" for arg in argv):
        return None
    parser = argparse.ArgumentParser(prog="rtm-console", add_help=False)
    add_global_options(parser)
    args, rest = parser.parse_known_args(argv)
    if rest:
        return None
    args.command = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = console_args(arguments)
    if args is None:
        from console.commands.schedule_cmd import fold_client_keys

        args = build_parser().parse_args(fold_client_keys(arguments))
    handler = getattr(args, "handler", None)
    try:
        if handler is None:
            from console.commands.interactive import run_console

            return run_console(args)
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `rtm-console get nodes | head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug: one line for people, the traceback in the debug log
        print(f"rtm-console: {report_unexpected(exc)}", file=sys.stderr)
        return 70


def report_unexpected(exc: BaseException) -> str:
    from console.datadir import data_dir
    from console.diagnostics import debug_log_path, setup_debug_log, user_message

    log = debug_log_path()
    try:
        log = log or setup_debug_log(data_dir())
        logging.getLogger("console.cli").error("unexpected error", exc_info=exc)
    except OSError:
        log = None
    return user_message(exc, log)


if __name__ == "__main__":
    sys.exit(main())
