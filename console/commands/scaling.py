"""`scale`: horizontal scaling decisions previewed from given utilizations.

`--state FILE` keeps the history that cooldowns, stabilization windows and rate policies need;
`--now` replaces the clock so a sequence of decisions can be replayed exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from console.commands.spec_commands import print_findings
from console.datadir import atomic_write
from rtm.autoscaling import History, HistoryFormatError, decide
from rtm.autoscaling.from_spec import horizontal_settings
from rtm.documents import Document, load_file

EXAMPLES = """\
  rtm-console scale --policy sample-specs/autoscaling-policy.yaml --current 3 --metric cpu=95 --metric memory=40
  rtm-console scale --policy web.yaml --current 4 --metric cpu=20 --state /tmp/web-hpa.json --now 2026-11-27T12:00:00Z --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    scale = subparsers.add_parser(
        "scale",
        help="preview a scaling decision (HPA semantics) for a policy and given utilizations",
        description="Decide the replica count as the Kubernetes HPA would: per metric ceil(current * utilization / target), "
        "the largest proposal wins, tolerance, clamping, cooldowns or the behavior block's windows and rate policies.",
        epilog="examples:\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scale.add_argument("--policy", type=Path, required=True, metavar="FILE", help="an AutoScalingPolicy, or a workload that has one")
    scale.add_argument("--current", type=int, required=True, metavar="N", help="the current replica count")
    scale.add_argument("--metric", action="append", default=[], metavar="NAME=PCT", help="average utilization in percent: cpu=85.5, memory=60 (repeatable)")
    scale.add_argument("--state", type=Path, metavar="FILE", help="history file for cooldowns, windows and rate policies (created if absent)")
    scale.add_argument("--now", metavar="TIME", help="epoch seconds or ISO 8601 (default: the clock)")
    scale.add_argument("--json", action="store_true")
    scale.set_defaults(handler=run_scale)


def parse_metrics(items: list[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in ("cpu", "memory") or not value:
            raise ValueError(f'"{item}": write cpu=PCT or memory=PCT')
        try:
            metrics[name] = float(value)
        except ValueError:
            raise ValueError(f'"{item}": {value} is not a number') from None
        if metrics[name] < 0:
            raise ValueError(f'"{item}": utilization cannot be negative')
    return metrics


def parse_now(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f'--now "{text}" is neither epoch seconds nor ISO 8601') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _policy_document(path: Path) -> Document:
    result = load_file(path)
    if not result.ok:
        print_findings(list(result.findings))
        raise ValueError(f"{path} has errors")
    for document in result.documents:
        policy = document.get("AutoScalingPolicy")
        if policy is not None and policy.horizontal is not None:
            return document
    raise ValueError(f"{path} has no AutoScalingPolicy with a horizontal part")


def run_scale(args: argparse.Namespace) -> int:
    try:
        metrics = parse_metrics(args.metric)
        now = parse_now(args.now)
        if args.current < 0:
            raise ValueError("--current cannot be negative")
        document = _policy_document(args.policy)
        history = History.from_text(args.state.read_text()) if args.state and args.state.exists() else History()
    except OSError as exc:
        print(f"rtm-console scale: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, HistoryFormatError) as exc:
        print(f"rtm-console scale: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, HistoryFormatError) else 1
    settings = horizontal_settings(document.get("AutoScalingPolicy"))
    decision, history = decide(settings, args.current, metrics, history, now)
    if args.state:
        atomic_write(args.state, history.to_text())
    if args.json:
        print(json.dumps(decision.to_json()))
    else:
        print(format_decision(decision))
    return 0


def format_decision(decision) -> str:  # noqa: ANN001 - rtm.autoscaling.Decision
    lines = [f"{decision.direction}: {decision.current_replicas} -> {decision.target_replicas}", f"reason: {decision.reason}"]
    for metric, replicas in decision.proposals.items():
        lines.append(f"  {metric} proposes {replicas}")
    return "\n".join(lines)
