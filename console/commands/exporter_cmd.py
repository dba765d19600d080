"""`exporter`: the headless Prometheus exporter, and the alert rules `render --alert-rules` prints.

`rtm-console exporter` builds the configured backends, polls them, serves /metrics (plus /,
/health, /ready, /startup) until SIGTERM or SIGINT, then stops cleanly. It never imports
textual. Exit codes: 0 after a signal, 1 when the specs or web config are wrong or the address
cannot be bound, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from console.config import ConfigError
from console.context import AppContext, open_context
from console.poller import Poller

POLLER_STOP_TIMEOUT = 5.0

EXAMPLES = """\
  rtm-console exporter                                   serve on 127.0.0.1:9465 (exporter.listen)
  rtm-console exporter --listen :9465 --web-config web.yml
  rtm-console exporter --specs ./specs --check           check the web config and specs, then exit
  rtm-console render --alert-rules ./specs > rtm-alerts.yml && promtool check rules rtm-alerts.yml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    exporter = subparsers.add_parser(
        "exporter",
        help="serve Prometheus metrics of the host, containers, VMs and functions (headless)",
        description="Poll the configured backends and serve their metrics at /metrics, with / (landing page), "
        "/health, /ready (every backend polled once) and /startup. Binds to loopback unless told otherwise. "
        "Stops cleanly on SIGTERM or SIGINT.",
        epilog="examples:\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exporter.add_argument("--listen", metavar="ADDR:PORT", help="address to serve on (default: exporter.listen, 127.0.0.1:9465; :PORT for every interface)")
    exporter.add_argument("--web-config", metavar="FILE", help="node_exporter-style web config: TLS, client certificates, basic auth")
    exporter.add_argument("--specs", metavar="DIR", help="spec folder; a ResourceMetrics spec there selects the host metrics (default: specs_dir)")
    exporter.add_argument("--check", action="store_true", help="check the web config and the specs, print what would be served, and exit")
    exporter.set_defaults(handler=run_exporter)


def run_exporter(args: argparse.Namespace) -> int:
    from console.exporter.assembly import ExporterStartError

    try:
        ctx = open_context(args, "kiosk")  # the exporter only reads: backends open read-only
    except ConfigError as exc:
        print(f"rtm-console exporter: the configuration has errors:\n{exc}", file=sys.stderr)
        return 2
    try:
        return _check(ctx) if args.check else _serve(ctx)
    except ExporterStartError as exc:
        print(f"rtm-console exporter: {exc}", file=sys.stderr)
        return 1
    finally:
        ctx.close()


def _check(ctx: AppContext) -> int:
    from console.exporter.assembly import load_specs, read_web_config
    from console.exporter.web_config import describe

    config = ctx.config
    web_config = read_web_config(config.exporter.web_config)
    specs = load_specs(config.specs_dir, required=config.source("specs_dir").kind != "default")
    for warning in specs.warnings:
        print(warning.format(), file=sys.stderr)
    selection = specs.host_selection
    print(f"listen: {config.exporter.listen}")
    print(f"web config: {describe(web_config) if web_config else 'none (plain HTTP, no authentication)'}")
    print(f"specs: {len(specs.files)} file(s) in {config.specs_dir}")
    print("host metrics: " + (", ".join(sorted(selection)) if selection is not None else "all (no ResourceMetrics spec)"))
    return 0


def _serve(ctx: AppContext) -> int:
    from console.exporter.assembly import serve_from_context
    from console.exporter.web_config import describe

    stop = _stop_on_signals()
    poller = Poller(ctx.backends_or_host_only(), interval=ctx.config.refresh_interval)
    exporter = serve_from_context(ctx, poller, started=False)
    try:
        poller.start()
        exporter.server.mark_started()
        for note in exporter.notes:
            print(note, file=sys.stderr)
        for missing in ctx.unavailable:
            print(f"rtm-console exporter: {missing.describe()}", file=sys.stderr)
        security = describe(exporter.web_config) if exporter.web_config else "plain HTTP, no authentication"
        print(f"rtm-console exporter: serving {exporter.url}/metrics ({security})", file=sys.stderr, flush=True)
        stop.wait()
        print("rtm-console exporter: stopping", file=sys.stderr, flush=True)
    finally:
        exporter.stop()
        poller.stop(timeout=POLLER_STOP_TIMEOUT)
    return 0


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (instead of a KeyboardInterrupt mid-shutdown)."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    return stop


def render_alert_rules_command(paths: list[Path]) -> int:
    """`rtm-console render --alert-rules PATH...`: print Prometheus alerting rules for the
    thresholds of the specs under `paths`. 0 printed, 1 the specs have errors, 2 unreadable."""
    from console.commands.spec_commands import load_all, print_findings
    from console.exporter.alert_rules import render_alert_rules

    results, unreadable = load_all(paths)
    for problem in unreadable:
        print(f"rtm-console render: cannot read {problem}", file=sys.stderr)
    if unreadable:
        return 2
    errors = [f for r in results for f in r.findings if f.severity == "error"]
    if errors:
        print_findings(errors)
        print("rtm-console render: the specs have errors; no rules rendered", file=sys.stderr)
        return 1
    print(render_alert_rules(d for r in results for d in r.documents), end="")
    return 0
