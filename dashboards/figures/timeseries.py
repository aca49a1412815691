"""Grafana's "Time series" panel as a plotly figure.

Follows the panel's options in grafana/public/app/plugins/panel/timeseries
(``fieldConfig.defaults.custom``: ``stacking``, ``fillOpacity``,
``thresholdsStyle``, ``scaleDistribution.log``) and its y-axis labelling in
@grafana/ui's UPlotAxisBuilder (ticks formatted with the unit, see
``units.axis_ticks``). Kept lean for the browser: one ``go.Scatter`` per
series with numpy arrays (sent base64-encoded, no per-point Python), no
WebGL, hover values scaled once per figure (``units.value_scale``).

Time: x values are epoch milliseconds on a date axis. plotly shows dates
without a time zone, so for ``timezone="browser"`` the values are shifted by
the browser's ``utc_offset_min`` (what the page reads from
``-new Date().getTimezoneOffset()``) and the axis reads local wall-clock
time; ``timezone="utc"`` shows UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..frames import FieldConfig, SeriesData
from .colors import series_color, threshold_steps, with_alpha
from .theme import (
    axis_style,
    base_layout,
    empty_figure,
    make_figure,
    offset_ms,
    time_axis,
)
from .units import axis_ticks, value_scale

__all__ = ["Annotation", "THRESHOLDS_STYLES", "timeseries_figure"]

# (start Unix s, end Unix s or None for a point in time, text, color)
Annotation = tuple[float, float | None, str, str]

THRESHOLDS_STYLES = ("off", "line", "dashed", "area", "line+area", "dashed+area")


def _arrays(s: SeriesData, shift_ms: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(s.times, dtype=float)
    y = np.asarray(s.values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"series {s.name!r}: {x.size} times but {y.size} values")
    return x * 1000.0 + shift_ms, y


def _data_bounds(ys: list[np.ndarray], stack: bool, log: bool) -> tuple[float, float] | None:
    """The min and max the y-axis must show (of the stacked sums when stacking)."""
    if stack and ys and all(y.shape == ys[0].shape for y in ys):
        filled = np.nan_to_num(np.vstack(ys), nan=0.0)
        pos = np.cumsum(np.where(filled > 0, filled, 0), axis=0)
        neg = np.cumsum(np.where(filled < 0, filled, 0), axis=0)
        ys = [pos[-1], neg[-1], *ys]
    elif stack:
        # Different timestamps: bound by the sum of each series' extremes.
        ys = [np.array([sum(np.nanmax(y, initial=0) for y in ys)]), *ys]
    flat = np.concatenate(ys) if ys else np.array([])
    flat = flat[np.isfinite(flat)]
    if log:
        flat = flat[flat > 0]
    if not flat.size:
        return None
    return float(flat.min()), float(flat.max())


def _hover(unit: str, decimals: int | None, ref: float, integers: bool) -> tuple[float, str]:
    """The divisor and hovertemplate shared by the figure's traces."""
    divisor, prefix, suffix = value_scale(unit, ref)
    if decimals is None:
        scaled = ref / divisor if divisor else ref
        if integers and divisor == 1:
            decimals = 0
        elif scaled > 0:
            decimals = min(4, max(0, 2 - math.floor(math.log10(scaled))))
        else:
            decimals = 2
    field_ref = "y" if divisor == 1 else "customdata"
    value = f"%{{{field_ref}:,.{decimals}f}}"
    return divisor, f"{prefix}{value}{suffix}<extra>%{{fullData.name}}</extra>"


def _y_axis(
    field: FieldConfig, bounds: tuple[float, float] | None, log_base: int | None
) -> dict[str, Any]:
    lo, hi = bounds if bounds else (0.0, 1.0)
    if field.min is not None and not (log_base and field.min <= 0):
        lo = field.min
    if field.max is not None:
        hi = field.max
    ticks, texts = axis_ticks(field.unit, lo, hi, decimals=field.decimals, log_base=log_base)
    if ticks:
        if field.min is None or (log_base and field.min <= 0):
            lo = min(lo, ticks[0])
        if field.max is None:
            hi = max(hi, ticks[-1])
    keep = [i for i, t in enumerate(ticks) if lo - 1e-12 * abs(lo) <= t <= hi + 1e-12 * abs(hi)]
    axis = axis_style(
        tickmode="array",
        tickvals=[ticks[i] for i in keep],
        ticktext=[texts[i] for i in keep],
        fixedrange=True,  # Grafana zooms on time only
        showgrid=True,
    )
    if log_base:
        axis.update(type="log", range=[math.log10(lo), math.log10(hi)])
    else:
        axis["range"] = [lo, hi]
    return axis


def _threshold_shapes(field: FieldConfig, style: str, lo: float, hi: float) -> list[dict[str, Any]]:
    """Grafana's ``thresholdsStyle``: lines at each step, and/or colored bands."""
    if style not in THRESHOLDS_STYLES or style == "off":
        return []
    shapes: list[dict[str, Any]] = []
    bands = threshold_steps(field, lo, hi)
    if "area" in style:
        for start, end, color in bands:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": start,
                    "y1": end,
                    "fillcolor": with_alpha(color, 0.15),
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
    if "line" in style or "dashed" in style:
        dash = "dash" if "dashed" in style else "solid"
        for start, _, color in bands:
            if start <= lo:
                continue  # the base step has no line
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": start,
                    "y1": start,
                    "line": {"color": color, "width": 1, "dash": dash},
                    "layer": "below",
                }
            )
    return shapes


