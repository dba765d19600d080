"""`rtm-console scale --workload NAME --replicas N` asks before creating more than 50 replicas at
once, as `apply` does: through the action gate, `--yes` answers it, and without a terminal the
scale is refused with the hint (real Docker engine, a real `rtm-console` process)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisor_support import labels_yaml
from test_docker_support import remove_all

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parent.parent


def _specs(tmp_path: Path, name: str, image: str, labels: dict[str, str]) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / f"{name}.yaml").write_text(f"""name: {name}
ContainerRuntime:
  base_image: "{image}"
  labels: {labels_yaml(labels)}
  command: ["sleep", "3600"]
  resources: {{limits: {{cpu: "50m", memory: "16Mi"}}}}
AutoScalingPolicy:
  horizontal: {{min_replicas: 1, max_replicas: 100, target_cpu_utilization: 50}}
""")
    return specs


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "RTM_DATA_DIR": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("RTM_CONFIG", None)
    return env


def _scale(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console.cli", "scale", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=_env(tmp_path), cwd=REPO, timeout=600)


def _created(docker_client, name: str) -> list[str]:
    return [c.name for c in docker_client.containers.list(all=True, filters={"label": f"rtm.workload={name}"})]


def test_a_scale_up_by_more_than_50_is_refused_without_a_terminal_then_yes_answers_it(tmp_path, docker_client, test_image, test_labels, run_id):
    name = f"{run_id}-many"
    specs = _specs(tmp_path, name, test_image, test_labels)
    try:
        refused = _scale(tmp_path, "--workload", name, "--specs", str(specs), "--replicas", "51")
        assert refused.returncode == 1, refused.stderr
        assert "no terminal to confirm it on; pass --yes" in refused.stdout
        assert "(it creates 51 replicas at once (more than 50))" in refused.stdout
        assert _created(docker_client, name) == []

        done = _scale(tmp_path, "--workload", name, "--specs", str(specs), "--replicas", "51", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "done: 0 -> 51 replicas" in done.stdout
        assert len(_created(docker_client, name)) == 51
    finally:
        remove_all(docker_client, f"rtm.workload={name}")


def test_on_a_terminal_the_question_names_the_count_and_no_keeps_everything(tmp_path, docker_client, test_image, test_labels, run_id):
    name = f"{run_id}-ask"
    specs = _specs(tmp_path, name, test_image, test_labels)
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "console.cli", "scale", "--workload", name, "--specs", str(specs), "--replicas", "60"],
                               stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=_env(tmp_path), cwd=REPO, text=True)
    os.close(follower)
    try:
        seen = b""
        deadline = time.monotonic() + 120
        while b"[y/N]" not in seen and time.monotonic() < deadline and process.poll() is None:
            if select.select([leader], [], [], 1.0)[0]:
                seen += os.read(leader, 4096)
        assert f"Scale workload/{name} from 0 to 60? It creates 60 replicas at once (more than 50). [y/N]".encode() in seen
        os.write(leader, b"n\n")
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 1
        assert "not confirmed" in out
        assert _created(docker_client, name) == []
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
        remove_all(docker_client, f"rtm.workload={name}")
