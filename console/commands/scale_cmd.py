"""`scale`: horizontal scaling decisions, previewed from given utilizations or made for a
running container workload from its live usage, and executed on request.

`--policy` previews: `--state FILE` keeps the history that cooldowns, stabilization windows
and rate policies need; `--now` replaces the clock so a sequence of decisions can be replayed.
`--workload NAME` decides for a workload of the specs folder from its live stats, with the
history the agent keeps for it in the data folder; `--apply` executes the decision (replicas
placed by the scheduler), `--apply --vertical` also changes the limits (in place on standalone
replicas, by a rolling update of a Swarm service), and `--replicas N` sets the count by hand.
Changes go through the action gate.
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
  rtm-console scale --policy "$(rtm-console samples)"/autoscaling-policy.yaml --current 3 --metric cpu=95 --metric memory=40
  rtm-console scale --policy web.yaml --current 4 --metric cpu=20 --state web-hpa.json --now 2026-11-27T12:00:00Z --json
  rtm-console scale --workload web                  the decision for the running workload, from its live usage
  rtm-console scale --workload web --apply --vertical --yes
  rtm-console scale --workload web --replicas 3     set the replica count by hand
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
    target = scale.add_mutually_exclusive_group(required=True)
    target.add_argument("--policy", type=Path, metavar="FILE", help="an AutoScalingPolicy, or a workload that has one (a preview)")
    target.add_argument("--workload", metavar="NAME", help="a running container workload of the specs folder (live usage)")
    scale.add_argument("--current", type=int, metavar="N", help="with --policy: the current replica count")
    scale.add_argument("--metric", action="append", default=[], metavar="NAME=PCT", help="average utilization in percent: cpu=85.5, memory=60 (repeatable)")
    scale.add_argument("--state", type=Path, metavar="FILE", help="history file for cooldowns, windows and rate policies (created if absent)")
    scale.add_argument("--now", metavar="TIME", help="epoch seconds or ISO 8601 (default: the clock)")
    scale.add_argument("--json", action="store_true")
    live = scale.add_argument_group("live workloads (--workload)")
    live.add_argument("--specs", metavar="DIR", help="spec folder holding the workload (default: specs_dir)")
    live.add_argument("--apply", action="store_true", help="execute the decision")
    live.add_argument("--vertical", action="store_true", help="with --apply: also change cpu and memory limits (in place; a Swarm service: a rolling update that replaces its tasks)")
    live.add_argument("--replicas", type=int, metavar="N", help="set the replica count by hand instead of deciding")
    live.add_argument("--dry-run", action="store_true", help="print the plan of what --apply or --replicas would change; change nothing, write no history")
    live.add_argument("--yes", action="store_true", help="do not ask before removing replicas or replacing a service's tasks")
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
    if args.workload is not None:
        return run_live_scale(args)
    if args.current is None:
        print("rtm-console scale: --policy needs --current N", file=sys.stderr)
        return 2
    if args.apply or args.vertical or args.replicas is not None or args.dry_run:
        print("rtm-console scale: --apply, --vertical, --replicas and --dry-run act on a running workload: use --workload NAME", file=sys.stderr)
        return 2
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


# --- live workloads ------------------------------------------------------------------------------


DECISION_KEYS = ("direction", "current_replicas", "target_replicas", "reason", "proposals")


def run_live_scale(args: argparse.Namespace) -> int:
    """`scale --workload NAME [--apply [--vertical]] [--replicas N]`: 0 done, 1 the change
    failed or was refused, 2 a usage error (unknown workload, bad arguments, configuration)."""
    from console.config import ConfigError
    from console.context import open_context
    from console.supervisor.live import LiveScaleError, live_scale

    if args.replicas is not None and args.replicas < 0:
        print("rtm-console scale: --replicas cannot be negative", file=sys.stderr)
        return 2
    if args.vertical and not args.apply:
        print("rtm-console scale: --vertical applies limits: use it with --apply", file=sys.stderr)
        return 2
    try:
        ctx = open_context(args, "interactive")
    except ConfigError as exc:
        print(f"rtm-console scale: the configuration has errors:\n{exc}", file=sys.stderr)
        return 2
    try:
        if args.replicas is not None:  # a Swarm service: its own replica count (console/commands/swarm_scale.py)
            from console.commands.swarm_scale import scale_service

            status = scale_service(ctx, args.workload, args.replicas, args.json, dry_run=args.dry_run)
            if status is not None:
                return status
        report = live_scale(ctx, args.workload, apply=args.apply, vertical=args.vertical, replicas=args.replicas,
                            now=parse_now(args.now), state_file=args.state, dry_run=args.dry_run)
    except LiveScaleError as exc:
        print(f"rtm-console scale: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"rtm-console scale: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.close()
    if args.json:
        # One shape whether or not a policy decided: null where nothing was decided.
        print(json.dumps({**dict.fromkeys(DECISION_KEYS), **report.to_json()}))
    else:
        print(report.text())
    return 0 if report.ok else 1
