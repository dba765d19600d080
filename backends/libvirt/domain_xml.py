"""A VirtualMachineRuntime spec as libvirt domain XML and storage volume XML.

Pure: no libvirt import, no host contact. Decisions that need the host (KVM or TCG and which
CPU runs, by kvm.py; an explicit firmware file) are made elsewhere and passed in through a
`DomainRequest`; `render_vm` shows what an apply on a host with usable KVM would send.

Every field of the spec maps to the XML (REFERENCE: libvirt domains):
- memory.size / memory.current -> <memory>/<currentMemory> in KiB (libvirt rejects `Gi`);
- cpu.sockets x cores x threads -> <vcpu> and a matching <topology>; cpu.model -> <cpu mode>
  (host-passthrough, host-model, maximum) or a named model (mode='custom');
- memory.balloon -> <memballoon model='virtio'><stats period='10'/></memballoon>, otherwise an
  explicit model='none' (libvirt would add a virtio balloon on its own);
- storage -> a qcow2/raw <volume> created in the pool, attached as a type='volume' disk with
  the cache mode;
- network -> a bridge or libvirt network interface with the model (virtio);
- security.secure_boot -> UEFI with the secure-boot and enrolled-keys firmware features, a q35
  machine and <smm state='on'/>; security.tpm -> an emulated TPM 2.0 (tpm-crb).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Any

from backends.libvirt.errors import VmSpecError
from rtm.kinds.vm import KIB, VirtualMachineRuntime, VmStorage

METADATA_NAMESPACE = "urn:rtm-console:vm"
# Modes libvirt takes as <cpu mode=...>; any other cpu.model is a named CPU model.
CPU_MODES = ("host-passthrough", "host-model", "maximum")
# Modes QEMU cannot provide without KVM (libvirt's domain capabilities for type 'qemu' say
# host-passthrough supported='no'): TCG runs them as 'maximum', every feature TCG can emulate.
KVM_ONLY_CPU_MODES = ("host-passthrough",)
BALLOON_STATS_PERIOD = 10  # seconds between guest memory statistics updates
DISK_TARGETS = {"virtio": "vda", "sata": "sda", "scsi": "sda", "ide": "hda"}
VOLUME_SUFFIXES = {"qcow2": "qcow2", "raw": "img"}

ET.register_namespace("rtm", METADATA_NAMESPACE)


@dataclass(frozen=True)
class CpuChoice:
    """What goes into <cpu>: a mode, and for mode 'custom' the named model. `require` names
    CPU features the guest must get (checked in full by libvirt when the domain starts)."""

    mode: str
    model: str | None = None
    require: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"custom:{self.model}" if self.mode == "custom" else self.mode


def cpu_choice(model: str, domain_type: str) -> tuple[CpuChoice, str]:
    """The <cpu> for cpu.model under `domain_type`, and a note when it had to change."""
    if model in CPU_MODES:
        choice = CpuChoice(model)
    else:
        choice = CpuChoice("custom", model)
    if domain_type != "kvm" and choice.mode in KVM_ONLY_CPU_MODES:
        return CpuChoice("maximum"), f"cpu {model} needs KVM: TCG runs cpu mode 'maximum'"
    return choice, ""


@dataclass(frozen=True)
class DomainRequest:
    """Everything needed to write one domain: the spec plus the host's decisions."""

    name: str
    spec: VirtualMachineRuntime
    domain_type: str  # "kvm" or "qemu" (TCG)
    cpu: CpuChoice
    workload: str  # the name `delete` finds it by (a workload with replicas shares it)
    replica: int | None = None
    uuid: str | None = None  # kept when an existing domain is redefined
    mac: str | None = None  # likewise, so the guest keeps its network identity
    secure_boot_loader: str | None = None  # explicit firmware file; None = libvirt picks one
    fallback: str | None = None  # why the host runs another hypervisor or CPU than the spec asks

    @property
    def volume_name(self) -> str | None:
        return volume_name(self.name, self.spec.storage) if self.spec.storage else None


def domain_request(
    name: str,
    spec: VirtualMachineRuntime,
    *,
    domain_type: str | None = None,
    workload: str | None = None,
    replica: int | None = None,
    cpu: CpuChoice | None = None,
) -> tuple[DomainRequest, tuple[str, ...]]:
    """A request for `spec` as written (domain type = spec.hypervisor unless given, the CPU from
    cpu.model unless given), with the notes of anything that had to be adapted."""
    domain_type = domain_type or spec.hypervisor
    memory = spec.memory
    if memory.current is not None and memory.current != memory.size and not memory.balloon:
        raise VmSpecError(
            f"vm {name}: memory.current needs memory.balloon: true",
            "without a balloon the guest always holds memory.size; set balloon: true or drop current",
        )
    if spec.security.secure_boot and spec.storage is not None and spec.storage.bus == "ide":
        raise VmSpecError(
            f"vm {name}: storage.bus ide does not exist on the q35 machine that secure boot needs",
            "use bus: virtio or sata",
        )
    note = ""
    if cpu is None:
        cpu, note = cpu_choice(spec.cpu.model, domain_type)
    request = DomainRequest(name, spec, domain_type, cpu, workload or name, replica)
    return request, ((note,) if note else ())


