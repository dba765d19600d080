"""Executable docs: every command example of README.md, docs/*.md and every command's --help
runs against the test services and does what the docs imply.

Collected: the `examples:` section of `rtm-console --help` and of each command's `--help`, and
every fenced block of the markdown files tagged `sh`, `shell`, `bash` or `console` (in a
`console` block the commands start with `$ ` and the lines after one are its output, each of
which must appear in what it prints). An untagged block whose lines all start with
`rtm-console ` must be tagged (`sh` to run it, `text` for a synopsis or an output), so that a
command cannot hide from this test.

A markdown block is marked with an HTML comment on the line before it:
`<!-- docs-test: skip: WHY -->` (it cannot run here: real AWS, a remote host, this very suite)
or `<!-- docs-test: exit N -->` (the exit code its text implies, when not 0).

Each source (one --help, one block) runs in its own environment: a private data folder and
config folder, free ports in place of the documented 9465 (exporter, agent) and 8790 (functions
gateway), the test Docker engine, the samples' real folder for `sample-specs/`, and a working
folder holding what the examples name: `web.yaml` (the workload `web` on the test image),
`specs/` (that file), `web.yml` (a web config). How each kind of command is checked:

- the interactive console (`rtm-console` with no command): `--help` is added, so that it is
  checked to start up to its argument parsing without taking over the terminal;
- `agent`, `exporter` (without `--check`) and a line ending in `&`: started in the background,
  checked to serve HTTP, left running for the examples after it (a `curl` of its state), then
  stopped with SIGTERM, which must end it with exit 0;
- `-f` / `--follow`: started, and must not end with an error within a few seconds, then stopped;
- everything else: run to its end, its exit code compared with the docs'.

Examples that name the workload `web` get it applied first (an earlier example of the same
source may have deleted it); those that name `function/hello` get an agent hosting the local
functions runtime and the sample function. Containers are labelled and removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from console.cli import build_parser
from fixtures import RUN_LABEL

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-specs"
BIN = Path(sys.executable).parent  # the virtualenv's bin: `rtm-console` as installed
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_LANGUAGES = {"sh", "shell", "bash", "console"}
MARK = re.compile(r"^<!--\s*docs-test:\s*(?:(?P<skip>skip)\s*:?\s*(?P<why>.*?)|exit\s+(?P<code>\d+))\s*-->$")
DOCUMENTED_PORTS = ("9465", "8790")  # exporter.listen, functions.gateway_listen
FOLLOW_GUARD = 4.0  # seconds a follower runs before it is stopped (a hang guard, not a goal)
START_GUARD = 120.0  # seconds a server may take to answer on a loaded machine


@dataclass
class Example:
    command: str
    expect: int = 0
    skip: str | None = None
    shown: list[str] = field(default_factory=list)  # output lines the docs show after it


@dataclass
class Source:
    name: str
    examples: list[Example]


# --------------------------------------------------------------------------------- collecting


def fenced_blocks(path: Path) -> Iterator[tuple[int, str, list[str], str]]:
    """(line number, language, lines, the line before the fence) of each fenced block."""
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^\s*```(\S*)\s*$", lines[index])
        if opening:
            end = index + 1
            while end < len(lines) and not re.match(r"^\s*```\s*$", lines[end]):
                end += 1
            before = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
            yield index + 1, opening.group(1), lines[index + 1:end], before
            index = end
        index += 1


def _without_comment(line: str) -> str:
    """The command of `make run      # what it does` (a `#` after spaces starts a comment)."""
    return re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()


def _block_examples(language: str, lines: list[str], before: str) -> list[Example]:
    mark = MARK.match(before)
    expect = int(mark.group("code")) if mark and mark.group("code") else 0
    skip = (mark.group("why") or "marked") if mark and mark.group("skip") else None
    examples: list[Example] = []
    joined: list[str] = []
    for raw in lines:
        if language == "console" and not raw.startswith("$ "):
            if examples and raw.strip():
                examples[-1].shown.append(raw.strip())
            continue
        line = raw[2:] if language == "console" else raw
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        joined.append(line.rstrip("\\").rstrip())
        if line.rstrip().endswith("\\"):
            continue  # continued on the next line
        examples.append(Example(_without_comment(" ".join(joined)), expect, skip))
        joined = []
    return examples


def markdown_sources() -> list[Source]:
    sources = []
    for path in DOC_FILES:
        for line, language, lines, before in fenced_blocks(path):
            if language in COMMAND_LANGUAGES:
                sources.append(Source(f"{path.relative_to(ROOT)}:{line}", _block_examples(language, lines, before)))
    return sources


def untagged_command_blocks() -> list[str]:
    found = []
    for path in DOC_FILES:
        for line, language, lines, _before in fenced_blocks(path):
            words = [raw.strip() for raw in lines if raw.strip()]
            if not language and words and all(w.startswith("rtm-console ") or w == "rtm-console" for w in words):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    return found


def subcommands() -> dict[str, object]:
    parser = build_parser()
    return dict(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse keeps them there


def help_text_examples(text: str) -> list[Example]:
    """The lines of the `examples:` section; a description after three spaces is left out."""
    if "examples:\n" not in text:
        return []
    section = text.split("examples:\n", 1)[1]
    examples = []
    for line in section.splitlines():
        if not line.startswith("  "):
            break
        examples.append(Example(re.split(r"\s{3,}|\s+#\s", line.strip(), maxsplit=1)[0]))
    return examples


def help_sources() -> list[Source]:
    sources = [Source("rtm-console --help", help_text_examples(build_parser().format_help()))]
    for name, parser in subcommands().items():
        sources.append(Source(f"rtm-console {name} --help", help_text_examples(parser.format_help())))
    return sources


ALL_SOURCES = help_sources() + markdown_sources()


# ------------------------------------------------------------------------------------ running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def web_yaml(image: str, labels: dict[str, str]) -> str:
    label_lines = "".join(f'    {key}: "{value}"\n' for key, value in labels.items())
    return (f'name: web\nreplicas: 1\nContainerRuntime:\n  base_image: "{image}"\n  command: ["sleep", "3600"]\n'
            f'  security: {{user: "1000:1000"}}\n  labels:\n{label_lines}'
            "AutoScalingPolicy:\n  horizontal: {min_replicas: 1, max_replicas: 3, target_cpu_utilization: 70}\n")


class Session:
    """One source's environment: folders, ports, fixture files and the servers it started."""

    def __init__(self, root: Path, image: str, labels: dict[str, str]) -> None:
        self.cwd = root / "work"
        (self.cwd / "specs").mkdir(parents=True)
        (self.cwd / "web.yaml").write_text(web_yaml(image, labels))
        (self.cwd / "specs" / "web.yaml").write_text(web_yaml(image, labels))
        (self.cwd / "web.yml").write_text("basic_auth_users: {}\n")
        (root / "empty-specs").mkdir()
        self.empty_specs = root / "empty-specs"
        self.ports = {documented: str(free_port()) for documented in DOCUMENTED_PORTS}
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "RTM_DATA_DIR": str(root / "data"), "XDG_CONFIG_HOME": str(root / "xdg"),
                    "RTM_SPECS_DIR": str(self.cwd / "specs"), "RTM_FUNCTIONS_TARGET": "local",
                    "RTM_EXPORTER_LISTEN": f"127.0.0.1:{self.ports['9465']}",
                    "RTM_FUNCTIONS_GATEWAY_LISTEN": f"127.0.0.1:{self.ports['8790']}"}
        self.env.pop("RTM_CONFIG", None)
        self.servers: list[subprocess.Popen] = []

    def substitute(self, command: str) -> str:
        command = command.replace("sample-specs/", f"{SAMPLES}/")
        for documented, port in self.ports.items():
            command = re.sub(rf"(?<=:){documented}\b", port, command)
        return command

    def shell(self, command: str, **options) -> subprocess.Popen:
        return subprocess.Popen(["bash", "-c", command], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **options)

    def run(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)

    def ensure_web(self) -> None:
        applied = self.run("rtm-console apply specs/ --yes")
        assert applied.returncode == 0, f"setting up the workload web: {applied.stderr}"

    def host_functions(self) -> str | None:
        """An agent hosting the local functions runtime, and the sample function deployed."""
        failure = self.start_server(f"rtm-console agent --specs {self.empty_specs}", self.ports["9465"])
        applied = self.run(f"rtm-console apply {SAMPLES}/serverless-runtime.yaml")
        return failure or (None if applied.returncode == 0 else f"deploying the sample function: {applied.stderr}")

    def start_server(self, command: str, port: str) -> str | None:
        self.stop_servers()  # one agent per data folder: the next server replaces the previous one
        server = self.shell(f"exec {command}")
        self.servers.append(server)
        deadline = time.monotonic() + START_GUARD
        while time.monotonic() < deadline:
            if server.poll() is not None:
                return f"exited {server.returncode} instead of serving: {server.stderr.read()[-2000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                return None
            except urllib.error.HTTPError:
                return None  # it answers (e.g. 401 behind basic auth)
            except OSError:
                time.sleep(0.2)
        return f"did not serve on port {port} within {START_GUARD:.0f} s"

    def stop_servers(self) -> str | None:
        problems = []
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.communicate()
                    problems.append(f"pid {server.pid} did not stop on SIGTERM")
                    continue
            if server.returncode not in (0, -signal.SIGTERM):
                problems.append(f"a server exited {server.returncode}: {server.stderr.read()[-2000:]}")
        self.servers = []
        return "; ".join(problems) or None

    def follow(self, command: str) -> str | None:
        follower = self.shell(command)
        try:
            follower.wait(timeout=FOLLOW_GUARD)
        except subprocess.TimeoutExpired:
            os.killpg(follower.pid, signal.SIGTERM)
            follower.communicate()
            return None  # still following: as documented
        _out, err = follower.communicate()
        return None if follower.returncode == 0 else f"exited {follower.returncode}: {err[-2000:]}"


