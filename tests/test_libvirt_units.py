"""Fast tests of the libvirt backend's pure parts (XML, host checks, KVM decision, stats) and of
the VM handler's logic on libvirt's built-in test driver (test:///default).

The test driver checks almost no hardware requirement: what runs on QEMU is tested in
test_libvirt_qemu.py.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.base import BackendUnavailable
from backends.handlers import ApplyError, Change
from backends.libvirt import LibvirtBackend, LibvirtVmHandler, make_libvirt_handlers, render_document
from backends.libvirt.connection import hint_for, is_local_uri
from backends.libvirt.domain_xml import DomainRequest, CpuChoice, domain_request, domain_xml, render_vm, volume_xml
from backends.libvirt.errors import HostRequirementError, KvmRefused, VmError, VmNotFound, VmSpecError
from backends.libvirt.host_checks import FirmwareFacts, HostFacts, Presence, TpmFacts, VolumeFacts, check_requirements
from backends.libvirt.kvm import KvmStatus, choose_hypervisor, kvm_reason, named_cpu_models, trial_xml
from backends.libvirt.live_xml import compare, parse_domain
from backends.libvirt.stats import DomainSample, StatsTracker
from rtm.documents import Document, load_file, load_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample-specs" / "vm-runtime.yaml"

BASE_SPEC: dict[str, Any] = {
    "name": "vm",
    "hypervisor": "kvm",
    "cpu": {"cores": 1, "model": "host-passthrough"},
    "memory": {"size": "128Mi", "balloon": True},
    "storage": {"type": "qcow2", "size": "64Mi", "cache": "writeback"},
    "network": {"type": "none"},
    "security": {"secure_boot": False, "tpm": False},
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def vm_doc(name: str, document_name: str | None = None, replicas: int | None = None, **changes: Any) -> Document:
    """A validated document holding one VirtualMachineRuntime (BASE_SPEC with `changes`)."""
    spec = _merge(BASE_SPEC, {"name": name, **changes})
    if changes.get("storage", "") is None:
        del spec["storage"]
    data: dict[str, Any] = {}
    if document_name is not None:
        data["name"] = document_name
    if replicas is not None:
        data["replicas"] = replicas
    data["VirtualMachineRuntime"] = spec
    result = load_text(yaml.safe_dump(data, sort_keys=False))
    assert result.ok, result.findings
    return result.documents[0]


def sample_document() -> Document:
    result = load_file(SAMPLE)
    assert result.ok, result.findings
    return result.documents[0]


def xml_of(document: Document, **kwargs: Any) -> ET.Element:
    spec = document.get("VirtualMachineRuntime")
    request, _notes = domain_request(spec.name, spec, **kwargs)
    return ET.fromstring(domain_xml(request))


# --- the XML builder: every field of the seed's spec -----------------------------------------


def test_sample_spec_renders_every_field_into_the_domain_xml() -> None:
    root = xml_of(sample_document())
    assert root.get("type") == "kvm"
    assert root.findtext("name") == "standard-vm"
    assert (root.find("memory").get("unit"), root.findtext("memory")) == ("KiB", str(4 * 1024 * 1024))
    assert root.findtext("currentMemory") == str(4 * 1024 * 1024)
    assert root.findtext("vcpu") == "2"
    topology = root.find("cpu/topology").attrib
    assert (topology["sockets"], topology["cores"], topology["threads"]) == ("1", "2", "1")
    assert root.find("cpu").get("mode") == "host-passthrough"
    balloon = root.find("devices/memballoon")
    assert balloon.get("model") == "virtio" and balloon.find("stats").get("period") == "10"
    disk = root.find("devices/disk")
    assert disk.get("type") == "volume"
    assert disk.find("driver").attrib == {"name": "qemu", "type": "qcow2", "cache": "writeback"}
    assert disk.find("source").attrib == {"pool": "default", "volume": "standard-vm.qcow2"}
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    interface = root.find("devices/interface")
    assert interface.get("type") == "bridge"
    assert interface.find("source").get("bridge") == "virbr0"
    assert interface.find("model").get("type") == "virtio"
    os_element = root.find("os")
    assert os_element.get("firmware") == "efi"
    assert "q35" in os_element.find("type").get("machine")
    features = {f.get("name"): f.get("enabled") for f in os_element.findall("firmware/feature")}
    assert features == {"secure-boot": "yes", "enrolled-keys": "yes"}
    assert os_element.find("loader").get("secure") == "yes"
    assert root.find("features/smm").get("state") == "on"
    tpm = root.find("devices/tpm")
    assert tpm.get("model") == "tpm-crb"
    assert tpm.find("backend").attrib == {"type": "emulator", "version": "2.0"}


def test_sample_volume_xml_is_a_sparse_qcow2_of_the_spec_size() -> None:
    rendered = render_vm("standard-vm", sample_document().get("VirtualMachineRuntime"))
    volume = ET.fromstring(rendered["volume_xml"])
    assert volume.findtext("name") == "standard-vm.qcow2"
    assert volume.find("capacity").get("unit") == "bytes"
    assert int(volume.findtext("capacity")) == 20 * 1024**3
    assert volume.findtext("allocation") == "0"
    assert volume.find("target/format").get("type") == "qcow2"
    assert rendered["volume"] == "default/standard-vm.qcow2"


def test_render_of_a_workload_with_replicas_gives_one_vm_each_with_its_own_volume() -> None:
    rendered = render_document(vm_doc("ignored", document_name="web", replicas=3))
    assert [r["name"] for r in rendered] == ["web", "web-1", "web-2"]
    assert [r["volume"] for r in rendered] == ["default/web.qcow2", "default/web-1.qcow2", "default/web-2.qcow2"]
    for r in rendered:
        assert 'workload="web"' in r["domain_xml"]


def test_bios_guest_without_secure_boot_has_no_firmware_smm_or_tpm() -> None:
    root = xml_of(vm_doc("bios"))
    assert root.find("os").get("firmware") is None
    assert root.find("os/loader") is None
    assert root.find("os/type").get("machine") == "pc"
    assert root.find("features/smm") is None
    assert root.find("devices/tpm") is None
    assert root.find("devices/interface") is None  # network type none


def test_tpm_without_secure_boot_still_gets_an_emulated_tpm2() -> None:
    root = xml_of(vm_doc("tpm-only", security={"tpm": True}))
    assert root.find("devices/tpm/backend").attrib == {"type": "emulator", "version": "2.0"}
    assert root.find("os/loader") is None


def test_current_memory_is_the_balloon_target_in_kib() -> None:
    root = xml_of(vm_doc("m", memory={"size": "1Gi", "current": "768Mi"}))
    assert root.findtext("memory") == "1048576"
    assert root.findtext("currentMemory") == "786432"


def test_current_memory_below_size_without_a_balloon_is_refused() -> None:
    with pytest.raises(VmSpecError, match="memory.current needs memory.balloon"):
        xml_of(vm_doc("m", memory={"size": "1Gi", "current": "768Mi", "balloon": False}))


def test_no_balloon_is_written_as_model_none_so_libvirt_adds_none() -> None:
    assert xml_of(vm_doc("m", memory={"balloon": False})).find("devices/memballoon").get("model") == "none"


def test_topology_sockets_cores_threads_matches_the_vcpu_count() -> None:
    root = xml_of(vm_doc("t", cpu={"sockets": 2, "cores": 3, "threads": 2}))
    topology = root.find("cpu/topology").attrib
    assert root.findtext("vcpu") == "12"
    assert int(topology["sockets"]) * int(topology["cores"]) * int(topology["threads"]) == 12


@pytest.mark.parametrize(
    ("model", "mode", "named"),
    [("host-passthrough", "host-passthrough", None), ("host-model", "host-model", None), ("Skylake-Client", "custom", "Skylake-Client")],
)
def test_cpu_model_becomes_a_mode_or_a_named_model(model: str, mode: str, named: str | None) -> None:
    cpu = xml_of(vm_doc("c", cpu={"model": model})).find("cpu")
    assert cpu.get("mode") == mode
    assert cpu.findtext("model") == named


def test_under_tcg_host_passthrough_becomes_maximum_and_says_so() -> None:
    spec = vm_doc("c").get("VirtualMachineRuntime")
    request, notes = domain_request("c", spec, domain_type="qemu")
    assert ET.fromstring(domain_xml(request)).find("cpu").get("mode") == "maximum"
    assert any("maximum" in note for note in notes)
    named, named_notes = domain_request("c", vm_doc("c", cpu={"model": "qemu64"}).get("VirtualMachineRuntime"), domain_type="qemu")
    assert named.cpu == CpuChoice("custom", "qemu64") and named_notes == ()


def test_raw_storage_with_cache_none_on_sata() -> None:
    document = vm_doc("r", storage={"type": "raw", "cache": "none", "bus": "sata"})
    disk = xml_of(document).find("devices/disk")
    assert disk.find("driver").attrib == {"name": "qemu", "type": "raw", "cache": "none"}
    assert disk.find("source").get("volume") == "r.img"
    assert disk.find("target").attrib == {"dev": "sda", "bus": "sata"}
    volume = ET.fromstring(volume_xml("r.img", document.get("VirtualMachineRuntime").storage))
    assert volume.find("target/format").get("type") == "raw"


def test_default_cache_leaves_the_cache_attribute_out() -> None:
    assert xml_of(vm_doc("d", storage={"cache": "default"})).find("devices/disk/driver").get("cache") is None


def test_scsi_bus_brings_a_virtio_scsi_controller() -> None:
    controller = xml_of(vm_doc("s", storage={"bus": "scsi"})).find("devices/controller")
    assert controller.attrib["type"] == "scsi" and controller.attrib["model"] == "virtio-scsi"


def test_ide_disk_with_secure_boot_is_refused_because_q35_has_no_ide() -> None:
    with pytest.raises(VmSpecError, match="ide"):
        xml_of(vm_doc("i", storage={"bus": "ide"}, security={"secure_boot": True}))


def test_libvirt_network_interface() -> None:
    interface = xml_of(vm_doc("n", network={"type": "network", "network": "lan"})).find("devices/interface")
    assert interface.get("type") == "network"
    assert interface.find("source").attrib == {"network": "lan"}


def test_no_storage_means_no_disk_and_no_volume() -> None:
    document = vm_doc("diskless", storage=None)
    assert xml_of(document).find("devices/disk") is None
    assert "volume_xml" not in render_vm("diskless", document.get("VirtualMachineRuntime"))


def test_explicit_secure_boot_loader_is_written_as_a_pflash_loader() -> None:
    spec = vm_doc("sb", security={"secure_boot": True}).get("VirtualMachineRuntime")
    request, _ = domain_request("sb", spec)
    request = DomainRequest(**{**request.__dict__, "secure_boot_loader": "/firmware/OVMF_CODE.secboot.fd"})
    loader = ET.fromstring(domain_xml(request)).find("os/loader")
    assert loader.text == "/firmware/OVMF_CODE.secboot.fd"
    assert loader.attrib == {"readonly": "yes", "secure": "yes", "type": "pflash"}


# --- reading XML back and comparing -------------------------------------------------------------


def test_rendered_xml_reads_back_as_the_spec() -> None:
    view = parse_domain(render_vm("standard-vm", sample_document().get("VirtualMachineRuntime"))["domain_xml"])
    assert view.spec_fields() == {
        "hypervisor": "kvm",
        "memory.size": "4194304 KiB",
        "memory.current": "4194304 KiB",
        "memory.balloon": True,
        "cpu.vcpus": 2,
        "cpu.topology": "1 x 2 x 1",
        "cpu.model": "host-passthrough",
        "storage": "default/standard-vm.qcow2 qcow2 virtio cache=writeback",
        "network": "bridge virbr0 virtio",
        "security.secure_boot": True,
        "security.tpm": True,
    }
    assert view.workload == "standard-vm"


def test_compare_names_each_changed_field_with_live_and_spec_values() -> None:
    before = parse_domain(render_vm("v", vm_doc("v").get("VirtualMachineRuntime"))["domain_xml"])
    after = parse_domain(render_vm("v", vm_doc("v", cpu={"cores": 2}, memory={"current": "96Mi"}).get("VirtualMachineRuntime"))["domain_xml"])
    assert dict((f, (a, b)) for f, a, b in compare(before, after)) == {
        "memory.current": ("131072 KiB", "98304 KiB"),
        "cpu.vcpus": (1, 2),
        "cpu.topology": ("1 x 1 x 1", "1 x 2 x 1"),
    }
    assert compare(before, before) == ()


def test_libvirt_resolved_firmware_still_reads_as_secure_boot() -> None:
    # What libvirt stores after picking the firmware: no firmware='efi', an explicit loader.
    stored = """<domain type='qemu'><name>x</name><memory unit='KiB'>131072</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
        <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader></os>
      <features><acpi/><smm state='on'/></features><devices/></domain>"""
    view = parse_domain(stored)
    assert view.secure_boot is True
    assert view.topology == "1 x 1 x 1" and view.cpu == "default"


# --- host requirements and the KVM decision (pure) ----------------------------------------------


PASSTHROUGH = CpuChoice("host-passthrough")


def trials_given(results: dict[str | None, KvmStatus], asked: list[str | None] | None = None):
    """A trial function answering from `results` by CPU label (None: no <cpu> element): the
    decision is pure, so the trials' outcomes are its input."""
    def trial(cpu: CpuChoice | None) -> KvmStatus:
        label = cpu.label if cpu is not None else None
        if asked is not None:
            asked.append(label)
        return results.get(label, KvmStatus(False, f"{label} refused", tried=True))
    return trial


