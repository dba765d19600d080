"""HTTP basic auth against the bcrypt hashes of a web config.

bcrypt is slow on purpose (tens of milliseconds per check at cost 10), and Prometheus sends the
same credentials on every scrape, so successful checks are cached, as exporter-toolkit does: the
key is a salted SHA-256 of user and password (the password itself is never kept). Failures are
not cached: a stream of distinct wrong passwords would push the scraper's entry out. One bcrypt
check runs at a time (exporter-toolkit's bcrypt mutex), so guessing keeps at most one core busy
and the other routes, which never check a password, keep answering. An unknown user is checked
against a dummy hash of the same cost, so the answer takes as long as for a known one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

CACHE_SIZE = 1024


class BasicAuthChecker:
    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        cost = next((hashed.split("$")[2] for hashed in users.values()), None)  # "$2b$COST$..."
        self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(int(cost))) if cost else b""
        self._salt = os.urandom(16)
        self._cache: OrderedDict[bytes, None] = OrderedDict()  # keys of credentials that passed
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries the credentials of a configured user."""
        credentials = parse_basic(authorization)
        if credentials is None or not self._users:
            return False
        user, password = credentials
        key = hmac.new(self._salt, user.encode() + b"\0" + password.encode(), hashlib.sha256).digest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
        hashed = self._users.get(user)
        try:
            with self._bcrypt_lock:
                matches = bcrypt.checkpw(password.encode(), hashed if hashed is not None else self._dummy)
        except ValueError:  # a hash bcrypt cannot read (checked at load, so unexpected)
            matches = False
        if not (matches and hashed is not None):
            return False
        with self._lock:
            self._cache[key] = None
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return True


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from `Basic BASE64(user:password)`, or None if it is not that."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None
