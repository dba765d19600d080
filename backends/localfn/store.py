"""The local function store: every deployed version of every function, in the data folder.

Layout under `DATA/functions/`:

    index.json                 the current version of each function (what the runtime serves)
    .lock                      held (flock) while a deploy or delete changes the store
    NAME/versions/N/code/      the function's files for version N
    NAME/versions/N/function.json   its definition and when it was deployed

A deploy builds the new version in a staging folder beside the versions, renames it into place
(a folder rename is atomic), then replaces `index.json` atomically. A crash at any point leaves
either the old index (the half-built version is ignored and cleaned up later) or the new one,
never a function pointing at missing code. The index is the single source of truth that a
hosting runtime watches (`stamp()`), whether the deploy came from its own process or from
`rtm-console apply` in another one.

The newest `keep_versions` versions are kept (old warm workers may still be finishing a request
on one); `delete` removes the function from the index first, then its folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backends.files import atomic_write, ensure_private_dir
from backends.localfn.definition import CodeError, CodeSource, FunctionDefinition, copy_code, file_hashes, folder_digest

STORE_FOLDER = "functions"
INDEX_NAME = "index.json"
INDEX_FORMAT = 1


class StoredCodeChanged(Exception):
    """A version's stored code no longer matches the hash recorded when it was deployed."""

    def __init__(self, stored: StoredFunction, what: str) -> None:
        super().__init__(
            f"the stored code of function/{stored.name} version {stored.version} was changed after it was deployed "
            f"({what}), so it is not run; store a fresh copy with rtm-console apply on its spec "
            f"(the stored copy is {stored.code_dir})")
        self.stored = stored


class FunctionNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f'no local function is named "{name}"')
        self.name = name

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError otherwise
        return str(self.args[0])


@dataclass(frozen=True)
class StoredFunction:
    """One stored version of a function: its definition and where its code is."""

    definition: FunctionDefinition
    version: int
    deployed_at: float  # epoch seconds
    code_dir: Path
    source: str  # the code's path when it was deployed, for people

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def key(self) -> tuple[str, int]:
        return self.name, self.version

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": self.definition.to_json(),
            "version": self.version,
            "deployed_at": self.deployed_at,
            "source": self.source,
        }


class FunctionStore:
    def __init__(self, data_dir: Path | str, keep_versions: int = 5) -> None:
        if keep_versions < 1:
            raise ValueError("keep_versions must be at least 1")
        self.root = Path(data_dir) / STORE_FOLDER
        self.keep_versions = keep_versions

    # ------------------------------------------------------------------------------ reading

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    def stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the index is replaced (one stat; cheap enough for every request)."""
        try:
            info = os.stat(self.index_path)
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def current(self) -> dict[str, StoredFunction]:
        """The current version of every function, by name."""
        try:
            raw = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            return {}
        return {name: self._stored(entry) for name, entry in sorted(raw.get("functions", {}).items())}

    def get(self, name: str) -> StoredFunction:
        found = self.current().get(name)
        if found is None:
            raise FunctionNotFound(name)
        return found

    def versions(self, name: str) -> list[StoredFunction]:
        """Every kept version of a function, oldest first."""
        versions = []
        for number in self._version_numbers(name):
            try:
                raw = json.loads((self._version_dir(name, number) / "function.json").read_bytes())
            except (FileNotFoundError, ValueError):
                continue  # a version being pruned, or a crash's leftover
            versions.append(self._stored(raw))
        return versions

    def _stored(self, entry: dict[str, Any]) -> StoredFunction:
        definition = FunctionDefinition.from_json(entry["definition"])
        version = int(entry["version"])
        return StoredFunction(definition, version, float(entry["deployed_at"]),
                              self._version_dir(definition.name, version) / "code", str(entry.get("source", "")))

    def _version_dir(self, name: str, version: int) -> Path:
        return self.root / name / "versions" / str(version)

    def _version_numbers(self, name: str) -> list[int]:
        try:
            entries = os.listdir(self.root / name / "versions")
        except FileNotFoundError:
            return []
        return sorted(int(entry) for entry in entries if entry.isdigit())

    # ------------------------------------------------------------------------------ changing

    def deploy(self, definition: FunctionDefinition, code: CodeSource, now: float | None = None) -> StoredFunction:
        """Store `definition` with a copy of its code as the function's next version, and make
        it current. The stored hash is that of the files actually copied."""
        with self._locked():
            versions = self.root / definition.name / "versions"
            versions.mkdir(parents=True, exist_ok=True)
            _remove_staging_leftovers(versions)
            index = self._read_index()
            latest = max([0, *self._version_numbers(definition.name)])
            number = max(latest, int(index.get(definition.name, {}).get("version", 0))) + 1
            staging = versions / f".staging-{secrets.token_hex(6)}"
            try:
                staging.mkdir()
                sha256, _size = copy_code(code.path, staging / "code")
                stored = StoredFunction(
                    replace(definition, code_sha256=sha256),
                    number, time.time() if now is None else now, versions / str(number) / "code", str(code.path))
                record = {**stored.to_json(), "files": file_hashes(staging / "code")}
                atomic_write(staging / "function.json", json.dumps(record, indent=1))
                os.rename(staging, versions / str(number))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            index[definition.name] = stored.to_json()
            self._write_index(index)
            self._prune(definition.name, keep_at_least=number)
            return stored

    def delete(self, name: str) -> int:
        """Remove a function and all its versions; returns how many versions were removed."""
        with self._locked():
            index = self._read_index()
            if name not in index:
                raise FunctionNotFound(name)
            count = len(self._version_numbers(name))
            del index[name]
            self._write_index(index)
            folder = self.root / name
            if folder.exists():
                # Renamed first so the name is free at once, even if removing the files is slow.
                trash = self.root / f".deleted-{name}-{secrets.token_hex(4)}"
                os.rename(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            return count

    def _prune(self, name: str, keep_at_least: int) -> None:
        numbers = self._version_numbers(name)
        for number in numbers[: max(0, len(numbers) - self.keep_versions)]:
            if number < keep_at_least:
                shutil.rmtree(self._version_dir(name, number), ignore_errors=True)

    def _read_index(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.index_path.read_bytes())
        except FileNotFoundError:
            return {}
        return dict(raw.get("functions", {}))

    def _write_index(self, functions: dict[str, Any]) -> None:
        atomic_write(self.index_path, json.dumps({"format": INDEX_FORMAT, "functions": dict(sorted(functions.items()))}, indent=1))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, across threads and processes (each call opens its own
        descriptor, and flock excludes separate descriptors even within one process)."""
        ensure_private_dir(self.root)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # drops the lock