def test_choose_hypervisor_falls_back_to_tcg_with_a_capability_result_saying_kvm_unusable() -> None:
    unusable = KvmStatus(False, "Could not access KVM kernel module: Permission denied", tried=True)
    choice = choose_hypervisor("kvm", lambda _cpu: unusable, cpu=PASSTHROUGH, strict=False, host="libvirt@h")
    assert choice.domain_type == "qemu" and choice.fallback and choice.cpu is None
    assert "TCG fallback" in choice.note and "Permission denied" in choice.note and "libvirt@h" in choice.note


def test_choose_hypervisor_strict_refuses_instead_of_falling_back() -> None:
    with pytest.raises(KvmRefused, match="strict") as caught:
        choose_hypervisor("kvm", lambda _cpu: KvmStatus(False, "no /dev/kvm"), cpu=PASSTHROUGH, strict=True, host="libvirt@h")
    assert "/dev/kvm" in caught.value.hint


def test_choose_hypervisor_keeps_kvm_when_usable_and_qemu_when_asked() -> None:
    kept = choose_hypervisor("kvm", lambda _cpu: KvmStatus(True), cpu=PASSTHROUGH, strict=True, host="h")
    assert kept.domain_type == "kvm" and kept.cpu == PASSTHROUGH and not kept.fallback and not kept.note
    asked = choose_hypervisor("qemu", lambda _cpu: KvmStatus(True), cpu=PASSTHROUGH, strict=True, host="h")
    assert asked.domain_type == "qemu" and not asked.fallback and "TCG" in asked.note