def volume_name(vm_name: str, storage: VmStorage) -> str:
    return f"{vm_name}.{VOLUME_SUFFIXES[storage.type]}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: Any) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attributes.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def _to_text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def domain_xml(request: DomainRequest) -> str:
    """The <domain> XML for defineXML."""
    spec = request.spec
    root = ET.Element("domain", type=request.domain_type)
    _sub(root, "name", request.name)
    if request.uuid:
        _sub(root, "uuid", request.uuid)
    metadata = _sub(root, "metadata")
    _sub(metadata, f"{{{METADATA_NAMESPACE}}}vm", workload=request.workload, replica=request.replica, fallback=request.fallback)
    _sub(root, "memory", str(spec.memory.size // KIB), unit="KiB")
    current = spec.memory.current if spec.memory.current is not None else spec.memory.size
    _sub(root, "currentMemory", str(current // KIB), unit="KiB")
    _sub(root, "vcpu", str(spec.cpu.vcpus), placement="static")
    _os(root, request)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.security.secure_boot:
        _sub(features, "smm", state="on")  # OVMF's secure-boot build refuses to run without SMM
    _cpu(root, request)
    _sub(root, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        _sub(root, event, action)
    _devices(root, request)
    return _to_text(root)


def _os(root: ET.Element, request: DomainRequest) -> None:
    secure_boot = request.spec.security.secure_boot
    os_element = _sub(root, "os")
    _sub(os_element, "type", "hvm", arch="x86_64", machine="q35" if secure_boot else "pc")
    if secure_boot and request.secure_boot_loader:
        # An explicit firmware file; libvirt finds the matching NVRAM template itself.
        _sub(os_element, "loader", request.secure_boot_loader, readonly="yes", secure="yes", type="pflash")
    elif secure_boot:
        # Let libvirt choose from the host's firmware descriptors (libvirt >= 8.6).
        os_element.set("firmware", "efi")
        firmware = _sub(os_element, "firmware")
        _sub(firmware, "feature", enabled="yes", name="secure-boot")
        _sub(firmware, "feature", enabled="yes", name="enrolled-keys")
        _sub(os_element, "loader", secure="yes")
    _sub(os_element, "boot", dev="hd")


def _cpu(root: ET.Element, request: DomainRequest) -> None:
    cpu_spec = request.spec.cpu
    cpu = cpu_element(root, request.cpu)
    _sub(cpu, "topology", sockets=cpu_spec.sockets, dies=1, cores=cpu_spec.cores, threads=cpu_spec.threads)


def cpu_element(parent: ET.Element, choice: CpuChoice) -> ET.Element:
    """The <cpu> element of `choice` (without topology), as guests and KVM trials get it."""
    check = "full" if choice.require else None
    if choice.mode == "custom":
        cpu = _sub(parent, "cpu", mode="custom", match="exact", check=check)
        _sub(cpu, "model", choice.model, fallback="allow")
    else:
        cpu = _sub(parent, "cpu", mode=choice.mode, check=check)
    for feature in choice.require:
        _sub(cpu, "feature", policy="require", name=feature)
    return cpu


def _devices(root: ET.Element, request: DomainRequest) -> None:
    spec = request.spec
    devices = _sub(root, "devices")
    storage = spec.storage
    if storage is not None:
        disk = _sub(devices, "disk", type="volume", device="disk")
        cache = None if storage.cache == "default" else storage.cache
        _sub(disk, "driver", name="qemu", type=storage.type, cache=cache)
        _sub(disk, "source", pool=storage.pool, volume=request.volume_name)
        _sub(disk, "target", dev=DISK_TARGETS[storage.bus], bus=storage.bus)
        if storage.bus == "scsi":
            _sub(devices, "controller", type="scsi", index=0, model="virtio-scsi")
    network = spec.network
    if network.type != "none":
        interface = _sub(devices, "interface", type=network.type)
        if request.mac:
            _sub(interface, "mac", address=request.mac)
        _sub(interface, "source", **{network.type: network.source})
        _sub(interface, "model", type=network.model)
    _sub(devices, "serial", type="pty")
    _sub(devices, "console", type="pty")
    if spec.memory.balloon:
        balloon = _sub(devices, "memballoon", model="virtio")
        _sub(balloon, "stats", period=BALLOON_STATS_PERIOD)
    else:
        _sub(devices, "memballoon", model="none")
    if spec.security.tpm:
        tpm = _sub(devices, "tpm", model="tpm-crb")
        _sub(tpm, "backend", type="emulator", version="2.0")


def volume_xml(name: str, storage: VmStorage) -> str:
    """The <volume> XML for pool.createXML: sparse, of the spec's size and format."""
    root = ET.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(storage.size), unit="bytes")
    _sub(root, "allocation", "0", unit="bytes")
    target = _sub(root, "target")
    _sub(target, "format", type=storage.type)
    return _to_text(root)


def render_vm(name: str, spec: VirtualMachineRuntime, workload: str | None = None) -> dict[str, Any]:
    """What apply sends to a host with usable KVM: the domain XML and the volume XML."""
    request, notes = domain_request(name, spec, workload=workload)
    rendered: dict[str, Any] = {"name": name, "domain_xml": domain_xml(request)}
    if spec.storage is not None:
        rendered["volume"] = f"{spec.storage.pool}/{request.volume_name}"
        rendered["volume_xml"] = volume_xml(request.volume_name or "", spec.storage)
    if notes:
        rendered["notes"] = list(notes)
    return rendered


def with_identity(request: DomainRequest, uuid: str | None, mac: str | None) -> DomainRequest:
    """The same request keeping an existing domain's UUID and MAC address."""
    return replace(request, uuid=uuid, mac=mac)
