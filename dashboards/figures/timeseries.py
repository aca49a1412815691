"""Grafana's "Time series" panel as a plotly figure.

Follows the panel's options in grafana/public/app/plugins/panel/timeseries
(``fieldConfig.defaults.custom``: ``stacking``, ``fillOpacity``,
``thresholdsStyle``, ``scaleDistribution.log``), each series refined by the
panel's field overrides (a ``SeriesStyle`` per series, from
``tinct.dashboards.overrides``: color, name, transform, stacking group, line,
hiding, axis), and its y-axes in ``_yaxes`` (one per scale, ticks in the
unit, as @grafana/ui's UPlotAxisBuilder). Kept lean for the browser: one
``go.Scatter`` per series with numpy arrays (sent base64-encoded, no
per-point Python), no WebGL, hover values scaled once per unit
(``units.value_scale``).

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
from ..overrides import SeriesStyle
from ._yaxes import axis_name, scale_bounds, scales, stack_groups, y_axes
from .colors import series_color, threshold_steps, with_alpha
from .theme import base_layout, empty_figure, make_figure, offset_ms, time_axis
from .units import value_scale

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


def _transformed(
    x: np.ndarray, y: np.ndarray, transform: str, span_ms: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The points drawn: ``custom.transform`` applied (preparePlotData2 in grafana-ui).

    ``negative-Y`` flips the values below zero; ``constant`` draws the first
    value as a flat line across the whole time range, as Grafana's path
    builder for it does.
    """
    if transform == "negative-Y":
        return x, -y
    if transform == "constant":
        first = y[np.isfinite(y)][:1]
        if not first.size:
            return x[:0], y[:0]
        return np.asarray(span_ms), np.repeat(first, 2)
    return x, y


def _hover(unit: str, decimals: int | None, ref: float, integers: bool) -> tuple[float, str, str]:
    """The divisor and the hovertemplate's parts around the value: (divisor, head, tail).

    The template is ``head + "%{y" + tail`` (or ``"%{customdata" + tail`` when
    the hover shows other numbers than the plotted ones).
    """
    divisor, prefix, suffix = value_scale(unit, ref)
    if decimals is None:
        scaled = ref / divisor if divisor else ref
        if integers and divisor == 1:
            decimals = 0
        elif scaled > 0:
            decimals = min(4, max(0, 2 - math.floor(math.log10(scaled))))
        else:
            decimals = 2
    return divisor, prefix, f":,.{decimals}f}}{suffix}<extra>%{{fullData.name}}</extra>"


def _dash(style: SeriesStyle) -> str:
    """``custom.lineStyle`` (not solid) as plotly's ``line.dash``."""
    if style.line_fill == "dash" and any(style.line_dash):
        return ",".join(f"{d:g}px" for d in style.line_dash)
    return "dash" if style.line_fill == "dash" else "dot"


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


def _hovers(
    ys: Sequence[np.ndarray], styles: Sequence[SeriesStyle]
) -> dict[tuple[str, int | None], tuple[float, str, str]]:
    """The hover parts of each (unit, decimals) the series use, scaled once for all
    the series sharing them."""
    out = {}
    for key in dict.fromkeys((st.field.unit, st.field.decimals) for st in styles):
        same = [
            y for y, st in zip(ys, styles, strict=True) if (st.field.unit, st.field.decimals) == key
        ]
        finite = np.concatenate([y[np.isfinite(y)] for y in same])
        ref = float(np.abs(finite).max()) if finite.size else 0.0
        out[key] = _hover(*key, ref, bool(np.all(finite % 1 == 0)))
    return out


