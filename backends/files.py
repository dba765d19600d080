"""Durable files: writes that survive a crash or a kill at any instant, and file locks.

- `atomic_write` replaces a whole file: readers see the complete old or the complete new
  content, never a mix, even if the writer dies half-way.
- `append_jsonl` adds one JSON record as one line with a single `write()` on an `O_APPEND`
  descriptor, so records from several processes never interleave (see the function's notes).
- `FileLock` is the one file written in place: an flock() lock must stay on the same inode, so
  its holder information is rewritten in the locked file, and readers only trust it while the
  lock is held.

Used by the data folder (console/datadir.py) and by backends that keep state of their own
(the local functions store), so there is one implementation of each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if missing; a folder we create is readable by us only.

    An existing folder keeps the permissions its owner gave it.
    """
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; make it exact
    return path


# --- whole-file replacement ---------------------------------------------------------------


def atomic_write(path: Path | str, data: bytes | str, keep_previous: bool = False) -> None:
    """Replace the file at `path` with `data` so that no reader ever sees a partial file.

    The data goes to a temporary file in the same folder (so the final rename stays on one
    filesystem), is flushed to disk, then renamed over the target with `os.replace`, and the
    folder itself is flushed so the rename survives a power cut. A file that already exists
    keeps its permission bits; a new one gets the usual umask-filtered 0666.

    With `keep_previous`, the version being replaced stays beside it as `NAME~` (the spec
    editor's safety net). The backup is made by hard link, so it is the exact old inode and
    costs no copy; on filesystems without hard links it is copied atomically instead.
    """
    path = Path(path)
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write takes text or bytes, not {type(data).__name__}")
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = path.parent
    try:
        old_mode: int | None = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        old_mode = None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fchmod(tmp.fileno(), old_mode if old_mode is not None else 0o666 & ~_umask())
            os.fsync(tmp.fileno())
        if keep_previous and old_mode is not None:
            _keep_backup(path)
        os.replace(tmp_name, path)
    except BaseException:
        _remove_quietly(tmp_name)
        raise
    _fsync_dir(folder)


def backup_path(path: Path | str) -> Path:
    """Where `atomic_write(..., keep_previous=True)` keeps the previous version."""
    path = Path(path)
    return path.with_name(path.name + "~")


def _keep_backup(path: Path) -> None:
    backup = backup_path(path)
    link_name = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.bak")
    try:
        os.link(path, link_name)
    except OSError:
        # No hard links here (some network or FUSE filesystems): copy, still atomically.
        atomic_write(backup, path.read_bytes())
        return
    try:
        os.replace(link_name, backup)
    except BaseException:
        _remove_quietly(link_name)
        raise


def _umask() -> int:
    # There is no way to read the umask without setting it; restore it at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(dir_fd)


def _remove_quietly(name: str | Path) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


# --- JSON lines -----------------------------------------------------------------------------


def encode_jsonl(record: Mapping[str, Any]) -> bytes:
    """One record as one JSON line (compact, UTF-8, newline-terminated)."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return (text + "\n").encode("utf-8")


def append_jsonl(path: Path | str, record: Mapping[str, Any]) -> None:
    """Append `record` to the JSON-lines file at `path` as one line.

    The whole line is handed to the kernel in a single `write()` on a descriptor opened with
    `O_APPEND`, so the seek-to-end and the write happen as one step: lines written by several
    processes at once never interleave. POSIX promises this outright only for writes of at most
    PIPE_BUF bytes (4096 on Linux); records are kept far below that. Linux also serialises
    longer writes to a regular file, so a longer line is still whole unless the disk fills up.
    A writer killed during the write can leave a torn last line: readers skip it, and the
    next append starts on a new line so its own record stays whole.
    """
    line = encode_jsonl(record)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not _ends_with_newline(fd):
            # A writer was killed mid-line: start on a fresh line so this record is not glued
            # to the torn one. (If another write was merely in flight, this costs a blank line.)
            line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            # Only a full disk or a signal can cut a regular-file write short; finish the line
            # so the file stays line-structured rather than silently losing the tail.
            _write_all(fd, line[written:])
    finally:
        os.close(fd)


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Every record in a JSON-lines file, oldest first; a missing file has none.

    A torn last line (a writer killed mid-write) or any other line that is not a complete JSON
    object is skipped, so one bad line never hides the rest of the log.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    return list(_decode_lines(data.split(b"\n")))


def read_jsonl_from(handle: Any, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Records from complete lines after `offset` in an open binary file, and the new offset.

    A last line without its newline is not consumed (it may still be being written); the
    returned offset stops before it, so the next call reads it once it is whole.
    """
    handle.seek(offset)
    data = handle.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    complete = data[: end + 1]
    return list(_decode_lines(complete.split(b"\n"))), offset + len(complete)


def _decode_lines(lines: list[bytes]) -> Iterator[dict[str, Any]]:
    for raw in lines:
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


# --- locks ------------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive(path: Path | str) -> Iterator[None]:
    """Wait for, then hold, an exclusive flock on `path` (created if absent): one writer at a
    time for a read-modify-write of a file that several processes and threads update."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the flock


class LockHeld(RuntimeError):
    """Raised by `FileLock.__enter__` when another process holds the lock."""

    def __init__(self, path: Path, holder: dict[str, Any] | None) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path} is held by {describe_holder(holder)}")


class FileLock:
    """An exclusive, non-blocking lock on a file, with who-holds-it information.

    Based on flock(): the kernel drops the lock when the holder exits or is killed, so a
    crashed agent never leaves a stale lock behind. The lock file is never deleted (deleting a
    flock file lets two processes lock two different inodes of the same name); on release its
    holder information is cleared instead.
    """

    def __init__(self, path: Path | str, role: str = "agent") -> None:
        self.path = Path(path)
        self.role = role
        self._fd: int | None = None
        self._info: dict[str, Any] = {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another holder has it. Never waits."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        self._info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": iso_utc(time.time()),
            "role": self.role,
        }
        self.publish()
        return True

    def publish(self, **details: Any) -> None:
        """Add details to the holder information others read (e.g. the address it serves)."""
        if self._fd is None:
            return
        self._info.update(details)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(self._info).encode("utf-8"), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> FileLock:
        if not self.acquire():
            raise LockHeld(self.path, lock_holder(self.path))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_holder(path: Path | str) -> dict[str, Any] | None:
    """Who holds the lock at `path` ({pid, host, started, role}), or None if nobody does.

    A holder that is still writing its details shows as an empty dict.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raw = os.pread(fd, 4096, 0)
            try:
                info = json.loads(raw) if raw else {}
            except ValueError:
                info = {}
            return info if isinstance(info, dict) else {}
        fcntl.flock(fd, fcntl.LOCK_UN)  # we could lock it, so nobody holds it
        return None
    finally:
        os.close(fd)


def describe_holder(holder: Mapping[str, Any] | None) -> str:
    """One line for people, e.g. 'agent pid 4242 on web-01 since 2026-01-01T10:00:00Z'."""
    if holder is None:
        return "nobody"
    if not holder:
        return "a process that is starting"
    return (
        f"{holder.get('role', 'process')} pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')} since {holder.get('started', '?')}"
    )


# --- timestamps in records ------------------------------------------------------------------


def iso_utc(epoch_seconds: float) -> str:
    """A record timestamp: ISO 8601 in UTC with milliseconds, e.g. 2026-01-01T10:00:00.123Z."""
    moment = datetime.fromtimestamp(epoch_seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Epoch seconds from an ISO 8601 timestamp; one without a zone is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
