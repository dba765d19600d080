"""Who runs this process and where they logged in from, as the system knows it.

The audit log must not take a person's word for it: `USER` and `SSH_CONNECTION` are ordinary
environment variables that anyone can set (`USER=alice rtm-console delete ...`). So

- the user is the process' real uid and the name the password database gives it;
- the origin is the SSH client of the login this process runs under: the nearest `sshd`
  ancestor process (OpenSSH's per-connection process, `sshd` or `sshd-session`) holds the
  client's TCP connection, and its peer address is read from the kernel's socket table
  (`/proc/PID/fd` -> socket inode -> `/proc/PID/net/tcp`, `tcp6`). Without such an ancestor the
  origin is `local`; with one whose sockets cannot be read, `ssh (client address unreadable)`.

utmp is not used: it names the host of a terminal login, but not of an SSH command without a
terminal (`ssh host rtm-console apply ...`), terminal multiplexers write their own entries, and
many containers and minimal systems have no utmp at all.

What the environment claims is kept beside, as `env_claim`, so a difference is visible.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSHD_NAMES = ("sshd", "sshd-session")
CLAIM_VARIABLES = ("LOGNAME", "USER", "SSH_CONNECTION", "SSH_CLIENT")
_ESTABLISHED = "01"
_MAX_ANCESTORS = 64  # a guard against a loop in a changing process table


@dataclass(frozen=True)
class Identity:
    uid: int
    user: str
    origin: str
    env_claim: Mapping[str, str] | None  # the variables above that are set, or None

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "origin": self.origin,
                "env_claim": dict(self.env_claim) if self.env_claim else None}


def current_identity(env: Mapping[str, str] = os.environ, proc: Path = Path("/proc")) -> Identity:
    uid = os.getuid()
    claim = {name: env[name] for name in CLAIM_VARIABLES if env.get(name)}
    return Identity(uid, user_name(uid), login_origin(os.getpid(), proc), claim or None)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without an entry (common in containers)
        return f"uid {uid}"


def login_origin(pid: int, proc: Path = Path("/proc")) -> str:
    """`ip:port` of the SSH client whose login `pid` runs under, else "local"."""
    for ancestor in _ancestors(pid, proc):
        if _read(proc / str(ancestor) / "comm").strip() in SSHD_NAMES:
            peer = ssh_peer(ancestor, proc)
            return peer if peer is not None else "ssh (client address unreadable)"
    return "local"


def ssh_peer(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The remote end of the established TCP connection process `pid` holds, as `ip:port`."""
    try:
        inodes = {os.readlink(link)[len("socket:["):-1] for link in (proc / str(pid) / "fd").iterdir()
                  if os.readlink(link).startswith("socket:[")}
    except OSError:  # another user's process, or gone
        return None
    for table in ("tcp", "tcp6"):
        for remote, state, inode in _tcp_table(proc / str(pid) / "net" / table):
            if inode in inodes and state == _ESTABLISHED:
                return remote
    return None


def _ancestors(pid: int, proc: Path) -> Iterator[int]:
    seen = 0
    while pid > 1 and seen < _MAX_ANCESTORS:
        stat = _read(proc / str(pid) / "stat")
        if not stat:
            return
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent: the field after the state
        seen += 1
        if pid > 1:
            yield pid


def _tcp_table(path: Path) -> Iterator[tuple[str, str, str]]:
    """(remote `ip:port`, state, inode) per line of /proc/net/tcp or tcp6."""
    for line in _read(path).splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 10:
            yield _address(fields[2]), fields[3], fields[9]


def _address(hex_address: str) -> str:
    """`0100007F:1F90` -> `127.0.0.1:8080`; IPv6 as `[addr]:port` (IPv4-mapped as IPv4)."""
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    # The kernel prints each 32-bit word in host byte order.
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    packed = b"".join(word[::-1] if sys.byteorder == "little" else word for word in words)
    port = int(port_hex, 16)
    if len(packed) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, packed)}:{port}"
    address = ipaddress.IPv6Address(packed)
    if address.ipv4_mapped is not None:
        return f"{address.ipv4_mapped}:{port}"
    return f"[{address}]:{port}"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
