"""Grafana's "Stat" panel: one big formatted value per series.

Follows grafana/public/app/plugins/panel/stat (options ``reduceOptions.calcs``,
``graphMode``, ``colorMode``, ``textMode``) and @grafana/ui's BigValue. The
value is Grafana's exact text (``units.format_value``: "12.3 GiB"), drawn as
an annotation: a ``go.Indicator`` number can only show the raw value through a
d3 format, never "1.50 KiB" or "1 day, 2 hours". Fonts are sized to the
cell, from the ``panel_size`` the page knows (plotly annotations don't scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..frames import FieldConfig, SeriesData
from ._grid import fit_font, grid
from .colors import series_color, with_alpha
from .reduce import reduce_value
from .theme import FONT_COLOR, base_layout, empty_figure, make_figure, trace
from .units import format_value

__all__ = ["stat_figure"]

_CONTRAST_TEXT = "#ffffff"


def _text_parts(text_mode: str, n: int) -> tuple[bool, bool]:
    """(show the name, show the value) for Grafana's ``textMode``."""
    if text_mode == "auto":
        return n > 1, True
    return text_mode in ("name", "value_and_name"), text_mode in ("value", "value_and_name")


def _annotation(
    text: str, x: float, y: float, size: float, color: str, **extra: Any
) -> dict[str, Any]:
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": x,
        "y": y,
        "showarrow": False,
        "xanchor": "center",
        "font": {"size": round(size, 1), "color": color},
        **extra,
    }


def stat_figure(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    reduce: str = "lastNotNull",
    graph_mode: str = "area",
    color_mode: str = "value",
    text_mode: str = "auto",
    columns: int | None = None,
    panel_size: tuple[int, int] = (400, 200),
) -> go.Figure:
    """A stat panel: each series reduced to one value, formatted and colored.

    Args:
        series: the query results.
        field: unit, decimals, thresholds and color mode, no_value text.
        reduce: Grafana's calculation (``reduce.reduce_value``).
        graph_mode: ``area`` draws the series as a sparkline under the value,
            ``none`` doesn't.
        color_mode: ``value`` colors the text, ``background`` the cell,
            ``none`` neither.
        text_mode: ``auto`` (names too when several series), ``value``,
            ``value_and_name``, ``name`` or ``none``.
        columns: cells per row; None picks a grid that suits ``panel_size``.
        panel_size: the panel's size in px (width, height), for font sizes.

    Returns:
        The figure; ``empty_figure(field.no_value)`` with no series.
    """
    if not series:
        return empty_figure(field.no_value)
    sparkline = graph_mode == "area"
    show_name, show_value = _text_parts(text_mode, len(series))
    cells = grid(len(series), panel_size, 2.5 if sparkline else 2.0, columns)
    layout = base_layout(hovermode=False)
    annotations: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    traces: list[dict[str, Any]] = []
    for i, (s, (x0, x1, y0, y1, w_px, h_px)) in enumerate(zip(series, cells, strict=True)):
        value = reduce_value(s.values, reduce)
        text = field.no_value if value is None else format_value(value, field.unit, field.decimals)
        color = series_color(field, i, value, s.name)
        text_color = {"value": color, "background": _CONTRAST_TEXT}.get(color_mode, FONT_COLOR)
        if color_mode == "background":
            shapes.append(
                {
                    "type": "rect",
                    "xref": "paper",
                    "yref": "paper",
                    "x0": x0 + 0.004,
                    "x1": x1 - 0.004,
                    "y0": y0 + 0.008,
                    "y1": y1 - 0.008,
                    "fillcolor": color,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
        height = y1 - y0
        # The value sits above the sparkline (bottom 35%) and below the name.
        text_bottom = y0 + (0.35 if sparkline else 0.0) * height
        text_h_px = h_px * (0.65 if sparkline else 1.0) * (0.7 if show_name else 1.0)
        cx = (x0 + x1) / 2
        if show_value:
            size = fit_font(text, w_px, text_h_px)
            top = y1 - (0.3 if show_name else 0.0) * (y1 - text_bottom)
            annotations.append(
                _annotation(
                    text,
                    cx,
                    (text_bottom + top) / 2,
                    size,
                    text_color,
                    hovertext=f"{s.name}: {text}",
                    yanchor="middle",
                )
            )
        if show_name:
            size = fit_font(s.name, w_px, h_px * 0.2, largest=20)
            name_y = y1 - 0.04 * height if show_value else (text_bottom + y1) / 2
            anchor = "top" if show_value else "middle"
            annotations.append(_annotation(s.name, cx, name_y, size, text_color, yanchor=anchor))
        if sparkline and len(s.values):
            k = "" if i == 0 else str(i + 1)
            line = _CONTRAST_TEXT if color_mode == "background" else color
            traces.append(
                trace(
                    "scatter",
                    x=np.asarray(s.times, dtype=float),
                    y=np.asarray(s.values, dtype=float),
                    xaxis=f"x{k}",
                    yaxis=f"y{k}",
                    mode="lines",
                    line={"color": with_alpha(line, 0.8), "width": 1},
                    fill="tozeroy",
                    fillcolor=with_alpha(line, 0.15),
                    hoverinfo="skip",
                    showlegend=False,
                    name=s.name,
                )
            )
            hidden = {"visible": False, "fixedrange": True}
            layout[f"xaxis{k}"] = {**hidden, "domain": [x0, x1], "anchor": f"y{k}"}
            layout[f"yaxis{k}"] = {
                **hidden,
                "domain": [y0, y0 + 0.35 * height],
                "anchor": f"x{k}",
                "rangemode": "tozero" if field.min is None else "normal",
            }
            if field.min is not None and field.max is not None:
                layout[f"yaxis{k}"]["range"] = [field.min, field.max]
    if "xaxis" not in layout:
        layout["xaxis"] = layout["yaxis"] = {"visible": False, "fixedrange": True}
    layout["annotations"] = annotations
    layout["shapes"] = shapes
    return make_figure(traces, layout)
