"""Backends added to a running poller (the console adds all but the host's after its first
paint): each is pending at once, then polled and published like the others; names stay unique."""

from __future__ import annotations

import pytest

from console.poller import Poller
from tests.test_poller import LONG, CountingTestBackend, make_poller, polls_of  # noqa: F401 (a fixture)


def test_a_backend_added_to_a_running_poller_is_pending_then_polled(make_poller) -> None:
    first = CountingTestBackend("first")
    poller, recorder = make_poller([first], interval=LONG)
    recorder.wait_for(polls_of("first", 1))
    later = CountingTestBackend("later")
    poller.add([later])
    assert poller.latest().backends["later"].availability.state == "pending"
    state = recorder.wait_for(polls_of("later", 1))
    assert [r.name for r in state.items("functions")] == ["first-fn", "later-fn"]
    assert first.polls == 1  # adding one does not poll the others again
    assert "rtm-poller:later" in later.threads
    poller.set_interval("later", LONG)  # it takes part in everything the others do
    poller.refresh_now("later")
    recorder.wait_for(polls_of("later", 2))


def test_a_backend_added_before_start_starts_with_the_others(make_poller) -> None:
    poller, recorder = make_poller([CountingTestBackend("first")], start=False, interval=LONG)
    poller.add([CountingTestBackend("later")])
    poller.start()
    recorder.wait_for(lambda state: polls_of("first", 1)(state) and polls_of("later", 1)(state))


def test_added_names_must_be_new() -> None:
    poller = Poller([CountingTestBackend("fn")])
    with pytest.raises(ValueError, match="repeated: fn"):
        poller.add([CountingTestBackend("fn")])
    with pytest.raises(ValueError, match="repeated: other"):
        poller.add([CountingTestBackend("other"), CountingTestBackend("other")])
    assert list(poller.latest().backends) == ["fn"]
