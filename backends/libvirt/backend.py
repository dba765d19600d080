"""One libvirt host as a backend of kind "vms": polled records, actions, and its node facts.

`poll()` makes one getAllDomainStats call (see stats.py). The actions of vm_actions.py are offered
as methods, for the console and the agent to call through the action gate. `host_info()` and
`sched_node()` describe the host as a node for the scheduler: its CPUs and memory from
getInfo/getFreeMemory and the runtime "libvirt", cordoned when its machine (the hostname
libvirt reports, backends/machines.py) is.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from backends.base import Availability
from backends.libvirt.vm_actions import VmActions, remove_domain
from backends.libvirt.connection import SANDBOX_URI, LibvirtConnection, libvirt_module
from backends.libvirt.domain_xml import CpuChoice
from backends.libvirt.kvm import KvmStatus, kvm_capabilities, named_cpu_models, probe_kvm
from backends.libvirt.stats import DomainSample, StatsTracker
from backends.machines import Cordoned, machine_id, never_cordoned
from backends.records import KindSnapshot, VmInfo, freeze
from rtm.scheduling import SchedNode

KVM_STATUS_TTL = 300.0  # seconds a KVM trial result is trusted (device permissions rarely change)
SYSTEM_PIDFILE_DIR = "/run/libvirt/qemu"


@dataclass(frozen=True)
class LibvirtHostInfo:
    """A libvirt host's capacity and load, as the scheduler and the nodes pane need it."""

    backend: str
    uri: str
    hostname: str
    cpu_count: int
    memory_bytes_total: int
    memory_bytes_free: int
    active_domains: int


def stats_flags() -> int:
    libvirt = libvirt_module()
    return (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
            | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)


class LibvirtBackend:
    """A libvirt host (one URI). Thread-safe: the poller and the actions share the connection.
    cordoned(node id): whether a machine takes new VMs (asked with the hostname libvirt reports)."""

    kind = "vms"

    def __init__(self, uri: str, *, name: str | None = None, read_only: bool = False, sandbox: bool = False,
                 shutdown_timeout: float = 60.0, zone: str = "local", labels: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic, cordoned: Cordoned = never_cordoned,
                 kvm_probe: Callable[[Any, bool, bool, CpuChoice | None], KvmStatus] | None = None) -> None:
        self.uri = uri
        self.endpoint = uri
        self.name = f"libvirt@{name or uri}"
        self.zone = zone
        self.labels = dict(labels or {})
        self.cordoned = cordoned
        self.connection = LibvirtConnection(uri, read_only=read_only, sandbox=sandbox,
                                            on_open=_seed_sandbox if sandbox else None)
        self.actions = VmActions(self.connection, self.name, shutdown_timeout=shutdown_timeout)
        self._clock = clock
        # Start times can be read only for the system daemon of this machine.
        self._started_at = _pidfile_start_time if uri == "qemu:///system" else (lambda _sample: None)
        self._tracker = StatsTracker(self.name, self._started_at)
        # kvm_probe(conn, read_only, smm, cpu) -> KvmStatus; replaceable where a test must pretend.
        self._kvm_probe = kvm_probe or (lambda conn, read_only, smm, cpu: probe_kvm(conn, read_only=read_only, smm=smm, cpu=cpu))
        self._kvm: dict[tuple[bool, CpuChoice | None], tuple[float, KvmStatus]] = {}
        self._cpu_models: dict[bool, tuple[float, tuple[str, ...]]] = {}
        self._kvm_lock = threading.Lock()

    @classmethod
    def sandbox(cls, **kwargs: Any) -> LibvirtBackend:
        """libvirt's built-in test driver: define/start/stop work with made-up numbers. It is
        given a storage pool "default" and a bridge "virbr0" so the sample specs apply."""
        return cls(SANDBOX_URI, name="sandbox", sandbox=True, **kwargs)

    @property
    def read_only(self) -> bool:
        return self.connection.read_only

    # --- the Backend protocol ---------------------------------------------------------------

    def poll(self) -> KindSnapshot:
        started = self._clock()
        records = self._collect(self._tracker)
        return KindSnapshot("vms", self.name, records, time.time(), self._clock() - started)

    def availability(self) -> Availability:
        return self.connection.availability()

    def close(self) -> None:
        self.connection.close()

    # --- records ----------------------------------------------------------------------------

    def list_vms(self) -> tuple[VmInfo, ...]:
        """The VMs now, without rates (a one-off look that leaves the poller's samples alone)."""
        return self._collect(StatsTracker(self.name, self._started_at))

    def _collect(self, tracker: StatsTracker) -> tuple[VmInfo, ...]:
        flags = stats_flags()

        def bulk(conn: Any) -> list[DomainSample]:
            return [DomainSample(dom.name(), dom.UUIDString(), dom.ID(), _completed(dom, stats))
                    for dom, stats in conn.getAllDomainStats(flags, 0)]

        samples = self.connection.call(bulk, "read the domain statistics")
        return tracker.update(samples, self._clock())

    # --- the host as a node --------------------------------------------------------------------

    def host_info(self) -> LibvirtHostInfo:
        libvirt = libvirt_module()

        def read(conn: Any) -> LibvirtHostInfo:
            info = conn.getInfo()  # [arch, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
            try:
                free = int(conn.getFreeMemory())
            except libvirt.libvirtError:
                free = int(info[1]) * 1024 * 1024  # drivers without it (test:///) count all as free
            return LibvirtHostInfo(self.name, self.uri, conn.getHostname(), int(info[2]), int(info[1]) * 1024 * 1024,
                                   free, int(conn.numOfDomains()))

        return self.connection.call(read, "read the host information")

    def sched_node(self) -> SchedNode:
        """This host for the scheduler. CPU is not reduced by running guests (vCPUs are host
        threads sharing the cores, libvirt reserves none); memory is what is free now; the
        running domains count as its connections (for least_connections); cordoned when its
        machine is."""
        info = self.host_info()
        machine = machine_id(info.hostname, self.name)
        labels = {"hostname": machine, "zone": self.zone, "libvirt.host": self.name, **self.labels}
        return SchedNode(id=self.name, zone=self.zone, cpu_millis=info.cpu_count * 1000, memory_bytes=info.memory_bytes_free,
                         labels=freeze(labels), connections=info.active_domains, runtimes=frozenset({"libvirt"}),
                         cordoned=bool(self.cordoned(machine)))

    def kvm_status(self, *, smm: bool = False, cpu: CpuChoice | None = None) -> KvmStatus:
        """Whether kvm domains with `cpu` (None: no <cpu> element) and, with `smm`, System
        Management Mode (for secure boot) start here: a trial, remembered for a while."""
        with self._kvm_lock:
            now = self._clock()
            cached = self._kvm.get((smm, cpu))
            if cached is not None and now - cached[0] < KVM_STATUS_TTL:
                return cached[1]
            status = self.connection.call(lambda conn: self._kvm_probe(conn, self.read_only, smm, cpu), "check KVM")
            self._kvm[(smm, cpu)] = (now, status)
            return status

    def kvm_cpu_models(self, *, smm: bool = False) -> tuple[str, ...]:
        """Named CPU models to fall back to under KVM, from the host's domain capabilities."""
        with self._kvm_lock:
            now = self._clock()
            cached = self._cpu_models.get(smm)
            if cached is not None and now - cached[0] < KVM_STATUS_TTL:
                return cached[1]
            xml = self.connection.call(lambda conn: kvm_capabilities(conn, smm=smm), "read the KVM CPU models")
            models = named_cpu_models(xml) if xml is not None else ()
            self._cpu_models[smm] = (now, models)
            return models

    # --- actions (the caller wraps them in the action gate) ------------------------------------

    def start(self, name: str) -> str:
        return self.actions.start(name)

    def shutdown(self, name: str, timeout: float | None = None) -> str:
        return self.actions.shutdown(name, timeout)

    def stop(self, name: str) -> str:
        """The console's stop (backends/verbs.py): a graceful shutdown, forced after the timeout."""
        return self.shutdown(name)

    def restart(self, name: str) -> str:
        """The console's restart: a reboot through the guest."""
        return self.reboot(name)

    def force_off(self, name: str) -> str:
        return self.actions.force_off(name)

    def reboot(self, name: str, *, force: bool = False) -> str:
        return self.actions.reboot(name, force=force)

    def suspend(self, name: str) -> str:
        return self.actions.suspend(name)

    def resume(self, name: str) -> str:
        return self.actions.resume(name)

    def set_memory(self, name: str, memory_bytes: int, *, persist: bool = False) -> str:
        return self.actions.set_memory(name, memory_bytes, persist=persist)

    def domain_xml(self, name: str, *, inactive: bool = False) -> str:
        return self.actions.domain_xml(name, inactive=inactive)

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        """Stops and undefines one VM of this host; its volumes go only `with_disk`."""
        return self.connection.call(lambda conn: remove_domain(conn, name, self.name, with_disk=with_disk), f"delete vm {name!r}")