def words_of(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def starts_the_console(words: list[str]) -> bool:
    return words[:1] == ["rtm-console"] and not set(words[1:]) & set(subcommands()) and not {"|", "&&", ">"} & set(words)


def is_server(command: str, words: list[str]) -> bool:
    return command.endswith("&") or words[:2] == ["rtm-console", "agent"] or (
        words[:2] == ["rtm-console", "exporter"] and "--check" not in words)


def listen_port(words: list[str], session: Session) -> str:
    if "--listen" in words:
        return words[words.index("--listen") + 1].rsplit(":", 1)[1]
    return session.ports["9465"]


def run_example(session: Session, example: Example) -> str | None:
    """None when the example does what the docs imply, else what went wrong."""
    command = session.substitute(example.command)
    words = words_of(command)
    if re.search(r"\bweb-\d\b|workload[ /]web\b", command):
        session.ensure_web()
    if starts_the_console(words):
        HOW_CHECKED["the console, through --help"] += 1
        result = session.run(f"{command} --help")
        return None if result.returncode == 0 else f"--help exited {result.returncode}: {result.stderr[-2000:]}"
    if is_server(command, words):
        HOW_CHECKED["served, then stopped"] += 1
        command = command.rstrip("& ")
        return session.start_server(command, listen_port(words_of(command), session))
    if "-f" in words or "--follow" in words:
        HOW_CHECKED["followed, then stopped"] += 1
        return session.follow(command)
    HOW_CHECKED["run to the end"] += 1
    result = session.run(command)
    problems = []
    if result.returncode != example.expect:
        problems.append(f"exited {result.returncode}, the docs imply {example.expect}: {result.stderr[-2000:]}")
    problems += [f"the docs show {line!r}, the output lacks it" for line in example.shown if line not in result.stdout]
    return "; ".join(problems) or None


RESULTS: dict[str, int | list[str]] = {"ran": 0, "skipped": []}
HOW_CHECKED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest, docker_client, run_id) -> Iterator[None]:
    yield
    skipped = RESULTS["skipped"]
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():  # always shown
        print(f"\nexecutable docs: {RESULTS['ran']} examples ran ({', '.join(f'{n} {how}' for how, n in HOW_CHECKED.items())}),"
              f" {len(skipped)} skipped")
        for reason in skipped:
            print(f"  skipped: {reason}")
    for container in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.parametrize("source", ALL_SOURCES, ids=[source.name for source in ALL_SOURCES])
