"""A function's code folder as both function backends read it: its regular files, sorted, with
their executable bits, caches and version-control folders left out, and symlinks followed only
when they resolve inside the folder (AWS Lambda's zip and the local runtime's store hold the
target's content there; a link that dangles, loops or leaves the folder is refused)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")

FileEntry = tuple[str, bool, Any]  # (relative posix path, executable, () -> bytes)


class CodeError(ValueError):
    """The spec's code is missing, unreadable, unsafe (a link or zip member escaping its folder) or too big."""


def folder_files(root: Path) -> Iterator[FileEntry]:
    """The folder's files in walk order (callers sort), each read only when asked."""
    real_root = root.resolve()
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in [*dirs, *names]:
            if os.path.islink(os.path.join(folder, name)):
                _check_link(Path(folder) / name, root, real_root)
        for name in sorted(names):
            if name.endswith(SKIPPED_SUFFIXES):
                continue
            full = Path(folder) / name
            try:
                mode = full.stat().st_mode
            except OSError as exc:
                raise CodeError(f"{full}: cannot be read ({exc.strerror})") from exc
            if not stat.S_ISREG(mode):
                continue
            yield full.relative_to(root).as_posix(), bool(mode & 0o111), full.read_bytes


def _check_link(link: Path, root: Path, real_root: Path) -> None:
    """A symlink in a code folder is followed only when it resolves to a file or folder inside it
    (Lambda's zip of the folder would hold the target's content there, so the local copy does)."""
    target = os.readlink(link)
    hint = "copy what it points to into the folder, or remove the link"
    try:
        real = link.resolve(strict=True)
    except FileNotFoundError:
        raise CodeError(f'{link}: a symlink to "{target}", which does not exist; {hint}') from None
    except (RuntimeError, OSError) as exc:  # ELOOP (Python 3.11 raises RuntimeError for a loop)
        raise CodeError(f'{link}: a symlink to "{target}" that loops ({getattr(exc, "strerror", None) or exc}); {hint}') from None
    if not real.is_relative_to(real_root):
        raise CodeError(f'{link}: a symlink to "{target}", outside the code folder {root}; {hint}')
    if real.is_dir() and link.parent.resolve().is_relative_to(real):
        raise CodeError(f'{link}: a symlink to "{target}", a folder that contains it (a loop); {hint}')
