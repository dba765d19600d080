"""What the local runtime keeps of a ServerlessRuntime spec, and the code it names.

A `FunctionDefinition` is the part of a spec the local runtime acts on (runtime, handler, limits,
environment, triggers) as a plain value that round-trips through JSON, so the store can keep it
beside each version and `plan` can compare the live version with a spec field by field.

Only Python handlers run locally, on the interpreter running rtm-console: `python3.12` in a spec
runs on whatever Python 3 this is (the plan says so when the minor versions differ). Other
runtimes are refused with `UnsupportedRuntime`.

The code is a folder or a .zip next to the spec. `CodeSource.sha256` hashes the files' relative
paths, executable bits and contents (never timestamps, never `__pycache__`), so a folder and a
zip of the same files hash alike and re-applying unchanged code is recognised as unchanged.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from backends.code_folder import SKIPPED_DIRS, CodeError, FileEntry, folder_files
from rtm.cron import parse_schedule
from rtm.kinds.serverless import ServerlessRuntime

MIB = 1024 * 1024
# Lambda's limit on unzipped code; a bigger folder is almost surely the wrong folder.
MAX_CODE_BYTES = 250 * MIB


class UnsupportedRuntime(ValueError):
    """The spec's runtime cannot run on the local runtime (anything but python3.x)."""


@dataclass(frozen=True)
class TriggerDefinition:
    type: Literal["http", "cron"]
    method: str = "ANY"  # http: upper-case method or ANY
    path: str | None = None  # http
    schedule: str | None = None  # cron: as written in the spec (Unix, cron(...) or rate(...))

    def describe(self) -> str:
        """As FunctionInfo shows triggers: "http POST /api/x", "cron 0 0 * * *"."""
        return f"http {self.method} {self.path}" if self.type == "http" else f"cron {self.schedule}"

    def to_json(self) -> dict[str, Any]:
        if self.type == "http":
            return {"type": "http", "method": self.method, "path": self.path}
        return {"type": "cron", "schedule": self.schedule}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriggerDefinition:
        if data["type"] == "http":
            return cls("http", method=str(data["method"]), path=str(data["path"]))
        return cls("cron", schedule=str(data["schedule"]))


@dataclass(frozen=True)
class FunctionDefinition:
    """One function as the local runtime runs it."""

    name: str
    runtime: str  # as the spec says, e.g. "python3.12"
    handler: str  # "module.function"
    timeout_seconds: float
    memory_bytes: int
    environment: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    triggers: tuple[TriggerDefinition, ...]
    code_sha256: str

    @property
    def memory_mb(self) -> int:
        return self.memory_bytes // MIB

    @property
    def environment_map(self) -> dict[str, str]:
        return dict(self.environment)

    def http_triggers(self) -> tuple[TriggerDefinition, ...]:
        return tuple(t for t in self.triggers if t.type == "http")

    def cron_triggers(self) -> tuple[TriggerDefinition, ...]:
        return tuple(t for t in self.triggers if t.type == "cron")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runtime": self.runtime,
            "handler": self.handler,
            "timeout_seconds": self.timeout_seconds,
            "memory_bytes": self.memory_bytes,
            "environment": dict(self.environment),
            "triggers": [t.to_json() for t in self.triggers],
            "code_sha256": self.code_sha256,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionDefinition:
        return cls(
            name=str(data["name"]),
            runtime=str(data["runtime"]),
            handler=str(data["handler"]),
            timeout_seconds=float(data["timeout_seconds"]),
            memory_bytes=int(data["memory_bytes"]),
            environment=tuple(sorted((str(k), str(v)) for k, v in data["environment"].items())),
            triggers=tuple(TriggerDefinition.from_json(t) for t in data["triggers"]),
            code_sha256=str(data["code_sha256"]),
        )

    def differences(self, other: FunctionDefinition) -> tuple[tuple[str, Any, Any], ...]:
        """(field, self's value, other's value) for each field that differs; code by hash."""
        mine, theirs = self.to_json(), other.to_json()
        return tuple((key, mine[key], theirs[key]) for key in mine if mine[key] != theirs[key])


@dataclass(frozen=True)
class CodeSource:
    path: Path
    kind: Literal["folder", "zip"]
    sha256: str
    size_bytes: int  # unzipped


def check_runtime(runtime: str) -> str:
    """A note for the plan when the interpreter differs from the spec's runtime; raises
    UnsupportedRuntime for anything but Python."""
    if not runtime.startswith("python3"):
        raise UnsupportedRuntime(
            f'runtime "{runtime}" is not supported by the local runtime: it runs Python handlers only '
            "(python3.x, on the interpreter running rtm-console); set functions.target to aws to deploy it to Lambda"
        )
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        return f"{runtime} runs on this machine's {here}"
    return ""


