"""The libvirt backend: VMs on one or more libvirt hosts (kind "vms").

    backends = [LibvirtBackend("qemu:///system")]          # or LibvirtBackend.sandbox()
    handler = LibvirtVmHandler(backends)                    # apply/plan/delete for VirtualMachineRuntime
    handlers = make_libvirt_handlers(["qemu:///system"])    # the same, built from URIs

libvirt-python is imported on first contact with a host, never by importing this package; the
package's own modules are imported on first use, so the configuration reads LibvirtConnection
(settings.py) without loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from backends.lazy import on_first_use
from backends.libvirt.settings import LibvirtConnection, LibvirtSettings
from backends.machines import Cordoned, never_cordoned

if TYPE_CHECKING:
    from backends.libvirt.backend import LibvirtBackend, LibvirtHostInfo
    from backends.libvirt.connection import SANDBOX_URI
    from backends.libvirt.domain_xml import render_vm
    from backends.libvirt.errors import (
        HostProblem, HostRequirementError, KvmRefused, VmError, VmNotFound, VmSpecError, VmStateError,
    )
    from backends.libvirt.handler import LibvirtVmHandler, render_document
    from backends.libvirt.host_checks import HostOptions
    from backends.libvirt.kvm import KvmStatus

_ON_FIRST_USE = {
    "SANDBOX_URI": "connection", "HostOptions": "host_checks", "HostProblem": "errors", "HostRequirementError": "errors",
    "KvmRefused": "errors", "KvmStatus": "kvm", "LibvirtBackend": "backend", "LibvirtHostInfo": "backend",
    "LibvirtVmHandler": "handler", "VmError": "errors", "VmNotFound": "errors", "VmSpecError": "errors",
    "VmStateError": "errors", "render_document": "handler", "render_vm": "domain_xml",
}

__all__ = [
    "SANDBOX_URI", "HostOptions", "HostProblem", "HostRequirementError", "KvmRefused", "KvmStatus", "LibvirtBackend",
    "LibvirtConnection", "LibvirtHostInfo", "LibvirtSettings", "LibvirtVmHandler", "VmError", "VmNotFound", "VmSpecError",
    "VmStateError", "make_libvirt_backends", "make_libvirt_handlers", "render_document", "render_vm",
]
__getattr__ = on_first_use(__name__, _ON_FIRST_USE)


def make_libvirt_backends(uris: Iterable[str | LibvirtConnection], read_only: bool = False, *, sandbox: bool = False,
                          shutdown_timeout: float = 60.0, cordoned: Cordoned = never_cordoned) -> list[LibvirtBackend]:
    """One backend per URI. A URI is a string or a configured LibvirtConnection (name and uri);
    with `sandbox` the URIs are ignored and libvirt's test driver is used instead.
    `cordoned(node id)` says whether a machine takes new VMs (backends/machines.py)."""
    from backends.libvirt.backend import LibvirtBackend

    options: dict[str, Any] = {"read_only": read_only, "shutdown_timeout": shutdown_timeout, "cordoned": cordoned}
    if sandbox:
        return [LibvirtBackend.sandbox(**options)]
    backends = []
    for entry in uris:
        uri = entry if isinstance(entry, str) else entry.uri
        name = None if isinstance(entry, str) else entry.name
        backends.append(LibvirtBackend(uri, name=name, **options))
    return backends


def make_libvirt_handlers(uris: Iterable[str | LibvirtConnection], read_only: bool = False, *, sandbox: bool = False,
                          strict: bool = False, shutdown_timeout: float = 60.0,
                          options: HostOptions | None = None, default_host: str | None = None,
                          backends: list[LibvirtBackend] | None = None,
                          cordoned: Cordoned = never_cordoned) -> dict[str, LibvirtVmHandler]:
    """{"vm": handler} for the resource commands. Pass `backends` to share the poller's
    backends (and their connections) instead of opening new ones. `options`: HostOptions()."""
    from backends.libvirt.handler import LibvirtVmHandler
    from backends.libvirt.host_checks import HostOptions

    if backends is None:
        backends = make_libvirt_backends(uris, read_only, sandbox=sandbox, shutdown_timeout=shutdown_timeout, cordoned=cordoned)
    options = HostOptions() if options is None else options
    return {"vm": LibvirtVmHandler(backends, strict=strict, options=options, default_host=default_host)}
