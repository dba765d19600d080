"""What /metrics serves: each backend snapshot's text rendered once and reused until its next
poll, byte for byte what prometheus_client renders afresh, and never older than the newest poll.
Backends are ScriptedBackend under the real Poller (the exporter's own logic is under test);
scrapes go through the real HTTP server on loopback."""

from __future__ import annotations

import gzip
import re
from collections import Counter

import pytest
from prometheus_client import generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from test_exporter_helpers import ScriptedBackend, container, function, repoll, vm
from test_exporter_server import LOOPBACK, get

from backends.records import DurationHistogram, DurationStats
from console.exporter.assembly import build_registry
from console.exporter.exposition import RtmRegistry
from console.exporter.server import ExporterServer
from console.poller import Poller

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# Lines whose values change from one scrape to the next whatever the backends say.
PER_SCRAPE = re.compile(rb"^(rtm_scrape_duration_seconds|rtm_backend_data_age_seconds|process_)\S* .*\n", re.MULTILINE)


def fresh(registry: RtmRegistry, accept: str) -> bytes:
    """What prometheus_client renders from every family in one go (the reference)."""
    encoder, _ = choose_encoder(accept)
    return encoder(registry)


def steady(body: bytes) -> bytes:
    return PER_SCRAPE.sub(b"", body)


def series(body: bytes, accept: str) -> set[tuple]:
    parse = parse_openmetrics if accept else parse_text
    return {(s.name, tuple(sorted(s.labels.items()))) for family in parse(body.decode()) for s in family.samples}


