"""The poller's threading contract, with test backends named as such (plus the real host).

Synchronisation is by events and conditions; every wait is a generous "eventually within
N seconds", never a timing threshold.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from backends.base import Availability, BackendUnavailable
from backends.host import HostBackend
from backends.records import FunctionInfo, KindSnapshot, NodeInfo
from console.poller import MIN_INTERVAL, Poller, PollState

WAIT = 10.0  # seconds: generous, for a busy two-core machine
LONG = 3600.0  # an interval that never elapses during a test


def function_record(name: str) -> FunctionInfo:
    return FunctionInfo(
        name=name,
        target="local",
        region=None,
        runtime="python3.12",
        handler="app.handler",
        memory_mb=128,
        timeout_seconds=3,
        last_modified=None,
        triggers=(),
        invocations=0,
        errors=0,
        duration=None,
    )


class CountingTestBackend:
    """Answers at once; counts its polls and can be told to fail."""

    kind = "functions"

    def __init__(self, name: str) -> None:
        self.name = name
        self.endpoint = f"test://{name}"
        self.polls = 0
        self.threads: set[str] = set()
        self.fail_with: BaseException | None = None

    def poll(self) -> KindSnapshot:
        self.polls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_with is not None:
            raise self.fail_with
        return KindSnapshot("functions", self.name, (function_record(f"{self.name}-fn"),), 0.0, 0.0)

    def availability(self) -> Availability:
        return Availability(backend="test", endpoint=self.endpoint, state="connected", sandbox=True)

    def close(self) -> None:
        pass


class BlockingTestBackend(CountingTestBackend):
    """poll() blocks until `release` is set: a backend that hangs (forever, if never released)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.entered = threading.Event()
        self.release = threading.Event()

    def poll(self) -> KindSnapshot:
        self.entered.set()
        self.release.wait()
        return super().poll()


class Recorder:
    """A subscriber that keeps every published state and lets a test wait for one."""

    def __init__(self) -> None:
        self.states: list[PollState] = []
        self._cond = threading.Condition()

    def __call__(self, state: PollState) -> None:
        with self._cond:
            self.states.append(state)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[PollState], bool], timeout: float = WAIT) -> PollState:
        with self._cond:
            found = self._cond.wait_for(
                lambda: bool(self.states) and predicate(self.states[-1]), timeout
            )
            assert found, f"no published state matched within {timeout} s"
            return self.states[-1]


def polls_of(name: str, at_least: int) -> Callable[[PollState], bool]:
    return lambda state: state.backends[name].polls >= at_least


@pytest.fixture
def make_poller() -> Iterator[Callable[..., tuple[Poller, Recorder]]]:
    """Build started pollers with a recorder; stop them and release blocked backends after."""
    made: list[tuple[Poller, list]] = []

    def make(backends: list, start: bool = True, **options) -> tuple[Poller, Recorder]:
        poller = Poller(backends, **options)
        recorder = Recorder()
        poller.subscribe(recorder)
        made.append((poller, backends))
        if start:
            poller.start()
        return poller, recorder

    yield make
    for poller, backends in made:
        for backend in backends:
            if isinstance(backend, BlockingTestBackend):
                backend.release.set()
        poller.stop(timeout=WAIT)


def test_others_keep_publishing_while_one_backend_hangs(make_poller) -> None:
    hung = BlockingTestBackend("hung")
    lively = CountingTestBackend("lively")
    poller, recorder = make_poller([hung, lively], interval=MIN_INTERVAL)
    assert hung.entered.wait(WAIT)
    state = recorder.wait_for(polls_of("lively", 3))
    assert state.backends["hung"].polls == 0
    assert state.backends["hung"].snapshot is None
    assert state.backends["hung"].availability.state == "pending"
    assert state.backends["lively"].availability.state == "connected"
    assert lively.threads == {"rtm-poller:lively"}


def test_refresh_now_polls_at_once_instead_of_waiting_for_the_interval(make_poller) -> None:
    backend = CountingTestBackend("fn")
    poller, recorder = make_poller([backend], interval=LONG)
    recorder.wait_for(polls_of("fn", 1))
    poller.refresh_now("fn")
    recorder.wait_for(polls_of("fn", 2))
    poller.refresh_now()  # every backend
    recorder.wait_for(polls_of("fn", 3))


def test_refresh_during_a_poll_runs_one_more_poll_after_it(make_poller) -> None:
    backend = BlockingTestBackend("slow")
    poller, recorder = make_poller([backend], interval=LONG)
    assert backend.entered.wait(WAIT)
    backend.entered.clear()
    poller.refresh_now("slow")  # asked while the first poll runs: that poll started too early
    poller.refresh_now("slow")  # repeated requests are coalesced
    backend.release.set()
    recorder.wait_for(polls_of("slow", 2))
    assert backend.entered.is_set()


