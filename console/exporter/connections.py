"""How many connections the exporter serves at once, and which one gives way when all are taken.

Each connection is served by a thread of its own, so open connections cost threads. At most
`limit` are served at once. A connection waiting for its next request (a keep-alive
connection between two scrapes, or a new one that has sent nothing yet) is idle; when every
slot is taken, a new connection closes the connection idle the longest, as nginx reuses its
keep-alive connections, so a flood of silent sockets cannot lock a scraper out. Only when every
slot is in the middle of a request is the new connection refused.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

EVICTION_WAIT = 2.0  # seconds the accept loop waits for an evicted connection's thread to end


class Connection:
    """One admitted connection: its socket (the TLS one once wrapped) and since when it is idle."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.idle_since: float | None = time.monotonic()  # None while a request is served
        self.closing = False


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
        """A slot for `sock`, closing the longest-idle connection if need be; None if all are busy."""
        with self._changed:
            if len(self._open) >= self.limit:
                idle = [c for c in self._open if c.idle_since is not None and not c.closing]
                if not idle:
                    self.refused += 1
                    return None
                victim = min(idle, key=lambda c: c.idle_since or 0.0)
                victim.closing = True
                self.evicted += 1
                _shut(victim.sock)  # its thread reads end-of-file and releases the slot
                if not self._changed.wait_for(lambda: len(self._open) < self.limit, EVICTION_WAIT):
                    self.refused += 1
                    return None
            connection = Connection(sock)
            self._open.add(connection)
            return connection

    def idle(self, connection: Connection) -> None:
        with self._changed:
            connection.idle_since = time.monotonic()

    def busy(self, connection: Connection) -> bool:
        """Mark a request as begun; False if the connection is being closed to make room."""
        with self._changed:
            connection.idle_since = None
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