MSR_ABORT = ("internal error: qemu unexpectedly closed the monitor: qemu-system-x86_64: ../target/i386/kvm/kvm.c:3163: "
             "kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed. error: failed to set MSR 0x10a to 0x69")


def test_cpu_fallback_order_is_host_model_then_named_models_then_tcg() -> None:
    asked: list[str | None] = []
    aborted = KvmStatus(False, kvm_reason(MSR_ABORT), tried=True)
    results = {None: KvmStatus(True, tried=True), "host-passthrough": aborted, "host-model": aborted,
               "custom:EPYC": KvmStatus(True, tried=True)}
    choice = choose_hypervisor("kvm", trials_given(results, asked), cpu=PASSTHROUGH, strict=False, host="libvirt@h",
                               named_models=lambda: ("EPYC-Rome", "EPYC", "qemu64", "Opteron_G1"))
    assert asked == ["host-passthrough", None, "host-model", "custom:EPYC-Rome", "custom:EPYC"]
    assert (choice.domain_type, choice.cpu, choice.fallback) == ("kvm", CpuChoice("custom", "EPYC"), True)
    assert choice.note == ("CPU fallback on libvirt@h: cpu host-passthrough does not start under KVM here (host-passthrough: "
                           "failed to set MSR 0x10a to 0x69; host-model: failed to set MSR 0x10a to 0x69; custom:EPYC-Rome: "
                           "custom:EPYC-Rome refused); runs cpu custom:EPYC")


