"""What the configuration gives the libvirt backend: the hosts to connect to and how long a
graceful shutdown may take. console/config builds these; `make_libvirt_backends` takes them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LIBVIRT_URI = "qemu:///system"


@dataclass(frozen=True)
class LibvirtConnection:
    """One configured host: `name` makes the backend's name (`libvirt@<name>`)."""

    name: str
    uri: str  # DRIVER[+TRANSPORT]://[USER@][HOST]/PATH


@dataclass(frozen=True)
class LibvirtSettings:
    uris: tuple[LibvirtConnection, ...]
    shutdown_timeout: float  # seconds a graceful VM shutdown may take before the VM is forced off
