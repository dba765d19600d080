"""VirtualMachineRuntime: a libvirt domain with its CPU, memory, disk, network and security."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rtm.kinds.values import Memory
from rtm.schema import BuildContext, Where, where_field

DISK_CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
KIB = 1024


@dataclass(frozen=True)
class VmCpu:
    cores: int = 1
    sockets: int = 1
    threads: int = 1
    model: str = "host-passthrough"
    where: Where = where_field()

    @property
    def vcpus(self) -> int:
        return self.sockets * self.cores * self.threads

    def check(self, ctx: BuildContext) -> None:
        for name in ("cores", "sockets", "threads"):
            if getattr(self, name) < 1:
                ctx.error(self.where, name, f"cpu.{name} must be at least 1")


@dataclass(frozen=True)
class VmMemory:
    size: Memory
    current: Memory | None = None
    balloon: bool = False
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.size < 16 * KIB * KIB:
            ctx.error(self.where, "size", "memory.size must be at least 16Mi", "libvirt guests need memory to boot; 64Mi is the smallest useful size")
        if self.size % KIB:
            ctx.error(self.where, "size", "memory.size must be a whole number of KiB", "libvirt counts memory in KiB: use Mi or Gi")
        if self.current is not None:
            if self.current > self.size:
                ctx.error(self.where, "current", "memory.current is above memory.size", "the balloon can only give back memory up to the maximum")
            if self.current % KIB:
                ctx.error(self.where, "current", "memory.current must be a whole number of KiB")


@dataclass(frozen=True)
class VmStorage:
    size: Memory
    type: Literal["qcow2", "raw"] = "qcow2"
    cache: Literal["default", "none", "writethrough", "writeback", "directsync", "unsafe"] = "default"
    pool: str = "default"
    bus: Literal["virtio", "sata", "scsi", "ide"] = "virtio"
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.size < KIB * KIB:
            ctx.error(self.where, "size", "storage.size must be at least 1Mi")


@dataclass(frozen=True)
class VmNetwork:
    type: Literal["bridge", "network", "none"] = "network"
    bridge: str | None = None
    network: str | None = None
    model: str = "virtio"
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.type == "bridge" and not self.bridge:
            ctx.error(self.where, "type", 'network.type "bridge" needs network.bridge', 'name the host bridge, e.g. bridge: "virbr0"')
        if self.type == "bridge" and self.network:
            ctx.error(self.where, "network", 'network.network is for type "network", not "bridge"')
        if self.type == "network" and self.bridge:
            ctx.error(self.where, "bridge", 'network.bridge is for type "bridge"', 'set type: "bridge" or use network: NAME')

    @property
    def source(self) -> str | None:
        if self.type == "bridge":
            return self.bridge
        if self.type == "network":
            return self.network or "default"
        return None


@dataclass(frozen=True)
class VmSecurity:
    secure_boot: bool = False
    tpm: bool = False
    where: Where = where_field()


@dataclass(frozen=True)
class VirtualMachineRuntime:
    memory: VmMemory
    hypervisor: Literal["kvm", "qemu"] = "kvm"
    name: str | None = None
    cpu: VmCpu = VmCpu()
    storage: VmStorage | None = None
    network: VmNetwork = VmNetwork()
    security: VmSecurity = VmSecurity()
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", self.name):
            ctx.error(self.where, "name", f'"{self.name}" is not a valid VM name', "letters, digits, _ . + and -")
