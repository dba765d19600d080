"""Cron triggers fire on schedule, with a clock the tests move by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backends.localfn.handler import LocalFunctionsHandler
from backends.localfn.functions_host import LocalFunctionsRuntime
from backends.localfn.cron_triggers import CronJob, CronScheduler
from localfn_support import spec_document, wait_until, write_function


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_jobs_fire_when_their_time_comes_with_fake_clock() -> None:
    clock = FakeClock(at("2026-03-02 08:59:00"))
    fired: list[tuple[str, datetime]] = []
    scheduler = CronScheduler(lambda job, when: fired.append((job.schedule, when)), clock=clock)
    scheduler.set_jobs([CronJob("report", "0 9 * * 1-5", "report-cron-1"),
                        CronJob("sweep", "cron(0/15 * * * ? *)", "sweep-cron-1"),
                        CronJob("poll", "rate(5 minutes)", "poll-cron-1")])
    assert scheduler.tick() == []
    clock.advance(seconds=59)
    assert fired == []
    clock.advance(seconds=1)  # 09:00 on a Monday
    scheduler.tick()
    assert sorted(fired) == [("0 9 * * 1-5", at("2026-03-02 09:00")), ("cron(0/15 * * * ? *)", at("2026-03-02 09:00")),
                             ("rate(5 minutes)", at("2026-03-02 09:00"))]
    fired.clear()
    clock.advance(minutes=5)
    scheduler.tick()
    assert fired == [("rate(5 minutes)", at("2026-03-02 09:05"))]
    assert scheduler.jobs()[CronJob("report", "0 9 * * 1-5", "report-cron-1")] == at("2026-03-03 09:00")


def test_missed_fire_times_fire_once_not_once_each_with_fake_clock() -> None:
    clock = FakeClock(at("2026-03-02 08:00:30"))
    fired: list[datetime] = []
    scheduler = CronScheduler(lambda job, when: fired.append(when), clock=clock)
    scheduler.set_jobs([CronJob("poll", "*/5 * * * *", "poll-cron-1")])
    clock.advance(hours=1)  # the machine slept through twelve fire times
    scheduler.tick()
    assert fired == [at("2026-03-02 08:05")]
    assert scheduler.jobs()[CronJob("poll", "*/5 * * * *", "poll-cron-1")] == at("2026-03-02 09:05")


def test_a_new_job_never_fires_for_times_before_it_existed_and_a_kept_job_keeps_its_time_with_fake_clock() -> None:
    clock = FakeClock(at("2026-03-02 08:59:59"))
    fired: list[str] = []
    scheduler = CronScheduler(lambda job, when: fired.append(job.function), clock=clock)
    hourly = CronJob("hourly", "0 * * * *", "hourly-cron-1")
    scheduler.set_jobs([hourly])
    clock.advance(seconds=2)  # 09:00:01, due but not ticked yet
    scheduler.set_jobs([hourly, CronJob("late", "0 * * * *", "late-cron-1")])
    scheduler.tick()
    assert fired == ["hourly"]  # "late" arrived after 09:00: its first time is 10:00


def test_a_deployed_cron_trigger_runs_the_function_with_a_scheduled_event_with_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-01-01 23:59:30"))
    runtime = LocalFunctionsRuntime(tmp_path / "data", "127.0.0.1", 0, clock=clock)
    runtime.start()
    try:
        handler = LocalFunctionsHandler(tmp_path / "data", runtime.url, runtime=runtime, clock=clock)
        write_function(tmp_path / "nightly", """
            import json
            def handler(event, context):
                print(json.dumps(event))
                return "done"
        """)
        document, base = spec_document(tmp_path, "nightly", code="nightly", triggers="""
            - type: cron
              schedule: "0 0 * * *"
        """)
        lines = handler.apply(document, base, handler.plan(document, base), progress=lambda line: None)
        assert "schedule 0 0 * * *, next 2026-01-02T00:00:00Z" in lines
        runtime.routes()  # the runtime notices the deploy
        job = CronJob("nightly", "0 0 * * *", "nightly-cron-1")
        assert runtime.scheduler.jobs() == {job: at("2026-01-02 00:00")}

        clock.advance(seconds=31)
        runtime.scheduler.wake()

        def recorded():
            runtime.log.refresh()
            return runtime.log.recent("nightly")
        records = wait_until(recorded)
        assert len(records) == 1
        record = records[0]
        assert record.trigger == "cron 0 0 * * *" and record.outcome == "ok"
        event = json.loads(record.log_lines[0])
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["time"] == "2026-01-02T00:00:00Z"
        assert event["resources"] == ["arn:aws:events:local:000000000000:rule/nightly-cron-1"]
        assert runtime.scheduler.jobs() == {job: at("2026-01-03 00:00")}

        handler.delete("nightly")
        runtime.routes()
        assert runtime.scheduler.jobs() == {}  # deleting the function removes its schedule
    finally:
        runtime.stop()
