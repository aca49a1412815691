"""The look every panel figure shares: Grafana's dark theme on a transparent plot.

The app draws panels on its own dark cards, so figures are transparent with
Grafana's dark-theme text (#ccccdc) and grid (#2c3235) colors
(grafana-data/src/themes/createColors.ts), compact margins, and an empty
plotly template: the default one would add ~7 kB of light-theme defaults to
every figure sent to the browser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "FONT_COLOR",
    "GRID_COLOR",
    "TRANSPARENT",
    "UIREVISION",
    "axis_style",
    "base_layout",
    "empty_figure",
    "offset_ms",
    "time_axis",
]

FONT_COLOR = "#ccccdc"
GRID_COLOR = "#2c3235"
TRANSPARENT = "rgba(0,0,0,0)"
HOVER_BG = "#22252b"
# Kept equal across refreshes so plotly keeps the user's zoom (uirevision).
UIREVISION = "tinct"
FONT_FAMILY = "Inter, Helvetica, Arial, sans-serif"


def axis_style(**overrides: Any) -> dict[str, Any]:
    """An axis in the dark theme: grid lines, no zero line, labels in text color."""
    style: dict[str, Any] = {
        "gridcolor": GRID_COLOR,
        "linecolor": GRID_COLOR,
        "zeroline": False,
        "showline": False,
        "tickfont": {"color": FONT_COLOR, "size": 11},
        "automargin": True,
    }
    style.update(overrides)
    return style


def offset_ms(timezone: str, utc_offset_min: int) -> float:
    """How far the page's clock is from UTC, in ms (0 for ``timezone="utc"``).

    plotly draws a date axis as given, without time zones, so figures shift
    their epoch-ms x values by the browser's offset (JavaScript's
    ``-getTimezoneOffset()``, in minutes) to show local wall-clock time.
    """
    return 0.0 if timezone == "utc" else float(utc_offset_min) * 60_000.0


def _wall_clock(seconds: float, shift_ms: float) -> str:
    t = dt.datetime.fromtimestamp(seconds + shift_ms / 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def time_axis(time_range: tuple[float, float], shift_ms: float) -> dict[str, Any]:
    """A date x-axis showing exactly ``time_range`` (Unix s), shifted by ``shift_ms``."""
    start, end = time_range
    return axis_style(
        type="date",
        range=[_wall_clock(start, shift_ms), _wall_clock(end, shift_ms)],
        hoverformat="%Y-%m-%d %H:%M:%S",
        showgrid=True,
    )


def base_layout(**overrides: Any) -> dict[str, Any]:
    """The layout every panel starts from; ``overrides`` replace top-level keys."""
    layout: dict[str, Any] = {
        "template": {},
        "paper_bgcolor": TRANSPARENT,
        "plot_bgcolor": TRANSPARENT,
        "font": {"color": FONT_COLOR, "size": 12, "family": FONT_FAMILY},
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8, "pad": 0},
        "showlegend": False,
        "uirevision": UIREVISION,
        "hoverlabel": {
            "bgcolor": HOVER_BG,
            "bordercolor": GRID_COLOR,
            "font": {"color": FONT_COLOR},
        },
    }
    layout.update(overrides)
    return layout


def trace(kind: str, **attributes: Any) -> dict[str, Any]:
    """A trace as a plain dict (``{"type": kind, ...}``), for :func:`make_figure`."""
    return {"type": kind, **attributes}


def make_figure(data: Sequence[Mapping[str, Any]], layout: Mapping[str, Any]) -> go.Figure:
    """The figure of ``data`` and ``layout``, without plotly's property validation.

    Validation is most of the cost of building a figure in Python (a
    dashboard's dozen figures took a second); the figures here are built from
    fixed code, and the tests validate every kind once
    (``tests/dashboards/test_figures.py``).
    """
    return go.Figure(data=list(data), layout=dict(layout), _validate=False)


def empty_figure(message: str) -> go.Figure:
    """A figure with only ``message`` centered: "No data", or a query's error.

    Args:
        message: the text shown (the panel's ``no_value``, an error message).

    Returns:
        A figure with hidden axes, in the panels' theme.
    """
    hidden = {"visible": False, "fixedrange": True}
    return make_figure(
        [],
        base_layout(
            xaxis=hidden,
            yaxis=hidden,
            annotations=[
                {
                    "text": message,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "showarrow": False,
                    "font": {"size": 16, "color": FONT_COLOR},
                }
            ],
        ),
    )