def test_cpu_fallback_ends_in_tcg_naming_every_cpu_tried_and_strict_refuses_any_of_it() -> None:
    results = {None: KvmStatus(True, tried=True)}
    named = lambda: ("a", "b", "c", "d")  # noqa: E731
    choice = choose_hypervisor("kvm", trials_given(results), cpu=CpuChoice("maximum"), strict=False, host="h", named_models=named)
    assert choice.domain_type == "qemu" and choice.fallback and choice.cpu is None
    assert choice.note.startswith("TCG fallback on h: KVM runs, but no CPU tried starts under it (maximum: maximum refused; ")
    assert "custom:c: custom:c refused)" in choice.note and "custom:d" not in choice.note  # at most three named trials
    with pytest.raises(KvmRefused, match="strict apply does not fall back to TCG"):
        choose_hypervisor("kvm", trials_given(results), cpu=PASSTHROUGH, strict=True, host="h", named_models=named)
    results["host-model"] = KvmStatus(True, tried=True)
    with pytest.raises(KvmRefused, match="strict apply does not fall back to cpu host-model") as caught:
        choose_hypervisor("kvm", trials_given(results), cpu=PASSTHROUGH, strict=True, host="h", named_models=named)
    assert "--strict" in caught.value.hint


def test_a_named_cpu_model_that_does_not_start_goes_to_tcg_and_kvm_failures_skip_the_cpu_trials() -> None:
    asked: list[str | None] = []
    named = CpuChoice("custom", "EPYC")
    choice = choose_hypervisor("kvm", trials_given({None: KvmStatus(True, tried=True)}, asked), cpu=named, strict=False,
                               host="h", named_models=lambda: ("qemu64",))
    assert asked == ["custom:EPYC", None] and choice.domain_type == "qemu" and "custom:EPYC: custom:EPYC refused" in choice.note
    asked.clear()
    choice = choose_hypervisor("kvm", trials_given({None: KvmStatus(True, tried=True), "custom:qemu64": KvmStatus(True, tried=True)}, asked),
                               cpu=CpuChoice("host-model"), strict=False, host="h", named_models=lambda: ("qemu64",))
    assert asked == ["host-model", None, "custom:qemu64"] and choice.cpu == CpuChoice("custom", "qemu64")  # host-model starts at step 2
    denied = KvmStatus(False, "Could not access KVM kernel module: Permission denied", tried=True)
    asked.clear()
    choice = choose_hypervisor("kvm", trials_given({None: denied, "host-passthrough": denied}, asked), cpu=PASSTHROUGH,
                               strict=False, host="h", named_models=lambda: ("qemu64",))
    assert asked == ["host-passthrough", None] and choice.note == "TCG fallback on h: KVM is not usable (Could not access KVM kernel module: Permission denied)"


