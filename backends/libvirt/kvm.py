"""KVM or TCG, and which CPU runs under KVM: settled by trials of what the guest will use.

libvirt's capabilities list `kvm` even where QEMU may not open /dev/kvm, and a host whose KVM
works may still fail some CPU modes (nested KVM on some hosts aborts with `-cpu host` and
`-cpu max`: "failed to set MSR 0x10a"). So a trial decides: a tiny transient domain with the
guest's machine, SMM and <cpu> element is started paused and destroyed at once.

When the guest's CPU does not start under KVM but KVM itself does (a trial without <cpu>), the
fallback goes in order: host-passthrough (or maximum), host-model, then a named model the host's
domain capabilities list (the host-model's own model first, then those marked usable), each
tried; then TCG. A named cpu.model is tried as written, then TCG. Every fallback says which and
why; a strict apply refuses it. `choose_hypervisor` is pure: the trials are passed in.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable

from backends.base import one_line
from backends.libvirt.connection import error_code, error_message, libvirt_module
from backends.libvirt.domain_xml import CpuChoice, cpu_element
from backends.libvirt.errors import KvmRefused

KVM_HINT = "let QEMU open /dev/kvm (e.g. add the libvirt-qemu user to the kvm group or grant the device), or apply without --strict to run under TCG"
CPU_HINT = "apply without --strict to run the CPU that starts, or set cpu.model to one that runs on this host (host-model, or a model `virsh domcapabilities --virttype kvm` marks usable)"
KVM_PROBE_PREFIX = "rtm-kvm-probe-"
MAX_NAMED_TRIALS = 3  # named CPU models tried before giving up on KVM (each trial takes 1-2 s)
HOST_MODEL = CpuChoice("host-model")

@dataclass(frozen=True)
class KvmStatus:
    usable: bool
    reason: str = ""  # why not, or how it was found out
    tried: bool = False  # settled by a trial domain (not only by the capabilities)


# A trial of one CPU (None: no <cpu> element, QEMU's default) -> whether it started.
KvmTrial = Callable[[CpuChoice | None], KvmStatus]


@dataclass(frozen=True)
class HypervisorChoice:
    domain_type: str  # "kvm" or "qemu" (TCG)
    fallback: bool  # the host runs another hypervisor or CPU than was asked for
    note: str = ""
    cpu: CpuChoice | None = None  # the CPU that runs under KVM; None: as the spec says (TCG adapts it)


def choose_hypervisor(requested: str, trial: KvmTrial, *, cpu: CpuChoice, strict: bool, host: str,
                      named_models: Callable[[], tuple[str, ...]] = tuple) -> HypervisorChoice:
    """KVM with the guest's CPU when its trial starts; else the next CPU in the fallback order
    that starts; else TCG. Each fallback carries a note; `strict` raises KvmRefused instead."""
    if requested != "kvm":
        return HypervisorChoice("qemu", False, "hypervisor qemu: runs under TCG (software emulation)")
    first = trial(cpu)
    if first.usable:
        return HypervisorChoice("kvm", False, cpu=cpu)
    kvm = trial(None) if first.tried else first
    if not kvm.usable:
        return _tcg(f"KVM is not usable ({kvm.reason})", strict, host, KVM_HINT)
    failed = [f"{cpu.label}: {first.reason}"]
    for candidate in _fallbacks(cpu, named_models):
        status = trial(candidate)
        if status.usable:
            why = f"cpu {cpu.label} does not start under KVM here ({'; '.join(failed)})"
            if strict:
                raise KvmRefused(f"{host}: {why}; strict apply does not fall back to cpu {candidate.label}", CPU_HINT)
            return HypervisorChoice("kvm", True, f"CPU fallback on {host}: {why}; runs cpu {candidate.label}", candidate)
        failed.append(f"{candidate.label}: {status.reason}")
    return _tcg(f"KVM runs, but no CPU tried starts under it ({'; '.join(failed)})", strict, host, CPU_HINT)


def _tcg(reason: str, strict: bool, host: str, hint: str) -> HypervisorChoice:
    if strict:
        raise KvmRefused(f"{host}: hypervisor kvm was asked for, but {reason}; strict apply does not fall back to TCG", hint)
    return HypervisorChoice("qemu", True, f"TCG fallback on {host}: {reason}")


def _fallbacks(cpu: CpuChoice, named_models: Callable[[], tuple[str, ...]]) -> list[CpuChoice]:
    """The CPUs to try after `cpu`, in order (a named model asked for has none)."""
    if cpu.mode == "custom":
        return []
    ahead = [HOST_MODEL] if cpu.mode != "host-model" else []
    return ahead + [CpuChoice("custom", name) for name in named_models()[:MAX_NAMED_TRIALS]]


# --- asking the host -----------------------------------------------------------------------------


def named_cpu_models(capabilities_xml: str) -> tuple[str, ...]:
    """Named models to fall back to, from the domain capabilities for kvm: the model host-model
    is based on, then the models libvirt marks usable on this host, in its order."""
    root = ET.fromstring(capabilities_xml)
    names = [model.text or "" for model in root.findall("cpu/mode[@name='host-model']/model")]
    names += [model.text or "" for model in root.findall("cpu/mode[@name='custom']/model") if model.get("usable") == "yes"]
    return tuple(dict.fromkeys(name for name in names if name))


def kvm_capabilities(conn: Any, *, smm: bool = False) -> str | None:
    """The domain capabilities for kvm guests of the machine the guest uses, or None where the
    driver has none to give (test:///)."""
    libvirt = libvirt_module()
    try:
        return conn.getDomainCapabilities(None, "x86_64", "q35" if smm else "pc", "kvm", 0)
    except libvirt.libvirtError as error:
        if error_code(error) == libvirt.VIR_ERR_NO_SUPPORT:
            return None
        raise


def trial_xml(name: str, cpu: CpuChoice | None, *, smm: bool) -> str:
    """A tiny kvm domain with the guest's machine, SMM and <cpu> element."""
    root = ET.Element("domain", type="kvm")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "memory", unit="MiB").text = "16"
    os_element = ET.SubElement(root, "os")
    ET.SubElement(os_element, "type", arch="x86_64", machine="q35" if smm else "pc").text = "hvm"
    features = ET.SubElement(root, "features")
    if smm:
        ET.SubElement(features, "smm", state="on")
    if cpu is not None:
        cpu_element(root, cpu)
    ET.SubElement(ET.SubElement(root, "devices"), "memballoon", model="none")
    return ET.tostring(root, encoding="unicode")


