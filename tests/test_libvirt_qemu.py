"""The libvirt backend against the real libvirtd + QEMU of the test setup.

Small BIOS guests (128 MiB, a blank 64 MiB disk, nothing to boot) for the bulk of the tests;
the UEFI guest with secure boot and TPM keeps a core busy, so it is deleted as soon as it has
been checked. Every domain, volume and network is named rtmtest-<run id>-... and removed at
the end of the module, whatever happened.
"""

from __future__ import annotations

import re
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from backends.handlers import ApplyError, Change
from backends.libvirt import HostOptions, KvmStatus, LibvirtBackend, LibvirtVmHandler, VmError, VmStateError
from backends.libvirt.domain_xml import CpuChoice
from backends.libvirt.errors import HostRequirementError, KvmRefused
from backends.libvirt.kvm import probe_kvm
from rtm.documents import Document, load_text
from test_libvirt_units import SAMPLE, vm_doc

pytestmark = pytest.mark.libvirt
HERE = Path(".")
SHUTDOWN_TIMEOUT = 1.0  # the guests have no OS: ACPI is never answered, so keep the wait short


def _libvirt():
    import libvirt

    return libvirt


@pytest.fixture(scope="module")
def conn(libvirt_uri: str, run_id: str) -> Iterator[Any]:
    """A raw connection for checking what the backend did, and for the final clean-up."""
    libvirt = _libvirt()
    connection = libvirt.open(libvirt_uri)
    yield connection
    prefix = f"rtmtest-{run_id}"
    for domain in connection.listAllDomains(0):
        if domain.name().startswith(prefix):
            if domain.isActive():
                domain.destroy()
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_TPM)
    for pool in connection.listAllStoragePools(0):
        if pool.isActive():
            for volume in pool.listAllVolumes(0):
                if volume.name().startswith(prefix):
                    volume.delete(0)
    connection.close()


@pytest.fixture(scope="module")
def bridge(conn: Any, run_id: str) -> Iterator[str]:
    """A Linux bridge of this run's own, made by a transient isolated libvirt network (no
    addresses, no dnsmasq); its network name is `network_name(run_id)`."""
    name = f"rtmv{uuid.uuid4().hex[:6]}"
    network = conn.networkCreateXML(f"<network><name>{network_name(run_id)}</name><bridge name='{name}' stp='off'/></network>")
    yield name
    network.destroy()


def network_name(run_id: str) -> str:
    return f"rtmtest-{run_id}-net"


@pytest.fixture(scope="module")
def backend(libvirt_uri: str, conn: Any) -> Iterator[LibvirtBackend]:
    backend = LibvirtBackend(libvirt_uri, shutdown_timeout=SHUTDOWN_TIMEOUT)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def handler(backend: LibvirtBackend) -> LibvirtVmHandler:
    return LibvirtVmHandler([backend])


def apply(handler: LibvirtVmHandler, document: Document) -> list[str]:
    changes = handler.plan(document, HERE)
    return handler.apply(document, HERE, changes, lambda _line: None)


def live_xml(conn: Any, name: str, inactive: bool = False) -> ET.Element:
    flags = _libvirt().VIR_DOMAIN_XML_INACTIVE if inactive else 0
    return ET.fromstring(conn.lookupByName(name).XMLDesc(flags))


def state(conn: Any, name: str) -> int:
    return conn.lookupByName(name).state()[0]


def volume_facts(conn: Any, pool: str, name: str) -> tuple[str, int]:
    volume = conn.storagePoolLookupByName(pool).storageVolLookupByName(name)
    return ET.fromstring(volume.XMLDesc(0)).find("target/format").get("type"), volume.info()[1]


def has_domain(conn: Any, name: str) -> bool:
    return name in [d.name() for d in conn.listAllDomains(0)]


def has_volume(conn: Any, name: str) -> bool:
    pool = conn.storagePoolLookupByName("default")
    pool.refresh(0)
    return name in pool.listVolumes()


def sample_for_test(name: str, bridge: str) -> Document:
    """The seed's sample spec with test sizes, this run's name and bridge; all else as written."""
    text = SAMPLE.read_text()
    for old, new in (('name: "standard-vm"', f'name: "{name}"'), ('size: "4Gi"', 'size: "128Mi"'),
                     ('size: "20Gi"', 'size: "64Mi"'), ('bridge: "virbr0"', f'bridge: "{bridge}"')):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    result = load_text(text)
    assert result.ok, result.findings
    return result.documents[0]


