"""Who the audit log names: the real uid and the SSH client of the login, through real
`rtm-console` processes, whatever USER and SSH_CONNECTION claim."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from console.identity import login_origin, user_name

ROOT = Path(__file__).resolve().parent.parent
CLAIM = {"USER": "mallory", "LOGNAME": "mallory", "SSH_CONNECTION": "198.51.100.7 4242 10.0.0.1 22"}
# A stand-in for OpenSSH's per-connection process: named sshd, holding an established TCP
# connection, running the command it is given as its child.
SIMULATED_SSHD = """
import ctypes, socket, subprocess, sys
ctypes.CDLL(None).prctl(15, b"sshd", 0, 0, 0)  # PR_SET_NAME: /proc/PID/comm now reads sshd
family, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = socket.socket(family)
connection.connect((host, port))
sys.exit(subprocess.run(sys.argv[4:]).returncode)
"""


def uncordon_as(tmp_path: Path, env_changes: dict[str, str], wrapper: list[str] = ()) -> dict:
    """Runs a gated `rtm-console uncordon`, returns its audit record."""
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **env_changes}
    env.pop("RTM_CONFIG", None)
    run = subprocess.run([*wrapper, sys.executable, "-m", "console.cli", "uncordon", "node/nowhere"], cwd=ROOT, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    return record


def test_the_audit_names_the_real_user_and_keeps_the_environment_s_claim_apart(tmp_path) -> None:
    record = uncordon_as(tmp_path, CLAIM)
    assert (record["user"], record["uid"]) == (pwd.getpwuid(os.getuid()).pw_name, os.getuid())
    assert record["origin"] == login_origin(os.getpid())  # this test's own login, not 198.51.100.7
    assert record["origin"] != "198.51.100.7:4242"
    assert record["env_claim"] == CLAIM


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_the_origin_is_the_peer_of_the_simulated_sshd_the_command_runs_under(tmp_path, family, host) -> None:
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen()
        port = listener.getsockname()[1]
        wrapper = [sys.executable, "-c", SIMULATED_SSHD, str(int(family)), host, str(port)]
        record = uncordon_as(tmp_path, CLAIM, wrapper)
    shown = f"[{host}]" if ":" in host else host
    assert record["origin"] == f"{shown}:{port}"  # the kernel's socket table, not SSH_CONNECTION
    assert record["env_claim"]["SSH_CONNECTION"] == CLAIM["SSH_CONNECTION"]


def test_a_uid_without_a_password_entry_is_named_by_its_number() -> None:
    unused = next(uid for uid in range(54321, 60000) if not _has_entry(uid))
    assert user_name(unused) == f"uid {unused}"


def test_an_sshd_ancestor_whose_sockets_cannot_be_read_gives_an_origin_that_says_so_simulated_proc(tmp_path) -> None:
    # A /proc of three processes: 300 (this one) <- 200 (a shell) <- 100 (sshd, another user's:
    # its fd folder cannot be listed, which the real /proc does for a root-run sshd).
    proc = tmp_path / "proc"
    for pid, parent, name in ((300, 200, "rtm-console"), (200, 100, "bash"), (100, 1, "sshd")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(f"{pid} ({name}) S {parent} {pid} {pid} 0 -1 4194304\n")
        (proc / str(pid) / "comm").write_text(f"{name}\n")
    assert login_origin(300, proc) == "ssh (client address unreadable)"
    (proc / "100" / "comm").write_text("agetty\n")
    assert login_origin(300, proc) == "local"


def _has_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