def probe_kvm(conn: Any, *, read_only: bool, smm: bool = False, cpu: CpuChoice | None = None) -> KvmStatus:
    """Whether a kvm domain with `cpu` (None: no <cpu> element) starts on this host; with `smm`,
    also with System Management Mode, which secure boot needs (nested KVM may lack it)."""
    libvirt = libvirt_module()
    try:
        conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
    except libvirt.libvirtError as error:
        if error_code(error) == libvirt.VIR_ERR_NO_SUPPORT:
            return KvmStatus(True, "the driver has no capabilities to ask; taken as usable")
        return KvmStatus(False, f"libvirt offers no kvm domains: {kvm_reason(error_message(error))}")
    if read_only:
        return KvmStatus(True, "listed by libvirt; not tried (read-only connection)")
    name = f"{KVM_PROBE_PREFIX}{uuid.uuid4().hex[:8]}"
    try:
        domain = conn.createXML(trial_xml(name, cpu, smm=smm), libvirt.VIR_DOMAIN_START_PAUSED)
    except libvirt.libvirtError as error:
        reason = kvm_reason(error_message(error))
        return KvmStatus(False, f"{reason}, which secure boot needs" if smm and "system management" in reason.lower() else reason, tried=True)
    try:
        domain.destroy()
    except libvirt.libvirtError:
        pass  # a transient domain that is already gone is what we wanted
    what = f"cpu {cpu.label}" if cpu is not None else "no cpu element"
    return KvmStatus(True, f"a paused kvm domain started ({what}{', SMM' if smm else ''})", tried=True)


# QEMU's own words for the ways KVM can fail, most telling first.
_KVM_FAILURES = (
    re.compile(r"Could not access KVM kernel module: [^\n.]*?(?=\s+qemu-system|[.\n]|$)", re.IGNORECASE),
    re.compile(r"failed to initialize kvm: [^\n.]*?(?=\s+qemu-system|[.\n]|$)", re.IGNORECASE),
    re.compile(r"System Management Mode not supported by this hypervisor", re.IGNORECASE),
    re.compile(r"failed to set MSR 0x[0-9a-f]+ to 0x[0-9a-f]+", re.IGNORECASE),
)
_MONITOR_NOISE = re.compile(r"^internal error: (qemu unexpectedly closed the monitor|process exited while connecting to monitor):\s*|warning: [^\]]*\]\s*")


def kvm_reason(message: str) -> str:
    """The useful part of QEMU's start error (it comes wrapped in monitor noise and warnings)."""
    for pattern in _KVM_FAILURES:
        found = pattern.search(message)
        if found:
            return found.group(0).strip()
    return one_line(_MONITOR_NOISE.sub("", message).rstrip(". "), limit=200)
