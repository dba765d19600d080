"""Cordons and VMs through `rtm-console` on the real libvirtd, each step a separate process as an
operator runs it: cordon the machine libvirt runs on, apply a VM, uncordon, apply again."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from test_cli_apply_docker import succeeded
from test_cli_resources import rtm_console

pytestmark = pytest.mark.libvirt
UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) were unschedulable."


def vm_file(path: Path, name: str) -> Path:
    """A small BIOS guest without disk or network (nothing to boot; it starts under TCG)."""
    spec = {"name": name, "hypervisor": "qemu", "cpu": {"cores": 1, "model": "qemu64"}, "memory": {"size": "64Mi"},
            "network": {"type": "none"}, "security": {"secure_boot": False, "tpm": False}}
    path.write_text(yaml.safe_dump({"name": name, "VirtualMachineRuntime": spec}, sort_keys=False))
    return path


@pytest.fixture
def operator(libvirt_uri: str, run_id: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, str, Any]]:
    """(environment, spec file, VM name, raw connection): the test libvirtd only, a fresh data folder."""
    import libvirt

    name = f"rtmtest-{run_id}-cordon"
    spec = vm_file(tmp_path / "vm.yaml", name)
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "RTM_SPECS_DIR": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "LIBVIRT_DEFAULT_URI": libvirt_uri, "RTM_LIBVIRT_SHUTDOWN_TIMEOUT": "1"}
    env.pop("RTM_CONFIG", None)
    conn = libvirt.open(libvirt_uri)
    yield env, spec, name, conn
    if name in [d.name() for d in conn.listAllDomains(0)]:
        domain = conn.lookupByName(name)
        if domain.isActive():
            domain.destroy()
        domain.undefine()
    conn.close()


def vms(conn: Any, name: str) -> list[str]:
    return [d.name() for d in conn.listAllDomains(0) if d.name() == name]


def test_a_cordoned_machine_refuses_a_new_vm_until_uncordoned_and_keeps_the_running_one(operator) -> None:
    env, spec, name, conn = operator
    machine = conn.getHostname()  # the node: the machine libvirt reports
    assert machine == socket.gethostname()
    succeeded(rtm_console(env, "cordon", f"node/{machine}"))
    refused = rtm_console(env, "apply", str(spec), "--yes")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and UNSCHEDULABLE in output, output
    assert "uncordon its machine" in output
    assert vms(conn, name) == []

    succeeded(rtm_console(env, "uncordon", f"node/{machine}"))
    applied = succeeded(rtm_console(env, "apply", str(spec), "--yes"))
    assert f"vm/{name}: started" in applied.stdout
    assert vms(conn, name) == [name] and conn.lookupByName(name).isActive()

    # Cordoned again: what runs there stays, a re-apply places nothing and changes nothing.
    succeeded(rtm_console(env, "cordon", f"node/{machine}"))
    again = succeeded(rtm_console(env, "apply", str(spec), "--yes"))
    assert f"unchanged vm/{name}" in " ".join(again.stdout.split())
    assert conn.lookupByName(name).isActive()
    succeeded(rtm_console(env, "delete", str(spec), "--yes"))
    assert vms(conn, name) == []
