"""Verbs as typed protocols (backends/verbs.py): which backend, handler or actions object
carries which verb, and the console offering and running them through those protocols on
libvirt's test driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.aws_lambda.handler import LambdaHandler
from backends.docker.container_actions import ContainerActions
from backends.docker.handler import ContainerHandler
from backends.libvirt.backend import LibvirtBackend
from backends.libvirt.handler import LibvirtVmHandler
from backends.localfn.handler import LocalFunctionsHandler
from backends.verbs import Deletable, Executable, Invokable, Planned, Restartable, Scalable, Startable, Stoppable

LIFECYCLE = (Startable, Stoppable, Restartable)


@pytest.mark.parametrize(("carrier", "verbs"), [
    (ContainerActions, (*LIFECYCLE, Executable, Scalable)),
    (LibvirtBackend, (*LIFECYCLE, Deletable)),
    (ContainerHandler, (Deletable, Planned)),
    (LibvirtVmHandler, (Deletable, Planned)),
    (LocalFunctionsHandler, (Deletable, Planned, Invokable)),
    (LambdaHandler, (Deletable, Planned, Invokable)),
])
def test_each_kind_carries_its_verbs_by_protocol(carrier: type, verbs: tuple[type, ...]) -> None:
    every = (*LIFECYCLE, Executable, Deletable, Invokable, Scalable, Planned)
    assert {verb.__name__ for verb in every if issubclass(carrier, verb)} == {verb.__name__ for verb in verbs}


def test_the_console_stops_and_restarts_a_vm_through_the_verbs_on_the_test_driver(tmp_path: Path) -> None:
    from backends.libvirt.connection import libvirt_installed
    from console.cordons import CordonStore
    from console.eventlog import EventLog
    from console.gate import AUDIT_LOG_NAME, ActionGate
    from console.tui import offered_actions
    from console.tui.console_services import ConsoleServices
    from fixtures import require_service

    if not libvirt_installed():
        require_service("libvirt-python", "not installed")
    host = LibvirtBackend("test:///default", name="verbs", sandbox=True, shutdown_timeout=2)
    services = ConsoleServices(source=None, gate=ActionGate("interactive", tmp_path / AUDIT_LOG_NAME),  # type: ignore[arg-type]
                               specs_dir=tmp_path, data_dir=tmp_path, events=EventLog(tmp_path / "events.jsonl"),
                               cordons=CordonStore(tmp_path), backends={host.name: host}, handlers={"vm": LibvirtVmHandler([host])})
    try:
        assert [verb.verb for verb in offered_actions.offered("vms", services)] == ["start", "stop", "restart", "delete"]
        stop = offered_actions.carrier("stop", "vms", services, host.name)
        assert stop is not None and "shut" in stop("test")
        assert [vm.state for vm in host.list_vms() if vm.name == "test"] == ["shut off"]
        start = offered_actions.carrier("start", "vms", services, host.name)
        assert start is not None and start("test")
        assert [vm.state for vm in host.list_vms() if vm.name == "test"] == ["running"]
    finally:
        host.close()