def test_set_interval_changes_the_cadence_at_once(make_poller) -> None:
    backend = CountingTestBackend("fn")
    poller, recorder = make_poller([backend], interval=LONG)
    recorder.wait_for(polls_of("fn", 1))
    assert poller.set_interval("fn", 0.01) == MIN_INTERVAL  # clamped to the lower bound
    state = recorder.wait_for(polls_of("fn", 3))  # the waiting worker picked up the new cadence
    assert state.backends["fn"].interval == MIN_INTERVAL
    poller.set_interval("fn", LONG)
    assert poller.latest().backends["fn"].interval == LONG


def test_stop_returns_within_its_timeout_even_with_a_hung_backend(make_poller, caplog) -> None:
    hung = BlockingTestBackend("hung")
    lively = CountingTestBackend("lively")
    poller, recorder = make_poller([hung, lively], interval=MIN_INTERVAL)
    assert hung.entered.wait(WAIT)
    recorder.wait_for(polls_of("lively", 1))
    outcome: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="rtm.poller"):
        stopper = threading.Thread(target=lambda: outcome.append(poller.stop(timeout=0.2)))
        stopper.start()
        stopper.join(WAIT)
    assert not stopper.is_alive(), "stop() did not return"
    assert outcome == [False]  # not every worker ended: the hung one was abandoned
    assert any("hung" in r.getMessage() and "abandoned" in r.getMessage() for r in caplog.records)
    # The hung worker took stop()'s whole timeout: the others were told to stop and end on
    # their own, which the test waits for instead of taking a look at once.
    others = [t for t in threading.enumerate() if t.name in ("rtm-poller:lively", "rtm-poller-watchdog")]
    for thread in others:
        thread.join(WAIT)
    assert not [thread.name for thread in others if thread.is_alive()]
    assert "rtm-poller:hung" in {thread.name for thread in threading.enumerate()}  # still inside poll(), as a daemon thread
    # When the hung call finally returns, the stopped poller publishes nothing more.
    published = len(recorder.states)
    hung.release.set()
    for thread in threading.enumerate():
        if thread.name == "rtm-poller:hung":
            thread.join(WAIT)
    assert len(recorder.states) == published


def test_stop_ends_every_worker_and_returns_true(make_poller) -> None:
    backends = [CountingTestBackend("a"), CountingTestBackend("b")]
    poller, recorder = make_poller(backends, interval=MIN_INTERVAL)
    recorder.wait_for(lambda s: s.backends["a"].polls >= 1 and s.backends["b"].polls >= 1)
    assert poller.stop(timeout=WAIT) is True
    names = {thread.name for thread in threading.enumerate()}
    assert not {"rtm-poller:a", "rtm-poller:b", "rtm-poller-watchdog"} & names


def test_workers_are_named_daemon_threads(make_poller) -> None:
    poller, recorder = make_poller([CountingTestBackend("fn")], interval=LONG)
    recorder.wait_for(polls_of("fn", 1))
    workers = {t.name: t for t in threading.enumerate() if t.name.startswith("rtm-poller")}
    assert set(workers) == {"rtm-poller:fn", "rtm-poller-watchdog"}
    assert all(thread.daemon for thread in workers.values())


def test_subscribers_get_every_snapshot_and_one_failing_does_not_stop_others(
    make_poller, caplog
) -> None:
    def broken(state: PollState) -> None:
        raise ValueError("subscriber bug")

    backend = CountingTestBackend("fn")
    poller = Poller([backend], interval=MIN_INTERVAL)
    poller.subscribe(broken)
    seen = Recorder()
    unsubscribe = poller.subscribe(seen)
    with caplog.at_level(logging.ERROR, logger="rtm.poller"):
        poller.start()
        try:
            seen.wait_for(polls_of("fn", 3))
            # One backend publishes from one thread: every version arrives, in order.
            versions = [state.version for state in seen.states]
            assert versions == list(range(1, len(versions) + 1))
            assert all(state.version <= poller.latest().version for state in seen.states)
            # After unsubscribing, a later publish reaches other subscribers only.
            unsubscribe()
            later = Recorder()
            poller.subscribe(later)
            # A publish that reaches `later` began after the unsubscribe, and the one thread
            # that publishes has finished every publish before it (one may have been handing
            # its state to `seen` while it unsubscribed): count from there.
            first = later.wait_for(lambda state: True)
            count = len(seen.states)
            later.wait_for(polls_of("fn", first.backends["fn"].polls + 2))
            assert len(seen.states) == count
        finally:
            poller.stop(timeout=WAIT)
    failures = [r for r in caplog.records if r.name == "rtm.poller" and "subscriber" in r.getMessage()]
    assert failures and failures[0].exc_info is not None


