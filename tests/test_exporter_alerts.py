"""Thresholds from the specs: Prometheus alerting rules, and the breaches the console shows."""

from __future__ import annotations

from pathlib import Path

import yaml

from backends.base import Availability
from backends.records import KindSnapshot
from console.eventlog import Event
from console.exporter.alert_rules import alert_rules, breached, render_alert_rules, thresholds_from_documents
from console.poller import BackendState, PollState
from rtm.documents import load_file, load_text
from test_exporter_helpers import container, promtool

SAMPLES = Path(__file__).resolve().parents[1] / "sample-specs"
NOW = 1_800_000_000.0


def web_thresholds():
    thresholds, notes = thresholds_from_documents(load_file(SAMPLES / "workload-web.yaml").documents)
    return {(t.alert, t.probe): t for t in thresholds}, notes


def test_the_sample_workload_gives_rules_promtool_accepts(tmp_path):
    documents = [d for f in sorted(SAMPLES.glob("*.yaml")) for d in load_file(f).documents]
    path = tmp_path / "rules.yml"
    path.write_text(render_alert_rules(documents))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert "SUCCESS: 9 rules found" in result.stdout.decode()


def test_thresholds_take_their_numbers_from_the_specs():
    thresholds, _ = web_thresholds()
    cpu = thresholds[("RtmWorkloadCpuAboveTarget", None)]
    assert (cpu.limit, cpu.base, cpu.seconds) == (70, 0.1, 60)  # target 70 %, request 100m, scale_up_cooldown 60s
    assert cpu.source.endswith("workload-web.yaml:33")
    memory = thresholds[("RtmWorkloadMemoryAboveTarget", None)]
    assert (memory.limit, memory.base) == (80, 32 * 2**20)
    liveness = thresholds[("RtmProbeFailing", "liveness")]
    assert (liveness.limit, liveness.seconds) == (3, 60)  # retries 3 x interval 10s, at least a minute
    assert thresholds[("RtmWorkloadRestarting", None)].limit == 3
    assert thresholds[("RtmWorkloadReplicasMissing", None)].limit == 2

    rules = {(r["alert"], r["labels"].get("probe")): r for g in alert_rules(list(thresholds.values()))["groups"] for r in g["rules"]}
    cpu_rule = rules[("RtmWorkloadCpuAboveTarget", None)]
    assert cpu_rule["expr"].endswith("/ 0.1 > 70") and cpu_rule["for"] == "1m"
    assert rules[("RtmWorkloadMemoryAboveTarget", None)]["expr"].endswith("/ 33554432 > 80")
    assert rules[("RtmProbeFailing", "readiness")]["expr"] == 'increase(rtm_probe_failures_total{workload="web", probe="readiness"}[1m]) >= 2'


def test_a_workload_without_requests_or_limits_gets_a_note_instead_of_a_cpu_rule():
    text = """
name: api
ContainerRuntime:
  base_image: "alpine:3.18"
  security: {user: "1000"}
AutoScalingPolicy:
  horizontal: {min_replicas: 1, max_replicas: 3, target_cpu_utilization: 60}
"""
    thresholds, notes = thresholds_from_documents(load_text(text).documents)
    assert "RtmWorkloadCpuAboveTarget" not in {t.alert for t in thresholds}
    assert any("cpu utilization needs resources.requests or resources.limits" in note for note in notes)
    rendered = render_alert_rules(load_text(text).documents)
    assert "# note: ContainerRuntime/api: cpu utilization needs" in rendered
    assert yaml.safe_load(rendered)["groups"]  # comments do not break the YAML


def _state(containers, backends=()) -> PollState:
    states = {
        "docker@local": BackendState("docker@local", "containers", Availability("docker", "unix:///d.sock", "connected"),
                                     KindSnapshot("containers", "docker@local", tuple(containers), NOW, 0.01), 1.0, None, 1),
    }
    for backend in backends:
        states[backend.name] = backend
    return PollState(states, 1)


