"""Keys typed while the focus moves are kept back, then handed on in the order typed once the
focus has arrived.

Textual sends a key to the widget focused when the app reads it, but a key that opens or
answers a prompt does its work later, once it has gone up from that widget to the app. Keys
typed right behind it (`:co web-0` Enter `e`, over SSH one burst of bytes) went to the widget
that was about to lose the focus and were lost. A key that moves the focus starts a hold: the
keys after it wait here until the hold's condition is true (checked on the app's own message
loop every few milliseconds), or until it has been checked for MAX_HOLD seconds' worth, so a
condition that never comes true cannot swallow the keyboard. The checks are counted rather
than the clock read, so a console too busy to check (a loaded machine) does not let keys go
before the focus has had its chance to move.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from textual import events
from textual.timer import Timer

MAX_HOLD = 2.0  # seconds
CHECK_EVERY = 0.01  # seconds


class TypeAhead:
    """A mixin of the app: `focus_moves_after(key)` names the keys that start a hold."""

    _held_keys: deque[events.Key] | None = None
    _settled: Callable[[], bool] | None = None
    _checks_left = 0
    _check_queued = False
    _hold_timer: Timer | None = None

    def focus_moves_after(self, key: events.Key) -> Callable[[], bool] | None:
        """When `key` moves the focus: the condition that says it has arrived."""
        return None

    @property
    def holding_keys(self) -> bool:
        return self._settled is not None or bool(self._held_keys)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self.holding_keys:
                self._keys().append(event)
                return
            await self._dispatch_key(event)
            return
        await super().on_event(event)  # type: ignore[misc]

    async def _dispatch_key(self, key: events.Key) -> None:
        settled = self.focus_moves_after(key)
        await super().on_event(key)  # type: ignore[misc]
        if settled is not None:
            self._settled = settled
            self._checks_left = round(MAX_HOLD / CHECK_EVERY)
            if self._hold_timer is None:
                self._hold_timer = self.set_interval(CHECK_EVERY, self._queue_check)  # type: ignore[attr-defined]

    def _queue_check(self) -> None:
        """A timer's callback runs in the timer's own task: the check and the keys it lets go
        run on the app's message loop, one check queued at a time."""
        if not self._check_queued:
            self._check_queued = True
            self.call_later(self._release_if_settled)  # type: ignore[attr-defined]

    async def _release_if_settled(self) -> None:
        self._check_queued = False
        self._checks_left -= 1
        if self._settled is not None and not self._settled() and self._checks_left > 0:
            return
        self._settled = None
        held = self._keys()
        while held and self._settled is None:
            await self._dispatch_key(held.popleft())
        if self._settled is None and self._hold_timer is not None:
            self._hold_timer.stop()
            self._hold_timer = None

    def _keys(self) -> deque[events.Key]:
        if self._held_keys is None:
            self._held_keys = deque()
        return self._held_keys