# --- apply: the sample spec and its variants -------------------------------------------------------


def test_sample_spec_with_secure_boot_and_tpm_runs_and_matches_the_spec(handler, backend, conn, bridge, run_id) -> None:
    name = f"rtmtest-{run_id}-sample"
    document = sample_for_test(name, bridge)
    # What this host runs, from trials of what the guest uses (secure boot needs SMM, which
    # nested KVM may lack; some hosts start KVM but not every CPU mode).
    expected = handler.hypervisor_for(document.get("VirtualMachineRuntime"), backend)
    try:
        lines = apply(handler, document)
        assert state(conn, name) == 1  # running
        root = live_xml(conn, name)
        assert root.get("type") == expected.domain_type
        if expected.fallback:
            assert f"vm/{name}: {expected.note}" in lines
        assert (root.find("memory").get("unit"), root.findtext("memory")) == ("KiB", "131072")
        assert live_xml(conn, name, inactive=True).findtext("currentMemory") == "131072"
        assert root.findtext("vcpu") == "2"
        topology = root.find("cpu/topology").attrib
        assert (topology["sockets"], topology["cores"], topology["threads"]) == ("1", "2", "1")
        assert cpu_label(root) == (expected.cpu.label if expected.cpu is not None else "maximum")
        balloon = root.find("devices/memballoon")
        assert balloon.get("model") == "virtio" and balloon.find("stats").get("period") == "10"
        disk = root.find("devices/disk[@device='disk']")
        assert disk.find("driver").get("type") == "qcow2" and disk.find("driver").get("cache") == "writeback"
        assert disk.find("source").get("pool") == "default" and disk.find("source").get("volume") == f"{name}.qcow2"
        assert disk.find("target").get("bus") == "virtio"
        interface = root.find("devices/interface")
        assert interface.get("type") == "bridge" and interface.find("source").get("bridge") == bridge
        assert interface.find("model").get("type") == "virtio"
        assert "q35" in root.find("os/type").get("machine")
        loader = root.find("os/loader")
        assert loader.get("secure") == "yes" and loader.get("type") == "pflash"
        assert Path(loader.text).is_file() and root.find("os/nvram") is not None
        assert root.find("features/smm").get("state") == "on"
        tpm = root.find("devices/tpm")
        assert tpm.get("model") == "tpm-crb"
        assert tpm.find("backend").get("type") == "emulator" and tpm.find("backend").get("version") == "2.0"
        assert volume_facts(conn, "default", f"{name}.qcow2") == ("qcow2", 64 * 1024 * 1024)
        # Applying the same spec again changes nothing.
        assert [c.action for c in handler.plan(document, HERE)] == ["unchanged"]
    finally:
        handler.delete(name, with_disk=True)  # a UEFI guest keeps a core busy
    assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")


def test_bios_variant_on_a_libvirt_network_with_a_raw_disk(handler, conn, bridge, run_id) -> None:
    name = f"rtmtest-{run_id}-bios"
    document = vm_doc(name, hypervisor="qemu", cpu={"sockets": 2, "cores": 1, "model": "qemu64"},
                      storage={"type": "raw", "cache": "none", "bus": "sata"},
                      network={"type": "network", "network": network_name(run_id)})
    try:
        apply(handler, document)
        assert state(conn, name) == 1
        root = live_xml(conn, name)
        assert root.get("type") == "qemu"
        assert root.find("os/loader") is None and root.find("devices/tpm") is None
        assert root.find("features/smm") is None and "i440fx" in root.find("os/type").get("machine")
        assert root.find("cpu").get("mode") == "custom" and root.findtext("cpu/model") == "qemu64"
        assert root.find("cpu/topology").get("sockets") == "2" and root.findtext("vcpu") == "2"
        disk = root.find("devices/disk[@device='disk']")
        assert (disk.find("driver").get("type"), disk.find("driver").get("cache")) == ("raw", "none")
        assert disk.find("target").get("bus") == "sata"
        interface = root.find("devices/interface")
        assert interface.get("type") == "network" and interface.find("source").get("network") == network_name(run_id)
        assert interface.find("source").get("bridge") == bridge  # libvirt resolved the network's bridge
        assert volume_facts(conn, "default", f"{name}.img") == ("raw", 64 * 1024 * 1024)
    finally:
        handler.delete(name, with_disk=True)