def test_breaches_follow_the_same_thresholds():
    thresholds, _ = web_thresholds()
    busy = [container("web-0", cpu_ratio=0.09, health="unhealthy"), container("web-1", cpu_ratio=0.08), container("web-2", state="exited", cpu_ratio=None)]
    down = BackendState("libvirt@qemu", "vms", Availability("libvirt", "qemu:///system", "unreachable", cause="connection refused"),
                        None, None, "connection refused", 2)
    pending = BackendState("lambda", "functions", Availability("lambda", "aws", "pending"))
    events = [Event(NOW - 10, "probe_failed", "web", message=f"liveness probe failed ({n}/3)") for n in (1, 2, 3)]
    events += [Event(NOW - 7200, "restart", "web"), Event(NOW - 5, "restart", "web")]
    found = {(b.threshold.alert, b.subject): b for b in breached(list(thresholds.values()), _state(busy, [down, pending]), events, NOW)}

    cpu = found[("RtmWorkloadCpuAboveTarget", "web")]
    assert round(cpu.value) == 85  # (9 % + 8 %) / 2 of one core, over a 0.1-core request; the exited replica left out
    assert ("RtmContainerUnhealthy", "web-0") in found
    assert ("RtmBackendDown", "libvirt@qemu") in found
    assert ("RtmBackendDown", "lambda") not in found  # not polled yet
    assert ("RtmBackendDown", "docker@local") not in found
    assert found[("RtmProbeFailing", "web")].value == 3
    assert ("RtmWorkloadRestarting", "web") not in found  # one restart in the hour, the other is older
    assert ("RtmWorkloadMemoryAboveTarget", "web") not in found  # 20 MiB of 32 MiB is 62 %
    assert ("RtmWorkloadReplicasMissing", "web") not in found  # two running, two asked for


def test_nothing_is_breached_by_a_quiet_workload():
    thresholds, _ = web_thresholds()
    quiet = [container("web-0", cpu_ratio=0.01), container("web-1", cpu_ratio=0.02)]
    assert breached(list(thresholds.values()), _state(quiet), [], NOW) == ()
    assert [b.threshold.alert for b in breached(list(thresholds.values()), _state(quiet[:1]), [], NOW)] == ["RtmWorkloadReplicasMissing"]


def test_no_replica_is_missing_before_a_container_backend_has_answered():
    thresholds, _ = web_thresholds()
    pending = BackendState("docker@local", "containers", Availability("docker", "unix:///d.sock", "pending"))
    assert breached(list(thresholds.values()), PollState({"docker@local": pending}, 1), [], NOW) == ()


def _watch(tmp_path, write_events):
    from console.eventlog import EventLog
    from console.exporter.firing import AlertWatch

    thresholds, _ = web_thresholds()
    log = EventLog(tmp_path / "events.jsonl")
    clock = iter(range(int(NOW), int(NOW) + 100, 10))
    return AlertWatch(None, tmp_path, log, write_events=write_events, clock=lambda: float(next(clock)),
                      thresholds=list(thresholds.values())), log


def _polls(*container_lists):
    return [PollState(_state(containers).backends, version) for version, containers in enumerate(container_lists, 1)]


def test_the_loop_running_watch_writes_firing_once_and_resolving_once(tmp_path):
    watch, log = _watch(tmp_path, write_events=True)
    busy = [container("web-0", cpu_ratio=0.09), container("web-1", cpu_ratio=0.08)]
    quiet = [container("web-0", cpu_ratio=0.01), container("web-1", cpu_ratio=0.01)]
    for state in _polls(busy, busy, busy, quiet):
        watch.update(state)
    assert [(e.kind, e.target, e.details["alert"]) for e in log.read()] == [
        ("alert_firing", "web", "RtmWorkloadCpuAboveTarget"), ("alert_resolved", "web", "RtmWorkloadCpuAboveTarget")]
    assert watch.current() == ()


def test_a_display_only_watch_shows_since_when_and_writes_nothing(tmp_path):
    watch, log = _watch(tmp_path, write_events=False)
    busy = [container("web-0", cpu_ratio=0.09), container("web-1", cpu_ratio=0.08)]
    for state in _polls(busy, busy):
        watch.update(state)
    (alert,) = watch.current()
    assert (alert.alert, alert.subject, alert.since, round(alert.value)) == ("RtmWorkloadCpuAboveTarget", "web", NOW, 85)
    assert log.read() == []
    watch.silences.add("RtmWorkloadCpuAboveTarget", "web", 600)
    assert watch.counts() == (0, 1) and watch.to_json()[0]["silenced_until"] is not None


