"""Interactive sessions (console/terminal.py) on a real pseudo-terminal: the program's output
reaches the terminal, its exit code comes back, an idle session is closed after the configured
time, the escape key detaches; and the command lines the console builds for them."""

from __future__ import annotations

import os
import threading

from console.terminal import run_attached
from console.tui.sessions import has_serial_console


def _pipes():
    keys_read, keys_write = os.pipe()
    out_read, out_write = os.pipe()
    return keys_read, keys_write, out_read, out_write


def _output(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_a_session_relays_output_and_returns_the_exit_code() -> None:
    keys_read, keys_write, out_read, out_write = _pipes()
    end = run_attached(["sh", "-c", "echo from-the-program; exit 3"], stdin=keys_read, stdout=out_write)
    assert (end.reason, end.exit_code) == ("exited", 3)
    assert b"from-the-program" in _output(out_read)


def test_an_idle_session_is_closed() -> None:
    keys_read, keys_write, out_read, out_write = _pipes()
    end = run_attached(["sleep", "60"], idle_timeout=0.5, stdin=keys_read, stdout=out_write)
    assert (end.reason, end.exit_code) == ("idle", None)


def test_typed_keys_reach_the_program_and_the_escape_key_detaches() -> None:
    keys_read, keys_write, out_read, out_write = _pipes()
    seen = []

    def type_then_escape() -> None:
        os.write(keys_write, b"echo typed-$((40+2))\n")
        output = b""
        while b"typed-42" not in output:  # the program ran what was typed
            output += os.read(out_read, 65536)
        seen.append(output)
        os.write(keys_write, b"\x1d")  # Ctrl+]

    typist = threading.Thread(target=type_then_escape, daemon=True)
    typist.start()
    end = run_attached(["sh", "-c", "read line; eval \"$line\"; exec sleep 60"], stdin=keys_read, stdout=out_write,
                       escape=b"\x1d")
    typist.join(10)
    assert end.reason == "escape" and seen


def test_a_domain_without_serial_or_console_device_has_no_serial_console() -> None:
    assert has_serial_console("<domain><devices><serial type='pty'/></devices></domain>")
    assert has_serial_console("<domain><devices><console type='pty'/></devices></domain>")
    assert not has_serial_console("<domain><devices><disk/></devices></domain>")