class CodeVerifier:
    """Checks a version's stored code against the hash recorded at deploy before a worker loads it.

    A function runs as the same user as rtm-console and could rewrite its own stored files. The
    full hash is computed once per version; later checks compare each file's inode, size and
    change time (ctime cannot be set back by a process), and hash again only when one moved.
    """

    def __init__(self) -> None:
        self._verified: dict[Path, tuple] = {}
        self._lock = threading.Lock()
        self.full_checks = 0

    def check(self, stored: StoredFunction) -> None:
        """Raise StoredCodeChanged when the stored code differs from what was deployed."""
        signature = _stat_signature(stored.code_dir)
        with self._lock:
            if self._verified.get(stored.code_dir) == signature:
                return
        self.full_checks += 1
        try:
            actual, _size = folder_digest(stored.code_dir)
        except (CodeError, OSError) as exc:
            raise StoredCodeChanged(stored, str(exc)) from exc
        if actual != stored.definition.code_sha256:
            raise StoredCodeChanged(stored, _what_changed(stored))
        with self._lock:
            self._verified[stored.code_dir] = signature

    def intact(self, stored: StoredFunction) -> bool:
        try:
            self.check(stored)
        except StoredCodeChanged:
            return False
        return True


def _stat_signature(folder: Path) -> tuple:
    entries = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted([*dirs, *names]):
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            entries.append((root, name, info.st_ino, info.st_size, info.st_mode, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(entries)


def _what_changed(stored: StoredFunction) -> str:
    try:
        recorded = json.loads((stored.code_dir.parent / "function.json").read_bytes())["files"]
        now = file_hashes(stored.code_dir)
    except (OSError, ValueError, KeyError, CodeError):
        return "its files differ from the recorded hash"
    changed = sorted(name for name in recorded.keys() & now.keys() if recorded[name] != now[name])
    added, removed = sorted(now.keys() - recorded.keys()), sorted(recorded.keys() - now.keys())
    parts = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
             for label, names in (("modified", changed), ("added", added), ("removed", removed)) if names]
    return "; ".join(parts) or "its files differ from the recorded hash"


def _remove_staging_leftovers(versions: Path) -> None:
    for entry in versions.iterdir():
        if entry.name.startswith(".staging-"):
            shutil.rmtree(entry, ignore_errors=True)
