"""One libvirt connection per URI: opened on first use, reopened after the daemon comes back.

libvirt-python is imported here, lazily, so configuring no libvirt host never loads it. Every
call goes through `LibvirtConnection.call`, which turns a lost or refused connection into
`BackendUnavailable` (URI, cause, what to try) and leaves other libvirt errors to the caller,
which knows what the call meant. In kiosk mode the connection is opened with `openReadOnly`,
so the daemon itself refuses changes: a second wall behind the action gate.
"""

from __future__ import annotations

import logging
import re
import threading
from types import ModuleType
from typing import Any, Callable, TypeVar

from backends.base import Availability, BackendUnavailable, one_line
from backends.libvirt.errors import LibvirtCallError

T = TypeVar("T")
log = logging.getLogger("rtm.backends.libvirt")

SANDBOX_URI = "test:///default"
INSTALL_HINT = "pip install 'rtm-console[libvirt]' (it builds against libvirt-dev with pkg-config and gcc)"

_libvirt: ModuleType | None = None
_import_lock = threading.Lock()


def libvirt_module() -> ModuleType:
    """libvirt-python, imported once, with libvirt's printing of every error to stderr turned
    off (it would scribble over the console; the exceptions carry the same text)."""
    global _libvirt
    with _import_lock:
        if _libvirt is None:
            import libvirt

            libvirt.registerErrorHandler(lambda _context, _error: None, None)
            _libvirt = libvirt
    return _libvirt


def libvirt_installed() -> bool:
    try:
        libvirt_module()
    except ImportError:
        return False
    return True


def is_local_uri(uri: str) -> bool:
    """True for URIs that talk to a daemon on this machine (no host part)."""
    return "://" in uri and uri.split("://", 1)[1].startswith("/")


def hint_for(uri: str, cause: str) -> str:
    """What to try when `uri` cannot be opened, from the cause libvirt gave."""
    text = cause.lower()
    if "permission denied" in text or "authentication" in text:
        return "run as root or as a member of the libvirt group, or use a read-only connection"
    if "+ssh" in uri or ("://" in uri and not is_local_uri(uri)):
        return f"check that `virsh -c {uri} list` works from this machine (host reachable, ssh key accepted, libvirtd running there)"
    if uri.startswith("qemu:///session"):
        return "start the session daemon (`libvirtd --daemon` as this user) or use qemu:///system"
    return "start libvirtd (and virtlogd) on this host, e.g. `libvirtd --daemon`, or install libvirt-daemon-system"


class LibvirtConnection:
    """A libvirt connection to one URI, shared by the poller and the actions (libvirt
    serialises calls on one connection, so threads may share it)."""

    def __init__(self, uri: str, *, read_only: bool = False, sandbox: bool = False,
                 on_open: Callable[[Any], None] | None = None) -> None:
        self.uri = uri
        self.read_only = read_only
        self.sandbox = sandbox
        self._on_open = on_open  # called with each new connection (the sandbox seeds its host)
        self._conn: Any = None
        self._lock = threading.Lock()
        self._state = "pending"
        self._cause = ""
        self._hint = ""

    # --- availability -------------------------------------------------------------------

    def availability(self) -> Availability:
        return Availability(
            backend="libvirt",
            endpoint=self.uri,
            state=self._state,  # type: ignore[arg-type]
            cause=self._cause,
            hint=self._hint,
            sandbox=self.sandbox,
            read_only=self.read_only,
        )

    def _fail(self, state: str, cause: str, hint: str) -> BackendUnavailable:
        self._state, self._cause, self._hint = state, one_line(cause), hint
        return BackendUnavailable(self.availability())

    # --- the connection -----------------------------------------------------------------

    def get(self) -> Any:
        """The open virConnect, opening (or reopening) it if needed."""
        with self._lock:
            if self._conn is not None and self._alive(self._conn):
                return self._conn
            self._drop()
            try:
                libvirt = libvirt_module()
            except ImportError as error:
                raise self._fail("not_installed", f"libvirt-python is not installed ({error})", INSTALL_HINT) from None
            opener = libvirt.openReadOnly if self.read_only else libvirt.open
            try:
                self._conn = opener(self.uri)
            except libvirt.libvirtError as error:
                raise self._fail("unreachable", _message(error), hint_for(self.uri, _message(error))) from None
            if self._on_open is not None and not self.read_only:
                try:
                    self._on_open(self._conn)
                except libvirt.libvirtError as error:
                    # A convenience (the sandbox's seed objects); the connection works without it.
                    log.warning("setting up %s after connecting failed: %s", self.uri, _message(error))
            self._state, self._cause, self._hint = "connected", "", ""
            return self._conn

    def call(self, action: Callable[[Any], T], what: str = "libvirt call") -> T:
        """Runs `action(conn)`. A connection that died under it (daemon stopped, network gone)
        becomes BackendUnavailable; any other libvirtError that `action` let through becomes a
        VmError "<what> failed on <uri>: <libvirt's message>". Errors `action` expects (say,
        "no such volume") it catches itself."""
        conn = self.get()
        libvirt = libvirt_module()
        try:
            return action(conn)
        except libvirt.libvirtError as error:
            if self.lost(conn, error):
                with self._lock:
                    if self._conn is conn:
                        self._drop()
                    raise self._fail("unreachable", f"connection lost: {_message(error)}", hint_for(self.uri, _message(error))) from None
            raise LibvirtCallError(what, self.uri, _message(error)) from None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a dead connection may fail too; it is gone either way
                pass
        self._conn = None

    @staticmethod
    def _alive(conn: Any) -> bool:
        try:
            return bool(conn.isAlive())
        except Exception:
            return False

    def lost(self, conn: Any, error: Exception) -> bool:
        """Whether `error` means the connection itself is gone."""
        libvirt = libvirt_module()
        code = error.get_error_code()  # type: ignore[attr-defined]
        domain = error.get_error_domain()  # type: ignore[attr-defined]
        # Errors of the transport itself; a system error of another domain (a missing disk
        # file, say) is the daemon answering, not the connection failing.
        if code in (libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_NO_CONNECT):
            return True
        if domain in (libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE):
            return True
        return not self._alive(conn)


_QEMU_LOG_PREFIX = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z qemu-system-\w+: ")


def _message(error: Exception) -> str:
    """libvirt's own message without the Python wrapper's prefix, and QEMU's log lines without
    their timestamp and program name."""
    text = error.get_error_message() if hasattr(error, "get_error_message") else None  # type: ignore[attr-defined]
    return one_line(_QEMU_LOG_PREFIX.sub("", text or str(error)))


def error_code(error: Exception) -> int | None:
    return error.get_error_code() if hasattr(error, "get_error_code") else None  # type: ignore[attr-defined]


def error_message(error: Exception) -> str:
    return _message(error)
