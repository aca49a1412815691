"""The y-axes of a time series figure: one per scale, ranged on the data they carry.

Grafana's time series panel gives each scale its own axis
(``preparePlotConfigBuilder`` in @grafana/ui's TimeSeries utils): series
share a scale when ``buildScaleKey`` agrees (unit, min, max, axis
placement), the first ``auto`` axis goes on the left and any later one on
the right (``UPlotConfigBuilder.addAxis``), ``hidden`` draws none. An axis
reaches its series' extremes, stacked series by their running sums, and is
labelled with ticks in its unit (``units.axis_ticks``, as UPlotAxisBuilder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..frames import FieldConfig
from ..overrides import SeriesStyle
from .theme import axis_style
from .units import axis_ticks

__all__ = ["axis_name", "y_axes", "scales", "stack_groups", "scale_bounds"]


def _stack_direction(y: np.ndarray) -> int:
    # getStackDirection: a series stacks down when most of its drawn samples are negative.
    return -1 if np.count_nonzero(y < 0) > np.count_nonzero(y > 0) else 1


def _data_bounds(
    lines: list[np.ndarray], stacks: list[list[np.ndarray]], log: bool
) -> tuple[float, float] | None:
    """The min and max an axis must show: its lines and each stack's running sums."""
    ys = list(lines)
    for group in stacks:
        ys += group
        if all(y.shape == group[0].shape for y in group):
            ys.append(np.cumsum(np.nan_to_num(np.vstack(group), nan=0.0), axis=0).ravel())
        else:
            # Different timestamps: bound by the sum of each series' extremes.
            finite = [y[np.isfinite(y)] for y in group]
            ys.append(np.array([sum(float(f.max(initial=0.0)) for f in finite)]))
            ys.append(np.array([sum(float(f.min(initial=0.0)) for f in finite)]))
    flat = np.concatenate(ys) if ys else np.array([])
    flat = flat[np.isfinite(flat)]
    if log:
        flat = flat[flat > 0]
    if not flat.size:
        return None
    return float(flat.min()), float(flat.max())


def _y_axis(
    field: FieldConfig, bounds: tuple[float, float] | None, log_base: int | None
) -> dict[str, Any]:
    """An axis over ``bounds`` (or field.min/max), ticks in ``field.unit``."""
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


def scales(styles: Sequence[SeriesStyle]) -> tuple[list[int], list[SeriesStyle]]:
    """Each series' y scale, and the first series of each scale.

    As Grafana's ``buildScaleKey``: series share a scale (and an axis) when
    their unit, min, max and axis placement agree.
    """
    keys: dict[tuple[str, float | None, float | None, str], int] = {}
    firsts: list[SeriesStyle] = []
    of: list[int] = []
    for style in styles:
        f = style.field
        key = (f.unit, f.min, f.max, style.axis_placement)
        if key not in keys:
            keys[key] = len(firsts)
            firsts.append(style)
        of.append(keys[key])
    return of, firsts


def axis_name(index: int) -> str:
    # y2 is the annotations' overlay: the scales are y, y3, y4...
    return "y" if index == 0 else f"y{index + 2}"


def y_axes(
    firsts: list[SeriesStyle],
    bounds: list[tuple[float, float] | None],
    log_base: int | None,
) -> dict[str, dict[str, Any]]:
    """One y-axis per scale, placed as Grafana's UPlotConfigBuilder.addAxis places
    them: ``auto`` on the left for the first, on the right after that."""
    layouts: dict[str, dict[str, Any]] = {}
    per_side = {"left": 0, "right": 0}
    for index, (style, bound) in enumerate(zip(firsts, bounds, strict=True)):
        axis = _y_axis(style.field, bound, log_base)
        side = style.axis_placement
        if side == "auto":
            side = "right" if per_side["left"] else "left"
        if side == "hidden":
            axis["visible"] = False
        else:
            axis["side"] = side
            if per_side[side]:
                # Further axes on one side sit beside the first instead of over it.
                axis.update(anchor="free", autoshift=True, position=0 if side == "left" else 1)
            per_side[side] += 1
        if index:
            axis.update(overlaying="y", showgrid=False)
        layouts["yaxis" if index == 0 else f"yaxis{index + 2}"] = axis
    return layouts


def stack_groups(
    ys: Sequence[np.ndarray], styles: Sequence[SeriesStyle], scale_of: Sequence[int]
) -> list[str | None]:
    """Each series' plotly ``stackgroup`` (None: not stacked), keyed as Grafana's
    ``getStackingGroups``: direction, mode, group and scale. The first group is
    ``stack``, the next ``stack2``..."""
    ids: dict[tuple[int, str, str, int], str] = {}
    out: list[str | None] = []
    for y, style, scale in zip(ys, styles, scale_of, strict=True):
        if not style.stacked or style.hide_viz:
            out.append(None)
            continue
        key = (_stack_direction(y), style.stacking, style.stack_group, scale)
        out.append(ids.setdefault(key, f"stack{len(ids) + 1}" if ids else "stack"))
    return out


def scale_bounds(
    ys: Sequence[np.ndarray],
    styles: Sequence[SeriesStyle],
    scale_of: Sequence[int],
    stack_of: Sequence[str | None],
    log: bool,
) -> list[tuple[float, float] | None]:
    """The data range of each scale: of its drawn series (of all its series when
    none is drawn), stacks by their running sums."""
    bounds = []
    for index in range(max(scale_of, default=-1) + 1):
        members = [i for i, at in enumerate(scale_of) if at == index]
        shown = [i for i in members if not styles[i].hide_viz and np.isfinite(ys[i]).any()]
        groups: dict[str | None, list[np.ndarray]] = {}
        for i in shown or members:
            groups.setdefault(stack_of[i] if shown else None, []).append(ys[i])
        lines = groups.pop(None, [])
        bounds.append(_data_bounds(lines, list(groups.values()), log))
    return bounds
