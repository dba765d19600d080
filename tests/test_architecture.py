"""The import rule: console -> backends -> rtm, and rtm stays pure.

Each headless module is imported in a fresh interpreter and the modules it pulled in are
checked, so a stray import anywhere in the chain is caught. The source is read too, so an
import that never runs on import (under TYPE_CHECKING, inside a function) is caught as well.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("docker", "libvirt", "boto3", "botocore", "textual", "psutil", "prometheus_client")
NETWORK = ("socket", "http.client", "urllib.request", "ssl")


def _modules(package: str) -> list[str]:
    names = [package]
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
        names.append(info.name)
    return names


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, json; before = set(sys.modules); import {module}; print(json.dumps(sorted(set(sys.modules) - before)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", _modules("rtm"))
def test_rtm_imports_no_sdk_textual_network_or_outer_layer(module: str) -> None:
    loaded = _loaded_after_import(module)
    forbidden = {m for m in loaded if m.split(".")[0] in (*SDKS, "console", "backends") or m in NETWORK}
    assert not forbidden, f"{module} pulled in {sorted(forbidden)}"


@pytest.mark.parametrize("module", [m for m in _modules("backends")])
def test_backends_never_import_console_or_textual(module: str) -> None:
    loaded = _loaded_after_import(module)
    forbidden = {m for m in loaded if m.split(".")[0] in ("console", "textual")}
    assert not forbidden, f"{module} pulled in {sorted(forbidden)}"


@pytest.mark.parametrize("module", [m for m in _modules("console") if not m.startswith("console.tui")])
def test_headless_console_modules_never_import_textual(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert not {m for m in loaded if m.split(".")[0] == "textual"}, f"{module} pulled in textual"


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file: import statements wherever they stand, and
    importlib.import_module / __import__ called with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and ast.unparse(node.func) in ("importlib.import_module", "__import__"):
            found.append((node.lineno, node.args[0].value))
    return found


def _source_imports_of(package: str, outer: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: imports {module}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, module in _imported_names(path) if module.split(".")[0] in outer]


def test_no_source_under_backends_imports_console_not_even_for_type_checking() -> None:
    assert _source_imports_of("backends", ("console", "textual")) == []


def test_no_source_under_rtm_imports_backends_or_console() -> None:
    assert _source_imports_of("rtm", ("console", "backends", "textual")) == []


def test_the_source_check_sees_imports_under_type_checking_and_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from console.config import AwsSettings\n"
                      "def f():\n    import console.gate\n    return importlib.import_module('console.agent')\n")
    assert [module for _, module in _imported_names(sample)] == ["typing", "console.config", "console.gate", "console.agent"]


def test_reading_the_configuration_loads_only_the_settings_of_the_libvirt_lambda_and_local_backends(tmp_path: Path) -> None:
    """console.config builds each backend's settings type; the backends themselves load on use."""
    code = ("import sys, json; from console.config import load_config; "
            f"load_config({{}}, {{'HOME': {str(tmp_path)!r}}}); print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = {m for m in json.loads(out.stdout)
              if m.startswith(("backends.docker", "backends.libvirt", "backends.aws_lambda", "backends.localfn"))}
    assert loaded == {"backends.docker", "backends.docker.settings", "backends.libvirt", "backends.libvirt.settings",
                      "backends.aws_lambda", "backends.aws_lambda.settings", "backends.localfn", "backends.localfn.settings"}


@pytest.mark.parametrize("package", ["backends.docker", "backends.libvirt", "backends.aws_lambda"])
def test_every_name_a_backend_package_exports_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert all(getattr(module, name) is not None for name in module.__all__)
    with pytest.raises(AttributeError, match="no attribute 'make_nothing'"):
        getattr(module, "make_nothing")


def test_no_module_under_console_is_over_600_lines() -> None:
    lengths = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
               for path in (ROOT / "console").rglob("*.py")}
    assert {path: lines for path, lines in lengths.items() if lines > 600} == {}


# Names shared on purpose: each backend package has one module per role (its settings, handler,
# backend, errors, SDK client, spec mapping, stats), and each package its `from_spec` converter.
SHARED_ROLE_NAMES = {"__init__", "settings", "handler", "backend", "errors", "client", "mapping", "stats", "from_spec"}