def cpu_label(root: ET.Element) -> str:
    cpu = root.find("cpu")
    return f"custom:{cpu.findtext('model')}" if cpu.get("mode") == "custom" else cpu.get("mode")


def test_bios_guest_runs_under_kvm_with_the_cpu_its_trial_started(handler, backend, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-kvm"
    document = vm_doc(name)
    expected = handler.hypervisor_for(document.get("VirtualMachineRuntime"), backend)
    if expected.domain_type != "kvm":
        pytest.skip(f"KVM does not run here ({expected.note}); the fallback tests cover it")
    try:
        lines = apply(handler, document)
        assert state(conn, name) == 1
        root = live_xml(conn, name)
        assert root.get("type") == "kvm" and cpu_label(root) == expected.cpu.label
        assert not any("TCG" in line for line in lines)
        if expected.fallback:  # a host where host-passthrough does not run under KVM: said, and why
            assert expected.note.startswith("CPU fallback") and f"vm/{name}: {expected.note}" in lines
            assert handler.describe(name)["fallback"] == expected.note
        else:
            assert cpu_label(root) == "host-passthrough" and handler.describe(name)["fallback"] is None
    finally:
        handler.delete(name, with_disk=True)


def test_hypervisor_qemu_runs_under_tcg_with_cpu_mode_maximum_and_says_so(handler, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-tcg"
    document = vm_doc(name, hypervisor="qemu", storage=None)
    (create,) = handler.plan(document, HERE)
    assert "TCG" in create.note and "maximum" in create.note
    try:
        lines = handler.apply(document, HERE, [create], lambda _line: None)
        assert any("TCG" in line for line in lines) and any("cpu mode 'maximum'" in line for line in lines)
        root = live_xml(conn, name)
        assert root.get("type") == "qemu" and root.find("cpu").get("mode") == "maximum"
        assert state(conn, name) == 1
    finally:
        handler.delete(name)


def _kvm_unusable_stub_probe(_conn: Any, _read_only: bool, _smm: bool, _cpu: CpuChoice | None) -> KvmStatus:
    return KvmStatus(False, "Could not access KVM kernel module: Permission denied", tried=True)


def test_apply_falls_back_to_tcg_when_a_stub_probe_reports_kvm_unusable(libvirt_uri, conn, run_id) -> None:
    backend = LibvirtBackend(libvirt_uri, kvm_probe=_kvm_unusable_stub_probe)
    handler = LibvirtVmHandler([backend])
    name = f"rtmtest-{run_id}-fallback"
    document = vm_doc(name, storage=None)
    try:
        (create,) = handler.plan(document, HERE)
        assert "TCG fallback" in create.note and "Permission denied" in create.note
        shown: list[str] = []
        lines = handler.apply(document, HERE, [create], shown.append)
        assert lines[0].startswith(f"vm/{name}: TCG fallback") and shown == lines
        root = live_xml(conn, name)
        assert root.get("type") == "qemu" and root.find("cpu").get("mode") == "maximum"
        assert state(conn, name) == 1
        fallback = handler.describe(name)["fallback"]
        assert fallback.startswith(f"TCG fallback on {backend.name}") and "Permission denied" in fallback
    finally:
        handler.delete(name)
        backend.close()


def test_strict_apply_refuses_instead_of_falling_back_and_creates_nothing(libvirt_uri, conn, run_id) -> None:
    backend = LibvirtBackend(libvirt_uri, kvm_probe=_kvm_unusable_stub_probe)
    handler = LibvirtVmHandler([backend], strict=True)
    name = f"rtmtest-{run_id}-strict"
    document = vm_doc(name)
    with pytest.raises(VmError, match="strict apply does not fall back"):
        handler.plan(document, HERE)
    with pytest.raises(ApplyError) as caught:
        handler.apply(document, HERE, [Change("create", f"vm/{name}")], lambda _line: None)
    assert caught.value.done == [] and "KVM is not usable" in caught.value.cause
    assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")
    backend.close()


# --- a host where KVM runs but not every CPU mode does (simulated with real trials) -------------------
#
# On some hosts KVM starts a domain without <cpu> but QEMU aborts with host-passthrough and
# maximum ("failed to set MSR 0x10a"). Here every mode runs, so the simulated host makes the
# trials of the CPUs it "cannot run" ask libvirt for a CPU feature this machine lacks: those
# trials really start a domain and really fail in libvirtd, and everything else is real.


def missing_cpu_feature() -> str:
    """A CPU feature the host's processor does not have (a guest requiring it cannot start)."""
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE).group(1).split())
    return next(feature for feature in ("svm", "vmx", "avx512f", "amx_tile", "sse4a") if feature not in flags)


