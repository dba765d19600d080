"""Domain XML read back as the spec's fields, to compare a live domain with a spec.

Pure. The same reader is applied to the XML we would define and to the XML libvirt holds, so
the comparison never depends on how libvirt reformats or completes a definition (it adds
addresses, controllers, the resolved firmware paths, machine versions such as pc-q35-7.2).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from backends.libvirt.domain_xml import METADATA_NAMESPACE

# Spec fields a running domain can take without a restart (the balloon moves memory.current).
LIVE_FIELDS = frozenset({"memory.current"})


@dataclass(frozen=True)
class DomainView:
    """The spec-relevant facts of one domain definition. Field names follow the spec."""

    name: str
    uuid: str | None
    workload: str | None
    hypervisor: str  # domain type: kvm, qemu, test
    memory_kib: int
    current_memory_kib: int
    vcpus: int
    topology: str  # "sockets x cores x threads"
    cpu: str  # host-passthrough, maximum, custom:MODEL, ...
    balloon: bool
    storage: str | None  # "pool/volume type bus cache"
    network: str | None  # "bridge virbr0 virtio"
    mac: str | None
    secure_boot: bool
    tpm: bool
    fallback: str | None = None  # why it runs another hypervisor or CPU than its spec asked (not a spec field)

    def spec_fields(self) -> dict[str, Any]:
        """Comparable values keyed by spec path."""
        return {
            "hypervisor": self.hypervisor,
            "memory.size": f"{self.memory_kib} KiB",
            "memory.current": f"{self.current_memory_kib} KiB",
            "memory.balloon": self.balloon,
            "cpu.vcpus": self.vcpus,
            "cpu.topology": self.topology,
            "cpu.model": self.cpu,
            "storage": self.storage,
            "network": self.network,
            "security.secure_boot": self.secure_boot,
            "security.tpm": self.tpm,
        }


def _int(element: ET.Element | None, default: int = 0) -> int:
    return int(element.text or default) if element is not None else default


def _kib(element: ET.Element | None) -> int:
    """A libvirt memory element in KiB, whatever unit it was written in."""
    if element is None:
        return 0
    scale = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "m": 1024, "mib": 1024, "g": 1024**2, "gib": 1024**2}
    return int(int(element.text or 0) * scale.get(element.get("unit", "KiB").lower(), 1))


def parse_domain(xml: str) -> DomainView:
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.Element("devices")
    vcpus = _int(root.find("vcpu"), 1)
    topology_element = root.find("cpu/topology")
    if topology_element is not None:
        parts = (topology_element.get(k, "1") for k in ("sockets", "cores", "threads"))
        topology = " x ".join(parts)
    else:
        topology = f"1 x {vcpus} x 1"  # libvirt's default: one socket, one core per vCPU
    metadata = root.find(f"metadata/{{{METADATA_NAMESPACE}}}vm")
    balloon = devices.find("memballoon")
    tpm = devices.find("tpm")
    loader = root.find("os/loader")
    firmware_secure = any(
        f.get("name") == "secure-boot" and f.get("enabled") == "yes" for f in root.findall("os/firmware/feature")
    )
    smm = root.find("features/smm")
    return DomainView(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid"),
        workload=metadata.get("workload") if metadata is not None else None,
        hypervisor=root.get("type", ""),
        memory_kib=_kib(root.find("memory")),
        current_memory_kib=_kib(root.find("currentMemory")) or _kib(root.find("memory")),
        vcpus=vcpus,
        topology=topology,
        cpu=_cpu_label(root.find("cpu")),
        balloon=balloon is not None and balloon.get("model") == "virtio",
        storage=_disk_label(devices),
        network=_interface_label(devices),
        mac=devices.find("interface/mac").get("address") if devices.find("interface/mac") is not None else None,
        secure_boot=((loader is not None and loader.get("secure") == "yes") or firmware_secure)
        and smm is not None
        and smm.get("state", "on") == "on",
        tpm=tpm is not None and tpm.find("backend") is not None and tpm.find("backend").get("type") == "emulator",
        fallback=metadata.get("fallback") if metadata is not None else None,
    )


def _cpu_label(cpu: ET.Element | None) -> str:
    if cpu is None:
        return "default"
    mode = cpu.get("mode", "custom")
    if mode == "custom":
        return f"custom:{cpu.findtext('model', '')}"
    return mode


def _disk_label(devices: ET.Element) -> str | None:
    disk = next((d for d in devices.findall("disk") if d.get("device", "disk") == "disk"), None)
    if disk is None:
        return None
    source = disk.find("source")
    driver = disk.find("driver")
    target = disk.find("target")
    if source is None:
        where = "(no source)"
    elif source.get("pool"):
        where = f"{source.get('pool')}/{source.get('volume')}"
    else:
        where = source.get("file") or source.get("dev") or source.get("name") or "(unknown)"
    kind = driver.get("type", "raw") if driver is not None else "raw"
    cache = driver.get("cache", "default") if driver is not None else "default"
    bus = target.get("bus", "") if target is not None else ""
    return f"{where} {kind} {bus} cache={cache}"


def _interface_label(devices: ET.Element) -> str | None:
    interface = devices.find("interface")
    if interface is None:
        return None
    kind = interface.get("type", "")
    source = interface.find("source")
    name = (source.get(kind) or "") if source is not None else ""
    model = interface.find("model")
    return f"{kind} {name} {model.get('type') if model is not None else 'default'}"


def compare(live: DomainView, desired: DomainView) -> tuple[tuple[str, Any, Any], ...]:
    """(field, live value, spec value) for each spec field that differs."""
    live_fields, desired_fields = live.spec_fields(), desired.spec_fields()
    return tuple((name, live_fields[name], value) for name, value in desired_fields.items() if live_fields[name] != value)
