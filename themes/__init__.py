"""The console's named themes (dark, light, high-contrast) and its stylesheet.

Only the console (console/tui) imports this package: it builds textual `Theme` objects.
Each theme also names the editor's syntax colours (`EDITOR_THEMES`). `NO_COLOR` is honoured by
textual itself (every colour is turned to monochrome), whatever theme is chosen.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

STYLESHEET = Path(__file__).with_name("console.tcss")

THEMES: dict[str, Theme] = {
    "dark": Theme(
        name="dark",
        primary="#3b8eea",
        secondary="#4f6d8f",
        accent="#e5a50a",
        warning="#e5a50a",
        error="#e05561",
        success="#4ebf71",
        foreground="#e0e0e0",
        background="#121417",
        surface="#1b1e23",
        panel="#242932",
        dark=True,
    ),
    "light": Theme(
        name="light",
        primary="#0b5cad",
        secondary="#3d6b99",
        accent="#a35200",
        warning="#9a5b00",
        error="#b3261e",
        success="#1e7b34",
        foreground="#1a1a1a",
        background="#f4f4f4",
        surface="#e8e8e8",
        panel="#dcdcdc",
        dark=False,
    ),
    # Pure black and white with saturated accents: every text/background pair stays well above
    # WCAG AA contrast, and nothing is said by colour alone (states are also words).
    "high-contrast": Theme(
        name="high-contrast",
        primary="#ffff00",
        secondary="#00ffff",
        accent="#ff00ff",
        warning="#ffff00",
        error="#ff5555",
        success="#00ff00",
        foreground="#ffffff",
        background="#000000",
        surface="#000000",
        panel="#1a1a1a",
        dark=True,
        luminosity_spread=0.0,
        text_alpha=1.0,
        variables={
            "border": "#ffffff",
            "border-blurred": "#aaaaaa",
            "footer-key-foreground": "#ffff00",
            "block-cursor-background": "#ffff00",
            "block-cursor-foreground": "#000000",
        },
    ),
}

THEME_NAMES = tuple(THEMES)

# The editor's syntax colours for each theme (textual's TextArea themes).
EDITOR_THEMES = {"dark": "monokai", "light": "github_light", "high-contrast": "vscode_dark"}