def test_no_two_modules_share_a_name_unless_they_play_the_same_role() -> None:
    by_name: dict[str, list[str]] = {}
    for top in ("console", "backends", "rtm"):
        for path in (ROOT / top).rglob("*.py"):
            by_name.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    repeated = {name: sorted(paths) for name, paths in by_name.items() if len(paths) > 1 and name not in SHARED_ROLE_NAMES}
    assert repeated == {}


# --- one descriptor per resource kind (console/resource_kinds.py) -------------------------------


def test_every_kind_a_backend_reports_has_one_descriptor() -> None:
    import typing

    from backends.base import BackendKind
    from backends.records import Record
    from console.resource_kinds import KINDS

    assert {kind.record for kind in KINDS} == set(typing.get_args(Record))
    assert [kind.name for kind in KINDS] == list(typing.get_args(BackendKind))


def test_every_descriptor_is_what_the_cli_the_prompt_the_panes_and_the_exporter_read() -> None:
    """Each alias of a kind resolves in the CLI (KIND/NAME and `get`) and the `:` prompt to that
    kind; its pane, columns and verbs are the descriptor's."""
    from console.commands.resources import _get_word, split_target
    from console.resource_kinds import KINDS
    from console.tui.offered_actions import VERB_BY_NAME
    from console.tui.registry import ALIAS_TO_PANE, PANE_CLASSES, PANES
    from console.tui.views import COLUMNS, PANE_KINDS

    for kind in KINDS:
        for alias in (kind.name, kind.resource, *kind.aliases):
            assert split_target(f"{alias}/web-0") == (kind.resource, "web-0"), alias
            assert split_target(f"{alias.upper()}/web-0") == (kind.resource, "web-0"), alias
            assert _get_word(alias) == kind.name, alias
        assert {alias: ALIAS_TO_PANE[alias] for alias in kind.aliases} == dict.fromkeys(kind.aliases, kind.name)
        assert (kind.name, kind.title, kind.key) in PANES and PANE_CLASSES[kind.name].kind == kind.name
        assert COLUMNS[kind.name] == kind.columns and kind.name in PANE_KINDS
        assert all(verb in VERB_BY_NAME for verb in kind.verbs)
        assert callable(kind.metric_families._function)  # names a function of the exporter's collector
        assert callable(kind.row._function)  # and one of the console's row builders


def _short_aliases() -> set[str]:
    from console.resource_kinds import KINDS

    return {alias for kind in KINDS for alias in kind.aliases if alias not in (kind.name, kind.resource)}


def test_no_module_but_the_descriptors_lists_the_aliases_of_a_kind() -> None:
    """A literal list, set or mapping holding two short aliases of resource kinds (`co`, `po`,
    `fn`, `virt` ...) anywhere else under console/ would be a second list of kinds to keep."""
    short = _short_aliases()
    found = []
    for path in sorted((ROOT / "console").rglob("*.py")):
        if path.name == "resource_kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
            words = [item.value for item in items if isinstance(item, ast.Constant) and item.value in short]
            if len(words) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {words}")
    assert found == []


def test_the_alias_check_finds_a_second_list_of_kinds(tmp_path: Path) -> None:
    sample = "ALIASES = {'co': 'containers', 'fn': 'functions'}\n"
    tree = ast.parse(sample)
    dicts = [node for node in ast.walk(tree) if isinstance(node, ast.Dict)]
    assert [k.value for k in dicts[0].keys if isinstance(k, ast.Constant) and k.value in _short_aliases()] == ["co", "fn"]


VERB_METHODS = ("start", "stop", "restart", "exec", "delete", "invoke", "scale", "logs", "attach_runtime")


def test_no_console_module_finds_an_action_by_its_method_name() -> None:
    """Verbs are typed protocols (backends/verbs.py): getattr/hasattr with a verb's method name
    is how actions were found before, and must not come back."""
    found = []
    for path in sorted((ROOT / "console").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("getattr", "hasattr") and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in VERB_METHODS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