def partial_kvm_backend(uri: str, cannot_run: Any) -> LibvirtBackend:
    """A backend whose KVM trials of the CPUs `cannot_run(cpu)` picks require a missing feature."""
    feature = missing_cpu_feature()

    def probe(conn: Any, read_only: bool, smm: bool, cpu: CpuChoice | None) -> KvmStatus:
        if cpu is not None and cannot_run(cpu):
            cpu = replace(cpu, require=(feature,))
        return probe_kvm(conn, read_only=read_only, smm=smm, cpu=cpu)

    return LibvirtBackend(uri, kvm_probe=probe, shutdown_timeout=SHUTDOWN_TIMEOUT)


def test_simulated_host_without_host_passthrough_runs_host_model_under_kvm_and_says_why(libvirt_uri, conn, run_id) -> None:
    backend = partial_kvm_backend(libvirt_uri, lambda cpu: cpu.mode in ("host-passthrough", "maximum"))
    handler = LibvirtVmHandler([backend])
    name = f"rtmtest-{run_id}-cpufb"
    document = vm_doc(name, storage=None)
    try:
        (create,) = handler.plan(document, HERE)
        assert f"on {backend.name} (kvm)" in create.note
        assert f"CPU fallback on {backend.name}: cpu host-passthrough does not start under KVM here (host-passthrough: " in create.note
        assert "missing features" in create.note and create.note.endswith("runs cpu host-model")
        lines = handler.apply(document, HERE, [create], lambda _line: None)
        assert lines[0].startswith(f"vm/{name}: CPU fallback") and f"vm/{name}: defined on {backend.name} (type kvm, cpu host-model)" in lines
        root = live_xml(conn, name)
        assert root.get("type") == "kvm" and state(conn, name) == 1
        assert live_xml(conn, name, inactive=True).find("cpu").get("mode") == "host-model"
        assert handler.describe(name)["fallback"] == lines[0].split(": ", 1)[1]
        assert [c.action for c in handler.plan(document, HERE)] == ["unchanged"]
    finally:
        handler.delete(name)
        backend.close()


def test_simulated_host_where_only_a_named_model_runs_uses_the_first_that_starts(libvirt_uri, conn, run_id) -> None:
    backend = partial_kvm_backend(libvirt_uri, lambda cpu: cpu.mode != "custom")
    handler = LibvirtVmHandler([backend])
    name = f"rtmtest-{run_id}-cpunamed"
    document = vm_doc(name, storage=None)
    models = backend.kvm_cpu_models()
    assert models, "libvirt lists no CPU model for kvm guests"
    try:
        lines = apply(handler, document)
        root = live_xml(conn, name)
        assert root.get("type") == "kvm" and root.find("cpu").get("mode") == "custom" and state(conn, name) == 1
        model = root.findtext("cpu/model")
        assert model in models[:3]
        note = lines[0]
        assert "host-passthrough: " in note and "host-model: " in note and note.endswith(f"runs cpu custom:{model}")
    finally:
        handler.delete(name)
        backend.close()


def test_simulated_host_where_no_cpu_runs_under_kvm_falls_back_to_tcg_and_strict_refuses(libvirt_uri, conn, run_id) -> None:
    backend = partial_kvm_backend(libvirt_uri, lambda cpu: True)
    name = f"rtmtest-{run_id}-cputcg"
    document = vm_doc(name, storage=None)
    strict = LibvirtVmHandler([backend], strict=True)
    with pytest.raises(ApplyError) as caught:
        strict.apply(document, HERE, [Change("create", f"vm/{name}")], lambda _line: None)
    assert "strict apply does not fall back to TCG" in caught.value.cause and caught.value.done == []
    assert "KVM runs, but no CPU tried starts under it" in caught.value.cause and not has_domain(conn, name)
    handler = LibvirtVmHandler([backend])
    try:
        (create,) = handler.plan(document, HERE)
        assert f"TCG fallback on {backend.name}: KVM runs, but no CPU tried starts under it (host-passthrough: " in create.note
        handler.apply(document, HERE, [create], lambda _line: None)
        root = live_xml(conn, name)
        assert root.get("type") == "qemu" and root.find("cpu").get("mode") == "maximum" and state(conn, name) == 1
    finally:
        handler.delete(name)
        backend.close()


