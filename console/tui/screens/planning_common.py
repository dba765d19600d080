"""Pieces shared by the placement preview and the scaling screen."""

from __future__ import annotations

CSS = """
{name} {{ background: $background; }}
{name} #controls {{ height: auto; padding: 0 1; }}
{name} #controls > * {{ margin-right: 1; }}
{name} #controls Select {{ width: 1fr; min-width: 20; }}
{name} #controls Input {{ width: 14; }}
{name} #results {{ height: 1fr; }}
{name} #results > * {{ width: 1fr; }}
{name} .section {{ height: auto; padding: 0 1; }}
{name} #title {{ height: 1; padding: 0 1; background: $panel; width: 100%; }}
"""


def bar(fraction: float, width: int = 12) -> str:
    """A capacity bar: filled for what is still free, light for what is taken."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)