def test_ready_once_every_backend_answered_success_or_failure(make_poller) -> None:
    slow = BlockingTestBackend("slow")
    failing = CountingTestBackend("failing")
    failing.fail_with = RuntimeError("boom")
    poller, recorder = make_poller([slow, failing], start=False, interval=LONG)
    assert not poller.ready()  # nothing polled before start
    poller.start()
    recorder.wait_for(polls_of("failing", 1))
    assert not poller.ready()  # the slow one has not answered yet
    assert poller.wait_ready(timeout=0.05) is False
    slow.release.set()
    assert poller.wait_ready(timeout=WAIT) is True
    assert poller.ready()
    assert poller.latest().backends["failing"].error == "RuntimeError: boom"


def test_a_poll_past_poll_timeout_shows_as_unreachable_until_it_returns(make_poller) -> None:
    hung = BlockingTestBackend("hung")
    poller, recorder = make_poller([hung], interval=LONG, poll_timeout=0.2)
    state = recorder.wait_for(lambda s: s.backends["hung"].error is not None)
    hung_state = state.backends["hung"]
    assert hung_state.availability.state == "unreachable"
    assert "poll() has not returned" in hung_state.error
    assert hung_state.polls == 0
    assert poller.ready()  # declared failed: consumers waiting for readiness may go on
    hung.release.set()
    state = recorder.wait_for(polls_of("hung", 1))
    assert state.backends["hung"].error is None
    assert state.backends["hung"].availability.state == "connected"


def test_an_erroring_backend_shows_its_error_and_recovers_with_fake_clock(make_poller, caplog) -> None:
    now = [1000.0]
    backend = CountingTestBackend("fn")
    with caplog.at_level(logging.INFO, logger="rtm.poller"):
        poller, recorder = make_poller([backend], interval=LONG, clock=lambda: now[0])
        good = recorder.wait_for(polls_of("fn", 1)).backends["fn"]
        assert good.error is None and good.polled_at == 1000.0
        assert good.age(1002.5) == 2.5

        # An unexpected exception: one line on screen, the traceback in the log.
        backend.fail_with = RuntimeError("socket closed\nwhile reading")
        poller.refresh_now("fn")
        failed = recorder.wait_for(polls_of("fn", 2)).backends["fn"]
        assert failed.error == "RuntimeError: socket closed while reading"
        assert failed.availability.state == "unreachable"
        assert failed.snapshot == good.snapshot  # the last good snapshot is kept
        now[0] = 1010.0
        assert failed.age(now[0]) == 10.0  # and it is getting stale
        logged = [r for r in caplog.records if r.name == "rtm.poller" and r.exc_info]
        assert logged and "socket closed" in str(logged[0].exc_info[1])

        # A typed unavailability: its availability report is shown as is.
        down = Availability("test", backend.endpoint, "unreachable", "connection refused", "start it")
        backend.fail_with = BackendUnavailable(down)
        poller.refresh_now("fn")
        unavailable = recorder.wait_for(polls_of("fn", 3)).backends["fn"]
        assert unavailable.error == "connection refused"
        assert unavailable.availability == down

        backend.fail_with = None
        poller.refresh_now("fn")
        recovered = recorder.wait_for(polls_of("fn", 4)).backends["fn"]
        assert recovered.error is None
        assert recovered.availability.state == "connected"
        assert recovered.polled_at == 1010.0 and recovered.age(1010.0) == 0.0


def test_items_gathers_records_of_a_kind_across_backends(make_poller) -> None:
    one, two = CountingTestBackend("one"), CountingTestBackend("two")
    poller, recorder = make_poller([one, HostBackend(), two], interval=LONG)
    state = recorder.wait_for(lambda s: all(b.polls >= 1 for b in s.backends.values()))
    assert [f.name for f in state.items("functions")] == ["one-fn", "two-fn"]
    (node,) = state.items("nodes")
    assert isinstance(node, NodeInfo)
    assert state.items("vms") == ()
    assert [b.name for b in state.of_kind("functions")] == ["one", "two"]


def test_published_states_are_immutable_values(make_poller) -> None:
    backend = CountingTestBackend("fn")
    poller, recorder = make_poller([backend], interval=LONG)
    first = recorder.wait_for(polls_of("fn", 1))
    poller.refresh_now("fn")
    recorder.wait_for(polls_of("fn", 2))
    assert first.backends["fn"].polls == 1  # an old state never changes under its reader
    with pytest.raises(TypeError):
        first.backends["fn"] = first.backends["fn"]  # type: ignore[index]


def test_names_are_checked() -> None:
    with pytest.raises(ValueError, match="repeated: fn"):
        Poller([CountingTestBackend("fn"), CountingTestBackend("fn")])
    poller = Poller([CountingTestBackend("fn")])
    with pytest.raises(KeyError, match="no backend named 'other'"):
        poller.refresh_now("other")
    with pytest.raises(KeyError):
        poller.set_interval("other", 5)


def test_poller_and_host_backend_import_no_ui_and_no_heavy_sdk() -> None:
    code = (
        "import sys, console.poller, backends.host;"
        "print(sorted(m for m in ('textual', 'docker', 'libvirt', 'boto3') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
