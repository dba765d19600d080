"""Silenced alerts: an operator's "I know, stop showing it" for a while, kept in the data folder.

`silences.json` maps an alert's key (`ALERT/SUBJECT`, e.g. `RtmWorkloadCpuAboveTarget/web`) to
when the silence ends, who set it and from where. Every console and the agent read the same
file, so a silence set in one console shows in the others and on the wall screen. A silence
is made through the action gate (`alert.silence`: refused in kiosk mode, audited); expired
ones are dropped on the next write. A file that cannot be read silences nothing and says why.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.datadir import atomic_write, iso_utc
from console.gate import register_action

SILENCES_NAME = "silences.json"
SILENCE = register_action("alert.silence", description="silence a firing alert for a while (kept in the data folder)")


def alert_key(alert: str, subject: str) -> str:
    return f"{alert}/{subject}"


@dataclass(frozen=True)
class Silence:
    key: str
    until: float  # epoch seconds
    user: str = ""
    origin: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"until": iso_utc(self.until), "until_epoch": self.until, "user": self.user, "origin": self.origin}


class SilenceStore:
    """The silences of one data folder. Reads are cached by the file's modification time, so
    asking on every poll costs one stat."""

    def __init__(self, data_dir: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(data_dir) / SILENCES_NAME
        self._clock = clock
        self._cache: tuple[tuple[int, int] | None, dict[str, Silence]] = (None, {})
        self.problem = ""  # why the file could not be read, for the screen

    def add(self, alert: str, subject: str, seconds: float, user: str = "", origin: str = "") -> Silence:
        if seconds <= 0:
            raise ValueError(f"a silence needs a positive duration, not {seconds:g} s")
        now = self._clock()
        silence = Silence(alert_key(alert, subject), now + seconds, user, origin)
        current = {key: s for key, s in self._read().items() if s.until > now}
        current[silence.key] = silence
        atomic_write(self.path, json.dumps({key: s.to_json() for key, s in sorted(current.items())}, indent=2) + "\n")
        return silence

    def active(self) -> Mapping[str, Silence]:
        now = self._clock()
        return {key: s for key, s in self._read().items() if s.until > now}

    def until(self, alert: str, subject: str) -> float | None:
        silence = self.active().get(alert_key(alert, subject))
        return silence.until if silence is not None else None

    def _read(self) -> dict[str, Silence]:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self.problem = ""
            return {}
        except OSError as exc:
            self.problem = f"{self.path}: {exc.strerror or exc}"
            return {}
        stamp = (info.st_mtime_ns, info.st_size)
        if self._cache[0] == stamp:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text())
            found = {str(key): Silence(str(key), float(entry["until_epoch"]), str(entry.get("user", "")),
                                       str(entry.get("origin", "")))
                     for key, entry in data.items()}
            self.problem = ""
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            self.problem = f"{self.path} cannot be read ({exc}); no alert is silenced"
            found = {}
        self._cache = (stamp, found)
        return found
