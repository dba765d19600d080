"""The event log: append and read, torn lines, rotation, and following it like `events -f`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from console import eventlog
from console.datadir import read_jsonl_from
from console.eventlog import Event, EventLog, format_event

REPO = Path(__file__).resolve().parents[1]
T0 = 1767261600.0  # 2026-01-01T10:00:00Z


def make(n: int, kind: str = "restart") -> Event:
    return Event(T0 + n, kind, "web", f"container/web-{n}", f"event {n}", {"attempt": n})


def test_append_then_read_round_trips(tmp_path):
    log = EventLog.in_data_dir(tmp_path)
    events = [make(1), make(2, "probe_failed"), Event(T0 + 3.5, "backend_down", message="docker@b down")]
    for event in events:
        log.append(event)
    assert log.read() == events
    assert (tmp_path / "events.jsonl").exists()


def test_read_since_and_limit(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    for n in range(10):
        log.append(make(n))
    assert [e.details["attempt"] for e in log.read(since=T0 + 7)] == [7, 8, 9]
    assert [e.details["attempt"] for e in log.read(since="2026-01-01T10:00:08Z")] == [8, 9]
    assert [e.details["attempt"] for e in log.read(limit=2)] == [8, 9]
    assert log.read(limit=0) == []


def test_record_stamps_the_clock(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", clock=lambda: T0 + 42)
    event = log.record("scale", "3 -> 5 replicas (cpu 92% > 60%)", workload="api",
                       details={"from": 3, "to": 5})
    assert event.time == T0 + 42
    assert log.read() == [event]
    assert format_event(event) == "2026-01-01T10:00:42.000Z  scale         api  3 -> 5 replicas (cpu 92% > 60%)"


def test_events_are_immutable_and_kinds_are_checked():
    event = make(1)
    with pytest.raises(TypeError):
        event.details["attempt"] = 9  # type: ignore[index]
    with pytest.raises(ValueError, match="lower-case"):
        Event(T0, "Probe Failed")


def test_a_torn_line_is_skipped_and_later_events_survive(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.append(make(1))
    with open(log.path, "ab") as handle:
        handle.write(b'{"time": "2026-01-01T10:00:02Z", "kind": "resta')  # writer killed here
    log.append(make(3))
    assert [e.details["attempt"] for e in log.read()] == [1, 3]


def test_rotation_keeps_one_old_file(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", max_bytes=2000)
    for n in range(60):
        log.append(make(n))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1", "events.jsonl.lock"]
    assert log.path.stat().st_size < 2000 + 500
    kept = [e.details["attempt"] for e in log.read()]
    assert kept == list(range(kept[0], 60))  # newest kept, in order, none missing in between
    assert 0 < kept[0]  # the oldest were dropped with the second rotation


_WRITER = textwrap.dedent(
    """
    import sys
    from console.eventlog import EventLog, Event
    log = EventLog(sys.argv[1], max_bytes=int(sys.argv[3]))
    for n in range(300):
        log.append(Event(1767261600.0 + n, "probe_failed", "w" + sys.argv[2], None, "x" * 200))
    """
)


def test_concurrent_writers_only_ever_rotate_a_full_file(tmp_path):
    """Two processes appending (and so rotating) at once: the kept old file is always one that
    was full, never a fresh one renamed by a second, late rotation; order is kept per writer."""
    path = tmp_path / "events.jsonl"
    max_bytes = 30000
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(i), str(max_bytes)],
                                cwd=REPO) for i in range(2)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    log = EventLog(path, max_bytes=max_bytes)
    assert os.path.getsize(log.old_path) >= max_bytes  # ~180 kB written: it rotated several times
    events = log.read()
    for workload in ("w0", "w1"):
        times = [e.time for e in events if e.workload == workload]
        assert times == sorted(set(times))  # in order, no duplicates
    assert len(events) >= max_bytes // 300


# --- following ------------------------------------------------------------------------------


class Follower:
    """Runs `log.follow()` in a thread, collecting events in a queue."""

    def __init__(self, log: EventLog, from_start: bool = False) -> None:
        self.stop = threading.Event()
        self.events: queue.Queue[Event] = queue.Queue()
        self.ready = threading.Event()

        def run() -> None:
            stream = log.follow(from_start=from_start, poll_interval=0.02, stop=self.stop)
            self.ready.set()
            for event in stream:
                self.events.put(event)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def take(self, count: int) -> list[int]:
        """The attempt numbers of the next `count` events, skipping start-up markers (-1)."""
        taken: list[int] = []
        while len(taken) < count:
            attempt = self.events.get(timeout=30).details["attempt"]
            if attempt != -1:
                taken.append(attempt)
        return taken

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def _wait_until_following(log: EventLog, follower: Follower) -> None:
    """The follower reads from the end of the file as it was when it opened it; a marker event
    appended after that tells us it is in place."""
    follower.ready.wait(timeout=30)
    while True:
        log.append(make(-1))
        try:
            event = follower.events.get(timeout=0.2)
        except queue.Empty:
            continue
        if event.details["attempt"] == -1:
            return  # later markers still on their way are skipped by take()


def test_follow_sees_new_events_only(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    log.append(make(0))
    follower = Follower(log)
    try:
        _wait_until_following(log, follower)
        log.append(make(1))
        log.append(make(2))
        assert follower.take(2) == [1, 2]
    finally:
        follower.close()


def test_follow_from_start_on_a_log_that_does_not_exist_yet(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    follower = Follower(log, from_start=True)
    try:
        follower.ready.wait(timeout=30)
        log.append(make(1))
        assert follower.take(1) == [1]
    finally:
        follower.close()


def test_follow_waits_for_a_line_being_written(tmp_path, monkeypatch):
    reads = []  # the follower's reads of the log, counted around the real reader

    def counted_read(handle, offset):
        found = read_jsonl_from(handle, offset)
        reads.append(offset)
        return found

    monkeypatch.setattr(eventlog, "read_jsonl_from", counted_read)
    log = EventLog(tmp_path / "events.jsonl")
    log.append(make(0))
    follower = Follower(log, from_start=True)
    try:
        assert follower.take(1) == [0]
        line = ('{"time":"2026-01-01T10:00:05Z","kind":"restart","workload":"web","target":null,'
                '"message":"","details":{"attempt":5}}\n')
        with open(log.path, "a") as handle:
            handle.write(line[:30])
            handle.flush()
            # Two more reads: the second began after the half line was on disk.
            seen, deadline = len(reads), time.monotonic() + 30  # a hang guard
            while len(reads) < seen + 2:
                assert time.monotonic() < deadline, "the follower stopped reading the log"
                time.sleep(0.01)
            assert follower.events.empty()
            handle.write(line[30:])
        assert follower.take(1) == [5]
    finally:
        follower.close()


def test_follow_continues_across_rotation(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", max_bytes=1500)
    follower = Follower(log, from_start=True)
    try:
        for n in range(30):  # several rotations while following
            log.append(make(n))
            if n % 5 == 4:
                # Let the follower keep up; it can only miss what was rotated away twice.
                assert follower.take(5) == list(range(n - 4, n + 1))
    finally:
        follower.close()


def test_follow_starts_over_after_truncation(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    for n in range(5):
        log.append(make(n))
    follower = Follower(log, from_start=True)
    try:
        assert follower.take(5) == [0, 1, 2, 3, 4]
        with open(log.path, "r+") as handle:
            handle.truncate(0)
        log.append(make(7))  # shorter than what was read: the follower starts over
        assert follower.take(1) == [7]
    finally:
        follower.close()