def function_name(spec: ServerlessRuntime, document_name: str | None) -> str:
    name = document_name or spec.name
    if not name:
        raise ValueError("the function has no name: give the document a name: or the spec a name field")
    return name


def definition_from_spec(spec: ServerlessRuntime, name: str, code: CodeSource) -> FunctionDefinition:
    check_runtime(spec.runtime)
    triggers = []
    for trigger in spec.triggers:
        if trigger.type == "http":
            triggers.append(TriggerDefinition("http", method=trigger.method.upper(), path=trigger.path))
        else:
            text = trigger.schedule.text  # type: ignore[union-attr]
            parse_schedule(text)  # validated with the spec already; a stored text must stay parseable
            triggers.append(TriggerDefinition("cron", schedule=text))
    return FunctionDefinition(
        name=name,
        runtime=spec.runtime,
        handler=spec.handler,
        timeout_seconds=float(spec.timeout),
        memory_bytes=int(spec.memory),
        environment=tuple(sorted(spec.environment.items())),
        triggers=tuple(triggers),
        code_sha256=code.sha256,
    )


# ------------------------------------------------------------------------------------ code


def locate_code(spec: ServerlessRuntime, base_dir: Path) -> CodeSource:
    """The spec's code folder or zip (relative to the spec file's folder), hashed."""
    if not spec.code:
        raise CodeError('the spec names no code: add code: "functions/NAME" (a folder or a .zip next to the spec)')
    path = (Path(base_dir) / spec.code).resolve()
    kind, files = _code_files(path, spec.code)
    sha256, size = _digest(path, files)
    return CodeSource(path, kind, sha256, size)


def copy_code(source: Path, destination: Path) -> tuple[str, int]:
    """Write the code's files under `destination` (flushed to disk) and return the hash and size
    of exactly what was written, so a stored version always matches its recorded hash."""
    _kind, files = _code_files(source, str(source))

    def written(entries: Iterator[FileEntry]) -> Iterator[FileEntry]:
        for relative, executable, read in entries:
            data = read()
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            yield relative, executable, (lambda data=data: data)

    return _digest(source, written(iter(files)))


def _code_files(path: Path, named: str) -> tuple[Literal["folder", "zip"], list[FileEntry]]:
    if path.is_dir():
        return "folder", sorted(folder_files(path), key=lambda entry: entry[0])
    if path.is_file() and zipfile.is_zipfile(path):
        return "zip", sorted(_zip_files(path), key=lambda entry: entry[0])
    if path.exists():
        raise CodeError(f"{path} is neither a folder nor a zip file")
    raise CodeError(f"the code {named} does not exist (looked for {path})")


def _digest(path: Path, files: Any) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for relative, executable, read in files:
        data = read()
        size += len(data)
        if size > MAX_CODE_BYTES:
            raise CodeError(f"the code in {path} is over {MAX_CODE_BYTES // MIB} MiB unzipped (Lambda's limit)")
        # Length-prefixed fields, so no two different file sets can hash alike.
        for part in (relative.encode(), b"x" if executable else b"-", data):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest(), size



def folder_digest(folder: Path) -> tuple[str, int]:
    """The hash and size of a code folder's files, as `locate_code` computes them."""
    return _digest(folder, folder_files(folder))


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of each file of a code folder by relative path ("x:" before it when executable)."""
    return {relative: ("x:" if executable else "") + hashlib.sha256(read()).hexdigest()
            for relative, executable, read in folder_files(folder)}


def _zip_files(path: Path) -> Iterator[FileEntry]:
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_CODE_BYTES:
            raise CodeError(f"the code in {path} is over {MAX_CODE_BYTES // MIB} MiB unzipped (Lambda's limit)")
        for member in members:
            relative = safe_member_path(member.filename)
            parts = PurePosixPath(relative).parts
            if any(p in SKIPPED_DIRS for p in parts[:-1]) or relative.endswith(".pyc"):
                continue
            executable = bool((member.external_attr >> 16) & 0o111)
            data = archive.read(member)
            yield relative, executable, (lambda data=data: data)


def safe_member_path(name: str) -> str:
    """A zip member's path, refused if it would land outside the folder it is unpacked into."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise CodeError(f'the zip holds "{name}", which would be unpacked outside its folder')
    return pure.as_posix()
