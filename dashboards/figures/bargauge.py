"""Grafana's "Bar gauge" panel: one bar per series from min to its value.

Follows grafana/public/app/plugins/panel/bargauge and @grafana/ui's BarGauge:
``displayMode`` ``basic`` (one color, the value's threshold), ``gradient``
(the bar passes through the threshold colors it crosses; plotly bars can't
hold a color gradient, so each threshold band is a segment) and ``lcd``
(20 cells, lit up to the value, each in its own threshold color); the value
text, Grafana's exact formatting, sits in a column beside (or above) the
bars. Range: the field's min/max, else 0 (or the lowest value, if negative)
up to the highest value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..frames import FieldConfig, SeriesData
from .colors import series_color, threshold_color, threshold_steps, with_alpha
from .reduce import reduce_value
from .theme import base_layout, empty_figure, make_figure, trace
from .units import format_value

__all__ = ["DISPLAY_MODES", "bargauge_figure"]

DISPLAY_MODES = ("basic", "gradient", "lcd")
_LCD_CELLS = 20
_TRACK = "rgba(204,204,220,0.07)"
_VALUE_SPACE = 0.18  # the share of the panel kept for the value texts


def _bar(
    names: list[str], length: Any, base: Any, color: Any, vertical: bool, **extra: Any
) -> dict[str, Any]:
    along, across = ("y", "x") if vertical else ("x", "y")
    return trace(
        "bar",
        **{along: length, across: names, "base": base},
        orientation="v" if vertical else "h",
        marker={"color": color, "line": {"width": 0}},
        showlegend=False,
        **extra,
    )


def bargauge_figure(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    orientation: str = "auto",
    display_mode: str = "gradient",
    reduce: str = "lastNotNull",
    panel_size: tuple[int, int] = (400, 200),
) -> go.Figure:
    """A bar gauge panel: each series reduced to a bar colored by thresholds.

    Args:
        series: the query results.
        field: unit, decimals, min/max, thresholds, color mode, no_value.
        orientation: ``horizontal``, ``vertical``, or ``auto`` (vertical
            bars when ``panel_size`` is wider than tall, as Grafana does).
        display_mode: ``basic``, ``gradient`` or ``lcd``.
        reduce: Grafana's calculation (``reduce.reduce_value``).
        panel_size: the panel's size in px (width, height).

    Returns:
        The figure: a faint full-length track bar carrying the texts and
        hover, then the value bars; ``empty_figure(field.no_value)`` with no
        series.
    """
    if not series:
        return empty_figure(field.no_value)
    vertical = orientation == "vertical" or (
        orientation == "auto" and panel_size[0] > panel_size[1]
    )
    names = [s.name for s in series]
    values = [reduce_value(s.values, reduce) for s in series]
    present = [v for v in values if v is not None]
    lo = field.min if field.min is not None else min([0.0, *present])
    hi = field.max if field.max is not None else max([lo, *present])
    if hi <= lo:
        hi = lo + 1
    v = np.array([lo if x is None else min(max(x, lo), hi) for x in values])
    texts = [
        field.no_value if x is None else format_value(x, field.unit, field.decimals) for x in values
    ]
    colors = [series_color(field, i, x, names[i]) for i, x in enumerate(values)]
    n = len(series)
    track = _bar(
        names,
        np.full(n, hi - lo),
        lo,
        _TRACK if display_mode != "lcd" else "rgba(0,0,0,0)",
        vertical,
        text=texts,
        textposition="none",
        hovertemplate=("%{x}" if vertical else "%{y}") + ": %{text}<extra></extra>",
        name="track",
    )
    traces: list[dict[str, Any]] = [track]
    if display_mode == "lcd":
        width = (hi - lo) / _LCD_CELLS
        for j in range(_LCD_CELLS):
            start = lo + j * width
            color = threshold_color(start + width / 2, field, data_range=(lo, hi))
            lit = [
                color if (x is not None and x > start) else with_alpha(color, 0.15) for x in values
            ]
            traces.append(
                _bar(names, np.full(n, width * 0.8), start, lit, vertical, hoverinfo="skip")
            )
    elif display_mode == "gradient" and field.color_mode == "thresholds":
        for start, end, color in threshold_steps(field, lo, hi):
            length = np.clip(v, start, end) - start
            traces.append(_bar(names, length, start, color, vertical, hoverinfo="skip"))
    else:
        traces.append(_bar(names, v - lo, lo, colors, vertical, hoverinfo="skip"))
    annotations = [
        {
            "text": text,
            "showarrow": False,
            "font": {"color": color, "size": 14},
            **(
                {"xref": "x", "x": name, "yref": "paper", "y": 1.0, "yanchor": "top"}
                if vertical
                else {"yref": "y", "y": name, "xref": "paper", "x": 1.0, "xanchor": "right"}
            ),
        }
        for name, text, color in zip(names, texts, colors, strict=True)
    ]
    value_axis = {
        "visible": False,
        "range": [lo, hi],
        "fixedrange": True,
        "domain": [0, 1 - _VALUE_SPACE],
    }
    name_axis: dict[str, Any] = {
        "type": "category",
        "fixedrange": True,
        "showgrid": False,
        "tickfont": {"size": 12},
        "automargin": True,
    }
    if not vertical:
        name_axis["autorange"] = "reversed"  # the first series on top, as in Grafana
    layout = base_layout(
        barmode="overlay",
        bargap=0.25,
        hovermode="closest",
        annotations=annotations,
        xaxis=name_axis if vertical else value_axis,
        yaxis=value_axis if vertical else name_axis,
    )
    return make_figure(traces, layout)
