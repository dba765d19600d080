"""Pieces shared by the placement preview and the scaling screen."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

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


Cell = str | tuple[str, str]  # a text, or (text, Rich style)


class RowList(ScrollView, can_focus=True):
    """A long table drawn only where it is in sight (Textual's line API): its header stays on
    the first line, and a row becomes segments when it scrolls into view, so 5,000 nodes cost
    what the screen shows. Up/Down, PageUp/PageDown, Home/End and the mouse scroll it."""

    DEFAULT_CSS = "RowList { height: 1fr; padding: 0 1; }"

    def __init__(self, headers: Sequence[str], right_aligned: Sequence[int] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.headers: tuple[Cell, ...] = tuple((header, "bold") for header in headers)
        self.right_aligned = frozenset(right_aligned)
        self.rows: Sequence[Sequence[Cell]] = ()
        self.widths = [cell_len(header) for header in headers]
        self.rows_drawn = 0  # rows turned into segments: what the tests count instead of timing

    def show(self, rows: Sequence[Sequence[Cell]]) -> None:
        """Hold these rows (from the top); columns are as wide as their widest cell."""
        self.rows = rows
        self.widths = [max([cell_len(_text(header))] + [cell_len(_text(row[index])) for row in rows])
                       for index, header in enumerate(self.headers)]
        self.virtual_size = Size(sum(self.widths) + 2 * (len(self.widths) - 1), len(rows) + 1)
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def row_at_top(self) -> int:
        """The index of the first row in sight."""
        return round(self.scroll_offset.y)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            cells = self.headers
        elif 0 <= (index := scroll_y + y - 1) < len(self.rows):
            cells = self.rows[index]
            self.rows_drawn += 1
        else:
            return Strip.blank(width, self.rich_style)
        line = Text(no_wrap=True, end="")
        for column, (cell, cell_width) in enumerate(zip(cells, self.widths)):
            text, style = (cell, "") if isinstance(cell, str) else cell
            padding = " " * (cell_width - cell_len(text))
            if column:
                line.append("  ")
            line.append_text(Text.assemble(*((padding, (text, style)) if column in self.right_aligned else ((text, style), padding))))
        segments = list(line.render(self.app.console))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_style(self.rich_style)


def _text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else cell[0]
