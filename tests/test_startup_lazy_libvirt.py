"""The console connects to libvirt when VMs are first needed, not at start-up: with the default
configuration's libvirt host (the test setup's libvirtd), the console opens, Docker, the control
loops and the functions runtime come up, and libvirt-python (about 15 MiB of shared libraries)
is not even imported; the header says the host is not connected yet. Showing the VMs pane
connects it and lists the host's VMs.

Each console runs in a fresh interpreter (a subprocess driving it with Textual's Pilot), since
this test process may have imported libvirt already."""

from __future__ import annotations

from pathlib import Path

import pytest

from startup_support import console_env, free_port, run_child

pytestmark = [pytest.mark.libvirt]

# Run in the child: drives the console as `rtm-console` builds it and prints what it saw.
CHILD = r"""
domain, exporter = extra[0], extra[1] == "exporter"

def vm_names(app):
    return [row.name for row in app.pane("vms").table.rows_shown]

async def watch(app, poller, pilot, seen):
    header = lambda: str(app.header.render())
    seen["started"] = await until(pilot, lambda: "functions served at" in header() and "docker@local up" in header()
                                  and "starting" not in header())
    seen["before"] = {"header": header(), "libvirt_imported": "libvirt" in sys.modules,
                      "polled": sorted(poller.latest().backends)}
    if not exporter:
        await pilot.press("3")
        seen["listed"] = await until(pilot, lambda: domain in vm_names(app))
        seen["after"] = {"header": header(), "libvirt_imported": "libvirt" in sys.modules,
                         "polled": sorted(poller.latest().backends), "vms": vm_names(app)}

drive(argparse.Namespace(metrics_listen=env.pop("METRICS_LISTEN")) if exporter else argparse.Namespace(), watch)
"""


def _console(tmp_path: Path, uri: str, domain: str, *, exporter: bool = False) -> dict:
    env = console_env(tmp_path, uri)
    if exporter:
        env["METRICS_LISTEN"] = f"127.0.0.1:{free_port()}"
    seen = run_child(CHILD, env, domain, "exporter" if exporter else "console")
    assert seen["started"], seen
    return seen


@pytest.fixture()
def defined_domain(libvirt_uri: str, run_id: str):
    """A shut-off VM defined on the test setup's libvirtd, for the VMs pane to list."""
    import libvirt

    name = f"{run_id}-lazy"
    conn = libvirt.open(libvirt_uri)
    domain = conn.defineXML(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                            "<os><type arch='x86_64'>hvm</type></os></domain>")
    try:
        yield name
    finally:
        domain.undefine()
        conn.close()


def test_libvirt_is_imported_and_connected_only_when_the_vms_pane_is_first_shown(
        tmp_path: Path, libvirt_uri: str, defined_domain: str, docker_client) -> None:
    seen = _console(tmp_path, libvirt_uri, defined_domain)
    before, after = seen["before"], seen["after"]
    backend = f"libvirt@{libvirt_uri}"
    # Everything else is up, and the header tells the truth about the libvirt host.
    assert "docker@local up" in before["header"] and "control loops: here" in before["header"]
    assert f"{backend}: not connected yet" in before["header"]
    assert not before["libvirt_imported"]
    assert backend not in before["polled"]
    # The VMs pane connects it and lists the host's VMs.
    assert seen["listed"], after
    assert defined_domain in after["vms"]
    assert after["libvirt_imported"] and backend in after["polled"]
    assert f"{backend} up" in after["header"] and "not connected yet" not in after["header"]


def test_with_the_exporter_on_libvirt_is_polled_from_the_start(
        tmp_path: Path, libvirt_uri: str, defined_domain: str, docker_client) -> None:
    """--metrics-listen serves the VM series: they cannot wait for a pane to be shown."""
    before = _console(tmp_path, libvirt_uri, defined_domain, exporter=True)["before"]
    assert f"libvirt@{libvirt_uri}" in before["polled"]
    assert before["libvirt_imported"]
    assert "not connected yet" not in before["header"]
