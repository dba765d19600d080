"""The issue's scenario on the test setup's 3-node swarm (zones b/a/a), end to end through
`rtm-console`, and a worker lost (its link down in its namespace) with Swarm rescheduling its
tasks, seen in the console."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from supervisor_support import wait_for
from test_cli_resources import rtm_console
from test_swarm_cli import affinity, env, ok, running_tasks, service, spec_file  # noqa: F401  (env: the CLI's fixture)

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MI = 1024 * 1024


def test_done_when_apply_nodes_cordon_scale_and_delete(env, swarm, run_id, tmp_path) -> None:
    api = swarm["api"]
    zone_a = [h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z == "a"]
    name = f"{run_id}-done"
    path = spec_file(tmp_path, name, replicas=3, policy=affinity('key: "zone", operator: "In", values: ["a"]'))

    ok(rtm_console(env, "apply", "--yes", str(path)))
    found = service(api, name)
    task = found["Spec"]["TaskTemplate"]
    assert task["Resources"] == {"Limits": {"NanoCPUs": 250_000_000, "MemoryBytes": 32 * MI},
                                 "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 16 * MI}}
    assert task["RestartPolicy"]["Condition"] == "any" and found["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
    first = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 3 and t, what="three running tasks")
    assert set(first.values()) <= set(zone_a)

    nodes = [n for n in json.loads(ok(rtm_console(env, "get", "nodes", "--json")).stdout) if "role" in n]
    assert sorted(n["id"] for n in nodes) == sorted(swarm["hostnames"])

    cordoned = zone_a[-1]
    ok(rtm_console(env, "cordon", cordoned))
    assert {n["Description"]["Hostname"]: n["Spec"]["Availability"] for n in api.nodes()}[cordoned] == "pause"

    ok(rtm_console(env, "scale", "--workload", name, "--replicas", "5"))
    after = wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 5 and t, what="five running tasks")
    assert set(first) <= set(after)  # the three first tasks kept
    new_nodes = {node for task_id, node in after.items() if task_id not in first}
    assert new_nodes == set(zone_a) - {cordoned}  # zone a, and not the paused node

    ok(rtm_console(env, "uncordon", cordoned))
    ok(rtm_console(env, "delete", f"workload/{name}", "--yes"))
    assert service(api, name) is None


@pytest.fixture()
def lost_worker(swarm: dict[str, Any]) -> Iterator[str]:
    """The last worker's hostname; its link in the hub namespace is put back up afterwards."""
    index = len(swarm["hostnames"])
    link = ["ip", "-n", swarm["hub"], "link", "set", f"n{index}-p"]
    yield swarm["hostnames"][-1]
    subprocess.run([*link, "up"], check=True)
    wait_for(lambda: all(n["Status"]["State"] == "ready" for n in swarm["api"].nodes()), what="every node ready again")


def test_a_lost_worker_is_seen_down_and_swarm_reschedules_its_tasks(env, swarm, run_id, tmp_path, lost_worker) -> None:
    name = f"{run_id}-lost"
    path = spec_file(tmp_path, name, replicas=2, policy=affinity('key: "zone", operator: "In", values: ["a"]'))
    ok(rtm_console(env, "apply", "--yes", str(path)))
    wait_for(lambda: (t := running_tasks(swarm, name)) and len(t) == 2 and lost_worker in t.values(),
             what=f"a task on {lost_worker} (Swarm spreads the two over the zone-a nodes)", timeout=30)
    subprocess.run(["ip", "-n", swarm["hub"], "link", "set", f"n{len(swarm['hostnames'])}-p", "down"], check=True)

    def seen_down() -> bool:
        nodes = json.loads(ok(rtm_console(env, "get", "nodes", "--json")).stdout)
        return any(n.get("id") == lost_worker and n.get("state") == "down" for n in nodes)

    wait_for(seen_down, what=f"{lost_worker} down in get nodes", timeout=60)

    def rescheduled() -> list[dict[str, Any]] | None:
        rows = [c for c in json.loads(ok(rtm_console(env, "get", "containers", "--json")).stdout) if c["workload"] == name]
        running = [c for c in rows if c["state"] == "running"]
        return running if len(running) == 2 and all(c["labels"]["rtm.swarm.node"] != lost_worker for c in running) else None

    running = wait_for(rescheduled, what="both tasks running off the lost worker", timeout=90)
    assert {c["labels"]["rtm.swarm.node"] for c in running} <= {h for h, z in zip(swarm["hostnames"], swarm["zones"]) if z == "a"}
    ok(rtm_console(env, "delete", f"workload/{name}", "--yes"))
