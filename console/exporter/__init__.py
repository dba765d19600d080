"""The Prometheus exporter: metrics collected from the shared poller, served over HTTP(S).

collector.py builds the metric families from the poller's latest state, exposition.py renders
them for /metrics (reusing each backend poll's text until its next poll), server.py serves them (connections.py
bounds how many connections it serves at once, auth.py checks basic auth), web_config.py reads
node_exporter's web configuration, alert_rules.py turns the specs' thresholds into alerting rules,
assembly.py puts them together. Never imports textual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config import ListenAddress
    from console.context import AppContext
    from console.poller import Poller


def start_exporter(poller: Poller, listen: ListenAddress | str, ctx: AppContext) -> Callable[[], None]:
    """For the console's --metrics-listen: serve the exporter over the console's poller.

    Returns a function that stops it. Raises console.exporter.assembly.ExporterStartError
    (a bad web config or specs, an address in use) with a message for people.
    """
    from console.exporter.assembly import serve_from_context

    exporter = serve_from_context(ctx, poller, listen)
    return exporter.stop


__all__ = ["start_exporter"]
