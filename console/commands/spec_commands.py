"""`validate`, `render` and `samples`: commands over spec files that contact nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from console.render import render_documents
from rtm.documents import LoadResult, load_file, spec_files
from rtm.findings import Finding, has_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="check spec files and report every mistake with its position",
        description="Check spec files (and every *.yaml / *.yml below the folders named). "
        "Prints PATH:LINE:COL: error|warning: MESSAGE per finding. Exit 0 without errors, 1 with errors "
        "(with --strict, warnings count too), 2 for a usage error or an unreadable path.",
        epilog="examples:\n  rtm-console validate \"$(rtm-console samples)\"/\n  rtm-console validate --strict --format json web.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    validate.add_argument("--strict", action="store_true", help="warnings fail the check too")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(handler=run_validate)

    render = subparsers.add_parser(
        "render",
        help="print what applying a spec would send, without contacting anything",
        description="Print what applying would send: the Docker create request, the libvirt domain XML, "
        "the Lambda CreateFunction request and trigger calls, the tuning settings. Contacts nothing.",
        epilog="examples:\n  rtm-console render \"$(rtm-console samples)\"/performance-tuning.yaml\n  rtm-console render web.yaml --format yaml\n  rtm-console render --alert-rules specs/ > rtm-alerts.yml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument("path", metavar="PATH", type=Path)
    render.add_argument("--format", choices=("json", "yaml"), default="json")
    render.add_argument("--alert-rules", action="store_true", help="print Prometheus alerting rules for the thresholds of the specs under PATH (file or folder)")
    render.set_defaults(handler=run_render)

    samples = subparsers.add_parser(
        "samples",
        help="print the folder of the bundled sample specs",
        description="Print the folder of the sample specs installed with rtm-console (one valid example per kind, "
        "a complete workload, a node inventory, a function), so that they can be named from anywhere.",
        epilog='examples:\n  rtm-console samples\n  rtm-console validate "$(rtm-console samples)"\n'
        '  cp -r "$(rtm-console samples)" ./my-specs      start your own specs from them',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    samples.set_defaults(handler=run_samples)


def load_all(paths: list[Path]) -> tuple[list[LoadResult], list[str]]:
    """Validate every spec file under `paths`; the second list names paths that could not be read."""
    results, unreadable = [], []
    for path in paths:
        if not path.exists():
            unreadable.append(f"{path}: no such file or folder")
            continue
        for file in spec_files([path]):
            try:
                results.append(load_file(file))
            except OSError as exc:
                unreadable.append(f"{file}: {exc.strerror or exc}")
    return results, unreadable


def run_validate(args: argparse.Namespace) -> int:
    results, unreadable = load_all(args.paths)
    for problem in unreadable:
        print(f"rtm-console validate: cannot read {problem}", file=sys.stderr)
    if unreadable:
        return 2
    findings = [f for r in results for f in r.findings]
    print_findings(findings, args.format)
    failing = [f for f in findings if f.severity == "error" or args.strict]
    return 1 if failing else 0


def print_findings(findings: list[Finding], fmt: str = "text") -> None:
    if fmt == "json":
        print(json.dumps([f.to_json() for f in findings], indent=2))
        return
    for finding in findings:
        print(finding.format())


def run_render(args: argparse.Namespace) -> int:
    if args.alert_rules:
        from console.commands.exporter_cmd import render_alert_rules_command

        return render_alert_rules_command([args.path])
    try:
        result = load_file(args.path)
    except OSError as exc:
        print(f"rtm-console render: cannot read {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if has_errors(result.findings):
        print_findings(list(result.findings))
        print(f"rtm-console render: {args.path} has errors; nothing rendered", file=sys.stderr)
        return 1
    rendered = render_documents(result.documents, base_dir=args.path.parent)
    if args.format == "yaml":
        print(yaml.safe_dump(rendered, sort_keys=False, allow_unicode=True), end="")
    else:
        print(json.dumps(rendered, indent=2))
    return 0


def samples_folder() -> Path:
    """Inside an installed wheel the samples sit in rtm/sample-specs; in a checkout, beside rtm/."""
    import rtm

    package_dir = Path(rtm.__file__).resolve().parent
    for candidate in (package_dir / "sample-specs", package_dir.parent / "sample-specs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the sample specs are not installed")


def run_samples(args: argparse.Namespace) -> int:
    try:
        print(samples_folder())
    except FileNotFoundError as exc:
        print(f"rtm-console samples: {exc}", file=sys.stderr)
        return 1
    return 0