def test_every_example_runs_as_documented(source: Source, tmp_path: Path, test_image: str, test_labels: dict[str, str]) -> None:
    session = Session(tmp_path, test_image, test_labels)
    failures = []
    try:
        runnable = [e for e in source.examples if e.skip is None]
        RESULTS["skipped"] += [f"{source.name}: {e.command} ({e.skip})" for e in source.examples if e.skip is not None]
        if any("function/hello" in e.command for e in runnable) and not any(is_server(e.command, words_of(e.command)) for e in runnable):
            failures.append(session.host_functions())
        for example in runnable:
            RESULTS["ran"] += 1
            problem = run_example(session, example)
            if problem:
                failures.append(f"{example.command}: {problem}")
    finally:
        failures.append(session.stop_servers())
    failures = [f for f in failures if f]
    assert not failures, f"{source.name}:\n" + "\n".join(failures)


# ------------------------------------------------------------------------------ coverage rules


def test_every_command_s_help_has_runnable_examples() -> None:
    missing = [source.name for source in help_sources() if not source.examples]
    assert missing == []


def test_every_command_block_is_tagged() -> None:
    assert untagged_command_blocks() == [], "tag these blocks `sh` (run) or `text` (synopsis, output)"


def test_readme_and_cli_md_blocks_are_collected() -> None:
    names = [source.name for source in markdown_sources()]
    assert any(name.startswith("README.md:") for name in names)
    assert any(name.startswith("docs/cli.md:") for name in names)