def _annotations(
    annotations: Sequence[Annotation], shift_ms: float
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Alert annotations: a line or band each, and one marker trace carrying their text.

    Shapes can't show hover text, so a marker at the top of each annotation,
    on a hidden 0..1 axis overlaying the plot, carries it.
    """
    if not annotations:
        return [], None
    shapes: list[dict[str, Any]] = []
    xs: list[float] = []
    for start, end, _text, color in annotations:
        x0 = start * 1000.0 + shift_ms
        xs.append(x0)
        line = {"color": color, "width": 1, "dash": "dot"}
        shapes.append(
            {"type": "line", "xref": "x", "x0": x0, "x1": x0, "yref": "paper", "y0": 0, "y1": 1}
            | {"line": line, "layer": "below"}
        )
        if end is not None and end > start:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "x0": x0,
                    "x1": end * 1000.0 + shift_ms,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": with_alpha(color, 0.1),
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
    markers = {"type": "scatter"} | dict(
        x=np.asarray(xs),
        y=np.ones(len(xs)),
        yaxis="y2",
        mode="markers",
        name="Annotations",
        marker={"symbol": "triangle-down", "size": 9, "color": [a[3] for a in annotations]},
        hovertext=[a[2] for a in annotations],
        hovertemplate="%{hovertext}<extra></extra>",
        showlegend=False,
    )
    return shapes, markers


def timeseries_figure(
    series: Sequence[SeriesData],
    field: FieldConfig,
    *,
    time_range: tuple[float, float],
    timezone: str = "browser",
    utc_offset_min: int = 0,
    stack: bool = False,
    fill_opacity: int = 0,
    annotations: Sequence[Annotation] = (),
    thresholds_style: str = "off",
    legend: bool = True,
    log_base: int | None = None,
    line_width: float = 1,
) -> go.Figure:
    """A time series panel: one line per series over ``time_range``.

    Pure and fast: no I/O, numpy arrays only, safe to call from any thread.

    Args:
        series: the query results; NaN values are gaps (not connected).
        field: unit, min/max (y range), decimals, thresholds, color mode.
        time_range: the x range, Unix seconds (start, end).
        timezone: ``browser`` (shift by ``utc_offset_min``) or ``utc``.
        utc_offset_min: the browser's offset from UTC in minutes (+60 for CET).
        stack: stack the series (Grafana's ``stacking.mode: normal``); plotly
            stacks a gap as 0 rather than breaking the line.
        fill_opacity: 0..100, the area under (or between stacked) lines.
        annotations: alert annotations (start s, end s or None, text, color),
            drawn as dotted lines or bands with hover text.
        thresholds_style: ``off``, ``line``, ``dashed``, ``area``,
            ``line+area`` or ``dashed+area``.
        legend: show the legend (below the plot).
        log_base: a log y-axis (2 or 10; plotly draws both on a log10 axis,
            ticks at powers of the base).
        line_width: the lines' width in px.

    Returns:
        The figure; ``empty_figure(field.no_value)`` when there are no values.

    Raises:
        ValueError: a series whose times and values differ in length.
    """
    shift = offset_ms(timezone, utc_offset_min)
    arrays = [_arrays(s, shift) for s in series]
    ys = [y for _, y in arrays]
    bounds = _data_bounds(ys, stack, bool(log_base))
    if bounds is None:
        return empty_figure(field.no_value)
    finite = np.concatenate([y[np.isfinite(y)] for y in ys])
    ref = float(np.abs(finite).max())
    divisor, template = _hover(field.unit, field.decimals, ref, bool(np.all(finite % 1 == 0)))
    traces: list[dict[str, Any]] = []
    for i, (s, (x, y)) in enumerate(zip(series, arrays, strict=True)):
        color = series_color(field, i, s.last, s.name)
        trace: dict[str, Any] = {
            "x": x,
            "y": y,
            "mode": "lines",
            "name": s.name,
            "line": {"color": color, "width": line_width},
            "connectgaps": False,
            "hovertemplate": template,
            "showlegend": legend,
        }
        if divisor != 1:
            # float32 halves the payload; hover shows 2-4 digits anyway.
            trace["customdata"] = (y / divisor).astype(np.float32)
        if stack:
            trace["stackgroup"] = "stack"
            trace["fill"] = "tonexty" if fill_opacity > 0 else "none"
        elif fill_opacity > 0:
            trace["fill"] = "tozeroy"
        if fill_opacity > 0:
            trace["fillcolor"] = with_alpha(color, fill_opacity / 100)
        traces.append({"type": "scatter", **trace})
    yaxis = _y_axis(field, bounds, log_base)
    lo, hi = (10.0**v for v in yaxis["range"]) if log_base else yaxis["range"]
    shapes = _threshold_shapes(field, thresholds_style, lo, hi)
    if log_base:
        # plotly places shapes on a log axis in log10 units.
        for shape in shapes:
            shape["y0"], shape["y1"] = math.log10(shape["y0"]), math.log10(shape["y1"])
    note_shapes, markers = _annotations(annotations, shift)
    layout = base_layout(
        xaxis=time_axis(time_range, shift),
        yaxis=yaxis,
        shapes=shapes + note_shapes,
        hovermode="x unified",
        dragmode="zoom",
        showlegend=legend,
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": -0.08,
            "yanchor": "top",
            "bgcolor": "rgba(0,0,0,0)",
            "font": {"size": 11},
        },
    )
    if markers is not None:
        traces.append(markers)
        layout["yaxis2"] = {
            "overlaying": "y",
            "range": [0, 1],
            "visible": False,
            "fixedrange": True,
        }
    return make_figure(traces, layout)