def _trace(
    x: np.ndarray, y: np.ndarray, style: SeriesStyle, color: str, legend: bool
) -> dict[str, Any]:
    """A series' line as ``style`` draws it (its stacking and hover are the caller's)."""
    trace: dict[str, Any] = {
        "type": "scatter",
        "x": x,
        "y": y,
        "mode": "lines",
        "name": style.name,
        "line": {"color": color, "width": style.line_width},
        "connectgaps": False,
        "showlegend": legend and not style.hide_legend,
    }
    if style.line_fill != "solid":
        trace["line"]["dash"] = _dash(style)
    if style.fill_opacity > 0:
        trace["fill"] = "tozeroy"
        trace["fillcolor"] = with_alpha(color, style.fill_opacity / 100)
    if style.hide_tooltip:
        trace["hoverinfo"] = "skip"
    if style.hide_viz:
        trace["visible"] = "legendonly"  # listed, drawn once clicked
    return trace


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
    styles: Sequence[SeriesStyle] | None = None,
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
        styles: each series' own settings, aligned with ``series``
            (``tinct.dashboards.overrides.series_styles``: the panel's field
            overrides applied); when given they replace ``stack``,
            ``fill_opacity`` and ``line_width``. Series stack by Grafana's
            key: stacking group, direction (mostly negative series stack
            down) and y scale. Series whose unit, min, max or axis placement
            differ get their own y-axis; ``field`` still gives the thresholds
            and the "no value" text.

    Returns:
        The figure; ``empty_figure(field.no_value)`` when there are no values.

    Raises:
        ValueError: a series whose times and values differ in length, or
            ``styles`` not aligned with ``series``.
    """
    if styles is None:
        mode = "normal" if stack else "none"
        styles = [
            SeriesStyle(
                s.name, field, stacking=mode, fill_opacity=fill_opacity, line_width=line_width
            )
            for s in series
        ]
    elif len(styles) != len(series):
        raise ValueError(f"{len(styles)} styles for {len(series)} series")
    shift = offset_ms(timezone, utc_offset_min)
    span_ms = (time_range[0] * 1000.0 + shift, time_range[1] * 1000.0 + shift)
    raw = [_arrays(s, shift) for s in series]
    drawn = [
        _transformed(x, y, st.transform, span_ms) for (x, y), st in zip(raw, styles, strict=True)
    ]
    if not any(np.isfinite(y).any() for _, y in drawn):
        return empty_figure(field.no_value)

    scale_of, firsts = scales(styles)
    stack_of = stack_groups([y for _, y in drawn], styles, scale_of)
    bounds = scale_bounds([y for _, y in drawn], styles, scale_of, stack_of, bool(log_base))

    hovers = _hovers([y for _, y in raw], styles)
    traces = []
    for i, (s, style, (x, y)) in enumerate(zip(series, styles, drawn, strict=True)):
        if style.hide_viz and (not legend or style.hide_legend):
            continue  # neither drawn nor listed
        trace = _trace(x, y, style, series_color(style.field, i, s.last, style.name), legend)
        divisor, head, tail = hovers[(style.field.unit, style.field.decimals)]
        negated = style.transform == "negative-Y"
        if divisor != 1 or negated:
            # float32 halves the payload; hover shows 2-4 digits anyway.
            # A negative-Y series hovers its value, not the flipped one.
            trace["customdata"] = ((-y if negated else y) / divisor).astype(np.float32)
            trace["hovertemplate"] = f"{head}%{{customdata{tail}"
        else:
            trace["hovertemplate"] = f"{head}%{{y{tail}"
        if scale_of[i]:
            trace["yaxis"] = axis_name(scale_of[i])
        if stack_of[i] is not None:
            trace["stackgroup"] = stack_of[i]
            trace["fill"] = "tonexty" if style.fill_opacity > 0 else "none"
        traces.append(trace)
    axes = y_axes(firsts, bounds, log_base)
    yaxis = axes["yaxis"]
    lo, hi = (10.0**v for v in yaxis["range"]) if log_base else yaxis["range"]
    shapes = _threshold_shapes(field, thresholds_style, lo, hi)
    if log_base:
        # plotly places shapes on a log axis in log10 units.
        for shape in shapes:
            shape["y0"], shape["y1"] = math.log10(shape["y0"]), math.log10(shape["y1"])
    note_shapes, markers = _annotations(annotations, shift)
    layout = base_layout(
        xaxis=time_axis(time_range, shift),
        **axes,
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
            # Grafana lists series in query order; plotly reverses stacked ones.
            "traceorder": "normal",
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
