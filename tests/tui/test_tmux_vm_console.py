"""End to end in tmux at 120x40 against the test setup's libvirtd: `e` on a VM attaches to its
serial console (a guest whose boot sector prints a line on COM1), Ctrl+] detaches back to the
VMs pane; a guest without a serial device says so; kiosk mode refuses; each attempt audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.fixtures.serial_guest import IMAGES, LINE, boot_sector, domain_xml
from tui.test_tmux import _exit_status, _start, audit_records, select_row, terminals  # noqa: F401 - the fixture is used by name


@pytest.fixture
def guests(libvirt_uri: str, run_id: str) -> Iterator[tuple[str, str]]:
    """A running guest printing on its serial console, and a defined one with no serial device."""
    import libvirt

    conn = libvirt.open(libvirt_uri)
    talking, silent = f"rtmtest-{run_id}-serial", f"rtmtest-{run_id}-noserial"
    disk = IMAGES / f"{talking}.img"
    disk.write_bytes(boot_sector())
    started = conn.createXML(domain_xml(talking, disk), 0)
    defined = conn.defineXML(domain_xml(silent, disk, serial=False))
    try:
        yield talking, silent
    finally:
        started.destroy()
        defined.undefine()
        disk.unlink(missing_ok=True)
        conn.close()


def test_serial_console_attaches_and_detaches(terminals, tmp_path: Path, guests) -> None:  # noqa: F811
    talking, silent = guests
    terminal = _start(tmp_path, size=(120, 40))
    terminals.append(terminal)
    terminal.wait_for("host up")
    select_row(terminal, "3", "vm", talking, then=("e",))
    terminal.wait_for(f"serial console of vm/{talking}")
    terminal.wait_for(LINE)
    terminal.keys("C-]")
    screen = terminal.wait_for("e Serial console")  # the VMs pane's keys again
    assert talking in screen
    select_row(terminal, "3", "vm", silent, then=("e",))
    terminal.wait_for_toast("has no serial console")
    terminal.keys("q")
    assert _exit_status(terminal) == 0
    records = [(r["action"], r["target"], r["result"]) for r in audit_records(tmp_path)]
    assert records == [("vm.console", f"vm/{talking}", "ok"), ("vm.console", f"vm/{silent}", "failed")]


def test_kiosk_refuses_the_serial_console(terminals, tmp_path: Path, guests) -> None:  # noqa: F811
    talking, _silent = guests
    terminal = _start(tmp_path, size=(120, 40), args="--kiosk")
    terminals.append(terminal)
    terminal.wait_for("KIOSK")
    select_row(terminal, "3", "vm", talking, then=("e",))
    terminal.wait_for_toast("kiosk mode is read-only")
    assert LINE not in terminal.screen()
    terminal.keys("q")
    assert [(r["action"], r["result"]) for r in audit_records(tmp_path)] == [("vm.console", "refused")]
