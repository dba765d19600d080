"""`apply`, `delete`, `get`, `describe`, `logs`, `events`, `config`, `cordon`, `uncordon`, `drain`.

Every document is validated before any backend is contacted. Every change goes through the
action gate; this module only decides what to ask the runtime handlers for and prints results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from backends.base import BackendUnavailable
from backends.handlers import Change, RuntimeHandler
from backends.records import to_jsonable
from backends.verbs import Logged
from console.commands.instants import epoch_instants
from console.commands.spec_commands import load_all, print_findings
from console.commands.swarm_nodes import cluster_of_node, run_drain, set_swarm_availability, swarm_nodes, swarm_summary
from console.commands.workloads import describe_workload, replicas_by_workload, workload_kinds, workload_rows
from console.config import ConfigError, config_as_json, flags_from_args, load_config, render_config, sandboxed
from console.context import AppContext, open_context
from console.cordons import CordonStore
from console.eventlog import format_event
from console.gate import register_action
from console.resource_kinds import KINDS, kind_named, kind_of_spec
from console.tables import Column, format_records
from rtm.documents import Document, reasons_to_ask

# Workloads are no resource kind: a workload is the replicas of one spec, of any runtime.
WORKLOAD_WORDS = ("workload", "workloads")

register_action("workload.apply", description="create or update a workload from its spec", journaled=True)
register_action("resource.delete", destructive=True, description="delete a workload, container, VM or function")
register_action("node.cordon", description="stop placing new replicas on a node")
register_action("node.uncordon", description="let a node take new replicas again")


def register(subparsers: argparse._SubParsersAction) -> None:
    def add(name: str, help_text: str, examples: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text, epilog="examples:\n" + examples, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=handler)
        return parser

    apply = add("apply", "create or update what spec files describe", "  rtm-console apply \"$(rtm-console samples)\"/workload-web.yaml --dry-run\n  rtm-console apply specs/ --yes", run_apply)
    apply.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    apply.add_argument("--dry-run", action="store_true", help="print the plan against the live state and change nothing")
    apply.add_argument("--yes", action="store_true", help="do not ask before replacing or deleting")
    apply.add_argument("--strict", action="store_true", help="refuse fallbacks (e.g. a VM without KVM) instead of taking them")

    delete = add("delete", "delete what a spec file describes, or KIND/NAME", "  rtm-console delete container/web-0 --yes\n  rtm-console delete \"$(rtm-console samples)\"/workload-web.yaml", run_delete)
    delete.add_argument("target", metavar="PATH|KIND/NAME")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument("--with-disk", action="store_true", help="for VMs: delete the disk volume too")

    get = add("get", "list nodes, containers, VMs, functions or workloads", "  rtm-console get nodes\n  rtm-console get containers --json", run_get)
    get.add_argument("what", type=_get_word, choices=(*(kind.name for kind in KINDS), "workloads"))
    get.add_argument("--json", action="store_true", help="print JSON (units: millicores, bytes, seconds)")

    describe = add("describe", "show everything known about one resource", "  rtm-console describe container/web-0\n  rtm-console describe node/$(hostname)", run_describe)
    describe.add_argument("target", metavar="KIND/NAME")

    logs = add("logs", "print a container's or a local function's logs", "  rtm-console logs container/web-0 -f\n  rtm-console logs function/hello", run_logs)
    logs.add_argument("target", metavar="container/NAME|function/NAME")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int, default=200, help="lines from the end (default 200)")

    invoke = add("invoke", "invoke a function once and print its result", "  rtm-console invoke function/hello --payload '{\"body\": \"{\\\"name\\\": \\\"ops\\\"}\"}'", run_invoke)
    invoke.add_argument("target", metavar="function/NAME")
    invoke.add_argument("--payload", default="{}", help="the event, as JSON (default {})")

    events = add("events", "print the event log of the control loops", "  rtm-console events\n  rtm-console events -f", run_events)
    events.add_argument("-f", "--follow", action="store_true")
    events.add_argument("--json", action="store_true")
    events.add_argument("--limit", type=int, default=None)

    config = add("config", "print the effective configuration and where each value came from", "  rtm-console config\n  rtm-console config --json", run_config)
    config.add_argument("--json", action="store_true")

    for name, verb in (("cordon", "stop placing new replicas on a node"), ("uncordon", "let a node take new replicas again")):
        parser = add(name, verb, f"  rtm-console {name} node/$(hostname)", run_cordon)
        parser.add_argument("target", metavar="[node/]NAME")
    drain_help = "move a Swarm node's tasks to other nodes and place nothing new there (asks first)"
    drain = add("drain", drain_help, "  rtm-console get nodes          the swarm's nodes by hostname, to drain one with: drain node/NAME --yes",
                run_cordon)
    drain.add_argument("target", metavar="[node/]NAME")
    drain.add_argument("--yes", action="store_true", help="do not ask for confirmation")


# ----------------------------------------------------------------------------------------------
# helpers


def _context(args: argparse.Namespace) -> AppContext | None:
    try:
        return open_context(args, "interactive")  # kiosk when the configuration says so
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return None


def _fail(message: str, code: int = 1) -> int:
    print(f"rtm-console: {message}", file=sys.stderr)
    return code


class NotFound(LookupError):
    """Nothing of that name: exit 1, as for any resource a backend does not have."""


def split_target(target: str) -> tuple[str | None, str]:
    """`container/web-0`, `co/web-0` -> ("container", "web-0"); a bare name -> (None, name)."""
    if "/" in target:
        word, name = target.split("/", 1)
        kind = kind_named(word)
        return (kind.resource if kind else "workload" if word.lower() in WORKLOAD_WORDS else word.lower()), name
    return None, target


def _get_word(word: str) -> str:
    """What `get` lists: a kind by any of its names (`co`, `pods`), or workloads."""
    kind = kind_named(word)
    return kind.name if kind else word.lower()


def _handler_for(ctx: AppContext, resource: str) -> RuntimeHandler:
    handler = ctx.handlers().get(resource)
    if handler is None:
        reasons = "; ".join(a.describe() for a in ctx.unavailable) or "no backend for it is configured"
        raise LookupError(f"{resource}s are not available: {reasons}")
    return handler


def _find(ctx: AppContext, target: str) -> tuple[str, str]:
    """Resolve KIND/NAME or a bare name (a resource's, else a workload's, as `get` prints them);
    a bare name that several kinds have is ambiguous."""
    kind, name = split_target(target)
    if kind is not None:
        if kind_named(kind) is None and kind != "workload":
            raise LookupError(f'unknown kind "{kind}": use container/, vm/, function/, node/ or workload/')
        return kind, name
    found = []
    for resource, handler in ctx.handlers().items():
        try:
            if any(_record_name(r) == name for r in handler.list()):
                found.append(resource)
        except BackendUnavailable:
            continue
    if not found and workload_kinds(ctx, name):
        return "workload", name
    if not found:
        raise NotFound(f'nothing is named "{name}"')
    if len(found) > 1:
        raise LookupError(f'"{name}" is ambiguous: write {" or ".join(f"{r}/{name}" for r in found)}')
    return found[0], name


def _record_name(record: Any) -> str:
    return getattr(record, "name", None) or getattr(record, "id", "")


# ----------------------------------------------------------------------------------------------
# apply


def run_apply(args: argparse.Namespace) -> int:
    results, unreadable = load_all(args.paths)
    for problem in unreadable:
        print(f"rtm-console apply: cannot read {problem}", file=sys.stderr)
    if unreadable:
        return 2
    findings = [f for r in results for f in r.findings]
    if any(f.severity == "error" for f in findings):
        print_findings(findings)
        return _fail("the specs have errors: nothing was applied")
    print_findings(findings)  # warnings
    documents = [(Path(r.path).parent, d) for r in results for d in r.documents if d.runtime_kind]
    if not documents:
        return _fail("no runtime in these files to apply (policies are applied with the workload that names them)")
    ctx = _context(args)
    if ctx is None:
        return 2
    try:
        return _apply_documents(ctx, documents, args)
    finally:
        ctx.close()


def _apply_documents(ctx: AppContext, documents: list[tuple[Path, Document]], args: argparse.Namespace) -> int:
    plans: list[tuple[Path, Document, RuntimeHandler, list[Change]]] = []
    for base_dir, document in documents:
        try:
            handler = _handler_for(ctx, kind_of_spec(document.runtime_kind).resource)
            plans.append((base_dir, document, handler, handler.plan(document, base_dir)))
        except (LookupError, BackendUnavailable, ValueError) as exc:
            return _fail(f"{document.label}: cannot plan: {exc}")
    for _base, document, _handler, changes in plans:
        print_plan(document, changes)
    if args.dry_run:
        return 0
    done: list[str] = []
    for index, (base_dir, document, handler, changes) in enumerate(plans):
        if all(c.action == "unchanged" for c in changes):
            continue
        replacing = any(c.action in ("replace", "delete") for c in changes)
        reasons = reasons_to_ask(document, sum(c.action == "create" for c in changes))
        for reason in reasons:  # host-level settings, many replicas: shown, then confirmed once here
            print(f"{document.label}: confirm first: {reason}", flush=True)
        left: list[str] = []  # what exists after an interruption

        def tell_what_exists(handler: RuntimeHandler = handler, document: Document = document, base_dir: Path = base_dir) -> str:
            left.append(what_exists_now(handler, document, base_dir))
            return left[-1]

        try:
            result = ctx.gate.run(
                "workload.apply", document.label,
                {"file": document.path, "document": document.index + 1, "changes": [c.to_json() for c in changes]},
                lambda: handler.apply(document, base_dir, changes, progress=lambda line: print(f"  {line}", flush=True)),
                destructive=replacing or bool(reasons),
                on_interrupt=tell_what_exists,
                records_event=True,  # the "apply" event below
            )
        except KeyboardInterrupt:
            print(f"interrupted: {document.label}: {left[-1] if left else 'what exists now could not be read'}", file=sys.stderr)
            _report_the_rest(done, plans[index + 1:], "the interruption")
            return 130
        if result.ok:
            done.append(document.label)
            for line in result.value or []:
                print(f"{document.label}: {line}")
            ctx.events.record("apply", workload=document.name, target=document.label, message="applied")
            continue
        print(f"failed: {document.label}: {result.message}", file=sys.stderr)
        _report_the_rest(done, plans[index + 1:], "the failure")
        return 1
    return 0


def _report_the_rest(done: list[str], later: list[tuple[Path, Document, RuntimeHandler, list[Change]]], what: str) -> None:
    if done:
        print(f"applied before {what}: {', '.join(done)}", file=sys.stderr)
    rest = [d.label for _b, d, _h, c in later if any(x.action != "unchanged" for x in c)]
    if rest:
        print(f"not attempted: {', '.join(rest)}", file=sys.stderr)


def what_exists_now(handler: RuntimeHandler, document: Document, base_dir: Path) -> str:
    """After an apply was cut short: which of the workload's resources exist and which do not,
    read from the runtime again (a plan against the live state)."""
    changes = handler.plan(document, base_dir)
    existing = [c.resource for c in changes if c.action != "create"]
    missing = [c.resource for c in changes if c.action == "create"]
    parts = [f"exists now: {', '.join(existing) or 'nothing'}"]
    if missing:
        parts.append(f"not created: {', '.join(missing)}")
    parts.append(f"apply again to finish, or delete workload/{document.name} to remove it" if document.name else "apply again to finish")
    return "; ".join(parts)


def print_plan(document: Document, changes: list[Change]) -> None:
    for change in changes:
        line = f"{change.action:<9} {change.resource}"
        if change.note:
            line += f"  ({change.note})"
        print(line)
        for field_name, live, spec in change.diff:
            print(f"            {field_name}: {live!r} -> {spec!r}")


# ----------------------------------------------------------------------------------------------
# delete


def run_delete(args: argparse.Namespace) -> int:
    """0 deleted (or nothing of a spec file's was running), 1 a deletion failed or KIND/NAME
    names nothing, 2 a usage error."""
    path = Path(args.target)
    targets: list[tuple[str, str]] = []
    if path.exists():
        results, unreadable = load_all([path])
        findings = [f for r in results for f in r.findings]
        if unreadable or any(f.severity == "error" for f in findings):
            print_findings(findings)
            return _fail("the specs have errors: nothing was deleted", 1 if not unreadable else 2)
        for result in results:
            for document in result.documents:
                if document.runtime_kind:
                    spec = document.get(document.runtime_kind)
                    name = document.name or getattr(spec, "name", None)
                    if name:
                        targets.append((kind_of_spec(document.runtime_kind).resource, name))
    ctx = _context(args)
    if ctx is None:
        return 2
    try:
        if path.exists():
            targets = _running_targets(ctx, targets)
            if not targets:
                print(f"nothing to delete: nothing that {args.target} describes is running")
                return 0
        else:
            try:
                targets = [_delete_target(ctx, *_find(ctx, args.target))]
            except NotFound as exc:
                return _fail(str(exc))
            except LookupError as exc:
                return _fail(str(exc), 2)
        return _delete_all(ctx, targets, args.with_disk)
    finally:
        ctx.close()


def _delete_target(ctx: AppContext, kind: str, name: str) -> tuple[str, str]:
    """workload/NAME is deleted through the runtime that runs it."""
    if kind != "workload":
        return kind, name
    kinds = workload_kinds(ctx, name)
    if not kinds:
        raise NotFound(f'no workload is named "{name}"')
    return kinds[0], name


def _running_targets(ctx: AppContext, targets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (resource, name) pairs a runtime reports, as a replica's name or a workload's; a
    resource whose backend is missing or silent is kept, so that its delete says why."""
    unknown: set[str] = set()
    live = replicas_by_workload(ctx, unknown)
    running = set(live) | {(resource, _record_name(r)) for (resource, _w), records in live.items() for r in records}
    unknown |= {resource for resource, _name in targets if resource not in ctx.handlers()}
    return [target for target in targets if target in running or target[0] in unknown]


def _delete_all(ctx: AppContext, targets: list[tuple[str, str]], with_disk: bool) -> int:
    status = 0
    for resource, name in targets:
        try:
            handler = _handler_for(ctx, resource)
        except LookupError as exc:
            status = _fail(str(exc))
            continue
        result = ctx.gate.run(
            "resource.delete", f"{resource}/{name}", {"with_disk": with_disk},
            lambda: handler.delete(name, with_disk=with_disk), destructive=True,
            records_event=True,  # the "delete" event below lists what went
        )
        if result.ok:
            lines = result.value or [f"deleted {resource}/{name}"]
            for line in lines:
                print(line)
            ctx.events.record("delete", "; ".join(lines), workload=name, target=f"{resource}/{name}")
        else:
            status = _fail(result.message)
    return status


# ----------------------------------------------------------------------------------------------
# get / describe


def run_get(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if ctx is None:
        return 2
    swarm, clusters = [], ""
    try:
        rows = _get_rows(ctx, args.what)
        silent = _unreachable(ctx, args.what)
        if args.what == "nodes":  # Swarm nodes after this machine (docs/swarm.md)
            swarm = swarm_nodes(ctx)
            clusters = swarm_summary(ctx, swarm)
    except (LookupError, BackendUnavailable) as exc:
        return _fail(str(exc))
    finally:
        ctx.close()
    if args.json:
        print(json.dumps(epoch_instants(to_jsonable([*rows, *swarm])), indent=2))
    else:
        print(_format_records(args.what, rows) + (f"\n\n{clusters}" if clusters else ""))
    for problem in silent:  # the others answered: the list is printed, and who is missing from it
        print(f"rtm-console: left out: {problem}", file=sys.stderr)
    return 0


def _unreachable(ctx: AppContext, what: str) -> list[str]:
    """The backends of this kind (of every kind, for workloads) that did not answer the last
    list, each one named."""
    handlers = ctx.handlers()
    kind = kind_named(what)
    listed = handlers.values() if kind is None else [handlers.get(kind.resource)]
    return [error.availability.describe() if hasattr(error, "availability") else str(error)
            for handler in listed for error in getattr(handler, "unreachable", [])]


def _get_rows(ctx: AppContext, what: str) -> list[Any]:
    kind = kind_named(what)
    if kind is None:  # workloads
        return workload_rows(ctx)
    if kind.name == "nodes":
        return _nodes(ctx)
    return list(_handler_for(ctx, kind.resource).list())


def _nodes(ctx: AppContext) -> list[Any]:
    """This machine's node; polled twice so the CPU usage has an interval to be measured over."""
    host = ctx.backends()[0]
    host.poll()
    time.sleep(0.25)
    return list(host.poll().items)


WORKLOAD_COLUMNS = (
    Column.cli("name", lambda w: w["name"]), Column.cli("kind", lambda w: w["kind"]),
    Column.cli("replicas", lambda w: w["replicas"]), Column.cli("running", lambda w: w["running"]),
)


def _format_records(what: str, records: list[Any]) -> str:
    kind = kind_named(what)
    if not records:
        return f"no {what}"
    return format_records(kind.cli_columns if kind else WORKLOAD_COLUMNS, records)


def run_describe(args: argparse.Namespace) -> int:
    """0 found, 1 nothing of that name (or its backend failed), 2 an unknown kind or an
    ambiguous name."""
    ctx = _context(args)
    if ctx is None:
        return 2
    try:
        try:
            kind, name = _find(ctx, args.target)
        except NotFound as exc:
            return _fail(str(exc))
        except LookupError as exc:  # an unknown kind, or an ambiguous name: usage
            return _fail(str(exc), 2)
        if kind == "node":
            details = next((to_jsonable(n) for n in [*_nodes(ctx), *swarm_nodes(ctx)] if n.id == name), None)
            if details is None:
                return _fail(f'no node is named "{name}"')
        elif kind == "workload":
            details = describe_workload(ctx, name)
            if details is None:
                return _fail(f'no workload is named "{name}"')
        else:
            details = _handler_for(ctx, kind).describe(name)
    except (LookupError, ValueError, BackendUnavailable) as exc:  # not found, refused, unreachable
        return _fail(str(exc))
    finally:
        ctx.close()
    print(json.dumps(epoch_instants(to_jsonable(details)), indent=2, default=str))
    return 0


# ----------------------------------------------------------------------------------------------
# logs / events / config / cordon


register_action("function.invoke", description="invoke a function once")


def run_invoke(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if kind not in (None, "function"):
        return _fail("only functions are invoked: write function/NAME", 2)
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        return _fail(f"--payload is not JSON: {exc}", 2)
    ctx = _context(args)
    if ctx is None:
        return 2
    try:
        invoke = lambda: _handler_for(ctx, "function").invoke(name, payload)  # type: ignore[attr-defined]  # noqa: E731
        result = ctx.gate.run("function.invoke", f"function/{name}", {"payload": payload}, invoke)
    finally:
        ctx.close()
    if not result.ok:
        return _fail(result.message)
    value = result.value.to_json() if hasattr(result.value, "to_json") else result.value
    print(json.dumps(to_jsonable(value), indent=2, default=str))
    return 0


def run_logs(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if kind not in (None, "container", "function"):
        return _fail("logs are kept for containers and local functions: write container/NAME or function/NAME", 2)
    ctx = _context(args)
    if ctx is None:
        return 2
    try:
        handler = _handler_for(ctx, kind or "container")
        if not isinstance(handler, Logged):
            return _fail(f"the {kind} backend keeps no logs rtm-console can read (AWS: see CloudWatch Logs)")
        for line in handler.logs(name, follow=args.follow, tail=args.tail):
            print(line, flush=args.follow)
    except (LookupError, ValueError, BackendUnavailable) as exc:  # not found, refused, unreachable
        return _fail(str(exc))
    finally:
        ctx.close()
    return 0


FOLLOW_HISTORY = 10  # events -f first prints this many past events, as tail -f does lines


def run_events(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if ctx is None:
        return 2
    if args.follow:
        events = ctx.events.follow(history=FOLLOW_HISTORY if args.limit is None else args.limit)
    else:
        events = ctx.events.read(limit=args.limit)
    for event in events:
        print(json.dumps(epoch_instants(event.to_record())) if args.json else format_event(event), flush=True)
    return 0


def run_config(args: argparse.Namespace) -> int:
    """Reads the configuration only: no data folder is created, no backend contacted."""
    try:
        config = load_config(flags_from_args(args), path=getattr(args, "config", None))
    except ConfigError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return 2  # an invalid configuration is a usage error, as for every other command
    if args.sandbox:
        config = sandboxed(config)
    print(json.dumps(config_as_json(config), indent=2) if args.json else render_config(config))
    return 0


def run_cordon(args: argparse.Namespace) -> int:
    kind, name = split_target(args.target)
    if kind not in (None, "node"):
        return _fail("only nodes can be cordoned: write node/NAME", 2)
    ctx = _context(args)
    if ctx is None:
        return 2
    if args.command == "drain" or (cluster := cluster_of_node(ctx, name)) is not None:  # a Swarm node
        try:
            return run_drain(args, ctx, name) if args.command == "drain" else set_swarm_availability(ctx, cluster, args.command, name)
        finally:
            ctx.close()
    cordon = args.command == "cordon"
    store = CordonStore(ctx.config.data_dir)
    if cordon:
        from console.live_nodes import live_nodes

        known = [node.id for node in live_nodes(ctx.backends())]
        if name not in known:
            ctx.close()
            return _fail(f'no node is named "{name}"; the nodes are: {", ".join(known)}')  # not found: 1, as everywhere
    result = ctx.gate.run(f"node.{args.command}", f"node/{name}", {}, lambda: store.set(name, cordon))
    if not result.ok:
        return _fail(result.message)
    print(f"node/{name} {'cordoned' if cordon else 'uncordoned'}" + ("" if result.value else " (already)"))
    return 0
