"""Laying out one cell per series, as Grafana's VizRepeater does for stat and gauge panels.

plotly has no layout engine for "N big numbers in a panel", so the panel is
cut into a grid of paper-coordinate cells whose shape is closest to the
``aspect`` (width / height) the visualization looks best in.
"""

from __future__ import annotations

import math

__all__ = ["Cell", "grid", "fit_font"]

# (x0, x1, y0, y1) in paper coordinates, and the cell's size in px.
Cell = tuple[float, float, float, float, float, float]


def grid(
    n: int, panel_size: tuple[int, int], aspect: float, columns: int | None = None
) -> list[Cell]:
    """``n`` cells, row by row from the top left."""
    if n <= 0:
        return []
    width, height = panel_size
    if columns is None:

        def badness(cols: int) -> float:
            rows = math.ceil(n / cols)
            return abs(math.log((width / cols) / (height / rows) / aspect))

        columns = min(range(1, n + 1), key=badness)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    cells: list[Cell] = []
    for k in range(n):
        row, col = divmod(k, columns)
        x0, x1 = col / columns, (col + 1) / columns
        y1 = 1 - row / rows
        y0 = 1 - (row + 1) / rows
        cells.append((x0, x1, y0, y1, width / columns, height / rows))
    return cells


def fit_font(text: str, width_px: float, height_px: float, largest: float = 72) -> float:
    """A font size (px) at which ``text`` fits the box, like Grafana's calculateFontSize.

    Characters are taken as 0.6 em wide, which holds for digits in the UI font.
    """
    by_width = width_px * 0.9 / (0.6 * max(len(text), 1))
    return max(8.0, min(largest, by_width, height_px * 0.8))
