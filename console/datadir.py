"""The data folder and the ways rtm-console writes into it.

Everything rtm-console keeps between runs lives in one folder: the audit log, the event log,
the autoscaler's history, the local function store and the agent's lock. It is chosen by
`RTM_DATA_DIR`, else `$XDG_STATE_HOME/rtm-console`, else `~/.local/state/rtm-console`, and is
created private (0700) on first use.

The ways of writing into it safely (atomic replacement, JSON lines, file locks) live in
backends/files.py and are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from backends.files import (  # noqa: F401 - re-exported: the data folder's ways of writing
    LockHeld,
    FileLock,
    append_jsonl,
    atomic_write,
    backup_path,
    describe_holder,
    encode_jsonl,
    ensure_private_dir,
    iso_utc,
    lock_holder,
    parse_iso,
    read_jsonl,
    read_jsonl_from,
)

APP_NAME = "rtm-console"
AGENT_LOCK_NAME = "agent.lock"


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where the data folder is when `RTM_DATA_DIR` is not set (XDG base directory rules)."""
    state_home = env.get("XDG_STATE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if state_home and os.path.isabs(state_home):
        return Path(state_home) / APP_NAME
    return _home(env) / ".local" / "state" / APP_NAME


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The data folder (`RTM_DATA_DIR`, else the XDG default), created 0700 if missing."""
    chosen = env.get("RTM_DATA_DIR", "")
    path = Path(chosen).expanduser() if chosen else default_data_dir(env)
    return ensure_private_dir(path)


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def agent_lock_path(data_dir: Path | str) -> Path:
    """The lock the agent holds while it runs the control loops (one supervisor at a time)."""
    return Path(data_dir) / AGENT_LOCK_NAME


