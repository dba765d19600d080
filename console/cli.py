"""rtm-console's command line: argument parsing and dispatch to the command modules.

With no command it starts the interactive console. Each command group lives in its own module
under console/commands and adds its subcommands through `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from console.commands import COMMAND_MODULES, add_global_options
from console.commands.schedule_cmd import fold_client_keys
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
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(fold_client_keys(list(sys.argv[1:] if argv is None else argv)))
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