def _pidfile_start_time(sample: DomainSample) -> float | None:
    """When the QEMU process of a domain of the local system daemon started: its pid file
    names the process, whose command line must carry the domain's UUID (a pid file of another
    daemon's guest with the same name does not count)."""
    import psutil

    try:
        with open(os.path.join(SYSTEM_PIDFILE_DIR, f"{sample.name}.pid")) as file:
            process = psutil.Process(int(file.read().strip()))
        if sample.uuid not in process.cmdline():
            return None
        return process.create_time()
    except (OSError, ValueError, psutil.Error):
        return None


def _completed(domain: Any, stats: dict[str, Any]) -> dict[str, Any]:
    """The bulk statistics, completed from virDomainGetInfo where the driver gives only the
    state (libvirt's test driver does; QEMU always gives balloon and vCPU figures)."""
    if "balloon.maximum" in stats:
        return stats
    _state, max_kib, current_kib, vcpus, cpu_ns = domain.info()
    return {**stats, "balloon.maximum": max_kib, "balloon.current": current_kib, "vcpu.current": vcpus, "cpu.time": cpu_ns}


SANDBOX_POOL = "<pool type='dir'><name>default</name><target><path>/var/lib/libvirt/images</path></target></pool>"
SANDBOX_BRIDGE = "<interface type='bridge' name='virbr0'><start mode='onboot'/><bridge stp='off'/></interface>"


def _seed_sandbox(conn: Any) -> None:
    """Gives the test driver (in-memory, shared by the process) what the sample specs name."""
    if "default" not in conn.listStoragePools() + conn.listDefinedStoragePools():
        conn.storagePoolCreateXML(SANDBOX_POOL, 0)
    if "virbr0" not in conn.listInterfaces() + conn.listDefinedInterfaces():
        conn.interfaceDefineXML(SANDBOX_BRIDGE, 0).create(0)
