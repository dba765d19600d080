"""Cordoned nodes: a node (a machine, named by the hostname its runtimes report) that is cordoned
takes no new placements. Kept in the data folder."""

from __future__ import annotations

import json
from pathlib import Path

from backends.files import exclusive
from console.datadir import atomic_write

CORDONS_FILE = "cordons.json"


class CordonStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / CORDONS_FILE

    def cordoned(self) -> set[str]:
        try:
            return set(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return set()
        except (ValueError, TypeError):
            return set()  # a damaged file cordons nothing; the next write repairs it

    def is_cordoned(self, node_id: str) -> bool:
        return node_id in self.cordoned()

    def set(self, node_id: str, cordoned: bool) -> bool:
        """Cordon or uncordon; True when that changed anything. One writer at a time."""
        with exclusive(self.path.with_name(CORDONS_FILE + ".lock")):
            nodes = self.cordoned()
            if (node_id in nodes) == cordoned:
                return False
            nodes.symmetric_difference_update({node_id})
            atomic_write(self.path, json.dumps(sorted(nodes)))
            return True