def count_builds(registry: RtmRegistry, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """(backend, kind) -> how many times the families of a snapshot were built."""
    builds: Counter = Counter()
    build = registry.rtm.kind_families

    def counted(kind, records):
        records = list(records)
        builds.update({(record_backend(record), kind.name) for record in records})
        return build(kind, records)

    monkeypatch.setattr(registry.rtm, "kind_families", counted)
    return builds


def record_backend(record) -> str:
    return getattr(record, "engine", None) or getattr(record, "host", None) or getattr(record, "target", "?")


@pytest.fixture
def fleet():
    histogram = DurationHistogram.empty((0.1, 1.0)).observe(0.05).observe(0.5)
    backends = [
        ScriptedBackend("docker@a", "containers", [container(f"a-{n}", engine="docker@a", health="healthy") for n in range(3)]),
        ScriptedBackend("docker@b", "containers", [container(f"b-{n}", engine="docker@b", workload=None) for n in range(2)]),
        ScriptedBackend("libvirt@scripted", "vms", [vm("db-vm")]),
        ScriptedBackend("local-functions", "functions", [function("hello", duration=DurationStats(0.2, 0.9, 0.7),
                                                                  duration_histogram=histogram)]),
    ]
    poller = Poller(backends, interval=60)
    poller.start()
    assert poller.wait_ready(20)
    server = ExporterServer(build_registry(poller), LOOPBACK)
    server.start()
    yield poller, server, {backend.name: backend for backend in backends}
    server.stop()
    poller.stop()


def scrape_body(server: ExporterServer, accept: str = "", gzipped: bool = False) -> bytes:
    headers = {"Accept": accept} if accept else {}
    if gzipped:
        headers["Accept-Encoding"] = "gzip"
    status, _, body = get(*server.address, "/metrics", headers)
    assert status == 200
    return gzip.decompress(body) if gzipped else body


@pytest.mark.parametrize("accept", ["", OPENMETRICS], ids=["text", "openmetrics"])
def test_scrapes_between_two_polls_build_each_snapshot_once_and_equal_a_fresh_render_with_scripted_backend(fleet, accept, monkeypatch):
    _, server, _ = fleet
    builds = count_builds(server.registry, monkeypatch)
    bodies = [scrape_body(server, accept, gzipped=n % 2 == 1) for n in range(6)]

    # The two engines, the libvirt host and the functions runtime: one build each, six scrapes.
    assert builds == {("docker@a", "containers"): 1, ("docker@b", "containers"): 1, ("libvirt@scripted", "vms"): 1,
                      ("local", "functions"): 1}
    reference = fresh(server.registry, accept)
    assert all(steady(body) == steady(reference) for body in bodies)
    assert series(bodies[-1], accept) == series(reference, accept)
    assert b'rtm_container_health{container="a-2",engine="docker@a",health="healthy",workload="web"} 1.0' in bodies[-1]
    assert b"rtm_scrape_duration_seconds" in bodies[-1] and b"process_cpu_seconds_total" in bodies[-1]


def test_a_scrape_after_a_poll_shows_what_changed_and_rebuilds_only_that_backend_with_scripted_backend(fleet, monkeypatch):
    poller, server, backends = fleet
    builds = count_builds(server.registry, monkeypatch)
    before = scrape_body(server)
    assert b'rtm_container_cpu_usage_seconds_total{container="a-0",engine="docker@a",workload="web"} 12.5' in before

    engine = backends["docker@a"]
    engine.items = (container("a-0", engine="docker@a", cpu_seconds_total=99.0, health="unhealthy"),
                    container("a-9", engine="docker@a"))
    repoll(poller, engine.name)
    after = scrape_body(server)

    assert b'rtm_container_cpu_usage_seconds_total{container="a-0",engine="docker@a",workload="web"} 99.0' in after
    assert b'rtm_container_health{container="a-0",engine="docker@a",health="unhealthy",workload="web"} 1.0' in after
    assert b'container="a-9"' in after and b'container="a-1"' not in after  # a new one shows, a removed one is gone
    assert b'container="b-1"' in after  # the other engine's text is reused
    assert builds[("docker@a", "containers")] == 2 and builds[("docker@b", "containers")] == 1
    assert steady(after) == steady(fresh(server.registry, ""))


def test_a_backend_that_goes_down_leaves_the_scrape_at_once_with_scripted_backend(fleet):
    poller, server, backends = fleet
    assert b'container="b-0"' in scrape_body(server)
    backends["docker@b"].down = "connection refused"
    repoll(poller, "docker@b")
    body = scrape_body(server)
    assert b'container="b-0"' not in body and b'rtm_backend_up{backend="docker@b",endpoint="scripted://test"} 0.0' in body
    assert steady(body) == steady(fresh(server.registry, ""))


def test_two_backends_reporting_the_same_series_serve_it_once_with_scripted_backend():
    # Two functions runtimes that both report "hello" (target local, no region): one series.
    backends = [ScriptedBackend(name, "functions", [function("hello")]) for name in ("local-a", "local-b")]
    poller = Poller(backends, interval=60)
    poller.start()
    try:
        assert poller.wait_ready(20)
        registry = build_registry(poller)
        for accept in ("", OPENMETRICS):
            encoder, content_type = choose_encoder(accept)
            body = registry.exposition(encoder, content_type)
            assert body.count(b'rtm_function_invocations_total{function="hello",region="",target="local"}') == 1
            assert steady(body) == steady(fresh(registry, accept))
            parse = parse_openmetrics if accept else parse_text
            assert sum(len(family.samples) for family in parse(body.decode())) == len(series(body, accept))
    finally:
        poller.stop()


def test_the_registry_still_renders_everything_afresh_for_generate_latest_with_scripted_backend(fleet):
    _, server, _ = fleet
    text = generate_latest(server.registry).decode()
    assert 'rtm_vm_state{domain="db-vm",host="libvirt@scripted",state="running"} 1.0' in text
    assert "rtm_function_duration_seconds_bucket" in text


def test_after_a_poll_only_the_series_whose_value_moved_are_formatted_again_with_scripted_backend(fleet):
    poller, server, backends = fleet
    registry: RtmRegistry = server.registry
    encoder, content_type = choose_encoder("")
    formatted: list[str] = []

    def counting(collector):
        formatted.extend(s.name for family in collector.collect() for s in family.samples if s.name.startswith("rtm_container_"))
        return encoder(collector)

    registry.exposition(counting, content_type)
    assert len(formatted) == 3 * 22 + 2 * 19  # every series once: 22 a container, 19 without a health check
    engine = backends["docker@a"]
    engine.items = (container("a-0", engine="docker@a", cpu_seconds_total=99.0, health="healthy"), *engine.items[1:])
    repoll(poller, engine.name)
    formatted.clear()
    body = registry.exposition(counting, content_type)
    assert formatted == ["rtm_container_cpu_usage_seconds_total"]
    assert b'rtm_container_cpu_usage_seconds_total{container="a-0",engine="docker@a",workload="web"} 99.0' in body
    assert steady(body) == steady(fresh(registry, ""))


@pytest.mark.parametrize("accept", ["", OPENMETRICS], ids=["text", "openmetrics"])
def test_a_reused_line_is_the_line_prometheus_client_gives_for_the_new_value(accept):
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from console.exporter.exposition import render_family

    encoder, _ = choose_encoder(accept)

    def gauge(*values: float) -> GaugeMetricFamily:
        family = GaugeMetricFamily("rtm_test_value", "A value.", labels=["n"])
        for number, value in enumerate(values):
            family.add_metric([str(number)], value)
        return family

    def alone(family) -> str:
        return render_family(family, encoder).samples

    first = render_family(gauge(0.0, 1.5, float("nan"), 7.0), encoder)
    again = render_family(gauge(-0.0, 1.5, float("nan"), 8.0), encoder, first)
    assert again.samples == alone(gauge(-0.0, 1.5, float("nan"), 8.0))  # -0.0 is not 0.0's line
    # A counter with created times: the text format moves the _created samples to a family of their own.
    def counter(b: float) -> CounterMetricFamily:
        family = CounterMetricFamily("rtm_test_events", "Events.", labels=["n"])
        family.add_metric(["a"], 1, created=1_700_000_000.0)
        family.add_metric(["b"], b, created=1_700_000_000.0)
        return family

    reused = render_family(counter(3), encoder, render_family(counter(2), encoder))
    assert reused.samples == alone(counter(3))


def test_a_collector_unregistered_from_the_registry_leaves_the_exposition_with_scripted_backend(fleet):
    _, server, _ = fleet
    registry: RtmRegistry = server.registry
    encoder, content_type = choose_encoder("")
    assert b"process_cpu_seconds_total" in registry.exposition(encoder, content_type)
    for collector in list(registry.others):
        registry.unregister(collector)
    body = registry.exposition(encoder, content_type)
    assert b"process_cpu_seconds_total" not in body and b"rtm_container_info" in body