def test_kvm_trials_are_remembered_per_cpu_for_five_minutes(libvirt_uri) -> None:
    tried: list[str | None] = []
    now = [1000.0]

    def counting_probe(conn: Any, read_only: bool, smm: bool, cpu: CpuChoice | None) -> KvmStatus:
        tried.append(cpu.label if cpu is not None else None)
        return probe_kvm(conn, read_only=read_only, smm=smm, cpu=cpu)

    backend = LibvirtBackend(libvirt_uri, kvm_probe=counting_probe, clock=lambda: now[0])
    try:
        passthrough, model = CpuChoice("host-passthrough"), CpuChoice("host-model")
        first = backend.kvm_status(cpu=passthrough)
        assert first.tried and backend.kvm_status(cpu=passthrough) is first
        backend.kvm_status(cpu=model)
        assert tried == ["host-passthrough", "host-model"]
        now[0] += 299
        backend.kvm_status(cpu=passthrough)
        assert len(tried) == 2
        now[0] += 2  # past five minutes since the first trial
        backend.kvm_status(cpu=passthrough)
        assert tried == ["host-passthrough", "host-model", "host-passthrough"]
    finally:
        backend.close()


def test_simulated_strict_apply_refuses_a_cpu_fallback_and_creates_nothing(libvirt_uri, conn, run_id) -> None:
    backend = partial_kvm_backend(libvirt_uri, lambda cpu: cpu.mode == "host-passthrough")
    handler = LibvirtVmHandler([backend], strict=True)
    name = f"rtmtest-{run_id}-cpustrict"
    try:
        with pytest.raises(KvmRefused, match="strict apply does not fall back to cpu host-model"):
            handler.plan(vm_doc(name), HERE)
        with pytest.raises(ApplyError) as caught:
            handler.apply(vm_doc(name), HERE, [Change("create", f"vm/{name}")], lambda _line: None)
        assert caught.value.done == [] and "missing features" in caught.value.cause and "--strict" in caught.value.hint
        assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")
    finally:
        backend.close()


# --- requirements the host cannot meet --------------------------------------------------------------


def test_missing_secure_boot_firmware_is_a_clear_error_before_anything_is_created(backend, conn, bridge, run_id) -> None:
    handler = LibvirtVmHandler([backend], options=HostOptions(secure_boot_loader="/nonexistent/OVMF_CODE_4M.secboot.fd"))
    name = f"rtmtest-{run_id}-nofw"
    document = sample_for_test(name, bridge)
    with pytest.raises(HostRequirementError) as caught:
        handler.plan(document, HERE)
    assert "security.secure_boot: UEFI secure-boot firmware /nonexistent/OVMF_CODE_4M.secboot.fd not found" in str(caught.value)
    with pytest.raises(ApplyError) as applied:
        handler.apply(document, HERE, [Change("create", f"vm/{name}")], lambda _line: None)
    assert applied.value.done == [] and "ovmf" in applied.value.hint.lower() + applied.value.cause.lower()
    assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")


def test_missing_swtpm_is_a_clear_error_before_anything_is_created(backend, conn, run_id) -> None:
    handler = LibvirtVmHandler([backend], options=HostOptions(swtpm_binary="/nonexistent/swtpm"))
    name = f"rtmtest-{run_id}-notpm"
    document = vm_doc(name, security={"tpm": True})
    with pytest.raises(ApplyError) as caught:
        handler.apply(document, HERE, [Change("create", f"vm/{name}")], lambda _line: None)
    assert "security.tpm: the TPM emulator /nonexistent/swtpm is not installed" in caught.value.cause
    assert "swtpm" in caught.value.cause and caught.value.done == []
    assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")