def test_replicas_missing_compares_against_the_desired_count_scale_and_the_autoscaler_set(tmp_path):
    from backends.docker.desired import DesiredStore
    from backends.docker.mapping import WorkloadRequest
    from rtm.scheduling import Requirements

    watch, _log = _watch(tmp_path, write_events=False)
    quiet = [container("web-0", cpu_ratio=0.01), container("web-1", cpu_ratio=0.02)]
    assert watch.update(_polls(quiet)[0]) == ()  # two running, the spec asks for two
    request = WorkloadRequest("web", 2, "hash", {"Image": "alpine", "Labels": {}, "HostConfig": {}}, ())
    DesiredStore(tmp_path).record_apply(request, 2, Requirements(0, 0), "least_connections", NOW, None)
    DesiredStore(tmp_path).set_count("web", 3)  # scaled out to three
    state = PollState(_state(quiet).backends, 2)
    (missing,) = breached(list(web_thresholds()[0].values()), state, [], NOW, {"web": 3})
    assert (missing.threshold.alert, missing.value, missing.message) == ("RtmWorkloadReplicasMissing", 2, "web: 2 of 3 replicas running")
    watch.update(state)
    assert [f.alert for f in watch.current()] == ["RtmWorkloadReplicasMissing"]


def test_the_watch_reads_the_specs_only_when_they_change_and_evaluates_once_per_poll(tmp_path):
    import os
    import shutil

    from console.exporter.firing import SPEC_CHECK_SECONDS, AlertWatch

    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(SAMPLES / "workload-web.yaml", specs / "web.yaml")
    now = [NOW]
    watch = AlertWatch(specs, tmp_path, clock=lambda: now[0])
    busy = [container("web-0", cpu_ratio=0.09), container("web-1", cpu_ratio=0.08)]
    for version in range(1, 6):
        now[0] += SPEC_CHECK_SECONDS
        watch.update(PollState(_state(busy).backends, version))
        watch.update(PollState(_state(busy).backends, version))  # the same state again: nothing to do
    assert (watch.evaluations, watch.spec_loads) == (5, 1)
    assert [a.alert for a in watch.current()] == ["RtmWorkloadCpuAboveTarget"]
    (specs / "web.yaml").write_text((specs / "web.yaml").read_text().replace("target_cpu_utilization: 70", "target_cpu_utilization: 95"))
    os.utime(specs / "web.yaml", ns=(1, 1))  # a different modification time, whatever the clock's resolution
    now[0] += SPEC_CHECK_SECONDS
    watch.update(PollState(_state(busy).backends, 6))
    assert watch.spec_loads == 2 and watch.current() == ()  # 85 % is under the new 95 % target


def _replicas_missing_fires(tmp_path: Path, running: int, desired: int | None) -> bool:
    """Whether Prometheus (promtool's rule evaluation) fires the generated RtmWorkloadReplicasMissing
    rule of the sample web workload (spec: 2 replicas, for: 1m) with `running` replicas and an
    exported desired count (None: the exporter exports none)."""
    thresholds, _ = web_thresholds()
    rule = [t for t in thresholds.values() if t.alert == "RtmWorkloadReplicasMissing"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(alert_rules(rule)))
    scrape = 'instance="exporter:9810", job="rtm"'
    series = [{"series": f'rtm_workload_replicas{{workload="web", state="running", {scrape}}}', "values": f"{running}x10"}]
    if desired is not None:
        series.append({"series": f'rtm_workload_replicas_desired{{workload="web", {scrape}}}', "values": f"{desired}x10"})
    probe = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [{"eval_time": "5m", "alertname": "RtmWorkloadReplicasMissing", "exp_alerts": []}]}]}
    (tmp_path / "probe.yml").write_text(yaml.safe_dump(probe))
    result = promtool("test", "rules", "probe.yml", cwd=tmp_path)
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0 or "got:" in output, output  # expecting none: a failure lists what fired
    return result.returncode != 0 and 'alertname="RtmWorkloadReplicasMissing"' in output


def test_the_replicas_missing_rule_compares_with_the_exported_desired_count_else_the_spec(tmp_path):
    assert _replicas_missing_fires(tmp_path, running=2, desired=3)  # scaled out to 3, two run
    assert not _replicas_missing_fires(tmp_path, running=1, desired=1)  # the autoscaler went down to 1
    assert not _replicas_missing_fires(tmp_path, running=2, desired=None)  # no desired series: the spec's 2
    assert _replicas_missing_fires(tmp_path, running=1, desired=None)