# ------------------------------------------------------------- docs/cli.md's JSON shapes, for real

CLI_MD = (ROOT / "docs" / "cli.md").read_text()


def documented_shape(pattern: str) -> str:
    found = re.search(pattern, CLI_MD, re.DOTALL)
    assert found, f"docs/cli.md no longer has {pattern!r}"
    return found.group(1)


def quoted_names(shape: str) -> set[str]:
    """The keys a shape names (`"direction": "scale_up"|"scale_down"`: direction only)."""
    return set(re.findall(r'(?<!: )(?<![:|])"([a-z_]+)"', shape))


def keys_within(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_within(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_within(item)}
    return set()


def record_fields(kind: str) -> set[str]:
    item = documented_shape(rf"\n- {kind}: (.*?)(?:;\n- |\.\n)")
    return set(re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^)]*\)", "", item)))  # values in parentheses are not fields


@pytest.fixture(scope="module")
def shapes_session(tmp_path_factory, test_image, test_labels) -> Iterator[Session]:
    session = Session(tmp_path_factory.mktemp("shapes"), test_image, test_labels)
    session.ensure_web()
    yield session
    session.stop_servers()


def json_of(session: Session, command: str, code: int = 0) -> object:
    result = session.run(command)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


@pytest.mark.docker
def test_the_json_shapes_of_docs_cli_md_are_what_the_commands_print(shapes_session: Session) -> None:
    s = shapes_session
    (s.cwd / "bad.yaml").write_text("ContainerRuntime:\n  base_image: 3\n")
    findings = json_of(s, "rtm-console validate --format json bad.yaml", code=1)
    documented = quoted_names(documented_shape(r"JSON: a list of\s+`(\{.*?\})`"))
    assert findings and all(documented <= set(f) <= documented | {"hint"} for f in findings)

    placed = json_of(s, f"rtm-console schedule --policy {SAMPLES}/scheduling-policy.yaml --nodes {SAMPLES}/nodes.yaml --json")
    assert quoted_names(documented_shape(r'`--json`: `(\{"algorithm".*?\]\})`')) == keys_within(placed)

    decided = json_of(s, f"rtm-console scale --policy {SAMPLES}/autoscaling-policy.yaml --current 3 --metric cpu=95 --metric memory=40 --json")
    assert quoted_names(documented_shape(r'`--json`: `(\{"direction".*?\})`')) | {"cpu", "memory"} == keys_within(decided)

    s.run("rtm-console delete workload/web --yes")  # writes an event
    s.ensure_web()
    events = [json.loads(line) for line in s.run("rtm-console events --json").stdout.splitlines()]
    assert events and all(set(e) == quoted_names(documented_shape(r'per line: `(\{"time".*?\})`')) for e in events)
    assert all(isinstance(e["time"], float) for e in events)

    workload = json_of(s, "rtm-console describe workload/web")
    shape = documented_shape(r'A workload: `(\{"name".*?\}\})`')
    assert set(workload) == quoted_names(shape) - keys_within(workload["replicas"]) | {"name"}
    assert {"name", "engine", "state", "health", "cpu_ratio", "restarts", "started_at"} <= set(workload["replicas"][0])

    config_md = (ROOT / "docs" / "config.md").read_text()
    shape = re.search(r"`rtm-console config --json` prints the same as\s+`(\{.*?\}\}\})`", config_md, re.DOTALL)
    assert shape, "docs/config.md no longer shows the shape of config --json"
    config = json_of(s, "rtm-console config --json")
    assert set(config) == quoted_names(shape.group(1)) - {"value", "source"}
    assert all(set(entry) >= {"value", "source"} for entry in config["settings"].values())

    for kind, command in (("node", "get nodes"), ("container", "get containers"), ("vm", "--sandbox get vms"),
                          ("function", "--sandbox get functions"), ("workload", "get workloads")):
        if kind == "function":
            s.run(f"rtm-console apply {SAMPLES}/serverless-runtime.yaml")
        records = json_of(s, f"rtm-console {command} --json")
        assert records, f"no {kind} to compare with"
        missing = record_fields(kind) - set(records[0])
        assert not missing, f"docs/cli.md lists {sorted(missing)} for a {kind}, `{command} --json` lacks them"
