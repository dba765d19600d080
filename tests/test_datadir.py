"""The data folder: where it is, atomic writes (also under SIGKILL), JSON lines, the lock."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from console.datadir import (
    FileLock,
    LockHeld,
    append_jsonl,
    atomic_write,
    backup_path,
    data_dir,
    describe_holder,
    lock_holder,
    read_jsonl,
    read_jsonl_from,
)

REPO = Path(__file__).resolve().parents[1]


# --- where the folder is --------------------------------------------------------------------


def test_rtm_data_dir_wins_and_is_created_private(tmp_path):
    chosen = tmp_path / "a" / "b"
    env = {"RTM_DATA_DIR": str(chosen), "XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    assert data_dir(env) == chosen
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o700


def test_xdg_state_home_then_home(tmp_path):
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}
    assert data_dir(env) == tmp_path / "state" / "rtm-console"
    env = {"HOME": str(tmp_path / "home")}
    assert data_dir(env) == tmp_path / "home" / ".local" / "state" / "rtm-console"


def test_relative_xdg_state_home_is_ignored_as_the_spec_says(tmp_path):
    env = {"XDG_STATE_HOME": "relative/state", "HOME": str(tmp_path)}
    assert data_dir(env) == tmp_path / ".local" / "state" / "rtm-console"


def test_existing_folder_keeps_its_permissions(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)
    data_dir({"RTM_DATA_DIR": str(folder)})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750


# --- atomic_write ---------------------------------------------------------------------------


def test_atomic_write_replaces_content_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "spec.yaml"
    atomic_write(target, "first\n")
    atomic_write(target, b"second\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_atomic_write_keeps_the_file_mode(tmp_path):
    target = tmp_path / "script.sh"
    target.write_text("old")
    os.chmod(target, 0o751)
    atomic_write(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o751


def test_keep_previous_leaves_the_old_version_beside_the_new(tmp_path):
    target = tmp_path / "web.yaml"
    atomic_write(target, "v1", keep_previous=True)
    assert not backup_path(target).exists()  # nothing to keep on the first write
    atomic_write(target, "v2", keep_previous=True)
    atomic_write(target, "v3", keep_previous=True)
    assert target.read_text() == "v3"
    assert (tmp_path / "web.yaml~").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.yaml", "web.yaml~"]


def test_failed_write_keeps_the_old_file_with_simulated_disk_error(tmp_path, monkeypatch):
    target = tmp_path / "keep.txt"
    atomic_write(target, "precious")

    def disk_error(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_error)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, "replacement", keep_previous=True)
    monkeypatch.undo()
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_write_refuses_data_that_is_not_text_or_bytes(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write(target, "precious")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # type: ignore[arg-type]
    assert target.read_text() == "precious"


_WRITER = textwrap.dedent(
    """
    import sys
    from console.datadir import atomic_write

    target, size = sys.argv[1], int(sys.argv[2])

    def content(version):
        body = (f"{version:08d}" * (size // 8))[:size]
        return f"version {version}\\n{body}\\nend {version}\\n"

    version = 0
    atomic_write(target, content(version), keep_previous=True)
    print("ready", flush=True)
    while True:
        version += 1
        atomic_write(target, content(version), keep_previous=True)
    """
)


def _expected(version: int, size: int) -> str:
    body = (f"{version:08d}" * (size // 8))[:size]
    return f"version {version}\n{body}\nend {version}\n"


def test_atomic_writes_survive_a_kill_mid_write(tmp_path):
    """SIGKILL a process that rewrites a 2 MB file in a loop, at random moments, many times:
    the file (and its kept previous version) is always one complete version, never partial."""
    target = tmp_path / "state.txt"
    size = 2 * 1024 * 1024
    rng = random.Random(1234)
    killed_mid_write = 0
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target), str(size)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        for path in (target, backup_path(target)):
            if not path.exists():
                continue
            text = path.read_text()
            header = text.split("\n", 1)[0]
            assert header.startswith("version ") and header[8:].isdigit(), \
                f"{path.name} starts with {header[:40]!r}: a partial write"
            assert text == _expected(int(header[8:]), size), f"{path.name} holds a partial write"
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".bak"))]
        killed_mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
    print(f"kills that landed mid-write: {killed_mid_write} of 20")


# --- JSON lines -----------------------------------------------------------------------------


def test_append_and_read_jsonl_round_trip(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1, "text": "héllo"})
    append_jsonl(log, {"n": 2, "nested": {"a": [1, 2]}})
    assert read_jsonl(log) == [{"n": 1, "text": "héllo"}, {"n": 2, "nested": {"a": [1, 2]}}]
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    append_jsonl(log, {"n": 2})
    with open(log, "ab") as handle:
        handle.write(b'{"n": 3, "text": "cut in the mid')  # the writer was killed here
    assert read_jsonl(log) == [{"n": 1}, {"n": 2}]
    append_jsonl(log, {"n": 4})  # later writers carry on; only the torn record is lost
    assert read_jsonl(log) == [{"n": 1}, {"n": 2}, {"n": 4}]


def test_read_jsonl_of_a_missing_file_is_empty(tmp_path):
    assert read_jsonl(tmp_path / "none.jsonl") == []


def test_read_jsonl_from_waits_for_the_line_to_be_complete(tmp_path):
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"n": 1})
    with open(log, "ab") as writer:
        writer.write(b'{"n": ')
        writer.flush()
        with open(log, "rb") as reader:
            records, offset = read_jsonl_from(reader, 0)
            assert records == [{"n": 1}]
            writer.write(b"2}\n")
            writer.flush()
            records, offset = read_jsonl_from(reader, offset)
            assert records == [{"n": 2}]
            assert offset == log.stat().st_size


_APPENDER = textwrap.dedent(
    """
    import sys
    from console.datadir import append_jsonl
    path, writer = sys.argv[1], int(sys.argv[2])
    for n in range(400):
        append_jsonl(path, {"writer": writer, "n": n, "pad": "x" * 1500})
    """
)


def test_lines_from_concurrent_processes_never_interleave(tmp_path):
    log = tmp_path / "shared.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, str(log), str(i)], cwd=REPO)
        for i in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    data = log.read_bytes()
    assert data.endswith(b"\n")
    # Every line parses on its own. (A blank line can appear where an append started while
    # another was still being copied in: see append_jsonl; readers skip blank lines.)
    records = [json.loads(line) for line in data.split(b"\n") if line]
    assert len(records) == 1600
    for i in range(4):
        assert [r["n"] for r in records if r["writer"] == i] == list(range(400))


# --- the lock -------------------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from console.datadir import FileLock
    lock = FileLock(sys.argv[1], role="agent")
    print("got" if lock.acquire() else "busy", flush=True)
    time.sleep(600)
    """
)


def test_lock_is_exclusive_across_processes_and_names_its_holder(tmp_path):
    lock_path = tmp_path / "agent.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_path)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "got"
        mine = FileLock(lock_path, role="console")
        assert mine.acquire() is False
        info = lock_holder(lock_path)
        assert info["pid"] == holder.pid
        assert info["role"] == "agent"
        assert info["host"] and info["started"].endswith("Z")
        assert f"agent pid {holder.pid}" in describe_holder(info)
        with pytest.raises(LockHeld) as raised:
            with FileLock(lock_path):
                pass
        assert raised.value.holder["pid"] == holder.pid
        # A second process asking at the same time is refused too.
        busy = subprocess.run([sys.executable, "-c", _HOLDER.replace("time.sleep(600)", ""),
                               str(lock_path)], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert busy.stdout.strip() == "busy"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # The kernel drops the lock of a killed holder: no stale lock.
    assert lock_holder(lock_path) is None
    mine = FileLock(lock_path, role="console")
    assert mine.acquire() is True
    assert lock_holder(lock_path)["role"] == "console"
    mine.release()
    assert lock_holder(lock_path) is None
    assert lock_path.exists()  # never deleted: see FileLock


def test_lock_holder_of_a_missing_lock_file_is_nobody(tmp_path):
    assert lock_holder(tmp_path / "none.lock") is None
    assert describe_holder(None) == "nobody"
