"""What a host must offer before a VM is created there, checked before anything is created.

Two halves: `gather_facts` asks the host (libvirt's domain capabilities, the pool, the bridge or
network, the firmware and swtpm) and `check_requirements` turns those facts and the spec into
problems people can act on. The second half is pure. Whether KVM runs, and with which CPU, is
kvm.py's.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from backends.libvirt.connection import error_code, libvirt_module
from backends.libvirt.errors import HostProblem
from rtm.kinds.vm import VirtualMachineRuntime

OVMF_HINT = "install the host's OVMF firmware (Debian: apt-get install ovmf), which brings the secure-boot builds and their descriptors in /usr/share/qemu/firmware"
SWTPM_HINT = "install the TPM emulator on the host (Debian: apt-get install swtpm swtpm-tools)"


# --- facts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """Whether a named host object (pool, bridge, network) exists and is usable."""

    found: bool
    active: bool = True
    detail: str = ""  # e.g. what the interface is when it is not a bridge


@dataclass(frozen=True)
class VolumeFacts:
    format: str
    capacity: int  # bytes


@dataclass(frozen=True)
class FirmwareFacts:
    secure_boot: bool | None  # libvirt can pick a secure-boot UEFI build for q35 (None: not known)
    loaders: tuple[str, ...] = ()  # firmware files libvirt lists for q35
    explicit: str | None = None  # a firmware file named in the options
    explicit_found: bool | None = None


@dataclass(frozen=True)
class TpmFacts:
    emulator: bool | None  # libvirt offers the emulator TPM backend (None: not known)
    swtpm: str = "swtpm"
    swtpm_found: bool | None = None  # None: not checked (a remote host)


@dataclass(frozen=True)
class HostFacts:
    host: str
    pool: Presence | None = None
    volume: VolumeFacts | None = None  # an existing volume with the VM's volume name
    network: Presence | None = None
    firmware: FirmwareFacts | None = None
    tpm: TpmFacts | None = None


@dataclass(frozen=True)
class HostOptions:
    """Paths the checks look at; the defaults suit a Debian host."""

    secure_boot_loader: str | None = None  # explicit OVMF secure-boot build; None = libvirt picks
    swtpm_binary: str = "swtpm"


def check_requirements(name: str, spec: VirtualMachineRuntime, facts: HostFacts) -> tuple[HostProblem, ...]:
    """Everything the host lacks for this spec (pure)."""
    problems: list[HostProblem] = []
    storage = spec.storage
    if storage is not None and facts.pool is not None:
        if not facts.pool.found:
            problems.append(HostProblem("storage.pool", f"no storage pool {storage.pool!r} on {facts.host}", "list pools with `virsh pool-list --all`, or set storage.pool"))
        elif not facts.pool.active:
            problems.append(HostProblem("storage.pool", f"storage pool {storage.pool!r} is not active", f"virsh pool-start {storage.pool}"))
    if storage is not None and facts.volume is not None and facts.volume.format != storage.type:
        problems.append(HostProblem("storage.type", f"volume {storage.pool}/{name} exists as {facts.volume.format}, the spec says {storage.type}", "delete the old volume or change storage.type"))
    network = spec.network
    if network.type != "none" and facts.network is not None:
        source = network.source
        if network.type == "bridge" and not facts.network.found:
            problems.append(HostProblem("network.bridge", f"no bridge {source!r} on {facts.host}", f"create it (ip link add {source} type bridge) or use type: network"))
        elif network.type == "bridge" and facts.network.detail:
            problems.append(HostProblem("network.bridge", f"{source!r} is not a bridge ({facts.network.detail})", "name a Linux bridge"))
        elif network.type == "network" and not facts.network.found:
            problems.append(HostProblem("network.network", f"no libvirt network {source!r} on {facts.host}", "list networks with `virsh net-list --all`"))
        elif network.type == "network" and not facts.network.active:
            problems.append(HostProblem("network.network", f"libvirt network {source!r} is not active", f"virsh net-start {source}"))
    firmware = facts.firmware
    if spec.security.secure_boot and firmware is not None:
        if firmware.explicit is not None and firmware.explicit_found is False:
            problems.append(HostProblem("security.secure_boot", f"UEFI secure-boot firmware {firmware.explicit} not found on {facts.host}", OVMF_HINT))
        elif firmware.explicit is None and firmware.secure_boot is False:
            problems.append(HostProblem("security.secure_boot", f"no UEFI firmware with secure boot for q35 on {facts.host}", OVMF_HINT))
    tpm = facts.tpm
    if spec.security.tpm and tpm is not None:
        if tpm.swtpm_found is False:
            problems.append(HostProblem("security.tpm", f"the TPM emulator {tpm.swtpm} is not installed on {facts.host}", SWTPM_HINT))
        elif tpm.emulator is False:
            problems.append(HostProblem("security.tpm", f"libvirt on {facts.host} offers no emulated TPM", SWTPM_HINT))
    return tuple(problems)


# --- asking the host ---------------------------------------------------------------------------


def gather_facts(conn: Any, name: str, spec: VirtualMachineRuntime, *, host: str, local: bool,
                 domain_type: str, options: HostOptions, volume: str | None) -> HostFacts:
    """Asks the host only what this spec needs. libvirt errors other than "not found" or "not
    supported" propagate (the caller turns them into its own errors)."""
    libvirt = libvirt_module()
    pool = volume_facts = network = firmware = tpm = None
    if spec.storage is not None:
        pool, volume_facts = _pool_facts(conn, libvirt, spec.storage.pool, volume)
    if spec.network.type == "bridge":
        network = _bridge_facts(conn, libvirt, spec.network.source or "", local)
    elif spec.network.type == "network":
        network = _network_facts(conn, libvirt, spec.network.source or "")
    if spec.security.secure_boot or spec.security.tpm:
        capabilities = _domain_capabilities(conn, libvirt, domain_type, "q35" if spec.security.secure_boot else None)
        if spec.security.secure_boot:
            firmware = _firmware_facts(capabilities, options.secure_boot_loader, local)
        if spec.security.tpm:
            tpm = _tpm_facts(capabilities, options.swtpm_binary, local)
    return HostFacts(host, pool, volume_facts, network, firmware, tpm)


