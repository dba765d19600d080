"""Helpers for the exporter tests (no tests here).

`ScriptedBackend` is a backend whose records the test sets. It runs under the real Poller and
stands in for an engine only where the test is about the exporter's own logic (what it does
with records, failures and disappearances); the tests against the real host backend and the
real Docker engine are in the other files.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from backends.base import Availability, BackendKind, BackendUnavailable
from backends.records import ContainerInfo, FunctionInfo, KindSnapshot, Record, VmInfo
from console.poller import PollState, Poller

WAIT = 20.0  # seconds: only a guard against a hang, never a performance expectation


class ScriptedBackend:
    def __init__(self, name: str, kind: BackendKind, items: Sequence[Record] = (), endpoint: str = "scripted://test") -> None:
        self.name = name
        self.kind = kind
        self.endpoint = endpoint
        self.items: tuple[Record, ...] = tuple(items)
        self.down: str | None = None  # set to a cause to make poll() fail
        self.gate: threading.Event | None = None  # poll() waits on it when set

    def poll(self) -> KindSnapshot:
        if self.gate is not None:
            self.gate.wait(WAIT)
        if self.down is not None:
            raise BackendUnavailable(Availability("scripted", self.endpoint, "unreachable", cause=self.down))
        return KindSnapshot(self.kind, self.name, self.items, time.time(), 0.001)

    def availability(self) -> Availability:
        return Availability("scripted", self.endpoint, "connected")

    def close(self) -> None:
        pass


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def repoll(poller: Poller, name: str) -> PollState:
    """Ask for a poll of `name` and wait until a poll that started after the request published."""
    before = poller.latest().backends[name].polls
    poller.refresh_now(name)
    wait_until(lambda: poller.latest().backends[name].polls > before, f"a new poll of {name}")
    return poller.latest()


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    """The exposition parsed back: family name -> Metric (names as the parser gives them:
    counters without their _total suffix)."""
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(families: dict[str, Any], family: str, sample_name: str | None = None) -> list[Sample]:
    metric = families.get(family)
    if metric is None:
        return []
    return [s for s in metric.samples if sample_name is None or s.name == sample_name]


def value_of(families: dict[str, Any], family: str, **labels: str) -> float | None:
    """The value of the one sample of `family` whose labels include `labels` (None if none)."""
    found = [s.value for s in samples(families, family) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, f"{family}{labels}: {len(found)} samples"
    return found[0] if found else None


def container(name: str, workload: str | None = "web", state: str = "running", **changes: Any) -> ContainerInfo:
    fields: dict[str, Any] = dict(
        id=f"id-{name}", name=name, workload=workload, replica=0, engine="docker@scripted", state=state,
        health=None, image="rtm-busybox:1.0", ports=(), started_at=1_700_000_000.0, cpu_ratio=0.05,
        cpu_seconds_total=12.5, memory_working_set_bytes=20 * 2**20, memory_limit_bytes=128 * 2**20, restarts=0,
        net_rx_bytes=1000, net_tx_bytes=2000, net_rx_packets=10, net_tx_packets=20, block_read_bytes=4096,
        block_write_bytes=8192,
    )
    fields.update(changes)
    return ContainerInfo(**fields)


def vm(name: str, state: str = "running", **changes: Any) -> VmInfo:
    fields: dict[str, Any] = dict(
        name=name, uuid=f"uuid-{name}", host="libvirt@scripted", state=state, vcpus=2,
        memory_current_bytes=64 * 2**20, memory_max_bytes=128 * 2**20, cpu_time_seconds=3.5, cpu_ratio=0.02,
        block_read_bytes=1, block_write_bytes=2, net_rx_bytes=3, net_tx_bytes=4, started_at=1_700_000_000.0,
    )
    fields.update(changes)
    return VmInfo(**fields)


def function(name: str, **changes: Any) -> FunctionInfo:
    fields: dict[str, Any] = dict(
        name=name, target="local", region=None, runtime="python3.11", handler="app.handler", memory_mb=128,
        timeout_seconds=3.0, last_modified=None, triggers=(), invocations=7, errors=1, duration=None,
    )
    fields.update(changes)
    return FunctionInfo(**fields)


def promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, cwd=cwd, timeout=60)


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key_and_csr(name: str, subject: str, cwd: Path) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)


def _sign(name: str, ca: str, san: str, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)


def _ca(name: str, cwd: Path) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}", cwd=cwd)


def make_pki(folder: Path) -> Path:
    """With the openssl command, in `folder`: a CA (ca.crt/key); server.crt/key for 127.0.0.1
    and localhost; client.crt/key from the CA (SAN scraper.example); other.crt/key from the CA
    (SAN other.example); rogue.crt/key from another CA (SAN scraper.example)."""
    _ca("ca", folder)
    _ca("rogue-ca", folder)
    for name, subject, ca, san in (
        ("server", "/CN=localhost", "ca", "IP:127.0.0.1,DNS:localhost"),
        ("client", "/CN=scraper", "ca", "DNS:scraper.example"),
        ("other", "/CN=other", "ca", "DNS:other.example"),
        ("rogue", "/CN=rogue", "rogue-ca", "DNS:scraper.example"),
    ):
        _key_and_csr(name, subject, folder)
        _sign(name, ca, san, folder)
    return folder