def _shape(element: ET.Element) -> tuple:
    return element.tag, element.attrib, (element.text or "").strip(), [_shape(child) for child in element]


@pytest.mark.parametrize("model", ["host-passthrough", "host-model", "maximum", "EPYC"])
def test_the_kvm_trial_carries_the_guests_own_cpu_element(model: str) -> None:
    spec = vm_doc("vm", cpu={"model": model}).get("VirtualMachineRuntime")
    request, _notes = domain_request("vm", spec, domain_type="kvm")
    guest_cpu = ET.fromstring(domain_xml(request)).find("cpu")
    guest_cpu.remove(guest_cpu.find("topology"))
    trial = ET.fromstring(trial_xml("rtm-kvm-probe-x", request.cpu, smm=False))
    assert trial.get("type") == "kvm" and _shape(trial.find("cpu")) == _shape(guest_cpu)
    assert ET.fromstring(trial_xml("rtm-kvm-probe-x", None, smm=True)).find("cpu") is None  # the trial of KVM itself


def test_named_cpu_models_come_from_the_domain_capabilities_host_model_first_then_usable_ones() -> None:
    capabilities = """<domainCapabilities><cpu>
      <mode name='host-passthrough' supported='yes'/>
      <mode name='host-model' supported='yes'><model fallback='forbid'>EPYC-Rome</model><vendor>AMD</vendor></mode>
      <mode name='custom' supported='yes'>
        <model usable='yes' vendor='unknown'>qemu64</model><model usable='no' vendor='Intel'>Skylake-Client</model>
        <model usable='yes' vendor='AMD'>EPYC-Rome</model><model usable='yes' vendor='AMD'>EPYC</model>
      </mode></cpu></domainCapabilities>"""
    assert named_cpu_models(capabilities) == ("EPYC-Rome", "qemu64", "EPYC")


def test_kvm_reason_keeps_qemus_own_words_without_the_monitor_noise() -> None:
    wrapped = ("internal error: process exited while connecting to monitor: Could not access KVM kernel module: "
               "Permission denied qemu-system-x86_64: failed to initialize kvm: Permission denied")
    assert kvm_reason(wrapped) == "Could not access KVM kernel module: Permission denied"
    smm = ("internal error: qemu unexpectedly closed the monitor: warning: host doesn't support requested feature: "
           "CPUID.01H:ECX.pni [bit 0] System Management Mode not supported by this hypervisor.")
    assert kvm_reason(smm) == "System Management Mode not supported by this hypervisor"
    assert kvm_reason(MSR_ABORT) == "failed to set MSR 0x10a to 0x69"


def _spec(document: Document):
    return document.get("VirtualMachineRuntime")


