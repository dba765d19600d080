"""The runtime handler for VirtualMachineRuntime specs: render, plan, apply, delete, list, describe.

Naming: a VM is called by the document's name (a workload) or else the spec's `name`. A
workload with several replicas has VMs NAME, NAME-1, NAME-2, ... (replica 0 keeps the bare
name, so scaling 1 -> 2 adds NAME-1 and keeps NAME). Each domain carries the workload name in
its metadata, which is how `delete NAME` finds all of them.

Placement: an existing VM stays where it is. A new one goes to the configured default host,
else to the only reachable host, else to the host the scheduler picks (rtm.scheduling with the
document's SchedulingPolicy if it has one, least_connections otherwise), each host being a
node with its CPUs, its free memory and the runtime "libvirt". A host on a cordoned machine
takes no new VM, whichever way it was chosen (kube-scheduler's "node(s) were unschedulable");
restarts and updates of existing VMs stay allowed.

Every host requirement (pool, volume format, bridge or network, secure-boot firmware, swtpm,
KVM for a strict apply) is checked before anything is created; a failure after that undoes
what the failing step's VM had created (volume, definition) before raising ApplyError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from backends.base import BackendUnavailable
from backends.handlers import ApplyError, Change
from backends.libvirt.vm_actions import domain_volumes, undefine
from backends.libvirt.backend import LibvirtBackend
from backends.libvirt.connection import error_code, is_local_uri, libvirt_module
from backends.libvirt.domain_xml import (
    METADATA_NAMESPACE,
    DISK_TARGETS,
    DomainRequest,
    cpu_choice,
    domain_request,
    domain_xml,
    render_vm,
    volume_xml,
    with_identity,
)
from backends.libvirt.errors import HostRequirementError, LibvirtCallError, VmError, VmNotFound, VmSpecError
from backends.libvirt.host_checks import HostFacts, HostOptions, check_requirements, gather_facts
from backends.libvirt.kvm import HypervisorChoice, choose_hypervisor
from backends.libvirt.live_xml import LIVE_FIELDS, DomainView, compare, parse_domain
from backends.records import VmInfo, to_jsonable
from rtm.documents import Document
from rtm.kinds.vm import KIB, VirtualMachineRuntime
from rtm.scheduling import REASON_UNSCHEDULABLE, AffinityExpr, Requirements, schedule

KIND = "VirtualMachineRuntime"
DEFAULT_ALGORITHM = "least_connections"


@dataclass(frozen=True)
class DesiredVm:
    name: str
    workload: str
    replica: int | None
    spec: VirtualMachineRuntime

    @property
    def resource(self) -> str:
        return f"vm/{self.name}"


@dataclass(frozen=True)
class Prepared:
    """A VM checked against its host: the request to send and what to tell people."""

    backend: LibvirtBackend
    request: DomainRequest
    facts: HostFacts
    choice: HypervisorChoice
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Found:
    """An existing domain: where it is and its stored definition."""

    backend: LibvirtBackend
    view: DomainView
    active: bool
    running: bool


@dataclass(frozen=True)
class Difference:
    """How a live VM differs from its spec, split by what it takes to apply each field."""

    diff: tuple[tuple[str, Any, Any], ...]
    live: tuple[str, ...]  # fields applied to the running VM
    restart: tuple[str, ...]  # fields written to the definition, in effect after a restart
    notes: tuple[str, ...]

    def describe(self, running: bool) -> str:
        parts = []
        live = [field for field in self.live if field != "state"]
        if live:
            parts.append(f"{', '.join(live)} change{'s' if len(live) == 1 else ''} live")
        if "state" in self.live:
            parts.append("the shut-off VM is started")
        if self.restart:
            parts.append(f"{', '.join(self.restart)} need{'s' if len(self.restart) == 1 else ''} a restart" if running
                         else f"{', '.join(self.restart)} take{'s' if len(self.restart) == 1 else ''} effect at the start")
        return "; ".join([*parts, *self.notes])


def desired_vms(document: Document) -> list[DesiredVm]:
    spec: VirtualMachineRuntime | None = document.get(KIND)
    if spec is None:
        raise VmSpecError(f"{document.label} has no {KIND}")
    workload = document.name or spec.name
    if not workload:
        raise VmSpecError(f"{document.label}: the VM has no name", "add name: to the document or to VirtualMachineRuntime")
    replicas = document.desired_replicas if document.is_workload else 1
    if replicas == 1:
        return [DesiredVm(workload, workload, None, spec)]
    return [DesiredVm(workload if i == 0 else f"{workload}-{i}", workload, i, spec) for i in range(replicas)]


def render_document(document: Document, spec: Any = None, _base_dir: Path | None = None) -> list[dict[str, Any]]:
    """The domain and volume XML of every VM of a document (console/render.py's RENDERERS
    signature: document, spec, base_dir)."""
    return [render_vm(vm.name, vm.spec, workload=vm.workload) for vm in desired_vms(document)]


class LibvirtVmHandler:
    """The RuntimeHandler for VMs over one or more libvirt hosts."""

    resource = "vm"
    runtime_kind = KIND

    def __init__(self, backends: Sequence[LibvirtBackend], *, strict: bool = False,
                 options: HostOptions = HostOptions(), default_host: str | None = None) -> None:
        if not backends:
            raise ValueError("the VM handler needs at least one libvirt host")
        self.backends = list(backends)
        self.strict = strict  # refuse TCG or another CPU when the spec's does not run under KVM
        self.options = options
        self.default_host = default_host

    # --- render ---------------------------------------------------------------------------------

    def render(self, document: Document, base_dir: Path) -> list[dict[str, Any]]:
        return render_document(document)

    # --- plan -----------------------------------------------------------------------------------

    def plan(self, document: Document, base_dir: Path) -> list[Change]:
        desired = desired_vms(document)
        existing = self._existing([vm.name for vm in desired])
        new = [vm for vm in desired if vm.name not in existing]
        hosts = self._place(document, new)
        changes = []
        for vm in desired:
            found = existing.get(vm.name)
            if found is None:
                prepared = self._prepare(vm, hosts[vm.name])
                notes = [f"on {prepared.backend.name} ({prepared.choice.domain_type})", *prepared.notes]
                changes.append(Change("create", vm.resource, note="; ".join(notes)))
                continue
            prepared = self._prepare(vm, found.backend)
            difference = self._difference(found, prepared)
            if not difference.diff:
                changes.append(Change("unchanged", vm.resource, note=f"on {found.backend.name}"))
            else:
                note = f"on {found.backend.name}: " + difference.describe(found.running)
                changes.append(Change("update", vm.resource, difference.diff, note))
        for name, backend in self._surplus(desired):
            changes.append(Change("delete", f"vm/{name}", note=f"on {backend.name}: beyond {len(desired)} replicas; its disk is kept"))
        return changes

    # --- apply ----------------------------------------------------------------------------------

    def apply(self, document: Document, base_dir: Path, changes: list[Change],
              progress: Callable[[str], None]) -> list[str]:
        wanted = {change.resource: change for change in changes if change.action != "unchanged"}
        desired = [vm for vm in desired_vms(document) if vm.resource in wanted]
        done: list[str] = []
        existing = self._existing([vm.name for vm in desired])
        new = [vm for vm in desired if vm.name not in existing]
        try:
            hosts = self._place(document, new)
        except VmError as error:
            raise ApplyError(done, "place the new VMs", error.message, error.hint) from None
        for vm in desired:
            found = existing.get(vm.name)
            if found is None:
                done += self._create(vm, hosts[vm.name], done, progress)
            else:
                done += self._update(vm, found, done, progress)
        for resource, change in wanted.items():
            if change.action == "delete":
                name = resource.split("/", 1)[1]
                lines = self._find(name).delete(name, with_disk=False)
                for line in lines:
                    progress(line)
                done += lines
        return done

    def _create(self, vm: DesiredVm, backend: LibvirtBackend, done: list[str], progress: Callable[[str], None]) -> list[str]:
        try:
            prepared = self._prepare(vm, backend)
        except (VmError, BackendUnavailable) as error:
            raise ApplyError(list(done), f"check {backend.name} for {vm.resource}", _cause(error), _hint(error)) from None
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(line)
            progress(line)

        for note in prepared.notes:
            say(f"{vm.resource}: {note}")
        created_volume: str | None = None
        defined = False
        step = f"create {vm.resource}"
        try:
            storage = vm.spec.storage
            if storage is not None:
                volume = prepared.request.volume_name or ""
                label = f"{storage.pool}/{volume}"
                if prepared.facts.volume is None:
                    step = f"create volume {label}"
                    backend.connection.call(lambda conn: conn.storagePoolLookupByName(storage.pool).createXML(volume_xml(volume, storage), 0), step)
                    created_volume = volume
                    say(f"volume {label}: created ({storage.size} bytes, {storage.type})")
                else:
                    say(f"volume {label}: exists, reused")
                    if prepared.facts.volume.capacity < storage.size:
                        step = f"grow volume {label}"
                        backend.connection.call(lambda conn: conn.storagePoolLookupByName(storage.pool).storageVolLookupByName(volume).resize(storage.size, 0), step)
                        say(f"volume {label}: grown to {storage.size} bytes")
            step = f"define {vm.resource} on {backend.name}"
            xml = domain_xml(prepared.request)
            backend.connection.call(lambda conn: conn.defineXML(xml), step)
            defined = True
            say(f"{vm.resource}: defined on {backend.name} (type {prepared.request.domain_type}, cpu {prepared.request.cpu.label})")
            step = f"start {vm.resource} on {backend.name}"
            backend.connection.call(lambda conn: conn.lookupByName(vm.name).create(), step)
            say(f"{vm.resource}: started")
        except (VmError, BackendUnavailable) as error:
            undone = self._undo_create(backend, vm, defined, created_volume)
            raise ApplyError(list(done) + lines + undone, step, _cause(error), _hint(error)) from None
        return lines

    def _undo_create(self, backend: LibvirtBackend, vm: DesiredVm, defined: bool, volume: str | None) -> list[str]:
        """Removes what a failed create made; says what could not be removed."""
        lines = []
        if defined:
            def remove_definition(conn: Any) -> None:
                domain = conn.lookupByName(vm.name)
                if domain.isActive():
                    domain.destroy()
                undefine(domain)

            lines.append(self._try(backend, remove_definition, f"{vm.resource}: definition removed again", f"{vm.resource}: could not remove the definition"))
        if volume is not None and vm.spec.storage is not None:
            pool = vm.spec.storage.pool
            lines.append(self._try(backend, lambda conn: conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).delete(0),
                                   f"volume {pool}/{volume}: removed again", f"volume {pool}/{volume}: could not be removed"))
        return lines

    @staticmethod
    def _try(backend: LibvirtBackend, action: Callable[[Any], Any], success: str, failure: str) -> str:
        try:
            backend.connection.call(action, failure)
        except (VmError, BackendUnavailable) as error:
            return f"{failure}: {_cause(error)}"
        return success

    def _update(self, vm: DesiredVm, found: Found, done: list[str], progress: Callable[[str], None]) -> list[str]:
        backend = found.backend
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(line)
            progress(line)

        step = f"check {backend.name} for {vm.resource}"
        try:
            prepared = self._prepare(vm, backend)
            difference = self._difference(found, prepared)
            libvirt = libvirt_module()
            request = with_identity(prepared.request, found.view.uuid, found.view.mac)
            spec = vm.spec
            if difference.restart:
                step = f"update the definition of {vm.resource}"
                backend.connection.call(lambda conn: conn.defineXML(domain_xml(request)), step)
                when = "needs a restart to take effect" if found.running else "takes effect at the start"
                say(f"{vm.resource}: definition updated ({', '.join(difference.restart)}); {when}")
            if "memory.current" in difference.live:
                kib = (spec.memory.current or spec.memory.size) // KIB
                step = f"set the memory of {vm.resource}"
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | (0 if difference.restart else libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                backend.connection.call(lambda conn: conn.lookupByName(vm.name).setMemoryFlags(kib, flags), step)
                say(f"{vm.resource}: memory.current set live to {kib} KiB")
            if "storage.size" in difference.live and spec.storage is not None:
                step = f"grow the disk of {vm.resource}"
                self._grow_disk(backend, vm, found.active, prepared.request)
                say(f"{vm.resource}: disk grown to {spec.storage.size} bytes")
            if "state" in difference.live:
                step = f"start {vm.resource}"
                backend.connection.call(lambda conn: conn.lookupByName(vm.name).create(), step)
                say(f"{vm.resource}: started")
            for note in difference.notes:
                say(f"{vm.resource}: {note}")
        except (VmError, BackendUnavailable) as error:
            raise ApplyError(list(done) + lines, step, _cause(error), _hint(error)) from None
        return lines

    def _grow_disk(self, backend: LibvirtBackend, vm: DesiredVm, active: bool, request: DomainRequest) -> None:
        libvirt = libvirt_module()
        storage = vm.spec.storage
        assert storage is not None
        if active:
            # A running guest's disk grows through QEMU, which holds the image open.
            target = DISK_TARGETS[storage.bus]
            backend.connection.call(lambda conn: conn.lookupByName(vm.name).blockResize(target, storage.size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES), "grow the disk")
        else:
            backend.connection.call(lambda conn: conn.storagePoolLookupByName(storage.pool).storageVolLookupByName(request.volume_name).resize(storage.size, 0), "grow the volume")

    # --- delete, list, describe -------------------------------------------------------------------

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        """Stops and undefines the VM `name`, or every VM of the workload `name`."""
        targets = self._members(name)
        lines: list[str] = []
        for vm_name, backend in targets:
            lines += backend.delete(vm_name, with_disk=with_disk)
        return lines

    def list(self) -> list[VmInfo]:
        records: list[VmInfo] = []
        failures: list[BackendUnavailable] = []
        for backend in self.backends:
            try:
                records.extend(backend.list_vms())
            except BackendUnavailable as error:
                failures.append(error)
        if failures and len(failures) == len(self.backends):
            raise failures[0]
        return records

    def describe(self, name: str) -> dict[str, Any]:
        backend = self._find(name)
        libvirt = libvirt_module()

        def read(conn: Any) -> dict[str, Any]:
            domain = conn.lookupByName(name)
            live = domain.XMLDesc(0)
            volumes = []
            for volume in domain_volumes(conn, domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)):
                _type, capacity, allocation = volume.info()
                volumes.append({"volume": f"{volume.storagePoolLookupByVolume().name()}/{volume.name()}", "path": volume.path(),
                                "capacity_bytes": capacity, "allocation_bytes": allocation})
            return {"live_xml": live, "stored_xml": domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), "volumes": volumes}

        details = backend.connection.call(read, f"describe vm {name!r}")
        view = parse_domain(details["live_xml"])
        stored = parse_domain(details["stored_xml"])
        record = next((r for r in backend.list_vms() if r.name == name), None)
        return {
            "name": name,
            "host": backend.name,
            "uuid": view.uuid,
            "workload": view.workload,
            "spec": view.spec_fields(),  # what runs now
            # Fields whose stored definition differs from what runs: they wait for a restart.
            # memory.current is left out: the running value is what the guest's balloon driver
            # has given back so far, which lags the target (or never moves without a driver).
            "pending_restart": [field for field, _running, _stored in compare(view, stored) if field not in LIVE_FIELDS],
            # Why it runs under TCG or with another CPU than its spec asked (said at apply, kept in its metadata).
            "fallback": stored.fallback,
            "status": to_jsonable(record) if record is not None else None,
            "volumes": details["volumes"],
            "domain_xml": details["live_xml"],
        }

    # --- helpers -------------------------------------------------------------------------------

    def backend(self, name: str) -> LibvirtBackend:
        """The configured host called `name` (libvirt@NAME or NAME)."""
        for backend in self.backends:
            if name in (backend.name, backend.name.removeprefix("libvirt@"), backend.uri):
                return backend
        raise VmError(f"no libvirt host {name!r} is configured", "hosts: " + ", ".join(b.name for b in self.backends))

    def hypervisor_for(self, spec: VirtualMachineRuntime, backend: LibvirtBackend) -> HypervisorChoice:
        """KVM or TCG and the CPU the host runs for `spec`, settled by trials (see kvm.py)."""
        smm = spec.security.secure_boot
        requested_cpu, _note = cpu_choice(spec.cpu.model, "kvm")
        return choose_hypervisor(spec.hypervisor, lambda cpu: backend.kvm_status(smm=smm, cpu=cpu), cpu=requested_cpu,
                                 strict=self.strict, host=backend.name, named_models=lambda: backend.kvm_cpu_models(smm=smm))

    def _prepare(self, vm: DesiredVm, backend: LibvirtBackend) -> Prepared:
        spec = vm.spec
        choice = self.hypervisor_for(spec, backend)
        request, notes = domain_request(vm.name, spec, domain_type=choice.domain_type, workload=vm.workload,
                                        replica=vm.replica, cpu=choice.cpu)
        request = replace(request, secure_boot_loader=self.options.secure_boot_loader,
                          fallback=choice.note if choice.fallback else None)
        local = is_local_uri(backend.uri)
        facts = backend.connection.call(
            lambda conn: gather_facts(conn, vm.name, spec, host=backend.name, local=local, domain_type=choice.domain_type,
                                      options=self.options, volume=request.volume_name),
            f"check {backend.name} for vm {vm.name!r}",
        )
        problems = check_requirements(vm.name, spec, facts)
        if problems:
            raise HostRequirementError(backend.name, problems)
        all_notes = ([choice.note] if choice.note else []) + list(notes)
        return Prepared(backend, request, facts, choice, tuple(all_notes))

    def _difference(self, found: Found, prepared: Prepared) -> Difference:
        request = with_identity(prepared.request, found.view.uuid, found.view.mac)
        desired = parse_domain(domain_xml(request))
        diff = list(compare(found.view, desired))
        live: list[str] = []
        restart: list[str] = []
        notes: list[str] = []
        for field, _live_value, _spec_value in diff:
            if field == "memory.current" and found.running and found.view.balloon and desired.balloon \
                    and desired.current_memory_kib <= found.view.memory_kib:
                live.append(field)
            else:
                restart.append(field)
        storage = prepared.request.spec.storage
        volume = prepared.facts.volume
        if storage is not None and volume is not None and volume.capacity != storage.size:
            diff.append(("storage.size", volume.capacity, storage.size))
            if volume.capacity < storage.size:
                live.append("storage.size")
            else:
                notes.append(f"storage.size: the volume ({volume.capacity} bytes) is larger than the spec; volumes are never shrunk")
        if not found.active:
            diff.append(("state", "shut off", "running"))
            live.append("state")
        return Difference(tuple(diff), tuple(live), tuple(restart), tuple(notes))

    def _existing(self, names: Iterable[str]) -> dict[str, Found]:
        """The domains among `names` on any host. Every host must answer: a VM on a host that
        cannot be asked might otherwise be created twice."""
        wanted = set(names)
        found: dict[str, Found] = {}
        libvirt = libvirt_module()
        for backend in self.backends:
            def look(conn: Any) -> dict[str, Found]:
                here = {}
                for domain in conn.listAllDomains(0):
                    if domain.name() in wanted:
                        view = parse_domain(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                        state = int(domain.state()[0])
                        here[domain.name()] = Found(backend, view, bool(domain.isActive()), state in (1, 2))
                return here

            for name, entry in backend.connection.call(look, f"look for the VMs on {backend.name}").items():
                found.setdefault(name, entry)
        return found

    def _members(self, name: str) -> list[tuple[str, LibvirtBackend]]:
        """The VM called `name`, else the VMs of the workload `name`, on every host."""
        members = self._domains_where(lambda domain_name, workload: domain_name == name)
        if not members:
            members = self._domains_where(lambda domain_name, workload: workload == name)
        if not members:
            raise VmNotFound(f"no vm or VM workload {name!r} on " + ", ".join(b.name for b in self.backends))
        return members

    def _find(self, name: str) -> LibvirtBackend:
        members = self._domains_where(lambda domain_name, workload: domain_name == name)
        if not members:
            raise VmNotFound(f"no vm {name!r} on " + ", ".join(b.name for b in self.backends))
        return members[0][1]

    def _domains_where(self, matches: Callable[[str, str | None], bool]) -> list[tuple[str, LibvirtBackend]]:
        libvirt = libvirt_module()
        result = []
        for backend in self.backends:
            def scan(conn: Any) -> list[str]:
                names = []
                for domain in conn.listAllDomains(0):
                    workload = _workload_of(domain, libvirt)
                    if matches(domain.name(), workload):
                        names.append(domain.name())
                return names

            result += [(name, backend) for name in backend.connection.call(scan, f"list the VMs on {backend.name}")]
        return result

    def _surplus(self, desired: list[DesiredVm]) -> list[tuple[str, LibvirtBackend]]:
        """VMs of the workload beyond the desired replicas (NAME-N with N too high)."""
        if not desired:
            return []
        workload = desired[0].workload
        names = {vm.name for vm in desired}
        pattern = re.compile(rf"{re.escape(workload)}(-\d+)?")
        return [(name, backend) for name, backend in self._domains_where(
            lambda domain_name, owner: owner == workload and bool(pattern.fullmatch(domain_name)) and domain_name not in names)]

    def _place(self, document: Document, new: list[DesiredVm]) -> dict[str, LibvirtBackend]:
        """A host per new VM. A host given (the default host, or the only one) is checked for
        its machine's cordon alone; among several the scheduler also weighs capacity."""
        if not new:
            return {}
        policy = document.get("SchedulingPolicy")
        requirements = _requirements(new[0].spec, policy)
        if self.default_host is not None or len(self.backends) == 1:
            hosts = [self.backend(self.default_host)] if self.default_host is not None else self.backends
            requirements = Requirements(0, 0, runtime="libvirt")
        else:
            hosts = self.backends
        nodes = [backend.sched_node() for backend in hosts]
        by_id = {backend.name: backend for backend in hosts}
        algorithm = policy.default_algorithm if policy is not None else DEFAULT_ALGORITHM
        result = schedule(nodes, requirements, len(new), algorithm, clients=[vm.name for vm in new])
        placed = {}
        for vm, placement in zip(new, result.placements):
            if placement.node is None:
                reason = placement.reason or ""
                hint = ("uncordon its machine (rtm-console uncordon node/NAME) or add a libvirt host"
                        if REASON_UNSCHEDULABLE in reason else "free memory on a host or add a host")
                raise VmError(f"{vm.resource} fits on no libvirt host: {reason}", hint)
            placed[vm.name] = by_id[placement.node]
        return placed


