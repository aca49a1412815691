"""A panel's queries: its targets interpolated and run through the query layer.

Grafana's Prometheus data source, reproduced: the step of a range query is
the panel's interval (``interval_for``: the time range over the panel's data
points, at least the panel's or the target's minimum interval), and
``$__interval``, ``$__rate_interval``, ``$__range`` are set from it; each
target's variables are interpolated in the panel's scope (a repeated panel's
own value first); instant targets run at the range's end; every series is
named by its target's ``legendFormat``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tinct.dashboards.frames import SeriesData
from tinct.dashboards.interpolate import builtins_for
from tinct.dashboards.intervals import interval_for, parse_interval
from tinct.dashboards.panels import LEGEND_AUTO, Panel, Target
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.variables import VariableScope

__all__ = ["PanelQuery", "PanelData", "query_panel", "legend", "series_text"]

# Panels drawn from one value per series query instantly unless told otherwise.
_INSTANT_KINDS = frozenset({"stat", "gauge", "bargauge"})
# Grafana sizes maxDataPoints to the panel's width in pixels; tinct's grid is
# about 1,600 px wide.
_GRID_PIXELS = 1600
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class PanelQuery:
    """Where and when a panel's targets run."""

    client: TinctClient
    start: float
    end: float
    scope: VariableScope


@dataclass
class PanelData:
    """What a panel's targets returned."""

    series: list[SeriesData] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interval_s: float = 0.0
    instant: bool = False
    exprs: list[str] = field(default_factory=list)


def series_text(labels: Mapping[str, str]) -> str:
    """Prometheus's way of writing a series: ``name{a="1", b="2"}``."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """A series' name from ``legendFormat`` (``{{label}}`` replaced)."""
    if not fmt or fmt == LEGEND_AUTO:
        return series_text(labels)
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt)


def _min_interval(panel: Panel, target: Target, scope: VariableScope) -> float:
    text = scope.interpolate(target.interval or panel.interval or "")
    try:
        return parse_interval(text) if text else 0.0
    except ValueError:
        return 0.0


def query_panel(panel: Panel, q: PanelQuery) -> PanelData:
    """Run every visible target of ``panel``. Blocks on the query layer;
    a failing target is an error of the result, not an exception.

    Instant targets run at the range's end, aligned down to the step too.
    """
    points = panel.max_data_points or max(50, int(panel.grid.w / 24 * _GRID_PIXELS))
    out = PanelData()
    span = max(q.end - q.start, 1.0)
    for target in panel.targets:
        if target.hide or not target.expr.strip():
            continue
        step = interval_for(span, points, _min_interval(panel, target, q.scope))
        out.interval_s = max(out.interval_s, step)
        expr = q.scope.interpolate(target.expr, builtins_for(q.start, q.end, step))
        out.exprs.append(expr)
        instant = target.instant and not target.range
        instant = instant or (panel.type in _INSTANT_KINDS and target.instant)
        # Grafana aligns a range query to its step (start and end down to a
        # multiple of it), so redraws within one step ask the same question
        # and the query layer's cache answers.
        start, end = q.start // step * step, q.end // step * step
        try:
            if instant or (panel.type == "table" and target.format == "table"):
                out.instant = True
                for labels, value in q.client.query(expr, end):
                    out.series.append(
                        SeriesData(
                            legend(target.legend_format, labels),
                            labels,
                            [end],
                            [value],
                            target.ref_id,
                        )
                    )
            else:
                for labels, times, values in q.client.query_range(expr, start, end, step):
                    out.series.append(
                        SeriesData(
                            legend(target.legend_format, labels),
                            labels,
                            times,
                            values,
                            target.ref_id,
                        )
                    )
        except QueryError as exc:
            out.errors.append(f"{target.ref_id}: {exc}")
    return out