def test_missing_secure_boot_firmware_is_a_clear_problem() -> None:
    spec = _spec(vm_doc("sb", security={"secure_boot": True}))
    problems = check_requirements("sb", spec, HostFacts("libvirt@h", firmware=FirmwareFacts(secure_boot=False)))
    assert [p.requirement for p in problems] == ["security.secure_boot"]
    assert "no UEFI firmware with secure boot" in problems[0].cause and "ovmf" in problems[0].hint
    explicit = FirmwareFacts(secure_boot=True, explicit="/nowhere/OVMF_CODE.secboot.fd", explicit_found=False)
    problems = check_requirements("sb", spec, HostFacts("libvirt@h", firmware=explicit))
    assert "/nowhere/OVMF_CODE.secboot.fd not found" in problems[0].cause


def test_missing_swtpm_is_a_clear_problem() -> None:
    spec = _spec(vm_doc("t", security={"tpm": True}))
    problems = check_requirements("t", spec, HostFacts("libvirt@h", tpm=TpmFacts(True, "/nowhere/swtpm", swtpm_found=False)))
    assert problems[0].requirement == "security.tpm"
    assert "/nowhere/swtpm is not installed" in problems[0].cause and "swtpm" in problems[0].hint
    problems = check_requirements("t", spec, HostFacts("libvirt@h", tpm=TpmFacts(False)))
    assert "no emulated TPM" in problems[0].cause


def test_network_pool_and_volume_problems() -> None:
    bridge = _spec(vm_doc("b", network={"type": "bridge", "bridge": "br9"}))
    assert "no bridge 'br9'" in check_requirements("b", bridge, HostFacts("h", network=Presence(False)))[0].cause
    assert "not a bridge" in check_requirements("b", bridge, HostFacts("h", network=Presence(True, detail="it is ethernet")))[0].cause
    network = _spec(vm_doc("n", network={"type": "network", "network": "lan"}))
    assert "not active" in check_requirements("n", network, HostFacts("h", network=Presence(True, active=False)))[0].cause
    pool = _spec(vm_doc("p"))
    assert "no storage pool 'default'" in check_requirements("p", pool, HostFacts("h", pool=Presence(False)))[0].cause
    wrong_format = HostFacts("h", pool=Presence(True), volume=VolumeFacts("raw", 1 << 26))
    assert "exists as raw" in check_requirements("p", pool, wrong_format)[0].cause
    fine = HostFacts("h", pool=Presence(True), volume=VolumeFacts("qcow2", 1 << 26), network=Presence(True))
    assert check_requirements("p", pool, fine) == ()


def test_unreachable_hints_depend_on_the_uri_and_cause() -> None:
    assert "libvirtd" in hint_for("qemu:///system", "Failed to connect socket: No such file or directory")
    assert "virsh -c qemu+ssh://box/system" in hint_for("qemu+ssh://box/system", "Cannot recv data")
    assert "root" in hint_for("qemu:///system", "Permission denied")
    assert is_local_uri("qemu:///system") and not is_local_uri("qemu+ssh://box/system")


# --- stats ---------------------------------------------------------------------------------------


def _sample(cpu_ns: int, rd: int, wr: int, rx: int, tx: int, domain_id: int = 3, state: int = 1) -> DomainSample:
    return DomainSample("vm", "u-1", domain_id, {
        "state.state": state, "cpu.time": cpu_ns, "balloon.current": 98304, "balloon.maximum": 131072,
        "vcpu.current": 2, "vcpu.maximum": 2,
        "block.count": 2, "block.0.rd.bytes": rd, "block.0.wr.bytes": wr, "block.1.rd.bytes": 100, "block.1.wr.bytes": 0,
        "net.count": 1, "net.0.rx.bytes": rx, "net.0.tx.bytes": tx,
    })


def test_stats_cpu_ratio_and_rates_come_from_deltas_between_two_samples() -> None:
    tracker = StatsTracker("libvirt@h", lambda _sample: 1_700_000_000.0)
    (first,) = tracker.update([_sample(1_000_000_000, 0, 0, 0, 0)], now=10.0)
    assert first.cpu_ratio is None and first.block_read_rate is None
    assert first.memory_current_bytes == 98304 * 1024 and first.memory_max_bytes == 131072 * 1024
    assert first.vcpus == 2 and first.block_read_bytes == 100 and first.started_at == 1_700_000_000.0
    (second,) = tracker.update([_sample(1_500_000_000, 4096, 2048, 1000, 500)], now=12.0)
    assert second.cpu_ratio == pytest.approx(0.25)  # 0.5 s of CPU in 2 s
    assert second.block_read_rate == pytest.approx(2048) and second.block_write_rate == pytest.approx(1024)
    assert second.net_rx_rate == pytest.approx(500) and second.net_tx_rate == pytest.approx(250)
    assert second.cpu_time_seconds == pytest.approx(1.5) and second.state == "running"


