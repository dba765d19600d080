"""Textual's private internals that the console relies on, all here, and the version check.

The console uses a few names that are not Textual's API and change between its versions:
- DataTable: `_render_cell` (overridden so a cell's rendering is reused while its row did not
  change), `_update_count` (the key of its render caches), `_data` (cells written in bulk),
  `_updated_cells` and `_require_update_dimensions` (columns re-measured), `_row_locations`
  (row index <-> key), its render caches (sized down);
- App: `_fatal_error` (replaced so an unexpected error ends with one line), `_exit_renderables`
  and `_close_messages_no_wait`.
They were checked against SUPPORTED_TEXTUAL, which pyproject.toml pins too. Importing this
module checks the installed Textual first and, outside that range, stops with a message that
names the range and what to do (before any Textual module is imported, as one that no longer
matches could fail on import with a traceback).
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

SUPPORTED_TEXTUAL = "textual>=8.2,<9"
_LOWEST = (8, 2)  # inclusive
_BELOW = (9, 0)  # exclusive


class UnsupportedTextual(SystemExit):
    """The installed Textual is not one the console was checked against (exits with its message)."""


def textual_problem(installed: str | None) -> str | None:
    """What is wrong with the installed Textual version `installed` (None: not installed), or None."""
    fix = f"install a supported one in rtm-console's environment: pip install '{SUPPORTED_TEXTUAL}'"
    if installed is None:
        return f"rtm-console's console needs Textual ({SUPPORTED_TEXTUAL}), which is not installed; {fix}"
    found = re.match(r"(\d+)\.(\d+)", installed)
    if found is not None and _LOWEST <= (int(found.group(1)), int(found.group(2))) < _BELOW:
        return None
    return (f"rtm-console's console works with {SUPPORTED_TEXTUAL} (it relies on internals of Textual's "
            f"DataTable and App that change between versions); Textual {installed} is installed. "
            f"{fix[0].upper()}{fix[1:]}.")


def installed_textual() -> str | None:
    try:
        return version("textual")
    except PackageNotFoundError:
        return None


def check_textual() -> None:
    problem = textual_problem(installed_textual())
    if problem is not None:
        raise UnsupportedTextual(f"rtm-console: {problem}")


check_textual()

# The check passed: the internals below are those of a supported Textual.
import itertools  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

from rich.cells import cell_len  # noqa: E402
from textual.app import App  # noqa: E402
from textual.cache import LRUCache  # noqa: E402
from textual.widgets import DataTable  # noqa: E402
from textual.widgets.data_table import CellKey, ColumnKey, RowKey  # noqa: E402


class RowCachedDataTable(DataTable):
    """A DataTable that renders again only the rows whose cells changed, takes many cell
    changes with one repaint, and finds a row's index by key.

    textual 8's DataTable keys every cell rendering on one table-wide update counter, so a
    change to one cell re-renders every visible cell (with Rich, ~0.1 ms each). Here the
    counter its caches see is the row's own version plus the column widths.
    """

    def __init__(self, *args: Any, cell_cache: int, row_cache: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._row_versions: dict[RowKey, int] = {}  # bumped when a row's cells change
        self._versions = itertools.count(1)
        self._layout: tuple[object, tuple[int, ...]] = (None, ())
        # Render caches sized for what a terminal shows (a screen of rows, a few times over),
        # not textual's defaults (10,000 cells, 1,000 rows and lines), which a big table
        # under refresh fills with renderings it will never show again (~10 MB).
        self._cell_render_cache = LRUCache(cell_cache)
        self._row_render_cache = LRUCache(row_cache)
        self._row_renderable_cache = LRUCache(row_cache)
        self._line_cache = LRUCache(row_cache)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._row_versions[row_key] = next(self._versions)
        return row_key

    def remove_row(self, row_key: RowKey | str) -> None:
        super().remove_row(row_key)
        self._row_versions.pop(RowKey(row_key) if isinstance(row_key, str) else row_key, None)

    def clear(self, columns: bool = False) -> RowCachedDataTable:
        self._row_versions.clear()
        return super().clear(columns)  # type: ignore[return-value]

    def row_index(self, row_key: RowKey) -> int | None:
        """The row's index in the table now, None when it is not there."""
        return self._row_locations.get(row_key)

    def remeasure_columns(self) -> None:
        """Have the column widths computed again at the next refresh (e.g. a header grew)."""
        self._require_update_dimensions = True

    def set_cells(self, changes: Iterable[tuple[RowKey, ColumnKey, Any, str]]) -> set[RowKey] | None:
        """Put new values (`cell`, shown as `text`) into many cells at once.

        DataTable.update_cell schedules a repaint per cell and, asked to fit the column, may
        re-measure the whole column per cell; for thousands of changed cells that is most of a
        refresh. This does what update_cell does, once for the batch, and re-measures only
        cells wider than their column (columns grow, never shrink). Returns the rows to
        repaint, or None when a column grew and the whole table is repainted.
        """
        grew = False
        changed_rows: set[RowKey] = set()
        for row_key, column_key, cell, text in changes:
            self._data[row_key][column_key] = cell
            self._row_versions[row_key] = next(self._versions)
            changed_rows.add(row_key)
            if cell_len(text) > self.columns[column_key].content_width:
                self._updated_cells.add(CellKey(row_key, column_key))
                grew = True
        self._update_count += 1
        if grew:
            self.remeasure_columns()
            self.refresh()
            return None
        return changed_rows

    def _render_cell(self, row_index: int, column_index: int, base_style: Any, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        """Render a cell, reusing its last rendering while its row did not change. (DataTable
        reads `_update_count` for the cell cache and the row renderables; both stay keyed by
        row key or version.)"""
        if row_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        table_count = self._update_count
        row_key = self._row_locations.get_key(row_index)
        self._update_count = (self._row_versions.get(row_key, 0), self._column_widths(table_count))  # type: ignore[assignment]
        try:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        finally:
            self._update_count = table_count

    def _column_widths(self, table_count: object) -> tuple[int, ...]:
        if self._layout[0] != table_count:
            self._layout = (table_count, tuple(column.get_render_width(self) for column in self.ordered_columns))
        return self._layout[1]


def end_fatal_errors_with_one_line(app_class: type[App], describe: Callable[[App], str]) -> None:
    """An unexpected error ends an app of `app_class` with the one line `describe(app)` gives
    (which logs the traceback where it wants) instead of Textual's traceback on the terminal."""

    def one_line_fatal_error(self: App) -> None:
        self.bell()
        self._exit_renderables.append(describe(self))
        self._close_messages_no_wait()

    app_class._fatal_error = one_line_fatal_error  # type: ignore[method-assign]
