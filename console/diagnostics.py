"""The debug log: where rtm-console's own errors go instead of the screen.

`setup_debug_log(data_dir)` sends the project's loggers (`rtm`, `backends`, `console`, so any
`logging.getLogger(__name__)` in the project) to `debug.log` in the data folder, rotating, and
never to the terminal: a traceback on a Textual screen corrupts it, and on a shell it frightens
people without telling them what to do. What people see instead is `user_message(exc)`: one
line with the cause that names the log holding the details.

Control characters in a record (a request line, a header, a user name sent by a client) are
written as `\\xNN`: a line read from the network can neither drive the terminal that shows the
log nor forge another log line.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import threading
from pathlib import Path
from types import TracebackType

DEBUG_LOG_NAME = "debug.log"
PROJECT_LOGGERS = ("rtm", "backends", "console")
MAX_LOG_BYTES = 2 * 1024 * 1024
KEPT_OLD_LOGS = 2
_MAX_MESSAGE_CHARS = 240

_HANDLER_TAG = "_rtm_debug_log"
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_CHARS_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_log_path: Path | None = None
_setup_lock = threading.Lock()

logger = logging.getLogger("rtm.diagnostics")


def setup_debug_log(data_dir: Path | str, level: int = logging.DEBUG) -> Path:
    """Send the project's log records to `<data_dir>/debug.log` and return that path.

    Project loggers log at `level` and stop propagating, so a stderr handler on the root
    logger (or Python's last-resort handler) never prints them. Third-party libraries' warnings
    (urllib3, botocore, `warnings.warn`) go to the same file through the root logger. Calling it
    again moves the log to the new folder instead of adding a second handler.
    """
    global _log_path
    path = Path(data_dir) / DEBUG_LOG_NAME
    with _setup_lock:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The log may hold parameters and hostnames: create it private before logging opens it.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_LOG_BYTES, backupCount=KEPT_OLD_LOGS, encoding="utf-8"
        )
        handler.setFormatter(
            EscapingFormatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
        )
        setattr(handler, _HANDLER_TAG, True)
        for name in PROJECT_LOGGERS:
            project_logger = logging.getLogger(name)
            _replace_tagged_handler(project_logger, handler)
            project_logger.setLevel(level)
            project_logger.propagate = False
        root = logging.getLogger()
        _replace_tagged_handler(root, handler)
        if root.level > logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
        logging.captureWarnings(True)
        _log_path = path
    return path


def escape_control_chars(text: str, keep_newlines: bool = False) -> str:
    """`text` with control characters as `\\xNN` (ESC becomes `\\x1b`, CR `\\x0d`)."""
    pattern = _CONTROL_CHARS_BUT_NEWLINE if keep_newlines else _CONTROL_CHARS
    return pattern.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class EscapingFormatter(logging.Formatter):
    """One record, one line: control characters in the message are escaped; a traceback keeps
    its line breaks but nothing else that could steer a terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's naming
        record.message = escape_control_chars(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # noqa: N802
        return escape_control_chars(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return escape_control_chars(super().formatStack(stack_info), keep_newlines=True)


def _replace_tagged_handler(target: logging.Logger, handler: logging.Handler) -> None:
    for old in [h for h in target.handlers if getattr(h, _HANDLER_TAG, False)]:
        target.removeHandler(old)
        if old is not handler:
            old.close()
    target.addHandler(handler)


def debug_log_path() -> Path | None:
    """The debug log set up in this process, if any."""
    return _log_path


def user_message(exc: BaseException, log_path: Path | str | None = None) -> str:
    """One line for people: what went wrong and where the details are.

    Uses the exception's own first line (our errors are written for people), or its type when
    it has no text; names `log_path`, or the log set up in this process.
    """
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    cause = text or type(exc).__name__
    if len(cause) > _MAX_MESSAGE_CHARS:
        cause = cause[: _MAX_MESSAGE_CHARS - 1] + "…"
    where = log_path if log_path is not None else _log_path
    return f"{cause} (details in {where})" if where is not None else cause


def log_exception(exc: BaseException, what: str, log: logging.Logger = logger) -> str:
    """Record `exc` with its traceback in the debug log; return the one-line screen message."""
    log.error("%s: %s", what, exc, exc_info=(type(exc), exc, exc.__traceback__))
    return f"{what}: {user_message(exc)}"


def install_exception_hooks(stream=None) -> None:
    """Route uncaught exceptions (main thread and worker threads) to the debug log.

    The terminal gets one line naming the log instead of a traceback. Ctrl+C keeps Python's
    usual behaviour.
    """
    out = stream if stream is not None else sys.stderr

    def on_uncaught(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        logger.critical("uncaught error", exc_info=(kind, exc, tb))
        print(f"rtm-console: error: {user_message(exc)}", file=out)

    def on_thread_uncaught(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a worker thread"
        logger.error(
            "uncaught error in %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
        )

    sys.excepthook = on_uncaught
    threading.excepthook = on_thread_uncaught
