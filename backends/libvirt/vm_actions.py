"""Operating one VM: start, graceful shutdown, force off, reboot, suspend/resume, live memory,
the domain XML, and removal.

Each action checks the domain's state first, so a request that makes no sense ("suspend a
VM that is shut off") gets a one-line VmStateError instead of libvirt's text. A lost
connection surfaces as BackendUnavailable (from LibvirtConnection.call); any other libvirt
failure as VmError naming the action and the VM.

Graceful shutdown sends the ACPI power button and waits; a guest without an operating system
never answers, so after `timeout` seconds the domain is destroyed (as `virsh shutdown` followed
by `virsh destroy` would do), and the returned line says which of the two happened.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any, Callable

from backends.libvirt.connection import LibvirtConnection, error_code, libvirt_module
from backends.libvirt.errors import VmError, VmNotFound, VmStateError
from backends.libvirt.stats import STATE_NAMES

SHUTOFF = 5
PAUSED = 3
RUNNING_STATES = frozenset({1, 2})  # running, blocked (waiting on a resource) - still on


def find_domain(conn: Any, name: str, host: str) -> Any:
    libvirt = libvirt_module()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as error:
        if error_code(error) == libvirt.VIR_ERR_NO_DOMAIN:
            raise VmNotFound(f"no vm {name!r} on {host}", "list them with `rtm-console get vms`") from None
        raise


def state_of(domain: Any) -> int:
    return int(domain.state()[0])


def state_name(code: int) -> str:
    return STATE_NAMES.get(code, f"state {code}")


class VmActions:
    """The actions on the VMs of one host. `clock`, `sleep` and `poll_interval` pace the wait
    of a graceful shutdown."""

    def __init__(self, connection: LibvirtConnection, host: str, *, shutdown_timeout: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 poll_interval: float = 0.25) -> None:
        self.connection = connection
        self.host = host
        self.shutdown_timeout = shutdown_timeout
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval

    def _run(self, name: str, what: str, action: Callable[[Any], str]) -> str:
        """Runs `action(domain)`; libvirt errors become a VmError naming `what` and the VM."""
        return self.connection.call(lambda conn: action(find_domain(conn, name, self.host)), f"{what} vm {name!r}")

    def state(self, name: str) -> str:
        return self._run(name, "read the state of", lambda d: state_name(state_of(d)))

    def start(self, name: str) -> str:
        def start(domain: Any) -> str:
            state = state_of(domain)
            if state == PAUSED:
                raise VmStateError(f"vm {name!r} is paused", "resume it instead")
            if state != SHUTOFF and domain.isActive():
                raise VmStateError(f"vm {name!r} is already {state_name(state)}")
            domain.create()
            return f"vm/{name}: started on {self.host}"

        return self._run(name, "start", start)

    def shutdown(self, name: str, timeout: float | None = None) -> str:
        """ACPI power button, then destroy if still on after `timeout` seconds."""
        libvirt = libvirt_module()
        timeout = self.shutdown_timeout if timeout is None else timeout

        def shutdown(domain: Any) -> str:
            if not domain.isActive():
                return f"vm/{name}: already shut off"
            if state_of(domain) == PAUSED:
                domain.resume()  # a paused guest cannot see the power button
            try:
                domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
                domain.shutdown()  # drivers without the ACPI flag (the test driver) take the default
            deadline = self._clock() + timeout
            while self._clock() < deadline:
                if not domain.isActive():
                    return f"vm/{name}: shut down by the guest (ACPI)"
                self._sleep(self._poll_interval)
            if not domain.isActive():
                return f"vm/{name}: shut down by the guest (ACPI)"
            domain.destroy()
            return f"vm/{name}: did not answer ACPI within {timeout:g} s: forced off"

        return self._run(name, "shut down", shutdown)

    def force_off(self, name: str) -> str:
        def force_off(domain: Any) -> str:
            if not domain.isActive():
                return f"vm/{name}: already shut off"
            domain.destroy()
            return f"vm/{name}: forced off"

        return self._run(name, "force off", force_off)

    def reboot(self, name: str, *, force: bool = False) -> str:
        """ACPI reboot request (the guest decides), or with force a hardware reset."""
        libvirt = libvirt_module()

        def reboot(domain: Any) -> str:
            if state_of(domain) not in RUNNING_STATES:
                raise VmStateError(f"vm {name!r} is {state_name(state_of(domain))}, not running")
            if force:
                domain.reset(0)
                return f"vm/{name}: reset"
            domain.reboot(libvirt.VIR_DOMAIN_REBOOT_ACPI_POWER_BTN)
            return f"vm/{name}: reboot requested (ACPI; the guest decides)"

        return self._run(name, "reboot", reboot)

    def suspend(self, name: str) -> str:
        def suspend(domain: Any) -> str:
            state = state_of(domain)
            if state == PAUSED:
                return f"vm/{name}: already paused"
            if state not in RUNNING_STATES:
                raise VmStateError(f"vm {name!r} is {state_name(state)}, not running")
            domain.suspend()
            return f"vm/{name}: paused"

        return self._run(name, "suspend", suspend)

    def resume(self, name: str) -> str:
        def resume(domain: Any) -> str:
            state = state_of(domain)
            if state in RUNNING_STATES:
                return f"vm/{name}: already running"
            if state != PAUSED:
                raise VmStateError(f"vm {name!r} is {state_name(state)}, not paused")
            domain.resume()
            return f"vm/{name}: resumed"

        return self._run(name, "resume", resume)

    def set_memory(self, name: str, memory_bytes: int, *, persist: bool = False) -> str:
        """Moves the balloon of a running VM (and with `persist` its configuration too); a
        shut-off VM gets the new current memory in its configuration."""
        libvirt = libvirt_module()
        kib = memory_bytes // 1024

        def set_memory(domain: Any) -> str:
            if not has_virtio_balloon(domain.XMLDesc(0)):
                raise VmStateError(f"vm {name!r} has no virtio balloon, so its memory cannot change while it runs",
                                   "set memory.balloon: true and restart it")
            maximum = int(domain.maxMemory())
            if not 0 < kib <= maximum:
                raise VmError(f"vm {name!r}: memory {memory_bytes} bytes is outside the balloon range (1 KiB to {maximum} KiB)")
            if domain.isActive():
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | (libvirt.VIR_DOMAIN_AFFECT_CONFIG if persist else 0)
                domain.setMemoryFlags(kib, flags)
                return f"vm/{name}: memory set live to {kib} KiB" + (" (and in its configuration)" if persist else "")
            domain.setMemoryFlags(kib, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
            return f"vm/{name}: memory set to {kib} KiB in its configuration (the VM is shut off)"

        return self._run(name, "set the memory of", set_memory)

    def domain_xml(self, name: str, *, inactive: bool = False) -> str:
        """The live domain XML (or the stored definition with `inactive`), for inspection."""
        libvirt = libvirt_module()
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return self._run(name, "read the XML of", lambda d: d.XMLDesc(flags))


def has_virtio_balloon(xml: str) -> bool:
    balloon = ET.fromstring(xml).find("devices/memballoon")
    return balloon is not None and balloon.get("model") == "virtio"


def domain_volumes(conn: Any, xml: str) -> list[Any]:
    """The storage volumes behind a domain's disks (cdroms excluded); files outside any pool
    are not volumes and are left alone."""
    libvirt = libvirt_module()
    volumes = []
    for disk in ET.fromstring(xml).findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        source = disk.find("source")
        if source is None:
            continue
        try:
            if source.get("pool") and source.get("volume"):
                volumes.append(conn.storagePoolLookupByName(source.get("pool")).storageVolLookupByName(source.get("volume")))
            elif source.get("file"):
                volumes.append(conn.storageVolLookupByPath(source.get("file")))
        except libvirt.libvirtError as error:
            if error_code(error) not in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
                raise
    return volumes


def undefine(domain: Any) -> None:
    """Undefines with everything libvirt keeps beside the definition: managed save, snapshot
    and checkpoint metadata, the UEFI variable store and the TPM state. Drivers that refuse
    those flags (the test driver) get a plain undefine."""
    libvirt = libvirt_module()
    names = ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
             "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA", "VIR_DOMAIN_UNDEFINE_NVRAM", "VIR_DOMAIN_UNDEFINE_TPM")
    flags = 0
    for flag in names:
        flags |= getattr(libvirt, flag, 0)
    try:
        domain.undefineFlags(flags)
    except libvirt.libvirtError as error:
        if error_code(error) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        domain.undefineFlags(0)


def remove_domain(conn: Any, name: str, host: str, *, with_disk: bool) -> list[str]:
    """Stops (if running) and undefines a domain; deletes its volumes only with `with_disk`."""
    libvirt = libvirt_module()
    domain = find_domain(conn, name, host)
    lines = []
    xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    volumes = domain_volumes(conn, xml)
    if domain.isActive():
        domain.destroy()
        lines.append(f"vm/{name}: stopped")
    if domain.isPersistent():
        undefine(domain)
    lines.append(f"vm/{name}: undefined on {host}")
    for volume in volumes:
        label = f"{volume.storagePoolLookupByVolume().name()}/{volume.name()}"
        if with_disk:
            volume.delete(0)
            lines.append(f"volume {label}: deleted")
        else:
            lines.append(f"volume {label}: kept (delete it with --with-disk)")
    return lines
