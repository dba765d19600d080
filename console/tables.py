"""Table columns, shared by the console's panes and the CLI, and the CLI's plain-text tables:
aligned columns, no colour, safe to pipe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: the console's panes use key, label and numeric (right-aligned, sorted
    by number); a CLI table's column also has its cell, read from a record."""

    key: str
    label: str
    numeric: bool = False
    cell: Callable[[Any], Any] | None = None

    @classmethod
    def cli(cls, key: str, cell: Callable[[Any], Any]) -> Column:
        return cls(key, key.upper(), cell=cell)


def format_records(columns: Sequence[Column], records: Sequence[Any]) -> str:
    """A CLI table of records, one row each, from the columns' cells."""
    return format_table([c.key for c in columns], [[c.cell(r) if c.cell else None for c in columns] for r in records])


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def human_bytes(value: float | None) -> str | None:
    if value is None:
        return None
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return None


def percent(ratio: float | None) -> str | None:
    return None if ratio is None else f"{ratio * 100:.1f}%"


def duration(seconds: float | None, with_seconds: bool = True) -> str | None:
    """Uptime-style: 45s, 3m12s, 5h4m, 2d3h; without seconds after the first minute (3m) when
    `with_seconds` is false, so a live cell changes at most once a minute."""
    if seconds is None:
        return None
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s" if with_seconds else f"{minutes}m"
    return f"{secs}s"
