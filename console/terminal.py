"""An interactive program on the operator's terminal: a shell in a container, a VM's serial console.

The console suspends its screen and runs the program (`docker exec -it`, `virsh console`) in a
pseudo-terminal of its own, relaying keys and output between it and the real terminal:

- the program's terminal follows the real one's size (SIGWINCH), so full-screen tools and line
  editing in the shell lay themselves out right after a resize;
- with `idle_timeout`, a session in which nothing was typed or printed for that long is closed
  (SIGHUP, then SIGKILL), so a shell left open on a shared screen does not stay open for ever;
- `escape` (a byte, e.g. 0x1d for Ctrl+]) ends the session at once, whatever the program does.

No textual here: it needs only a terminal file descriptor, and is tested in tmux.
"""

from __future__ import annotations

import errno
import os
import pty
import select
import signal
import termios
import time
import tty
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CHUNK = 65536
KILL_GRACE = 2.0


@dataclass(frozen=True)
class SessionEnd:
    exit_code: int | None  # None when the session was closed from here
    reason: str  # "exited", "idle", "escape"


def run_attached(argv: Sequence[str], *, idle_timeout: float = 0.0, escape: bytes | None = None,
                 env: Mapping[str, str] | None = None, stdin: int = 0, stdout: int = 1) -> SessionEnd:
    """Run `argv` on a pseudo-terminal relayed to `stdin`/`stdout` until it exits, has been idle
    for `idle_timeout` seconds (0: never), or `escape` is typed."""
    pid, master = pty.fork()
    if pid == 0:  # the child: the program, on the new terminal
        try:
            os.execvpe(argv[0], list(argv), dict(env if env is not None else os.environ))
        finally:
            os._exit(127)
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    resized = [True]
    previous = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    try:
        if saved is not None:
            tty.setraw(stdin)
        end = _relay(pid, master, stdin, stdout, idle_timeout, escape, resized)
    finally:
        signal.signal(signal.SIGWINCH, previous)
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)
    return end


def _relay(pid: int, master: int, stdin: int, stdout: int, idle_timeout: float, escape: bytes | None,
           resized: list[bool]) -> SessionEnd:
    last_activity = time.monotonic()
    while True:
        if resized[0]:
            resized[0] = False
            _copy_size(stdin, master)
        wait = 1.0
        if idle_timeout > 0:
            left = idle_timeout - (time.monotonic() - last_activity)
            if left <= 0:
                _stop(pid)
                return SessionEnd(None, "idle")
            wait = min(wait, left)
        try:
            ready, _, _ = select.select([master, stdin], [], [], wait)
        except InterruptedError:  # SIGWINCH
            continue
        if master in ready:
            try:
                data = os.read(master, CHUNK)
            except OSError as exc:  # EIO: the program closed its terminal
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                return SessionEnd(_wait(pid), "exited")
            os.write(stdout, data)
            last_activity = time.monotonic()
        if stdin in ready:
            data = os.read(stdin, CHUNK)
            if escape and escape in data:
                _stop(pid)
                return SessionEnd(None, "escape")
            if data:
                os.write(master, data)
                last_activity = time.monotonic()


def _copy_size(source: int, target: int) -> None:
    try:
        termios.tcsetwinsize(target, termios.tcgetwinsize(source))
    except (termios.error, OSError):
        pass  # not a terminal (tests, pipes): the program keeps its default size


def _wait(pid: int) -> int | None:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def _stop(pid: int) -> None:
    """Hang up on the program, as closing a terminal does; kill it if it does not go."""
    for sig in (signal.SIGHUP, signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + KILL_GRACE / 2
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
            time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