def test_stats_restart_of_a_domain_starts_its_rates_afresh() -> None:
    tracker = StatsTracker("h")
    tracker.update([_sample(9_000_000_000, 0, 0, 0, 0, domain_id=3)], now=1.0)
    (restarted,) = tracker.update([_sample(100_000_000, 0, 0, 0, 0, domain_id=4)], now=2.0)
    assert restarted.cpu_ratio is None
    (off,) = tracker.update([_sample(0, 0, 0, 0, 0, domain_id=-1, state=5)], now=3.0)
    assert off.state == "shut off" and off.cpu_ratio is None and off.started_at is None


# --- the handler on libvirt's test driver -----------------------------------------------------------


@pytest.fixture()
def needs_libvirt_python() -> None:
    from backends.libvirt.connection import libvirt_installed
    from fixtures import require_service

    if not libvirt_installed():
        require_service("libvirt-python", "not installed")


@pytest.fixture()
def sandbox_handler(run_id: str, needs_libvirt_python: None):
    handler = make_libvirt_handlers([], sandbox=True)["vm"]
    yield handler
    for backend in handler.backends:
        backend.close()


def test_sandbox_backend_is_labelled_and_polls(sandbox_handler: LibvirtVmHandler) -> None:
    backend = sandbox_handler.backends[0]
    snapshot = backend.poll()
    assert snapshot.kind == "vms" and snapshot.backend == "libvirt@sandbox"
    assert any(vm.name == "test" for vm in snapshot.items)  # the driver's own example domain
    availability = backend.availability()
    assert availability.connected and availability.sandbox
    assert "[sandbox]" in availability.describe() and "test:///default" in availability.describe()


def test_sandbox_plan_apply_reapply_update_and_delete(sandbox_handler: LibvirtVmHandler, run_id: str) -> None:
    name = f"rtmtest-{run_id}-plan"
    document = vm_doc(name, memory={"size": "256Mi"}, network={"type": "bridge", "bridge": "virbr0"})
    (create,) = sandbox_handler.plan(document, Path("."))
    assert create.action == "create" and create.resource == f"vm/{name}"
    lines = sandbox_handler.apply(document, Path("."), [create], lambda _line: None)
    assert any("created" in line for line in lines) and lines[-1] == f"vm/{name}: started"
    try:
        (again,) = sandbox_handler.plan(document, Path("."))
        assert again.action == "unchanged"
        changed = vm_doc(name, memory={"size": "256Mi", "current": "192Mi"}, cpu={"model": "host-model"},
                         network={"type": "bridge", "bridge": "virbr0"})
        (update,) = sandbox_handler.plan(changed, Path("."))
        assert update.action == "update"
        assert {field for field, _live, _spec in update.diff} == {"memory.current", "cpu.model"}
        assert "memory.current changes live" in update.note and "cpu.model needs a restart" in update.note
        sandbox_handler.apply(changed, Path("."), [update], lambda _line: None)
        assert sandbox_handler.plan(changed, Path("."))[0].action == "unchanged"
        described = sandbox_handler.describe(name)
        assert described["host"] == "libvirt@sandbox"
        assert described["spec"]["cpu.model"] == "host-passthrough"  # runs on until a restart
        assert described["pending_restart"] == ["cpu.model"]
    finally:
        lines = sandbox_handler.delete(name, with_disk=True)
    assert f"vm/{name}: undefined on libvirt@sandbox" in lines
    assert f"volume default/{name}.qcow2: deleted" in lines
    with pytest.raises(VmNotFound):
        sandbox_handler.delete(name)


def test_sandbox_missing_pool_is_found_before_anything_is_created(sandbox_handler: LibvirtVmHandler, run_id: str) -> None:
    name = f"rtmtest-{run_id}-nopool"
    document = vm_doc(name, storage={"pool": "no-such-pool"})
    with pytest.raises(HostRequirementError, match="no storage pool 'no-such-pool'"):
        sandbox_handler.plan(document, Path("."))
    with pytest.raises(ApplyError) as caught:
        sandbox_handler.apply(document, Path("."), [Change("create", f"vm/{name}")], lambda _line: None)
    assert caught.value.done == [] and "no-such-pool" in caught.value.cause
    assert all(vm.name != name for vm in sandbox_handler.list())


