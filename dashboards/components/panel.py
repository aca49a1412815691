"""One panel of a dashboard as a Dash component (a pure function of its data).

The panel sits on the dashboard's 24-column grid (CSS grid, rows of 30 px
with 8 px gaps, as Grafana's), with its title, a link to the service's
traces when the panel is about one service, and its body: a Plotly figure
for ``timeseries``, ``stat``, ``gauge``, ``bargauge`` and ``heatmap``, a
DataTable for ``table``, Markdown for ``text``; tinct's ``traces``,
``alertlist`` and ``topology`` panels list or draw what their APIs answer.
A query error shows in the panel, never as a blank one.

Each panel's element id is ``{"type": ids.PANEL, "key": <laid-out key>}``;
a figure panel's graph is ``{"type": "panel-graph", "key": ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import quote

from dash import dcc, html
from dash.dash_table.DataTable import DataTable

from tinct.dashboards import ids
from tinct.dashboards.figures import (
    Annotation,
    bargauge_figure,
    empty_figure,
    gauge_figure,
    heatmap_figure,
    stat_figure,
    table_data,
    timeseries_figure,
)
from tinct.dashboards.overrides import parse_overrides, series_styles
from tinct.dashboards.panel_data import PanelData
from tinct.dashboards.repeats import LaidOutPanel

__all__ = ["panel_component", "panel_style", "PANEL_GRAPH", "ROW_PX", "GAP_PX"]

PANEL_GRAPH = "panel-graph"
ROW_PX, GAP_PX, TITLE_PX = 30, 8, 26
_FIGURE_KINDS = frozenset({"timeseries", "stat", "gauge", "bargauge", "heatmap"})
_GRAPH_CONFIG: Any = {"displayModeBar": False, "responsive": True}


def panel_style(lp: LaidOutPanel) -> dict[str, str]:
    g = lp.grid
    return {"gridColumn": f"{g.x + 1} / span {g.w}", "gridRow": f"{g.y + 1} / span {g.h}"}


def body_height(lp: LaidOutPanel) -> int:
    h = lp.grid.h
    return max(h * ROW_PX + (h - 1) * GAP_PX - TITLE_PX, 20)


def _options(lp: LaidOutPanel) -> dict[str, Any]:
    return dict(lp.panel.options or {})


def _reduce(options: dict[str, Any]) -> str:
    calcs = (options.get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    return str(calcs[0])


def figure_for(
    lp: LaidOutPanel,
    data: PanelData,
    *,
    time_range: tuple[float, float],
    utc_offset_min: int,
    timezone: str,
    annotations: Sequence[Annotation] = (),
) -> Any:
    """The Plotly figure of a figure panel."""
    panel, field = lp.panel, lp.panel.field
    if not data.series:
        return empty_figure("; ".join(data.errors) or field.no_value)
    options = _options(lp)
    size = (int(lp.grid.w / 24 * 1600), body_height(lp))
    defaults = (panel.raw.get("fieldConfig") or {}).get("defaults") or {}
    custom = defaults.get("custom") or {}
    if panel.type == "timeseries":
        # Per series: the defaults' custom options, then fieldConfig.overrides.
        styles = series_styles(
            data.series, field, parse_overrides(panel.overrides), defaults=defaults
        )
        return timeseries_figure(
            data.series,
            field,
            time_range=time_range,
            timezone=timezone,
            utc_offset_min=utc_offset_min,
            annotations=annotations,
            thresholds_style=(custom.get("thresholdsStyle") or {}).get("mode", "off"),
            legend=(options.get("legend") or {}).get("showLegend", True) is not False,
            styles=styles,
        )
    if panel.type == "stat":
        return stat_figure(
            data.series,
            field,
            reduce=_reduce(options),
            graph_mode=str(options.get("graphMode", "area")),
            color_mode=str(options.get("colorMode", "value")),
            text_mode=str(options.get("textMode", "auto")),
            panel_size=size,
        )
    if panel.type == "gauge":
        return gauge_figure(data.series, field, reduce=_reduce(options), panel_size=size)
    if panel.type == "bargauge":
        return bargauge_figure(
            data.series,
            field,
            orientation=str(options.get("orientation", "auto")),
            display_mode=str(options.get("displayMode", "gradient")),
            reduce=_reduce(options),
            panel_size=size,
        )
    return heatmap_figure(
        data.series, field, time_range=time_range, timezone=timezone, utc_offset_min=utc_offset_min
    )


def _table(lp: LaidOutPanel, data: PanelData, utc_offset_min: int) -> Any:
    if not data.series:
        return html.Div("; ".join(data.errors) or lp.panel.field.no_value, className="panel-text")
    columns, rows = table_data(
        data.series, lp.panel.field, instant=data.instant, utc_offset_min=utc_offset_min
    )
    return DataTable(
        # DataTable's stubs want its own TypedDicts; these are plain dicts of them.
        columns=cast(Any, columns),
        data=cast(Any, rows),
        sort_action="native",
        page_size=50,
        style_table={"overflowY": "auto", "height": f"{body_height(lp)}px"},
        style_header={"backgroundColor": "#181b1f", "color": "#ccccdc", "fontWeight": "500"},
        style_cell={
            "backgroundColor": "#111217",
            "color": "#ccccdc",
            "border": "1px solid #2c3235",
            "fontSize": "12px",
            "textAlign": "left",
        },
    )


def panel_component(
    lp: LaidOutPanel,
    body: Any,
    *,
    links: Sequence[tuple[str, str]] = (),
    errors: Sequence[str] = (),
) -> html.Div:
    """The framed panel with its title, links and ``body``."""
    title = lp.title or lp.panel.title
    header = html.Div(
        className="panel-title",
        children=[
            html.Span(title, title=lp.panel.description or title),
            html.Span(
                className="links",
                children=[dcc.Link(text, href=href) for text, href in links],
            ),
        ],
    )
    children: list[Any] = [header]
    if errors:
        children.append(html.Div("; ".join(errors), className="panel-error"))
    children.append(html.Div(body, className="panel-body"))
    return html.Div(
        id={"type": ids.PANEL, "key": lp.key},
        className=f"panel panel-{lp.panel.type}",
        style=panel_style(lp),
        children=children,
    )


def panel_body(
    lp: LaidOutPanel,
    data: PanelData,
    *,
    time_range: tuple[float, float],
    utc_offset_min: int,
    timezone: str,
    annotations: Sequence[Annotation] = (),
) -> Any:
    """The body of a panel whose targets ran (figure kinds, table)."""
    kind = lp.panel.type
    if kind in _FIGURE_KINDS:
        figure = figure_for(
            lp,
            data,
            time_range=time_range,
            utc_offset_min=utc_offset_min,
            timezone=timezone,
            annotations=annotations,
        )
        return dcc.Graph(
            id={"type": PANEL_GRAPH, "key": lp.key},
            figure=figure,
            config=_GRAPH_CONFIG,
            style={"height": f"{body_height(lp)}px"},
        )
    if kind == "table":
        return _table(lp, data, utc_offset_min)
    return html.Div(f"unsupported panel type {kind!r}", className="panel-text")


def traces_link(service: str, search: str) -> tuple[str, str]:
    """The "traces" link of a panel about ``service``, in the same time range."""
    return ("traces", f"/traces?service={quote(service)}{search}")
