"""``/explore``: ad-hoc PromQL, as a graph over the time range and a table at its end.

URL: ``?expr=<PromQL>&from=&to=``. Element ids for tests: ``ids.EXPLORE_EXPR``
(the query box), ``ids.EXPLORE_RUN`` (the button), ``explore-graph`` (the
graph), ``explore-table`` (the instant result).
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.figures import empty_figure, timeseries_figure
from tinct.dashboards.frames import FieldConfig, SeriesData
from tinct.dashboards.query import QueryError
from tinct.dashboards.urlstate import ViewState
from tinct.dashboards.variables import interval_for

__all__ = ["layout", "series_name"]

GRAPH, TABLE = "explore-graph", "explore-table"
_POINTS = 1000


def series_name(labels: dict[str, str]) -> str:
    """Prometheus's way of writing a series: ``name{a="1", b="2"}``."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    expr = view.get("expr")
    box = html.Div(
        className="form-row",
        children=[
            dcc.Textarea(
                id=ids.EXPLORE_EXPR,
                value=expr,
                placeholder="PromQL, e.g. sum by (service) (rate(http_requests_total[5m]))",
                style={"width": "80%", "height": "60px"},
            ),
            html.Button("Run query", id=ids.EXPLORE_RUN, n_clicks=0),
        ],
    )
    if not expr:
        return html.Div([html.H2("Explore"), box])
    step = interval_for(view.range.span, _POINTS)
    try:
        found = ctx.client.query_range(expr, view.range.start, view.range.end, step)
        instant = ctx.client.query(expr, view.range.end)
        error = ""
    except QueryError as exc:
        found, instant, error = [], [], str(exc)
    series = [
        SeriesData(series_name(labels), labels, times, values) for labels, times, values in found
    ]
    figure = (
        timeseries_figure(
            series,
            FieldConfig(),
            time_range=(view.range.start, view.range.end),
            utc_offset_min=view.utc_offset_min,
        )
        if series
        else empty_figure(error or "No data")
    )
    rows = [
        html.Tr([html.Td(series_name(labels)), html.Td(f"{value:g}")]) for labels, value in instant
    ]
    return html.Div(
        [
            html.H2("Explore"),
            box,
            html.Div(error, className="notice bad") if error else None,
            dcc.Graph(
                id=GRAPH, figure=figure, config={"displayModeBar": False}, style={"height": "360px"}
            ),
            html.Table(
                id=TABLE,
                className="simple",
                children=[html.Tr([html.Th("series"), html.Th("value")]), *rows],
            ),
        ]
    )
