"""How many connections the exporter serves at once, and which one gives way when all are taken.

Each connection is served by a thread of its own, so open connections cost threads. At most
`limit` are served at once. A connection waiting for its next request (a keep-alive
connection between two scrapes, or a new one that has sent nothing yet) is idle; when every
slot is taken, a new connection closes the connection idle the longest, as nginx reuses its
keep-alive connections, so a flood of silent sockets cannot lock a scraper out. A connection
admitted less than FRESH_GRACE ago that has not sent its first request yet is left alone: its
client is about to send it. When no connection can be closed (every slot in the middle of a
request, or just admitted), the new connection waits up to SLOT_WAIT for one to end (a scrape
takes milliseconds, so a burst of scrapers beyond the limit is served, not refused); only when
none can be closed by then is it refused.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

EVICTION_WAIT = 2.0  # seconds the accept loop waits for an evicted connection's thread to end
SLOT_WAIT = 1.0  # seconds a new connection waits, when every slot is mid-request, for one to end
FRESH_GRACE = 0.25  # seconds a new connection may take to send its first request before it can be closed


class Connection:
    """One admitted connection: its socket (the TLS one once wrapped) and since when it is idle."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.admitted_at = time.monotonic()
        self.idle_since: float | None = self.admitted_at  # None while a request is served
        self.served = False  # has begun a request
        self.closing = False

    def closable_from(self) -> float | None:
        """When it may be closed to make room: once idle, but a new connection only after
        FRESH_GRACE (its client is about to send its first request); None while a request is
        served or it is being closed already."""
        if self.idle_since is None or self.closing:
            return None
        return self.idle_since if self.served else self.admitted_at + FRESH_GRACE


class ConnectionSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the connection limit must be at least 1")
        self.limit = limit
        self.evicted = 0
        self.refused = 0
        self._open: set[Connection] = set()
        self._changed = threading.Condition()

    def admit(self, sock: Any) -> Connection | None:
        """A slot for `sock`, closing the longest-idle connection if need be; None if none could
        be closed within SLOT_WAIT."""
        with self._changed:
            if len(self._open) >= self.limit:
                deadline = time.monotonic() + SLOT_WAIT
                while not (len(self._open) < self.limit or self._closable()) and time.monotonic() < deadline:
                    self._changed.wait(self._until_one_is_closable(deadline))
            if len(self._open) >= self.limit:  # none has ended: close the one idle the longest
                closable = self._closable()
                if not closable:
                    self.refused += 1
                    return None
                victim = min(closable, key=lambda c: c.idle_since or 0.0)
                victim.closing = True
                self.evicted += 1
                _shut(victim.sock)  # its thread reads end-of-file and releases the slot
                if not self._changed.wait_for(lambda: len(self._open) < self.limit, EVICTION_WAIT):
                    self.refused += 1
                    return None
            connection = Connection(sock)
            self._open.add(connection)
            return connection

    def _until_one_is_closable(self, deadline: float) -> float:
        """Seconds to wait for a change: until the deadline, or until a connection just admitted
        has had its grace (nothing tells the waiter then, so it looks again)."""
        times = [at for at in (c.closable_from() for c in self._open) if at is not None]
        return max(0.0, min([deadline, *times]) - time.monotonic())

    def _closable(self) -> list[Connection]:
        now = time.monotonic()
        return [c for c in self._open if (at := c.closable_from()) is not None and at <= now]

    def idle(self, connection: Connection) -> None:
        with self._changed:
            connection.idle_since = time.monotonic()
            self._changed.notify_all()  # a new connection may be waiting for a slot to free

    def busy(self, connection: Connection) -> bool:
        """Mark a request as begun; False if the connection is being closed to make room."""
        with self._changed:
            connection.idle_since = None
            connection.served = True
            return not connection.closing

    def release(self, connection: Connection) -> None:
        with self._changed:
            self._open.discard(connection)
            self._changed.notify_all()

    def close_all(self) -> None:
        with self._changed:
            for connection in self._open:
                connection.closing = True
                _shut(connection.sock)

    @property
    def open_count(self) -> int:
        with self._changed:
            return len(self._open)

    @property
    def busy_count(self) -> int:
        """Connections in the middle of a request."""
        with self._changed:
            return sum(1 for c in self._open if c.idle_since is None)


def _shut(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the client