def test_missing_bridge_is_a_clear_error(handler, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-nobr"
    with pytest.raises(HostRequirementError, match=r"network.bridge: no bridge 'rtmnobr0'"):
        handler.plan(vm_doc(name, network={"type": "bridge", "bridge": "rtmnobr0"}), HERE)
    assert not has_domain(conn, name)


def test_a_failed_start_removes_the_volume_and_definition_it_created(handler, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-fail"
    # Passes validation, but QEMU knows no such CPU model: the failure comes after the volume.
    document = vm_doc(name, hypervisor="qemu", cpu={"model": "NoSuchCpuModel"})
    with pytest.raises(ApplyError) as caught:
        apply(handler, document)
    error = caught.value
    assert error.failed.startswith(f"define vm/{name}") or error.failed.startswith(f"start vm/{name}")
    assert f"volume default/{name}.qcow2: created (67108864 bytes, qcow2)" in error.done
    assert f"volume default/{name}.qcow2: removed again" in error.done
    assert not has_domain(conn, name) and not has_volume(conn, f"{name}.qcow2")


# --- operating a VM ----------------------------------------------------------------------------------


def record(backend: LibvirtBackend, name: str):
    return next(vm for vm in backend.poll().items if vm.name == name)


def test_lifecycle_suspend_resume_shutdown_start_reset_force_off(handler, backend, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-life"
    apply(handler, vm_doc(name))
    try:
        assert backend.suspend(name) == f"vm/{name}: paused"
        assert record(backend, name).state == "paused"
        assert backend.resume(name) == f"vm/{name}: resumed"
        assert record(backend, name).state == "running"
        # No OS answers the ACPI button: after the timeout the VM is forced off, and says so.
        line = backend.shutdown(name, timeout=SHUTDOWN_TIMEOUT)
        assert line == f"vm/{name}: did not answer ACPI within 1 s: forced off"
        assert record(backend, name).state == "shut off"
        with pytest.raises(VmStateError, match="not running"):
            backend.suspend(name)
        assert backend.start(name) == f"vm/{name}: started on {backend.name}"
        with pytest.raises(VmStateError, match="already running"):
            backend.start(name)
        assert backend.reboot(name, force=True) == f"vm/{name}: reset"
        assert state(conn, name) == 1
        assert backend.force_off(name) == f"vm/{name}: forced off"
        assert state(conn, name) == 5
        assert backend.force_off(name) == f"vm/{name}: already shut off"
        # Re-applying the spec starts it again.
        (change,) = handler.plan(vm_doc(name), HERE)
        assert change.action == "update" and ("state", "shut off", "running") in change.diff
        handler.apply(vm_doc(name), HERE, [change], lambda _line: None)
        assert state(conn, name) == 1
        assert "<name>" + name in backend.domain_xml(name)
    finally:
        handler.delete(name, with_disk=True)


def test_memory_moves_live_within_the_balloon_range_and_restart_fields_are_named(handler, backend, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-mem"
    apply(handler, vm_doc(name))
    try:
        assert backend.set_memory(name, 96 * 1024 * 1024) == f"vm/{name}: memory set live to 98304 KiB"
        with pytest.raises(VmError, match="outside the balloon range"):
            backend.set_memory(name, 256 * 1024 * 1024)
        changed = vm_doc(name, memory={"current": "64Mi"}, cpu={"cores": 2})
        (update,) = handler.plan(changed, HERE)
        assert update.action == "update"
        assert "memory.current changes live" in update.note
        assert "cpu.vcpus, cpu.topology need a restart" in update.note
        lines = handler.apply(changed, HERE, [update], lambda _line: None)
        assert f"vm/{name}: memory.current set live to 65536 KiB" in lines
        assert any("definition updated (cpu.vcpus, cpu.topology); needs a restart" in line for line in lines)
        stored = live_xml(conn, name, inactive=True)
        assert stored.findtext("currentMemory") == "65536" and stored.findtext("vcpu") == "2"
        assert live_xml(conn, name).findtext("vcpu") == "1"  # the running guest keeps its vCPUs
        assert handler.describe(name)["pending_restart"] == ["cpu.vcpus", "cpu.topology"]
    finally:
        handler.delete(name, with_disk=True)


def test_a_larger_disk_is_grown_under_the_running_vm(handler, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-grow"
    apply(handler, vm_doc(name))
    try:
        bigger = vm_doc(name, storage={"size": "80Mi"})
        (update,) = handler.plan(bigger, HERE)
        assert update.diff == (("storage.size", 64 * 1024 * 1024, 80 * 1024 * 1024),)
        assert "storage.size changes live" in update.note
        lines = handler.apply(bigger, HERE, [update], lambda _line: None)
        assert lines == [f"vm/{name}: disk grown to {80 * 1024 * 1024} bytes"]
        assert volume_facts(conn, "default", f"{name}.qcow2") == ("qcow2", 80 * 1024 * 1024)
        assert state(conn, name) == 1
        (smaller,) = handler.plan(vm_doc(name), HERE)
        assert "volumes are never shrunk" in smaller.note
    finally:
        handler.delete(name, with_disk=True)


def test_a_vm_without_balloon_refuses_live_memory_changes(handler, backend, run_id) -> None:
    name = f"rtmtest-{run_id}-noballoon"
    apply(handler, vm_doc(name, memory={"balloon": False}, storage=None))
    try:
        with pytest.raises(VmStateError, match="no virtio balloon"):
            backend.set_memory(name, 64 * 1024 * 1024)
    finally:
        handler.delete(name)


def test_stats_move_between_two_polls(handler, backend, run_id) -> None:
    name = f"rtmtest-{run_id}-stats"
    apply(handler, vm_doc(name))
    try:
        first = record(backend, name)
        time.sleep(1.0)
        second = record(backend, name)
        assert second.cpu_time_seconds > first.cpu_time_seconds
        assert second.cpu_ratio is not None and second.cpu_ratio > 0
        # The disk and network counters are real too, but a guest with nothing to boot moves
        # them little or not at all; the rates exist from the second poll on.
        assert second.block_read_bytes >= first.block_read_bytes
        assert second.block_read_rate is not None and second.net_rx_rate is not None
        assert second.vcpus == 1 and second.memory_max_bytes == 128 * 1024 * 1024
        assert second.started_at is not None and second.started_at <= time.time()
        assert second.host == backend.name
    finally:
        handler.delete(name, with_disk=True)


def test_delete_keeps_the_disk_unless_asked_and_apply_reuses_it(handler, conn, run_id) -> None:
    name = f"rtmtest-{run_id}-keep"
    apply(handler, vm_doc(name))
    lines = handler.delete(name)
    assert lines == [f"vm/{name}: stopped", f"vm/{name}: undefined on {handler.backends[0].name}",
                     f"volume default/{name}.qcow2: kept (delete it with --with-disk)"]
    assert not has_domain(conn, name) and has_volume(conn, f"{name}.qcow2")
    lines = apply(handler, vm_doc(name, storage={"size": "96Mi"}))
    assert f"volume default/{name}.qcow2: exists, reused" in lines
    assert f"volume default/{name}.qcow2: grown to {96 * 1024 * 1024} bytes" in lines
    assert volume_facts(conn, "default", f"{name}.qcow2") == ("qcow2", 96 * 1024 * 1024)
    lines = handler.delete(name, with_disk=True)
    assert lines[-1] == f"volume default/{name}.qcow2: deleted"
    assert not has_volume(conn, f"{name}.qcow2")


def test_list_and_describe_show_the_running_vm(handler, backend, run_id) -> None:
    name = f"rtmtest-{run_id}-list"
    apply(handler, vm_doc(name, memory={"current": "96Mi"}))
    try:
        listed = {vm.name: vm for vm in handler.list()}
        assert listed[name].state == "running" and listed[name].host == backend.name
        described = handler.describe(name)
        assert described["spec"]["memory.size"] == "131072 KiB"
        assert described["volumes"][0]["volume"] == f"default/{name}.qcow2"
        assert described["volumes"][0]["capacity_bytes"] == 64 * 1024 * 1024
        assert described["status"]["state"] == "running"
        assert re.search(r"<domain type='(kvm|qemu)' id='\d+'>", described["domain_xml"])
    finally:
        handler.delete(name, with_disk=True)


def test_host_is_a_scheduler_node_with_its_cpus_and_memory(backend) -> None:
    info = backend.host_info()
    node = backend.sched_node()
    assert info.cpu_count >= 1 and 0 < info.memory_bytes_free <= info.memory_bytes_total
    assert node.cpu_millis == info.cpu_count * 1000 and node.runtimes == frozenset({"libvirt"})
    assert node.labels["hostname"] == info.hostname


def test_read_only_connection_lists_but_refuses_changes(libvirt_uri, handler, run_id) -> None:
    name = f"rtmtest-{run_id}-ro"
    apply(handler, vm_doc(name, storage=None))
    reader = LibvirtBackend(libvirt_uri, read_only=True)
    try:
        assert any(vm.name == name for vm in reader.poll().items)
        assert reader.availability().read_only and "[read-only]" in reader.availability().describe()
        with pytest.raises(VmError, match="read only|read-only"):
            reader.force_off(name)
    finally:
        reader.close()
        handler.delete(name)
