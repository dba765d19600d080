"""The test setup's 3-node swarm (scripts/services.sh): three Ready nodes with their own
hostnames, zones b/a/a and the test image on each; `down-swarm` leaves no namespace, link,
cgroup or process behind, and `up-swarm` brings it back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest
from fixtures import services_dir

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent


def test_three_ready_nodes_with_hostnames_zones_and_the_image(swarm: dict[str, Any], test_image: str) -> None:
    nodes = {n["Description"]["Hostname"]: n for n in swarm["api"].nodes()}
    assert sorted(nodes) == sorted(swarm["hostnames"]) and len(nodes) == 3
    assert [nodes[h]["Spec"]["Labels"]["zone"] for h in swarm["hostnames"]] == ["b", "a", "a"]
    assert all(n["Status"]["State"] == "ready" for n in nodes.values())
    for engine in [swarm["manager"], *swarm["workers"]]:
        client = docker.APIClient(base_url=engine)
        assert client.inspect_image(test_image)["Id"]
        client.close()


def leftovers() -> list[str]:
    """What a stopped swarm must not leave: its namespaces, its root link, its cgroups, processes
    of its state folder."""
    names = set(os.environ["RTM_TEST_SWARM_NAMESPACES"].split(","))
    found = [f"namespace {ns}" for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
             if ns in names]
    link = os.environ["RTM_TEST_SWARM_ROOT_LINK"]
    if Path(f"/sys/class/net/{link}").exists():
        found.append(f"link {link}")
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/{os.environ['RTM_TEST_SWARM_CGROUP']}-n*")]
    needle = str(services_dir() / "swarm")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(f"process {proc.name}")
        except OSError:
            continue
    return found


def test_down_swarm_leaves_nothing_and_up_swarm_brings_it_back(swarm: dict[str, Any]) -> None:
    owner_file = services_dir() / "pids" / "swarm-n1.owner"
    env = {**os.environ}
    if owner_file.exists():  # stop it as the one who started it, and start it again as them
        env["RTM_SERVICES_OWNER"] = "" if owner_file.read_text().strip() == "manual" else owner_file.read_text().strip()
    script = str(ROOT / "scripts" / "services.sh")
    try:
        subprocess.run([script, "down-swarm"], env=env, check=True, capture_output=True, timeout=120)
        assert leftovers() == []
    finally:
        subprocess.run([script, "up-swarm"], env=env, check=True, capture_output=True, timeout=180)
    assert len(swarm["api"].nodes()) == 3
