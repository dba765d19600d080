"""The desired-state records (DATA/workloads/NAME.json) and the locks around every
read-modify-write of the data folder's shared files."""

from __future__ import annotations

import json
import threading

import pytest

from backends.docker.desired import DesiredFormatError, DesiredStore
from backends.docker.mapping import WorkloadRequest
from console.cordons import CordonStore
from rtm.scheduling import AffinityExpr, Requirements

REQUIREMENTS = Requirements(100, 32 << 20, ((AffinityExpr("zone", "In", ("a", "b")),),), "docker")


def request(replicas: int) -> WorkloadRequest:
    return WorkloadRequest("web", replicas, "cafe", {"Image": "alpine", "Labels": {"rtm.workload": "web"}, "HostConfig": {}}, ())


def test_a_record_round_trips_with_its_version_and_requirements(tmp_path) -> None:
    store = DesiredStore(tmp_path)
    store.record_apply(request(2), 2, REQUIREMENTS, "round_robin", 1700000000.0, "/srv/web.yaml")
    data = json.loads((tmp_path / "workloads" / "web.json").read_text())
    assert (data["version"], data["replicas"], data["spec_replicas"], data["algorithm"]) == (1, 2, 2, "round_robin")
    record = store.get("web")
    assert record.requirements == REQUIREMENTS and record.request().for_replica(1).name == "web-1"


def test_the_count_is_kept_while_the_spec_s_replicas_is_unchanged(tmp_path) -> None:
    store = DesiredStore(tmp_path)
    assert store.count_for("web", 2) == 2  # never applied: the spec's
    store.record_apply(request(2), 2, REQUIREMENTS, "round_robin", 0.0, None)
    store.set_count("web", 5)
    assert store.count_for("web", 2) == 5  # scaled since: kept
    assert store.count_for("web", 3) == 3  # the spec's replicas: changed: the spec's
    assert store.set_count("other", 4) is None and store.get("other") is None  # only applied workloads


def test_a_damaged_record_says_where_and_others_are_still_read(tmp_path) -> None:
    store = DesiredStore(tmp_path)
    store.record_apply(request(1), 1, REQUIREMENTS, "round_robin", 0.0, None)
    (tmp_path / "workloads" / "bad.json").write_text('{"version": 1,\n "replicas": }')
    (tmp_path / "workloads" / "old.json").write_text('{"version": 0}')
    records, problems = store.all()
    assert [r.workload for r in records] == ["web"]
    assert problems[0].startswith(f"{tmp_path / 'workloads' / 'bad.json'}:2:14: ")
    assert "not a version 1 desired-state record (version 0)" in problems[1]
    with pytest.raises(DesiredFormatError):
        store.get("bad")


def test_concurrent_writers_lose_no_change(tmp_path) -> None:
    store = DesiredStore(tmp_path)
    cordons = CordonStore(tmp_path)
    names = [f"w{i}" for i in range(12)]
    for name in names:
        store.record_apply(WorkloadRequest(name, 1, "h", {"Labels": {}}, ()), 1, REQUIREMENTS, "round_robin", 0.0, None)
    writers = [threading.Thread(target=lambda n=n: (store.set_count(n, 7), cordons.set(n, True))) for n in names]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert {r.workload: r.replicas for r in store.all()[0]} == dict.fromkeys(names, 7)
    assert cordons.cordoned() == set(names)