def _lookup(libvirt: Any, call: Any, *args: Any) -> Any:
    """The object, or None when libvirt says there is no such object."""
    missing = {libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_NETWORK,
               libvirt.VIR_ERR_NO_INTERFACE, libvirt.VIR_ERR_NO_DOMAIN}
    try:
        return call(*args)
    except libvirt.libvirtError as error:
        if error_code(error) in missing:
            return None
        raise


def _pool_facts(conn: Any, libvirt: Any, pool_name: str, volume: str | None) -> tuple[Presence, VolumeFacts | None]:
    pool = _lookup(libvirt, conn.storagePoolLookupByName, pool_name)
    if pool is None:
        return Presence(False), None
    if not pool.isActive():
        return Presence(True, active=False), None
    if volume is None:
        return Presence(True), None
    existing = _lookup(libvirt, pool.storageVolLookupByName, volume)
    if existing is None:
        return Presence(True), None
    root = ET.fromstring(existing.XMLDesc(0))
    fmt = root.find("target/format")
    return Presence(True), VolumeFacts(fmt.get("type", "raw") if fmt is not None else "raw", int(existing.info()[1]))


def _bridge_facts(conn: Any, libvirt: Any, bridge: str, local: bool) -> Presence | None:
    try:
        interface = _lookup(libvirt, conn.interfaceLookupByName, bridge)
    except libvirt.libvirtError as error:
        if error_code(error) != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        # No interface driver on this host: look at the kernel's view when it is this machine.
        if local:
            return Presence(os.path.isdir(f"/sys/class/net/{bridge}/bridge"))
        return None
    if interface is None:
        return Presence(False)
    kind = ET.fromstring(interface.XMLDesc(0)).get("type", "")
    return Presence(True, detail="" if kind == "bridge" else f"it is an interface of type {kind}")


def _network_facts(conn: Any, libvirt: Any, network_name: str) -> Presence:
    network = _lookup(libvirt, conn.networkLookupByName, network_name)
    if network is None:
        return Presence(False)
    return Presence(True, active=bool(network.isActive()))


def _domain_capabilities(conn: Any, libvirt: Any, domain_type: str, machine: str | None) -> ET.Element | None:
    """The host's domain capabilities for x86_64, or None where the driver has none (test:///)."""
    try:
        return ET.fromstring(conn.getDomainCapabilities(None, "x86_64", machine, domain_type, 0))
    except libvirt.libvirtError as error:
        if error_code(error) in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
            return None
        raise


def _enum_values(element: ET.Element | None, name: str) -> tuple[str, ...]:
    if element is None:
        return ()
    enum = element.find(f"enum[@name='{name}']")
    return tuple(v.text or "" for v in enum.findall("value")) if enum is not None else ()


def _firmware_facts(capabilities: ET.Element | None, explicit: str | None, local: bool) -> FirmwareFacts:
    if capabilities is None:
        secure, loaders = None, ()
    else:
        os_element = capabilities.find("os")
        loader = os_element.find("loader") if os_element is not None else None
        loaders = tuple(v.text or "" for v in loader.findall("value")) if loader is not None else ()
        secure = "efi" in _enum_values(os_element, "firmware") and "yes" in _enum_values(loader, "secure")
    explicit_found = None
    if explicit is not None:
        # A remote host's files are known only through the list libvirt gives.
        explicit_found = os.path.isfile(explicit) if local else explicit in loaders
    return FirmwareFacts(secure, loaders, explicit, explicit_found)


def _tpm_facts(capabilities: ET.Element | None, swtpm: str, local: bool) -> TpmFacts:
    emulator = None
    if capabilities is not None:
        tpm = capabilities.find("devices/tpm")
        if tpm is not None:
            emulator = tpm.get("supported") == "yes" and "emulator" in _enum_values(tpm, "backendModel")
    found = (shutil.which(swtpm) is not None) if local else None
    return TpmFacts(emulator, swtpm, found)
