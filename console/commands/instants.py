"""One rule for instants in every `--json` output and in `describe`: epoch seconds (UTC).

Backends describe some moments as their runtimes write them (Docker's `StartedAt`, a local
function's `deployed_at`, Lambda's `LastModified`); the CLI turns each of those into a number.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

# Keys that hold a moment: time, *_at, last_*, next_*, started, boot_time.
INSTANT_KEY = re.compile(r"^(time|started|boot_time|.+_at|last_.+|next_.+)$")
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def epoch_instants(value: Any, key: str = "") -> Any:
    """`value` with every ISO 8601 string under an instant's key replaced by epoch seconds
    (None for a zero time such as Docker's `0001-01-01T00:00:00Z`, never started)."""
    if isinstance(value, dict):
        return {k: epoch_instants(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [epoch_instants(item, key) for item in value]
    if isinstance(value, datetime):
        return value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()
    if isinstance(value, str) and INSTANT_KEY.match(key) and ISO_INSTANT.match(value):
        return _epoch(value)
    return value


def _epoch(text: str) -> float | str | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # not a moment after all: left as written
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = moment.timestamp()
    return seconds if seconds > 0 else None