def test_sandbox_workload_replicas_scale_up_and_down_and_delete_by_workload(sandbox_handler: LibvirtVmHandler, run_id: str) -> None:
    workload = f"rtmtest-{run_id}-web".lower()
    three = vm_doc("ignored", document_name=workload, replicas=3, storage=None)
    try:
        changes = sandbox_handler.plan(three, Path("."))
        assert [(c.action, c.resource) for c in changes] == [("create", f"vm/{workload}"), ("create", f"vm/{workload}-1"), ("create", f"vm/{workload}-2")]
        sandbox_handler.apply(three, Path("."), changes, lambda _line: None)
        one = vm_doc("ignored", document_name=workload, replicas=1, storage=None)
        changes = sandbox_handler.plan(one, Path("."))
        assert sorted((c.action, c.resource) for c in changes) == [
            ("delete", f"vm/{workload}-1"), ("delete", f"vm/{workload}-2"), ("unchanged", f"vm/{workload}")]
        sandbox_handler.apply(one, Path("."), changes, lambda _line: None)
        assert {vm.name for vm in sandbox_handler.list()} & {workload, f"{workload}-1", f"{workload}-2"} == {workload}
    finally:
        lines = sandbox_handler.delete(workload)
    assert lines[-1] == f"vm/{workload}: undefined on libvirt@sandbox"


def test_sandbox_host_is_a_scheduler_node_carrying_libvirt(sandbox_handler: LibvirtVmHandler) -> None:
    node = sandbox_handler.backends[0].sched_node()
    assert node.runtimes == frozenset({"libvirt"})
    assert node.cpu_millis > 0 and node.id == "libvirt@sandbox"


def test_unknown_uri_is_unreachable_with_uri_cause_and_hint(needs_libvirt_python: None) -> None:
    backend = LibvirtBackend("qemu:///system?socket=/nonexistent/libvirt-sock")
    with pytest.raises(BackendUnavailable) as caught:
        backend.poll()
    availability = caught.value.availability
    assert availability.state == "unreachable" and availability.backend == "libvirt"
    assert availability.endpoint == "qemu:///system?socket=/nonexistent/libvirt-sock"
    assert "/nonexistent/libvirt-sock" in availability.cause
    assert "libvirtd" in availability.hint
    assert backend.availability().state == "unreachable"


def test_backend_fits_the_backend_protocol_and_importing_it_loads_no_libvirt() -> None:
    import subprocess
    import sys

    from backends.base import Backend

    backend = LibvirtBackend("test:///default", name="t")
    assert isinstance(backend, Backend) and backend.kind == "vms" and backend.name == "libvirt@t"
    assert backend.availability().state == "pending"
    code = "import sys, backends.libvirt; print('libvirt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shutdown_works_on_a_driver_without_the_acpi_flag() -> None:
    """libvirt's test driver refuses VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN; the plain shutdown is used."""
    from backends.libvirt import LibvirtBackend

    backend = LibvirtBackend("test:///default", name="libvirt@sandbox-shutdown", sandbox=True)
    try:
        line = backend.shutdown("test", timeout=2)
        assert "shut" in line
        assert backend.start("test")
    finally:
        backend.close()


def test_a_cordoned_machine_takes_no_new_vm_among_several_hosts_nor_as_the_default_host(needs_libvirt_python: None, run_id: str) -> None:
    import socket

    cordons: set[str] = {socket.gethostname()}  # the machine the test driver reports
    hosts = [LibvirtBackend("test:///default", name=name, sandbox=True, cordoned=cordons.__contains__) for name in ("a", "b")]
    document = vm_doc(f"rtmtest-{run_id}-cordoned", network={"type": "bridge", "bridge": "virbr0"})
    try:
        for handler in (LibvirtVmHandler(hosts), LibvirtVmHandler(hosts, default_host="a")):
            with pytest.raises(VmError) as refused:
                handler.plan(document, Path("."))
            count = len(handler.backends) if handler.default_host is None else 1
            assert f"0/{count} nodes are available: {count} node(s) were unschedulable." in refused.value.message
            assert "uncordon its machine" in refused.value.hint
        cordons.clear()
        (create,) = LibvirtVmHandler(hosts, default_host="b").plan(document, Path("."))
        assert create.action == "create" and create.note.startswith("on libvirt@b ")
    finally:
        for host in hosts:
            host.close()
