"""libvirtd stopped mid-session: a typed error, then recovery when it comes back.

Uses a libvirtd of the test's own (fixtures.engines.private_libvirtd), so the shared daemon keeps
serving the other tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends.base import BackendUnavailable
from backends.libvirt import LibvirtBackend, LibvirtVmHandler
from fixtures import require_service
from fixtures.engines import LIBVIRTD, private_libvirtd
from test_libvirt_units import vm_doc

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


@pytest.fixture()
def daemon(libvirt_uri: str):
    if os.geteuid() != 0 or not Path(LIBVIRTD).exists():
        require_service("private libvirtd", "needs root and libvirt-daemon-system")
    with private_libvirtd() as daemon:
        yield daemon


def test_libvirtd_stopped_mid_session_gives_a_typed_error_and_recovers(daemon, run_id: str) -> None:
    backend = LibvirtBackend(daemon.uri)
    handler = LibvirtVmHandler([backend])
    name = f"rtmtest-{run_id}-restart"
    document = vm_doc(name, hypervisor="qemu", storage=None)
    try:
        handler.apply(document, Path("."), handler.plan(document, Path(".")), lambda _line: None)
        assert [vm.name for vm in backend.poll().items] == [name]
        assert backend.availability().state == "connected"

        daemon.stop()
        with pytest.raises(BackendUnavailable) as polled:
            backend.poll()
        availability = polled.value.availability
        assert availability.state == "unreachable" and availability.endpoint == daemon.uri
        assert availability.cause and "libvirtd" in availability.hint
        assert backend.availability().state == "unreachable"
        # Actions and handler calls fail the same typed way while it is down.
        with pytest.raises(BackendUnavailable):
            backend.suspend(name)
        with pytest.raises(BackendUnavailable):
            handler.plan(document, Path("."))
        with pytest.raises(BackendUnavailable) as described:
            handler.list()
        assert daemon.uri in str(described.value)

        daemon.start()
        # The guest kept running without its daemon (as QEMU guests do); the backend reconnects.
        (vm,) = backend.poll().items
        assert vm.name == name and vm.state == "running"
        assert backend.availability().state == "connected"
        assert backend.suspend(name) == f"vm/{name}: paused"
    finally:
        if daemon.running:
            handler.delete(name)
        backend.close()


def test_a_new_vm_goes_to_the_host_the_scheduler_picks(daemon, libvirt_uri: str, run_id: str) -> None:
    """Two real libvirt hosts (the shared daemon and this test's own): the document's node
    affinity sends the VM to the second one."""
    import yaml
    from rtm.documents import load_text

    shared = LibvirtBackend(libvirt_uri, name="shared")
    private = LibvirtBackend(daemon.uri, name="private")
    handler = LibvirtVmHandler([shared, private])
    workload = f"rtmtest-{run_id}-placed".lower()
    text = yaml.safe_dump({
        "name": workload,
        "SchedulingPolicy": {
            "algorithms": ["least_connections"],
            "constraints": [{"type": "node_affinity", "key": "libvirt.host", "operator": "In", "values": ["libvirt@private"]}],
        },
        "VirtualMachineRuntime": {"hypervisor": "qemu", "memory": {"size": "128Mi"}, "network": {"type": "none"}},
    }, sort_keys=False)
    result = load_text(text)
    assert result.ok, result.findings
    document = result.documents[0]
    try:
        (create,) = handler.plan(document, Path("."))
        assert create.action == "create" and create.note.startswith("on libvirt@private")
        handler.apply(document, Path("."), [create], lambda _line: None)
        assert [vm.name for vm in private.poll().items] == [workload]
        assert workload not in [vm.name for vm in shared.poll().items]
        # Found where it is on the next plan, and deleted there by its workload name.
        assert [c.action for c in handler.plan(document, Path("."))] == ["unchanged"]
        assert handler.delete(workload) == [f"vm/{workload}: stopped", f"vm/{workload}: undefined on libvirt@private"]
    finally:
        shared.close()
        private.close()