def _requirements(spec: VirtualMachineRuntime, policy: Any) -> Requirements:
    cpu_millis = spec.cpu.vcpus * 1000
    memory = spec.memory.size
    affinity: tuple[tuple[AffinityExpr, ...], ...] = ()
    if policy is not None:
        wanted = policy.resource_requirements
        if wanted is not None:
            cpu_millis = wanted.cpu if wanted.cpu is not None else cpu_millis
            memory = wanted.memory if wanted.memory is not None else memory
        expressions = tuple(AffinityExpr(c.key, c.operator, c.string_values) for c in policy.affinity)
        affinity = (expressions,) if expressions else ()
    return Requirements(cpu_millis, memory, affinity, runtime="libvirt")


def _workload_of(domain: Any, libvirt: Any) -> str | None:
    try:
        element = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NAMESPACE, 0)
    except libvirt.libvirtError as error:
        if error_code(error) == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
            return None
        raise
    match = re.search(r'workload="([^"]*)"', element)
    return match.group(1) if match else None


def _cause(error: Exception) -> str:
    if isinstance(error, BackendUnavailable):
        return error.availability.cause or str(error)
    if isinstance(error, LibvirtCallError):
        return error.detail
    if isinstance(error, VmError):
        return error.message
    return str(error)


def _hint(error: Exception) -> str:
    if isinstance(error, BackendUnavailable):
        return error.availability.hint
    return getattr(error, "hint", "") or ""
