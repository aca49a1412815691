"""The traces page's duration-over-time scatter, as Jaeger UI's search page draws it.

One point per trace found: when it started (x), how long it took (y, in
milliseconds), how many spans it has (the marker's size) and whether any
span failed (red). Each point carries its trace id as ``customdata``, which
the page's click callback turns into ``&trace=<id>``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import plotly.graph_objects as go

from tinct.dashboards.figures.theme import make_figure, trace
from tinct.dashboards.timerange import TimeRange
from tinct.dashboards.traces_view import TraceSummary, format_duration_us

__all__ = ["trace_scatter_figure", "OK_COLOR", "ERROR_COLOR", "marker_size"]

OK_COLOR = "#3d71d9"  # tinct.css --accent
ERROR_COLOR = "#f2495c"  # tinct.css --bad
_MIN_SIZE, _MAX_SIZE = 6.0, 24.0


def marker_size(span_count: int) -> float:
    """A marker's diameter in pixels: grows with the square root of the span count."""
    return min(_MAX_SIZE, _MIN_SIZE + 2.0 * math.sqrt(max(span_count, 1) - 1))


def _moment(unix_s: float, utc_offset_min: int) -> dt.datetime:
    # Naive wall-clock times on the page's clock, as the other panels draw them.
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).replace(tzinfo=None) + dt.timedelta(
        minutes=utc_offset_min
    )


def trace_scatter_figure(
    rows: Sequence[TraceSummary],
    *,
    utc_offset_min: int = 0,
    time_range: TimeRange | None = None,
) -> go.Figure:
    """Trace duration over time, one point per row.

    Args:
        rows: the traces found.
        utc_offset_min: the page's offset from UTC (0 for UTC).
        time_range: the x axis' extent (the page's time range); fitted to the
            points when None.
    """
    hover = [
        f"{r.root_service}: {r.root_operation}<br>{format_duration_us(r.duration_us)}, "
        f"{r.span_count} spans" + (f", {r.error_count} errors" if r.error_count else "")
        for r in rows
    ]
    scatter = trace(
        "scatter",
        x=[_moment(r.start_us / 1e6, utc_offset_min) for r in rows],
        y=[r.duration_us / 1000 for r in rows],
        mode="markers",
        customdata=[r.trace_id for r in rows],
        text=hover,
        hovertemplate="%{text}<extra></extra>",
        marker={
            "size": [marker_size(r.span_count) for r in rows],
            "color": [ERROR_COLOR if r.error_count else OK_COLOR for r in rows],
            "opacity": 0.8,
            "line": {"width": 0},
        },
        name="traces",
    )
    figure = make_figure([scatter], {})
    xaxis: dict[str, object] = {"title": None, "gridcolor": "#2c3235"}
    if time_range is not None:
        xaxis["range"] = [
            _moment(time_range.start, utc_offset_min),
            _moment(time_range.end, utc_offset_min),
        ]
    figure.update_layout(
        template="plotly_dark",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        margin={"l": 50, "r": 10, "t": 10, "b": 30},
        height=200,
        showlegend=False,
        xaxis=xaxis,
        yaxis={"title": {"text": "duration (ms)"}, "gridcolor": "#2c3235", "rangemode": "tozero"},
        clickmode="event",
    )
    return figure
