"""Grafana's "Gauge" panel: an arc per series, filled to its value.

Follows grafana/public/app/plugins/panel/gauge and @grafana/ui's Gauge: range
``min``..``max`` (0..100 when unset), the bar in the value's threshold color,
threshold steps as bands behind it (Grafana's "threshold markers"). The arc
is a ``go.Indicator(mode="gauge")``; the value is drawn as an annotation with
Grafana's exact text ("1.50 KiB"), since an Indicator's own number can only
show the raw value through a d3 format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from ..frames import FieldConfig, SeriesData
from ._grid import fit_font, grid
from .colors import series_color, threshold_steps, with_alpha
from .reduce import reduce_value
from .theme import GRID_COLOR, base_layout, empty_figure, make_figure, trace
from .units import format_value

__all__ = ["gauge_figure"]


def gauge_figure(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    reduce: str = "lastNotNull",
    show_threshold_markers: bool = True,
    columns: int | None = None,
    panel_size: tuple[int, int] = (400, 200),
) -> go.Figure:
    """A gauge panel: one ``go.Indicator`` gauge per series, in a grid.

    Args:
        series: the query results.
        field: unit, decimals, min/max (default 0/100), thresholds, color mode.
        reduce: Grafana's calculation (``reduce.reduce_value``).
        show_threshold_markers: draw the threshold steps as bands.
        columns: gauges per row; None picks a grid that suits ``panel_size``.
        panel_size: the panel's size in px (width, height), for font sizes.

    Returns:
        The figure; ``empty_figure(field.no_value)`` with no series.
    """
    if not series:
        return empty_figure(field.no_value)
    lo = 0.0 if field.min is None else field.min
    hi = 100.0 if field.max is None else field.max
    if hi <= lo:
        hi = lo + 1
    steps = threshold_steps(field, lo, hi) if show_threshold_markers else []
    cells = grid(len(series), panel_size, 1.6, columns)
    traces: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    many = len(series) > 1
    for i, (s, (x0, x1, y0, y1, w_px, h_px)) in enumerate(zip(series, cells, strict=True)):
        value = reduce_value(s.values, reduce)
        text = field.no_value if value is None else format_value(value, field.unit, field.decimals)
        color = series_color(field, i, value, s.name)
        top = y1 - (y1 - y0) * (0.14 if many else 0.0)
        traces.append(
            trace(
                "indicator",
                mode="gauge",
                value=lo if value is None else min(max(value, lo), hi),
                domain={"x": [x0, x1], "y": [y0, top]},
                gauge={
                    "shape": "angular",
                    "axis": {"range": [lo, hi], "visible": False},
                    "bar": {"color": color, "thickness": 0.6},
                    "bgcolor": GRID_COLOR,
                    "borderwidth": 0,
                    "steps": [{"range": [a, b], "color": with_alpha(c, 0.35)} for a, b, c in steps],
                },
                name=s.name,
            )
        )
        # plotly.js draws the arc with radius min(w/2, h), centred vertically in
        # its domain; the value goes just above the hub, inside the arc.
        w_dom, h_dom = w_px, h_px * (top - y0) / (y1 - y0)
        radius = min(w_dom / 2, h_dom)
        hub = (h_dom - radius) / 2
        annotations.append(
            {
                "text": text,
                "xref": "paper",
                "yref": "paper",
                "x": (x0 + x1) / 2,
                "y": y0 + (top - y0) * (hub + 0.22 * radius) / h_dom,
                "xanchor": "center",
                "yanchor": "middle",
                "showarrow": False,
                "hovertext": f"{s.name}: {text}",
                "font": {
                    "size": round(fit_font(text, radius * 1.1, radius * 0.3), 1),
                    "color": color,
                },
            }
        )
        if many:
            annotations.append(
                {
                    "text": s.name,
                    "xref": "paper",
                    "yref": "paper",
                    "x": (x0 + x1) / 2,
                    "y": y1,
                    "xanchor": "center",
                    "yanchor": "top",
                    "showarrow": False,
                    "font": {"size": round(fit_font(s.name, w_px, h_px * 0.1, 16), 1)},
                    "bgcolor": "rgba(0,0,0,0)",
                }
            )
    layout = base_layout(annotations=annotations)
    return make_figure(traces, layout)
