"""``/d/<uid>/<slug>``: a dashboard in Grafana's JSON model, drawn.

The URL holds the state as Grafana's does (``from``, ``to``, ``tz``,
``refresh``, ``var-<name>``); without ``from``/``to`` the dashboard's own
default range applies. Variables are resolved against the Prometheus API
(``label_values(...)`` etc., dependent ones in order), panels repeated by
their variables, and the panels of expanded rows queried in parallel and
drawn in the page itself, so one round trip draws them all. A collapsed row
(an HTML ``details``) queries its panels when it is opened. Time series
carry the alert transitions of the window as annotations when the
dashboard has Grafana's built-in "Annotations & Alerts" on.

Element ids for tests: variables ``{"type": ids.VARIABLE, "name": <name>}``,
rows ``{"type": ids.ROW, "key": <key>}`` (``details``) with their body
``{"type": ids.ROW_BODY, "key": ...}``, panels ``{"type": ids.PANEL,
"key": ...}`` (class ``panel panel-<type>``) holding a graph
``{"type": "panel-graph", "key": ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, cast

from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.components.panel import (
    body_height,
    panel_body,
    panel_component,
    traces_link,
)
from tinct.dashboards.components.special import special_body
from tinct.dashboards.context import Context
from tinct.dashboards.figures import Annotation
from tinct.dashboards.model import Dashboard
from tinct.dashboards.panel_data import PanelData, PanelQuery, query_panel
from tinct.dashboards.query import QueryError
from tinct.dashboards.repeats import LaidOutPanel, LaidOutRow, expand_repeats
from tinct.dashboards.urlstate import ViewState, build_search, time_query
from tinct.dashboards.variables import ALL_VALUE, ResolvedVariable, VariableScope, resolve_variables

__all__ = ["layout", "DashboardView", "open_dashboard", "render_rows", "VARIABLES_SHOWN"]

_QUERY_KINDS = frozenset({"timeseries", "stat", "gauge", "bargauge", "heatmap", "table"})
_ALERT_COLORS = {"firing": "#f2495c", "resolved": "#73bf69"}


@dataclass
class DashboardView:
    """A dashboard resolved for one URL."""

    dashboard: Dashboard
    view: ViewState
    resolved: list[ResolvedVariable]
    rows: list[LaidOutRow]
    annotations: list[Annotation]


def open_dashboard(ctx: Context, view: ViewState, uid: str) -> DashboardView | None:
    """Resolve ``uid`` for ``view``: its time range, variables, layout and annotations."""
    board = ctx.folder.get(uid)
    if board is None:
        return None
    if "from" not in view.params and "to" not in view.params:
        offset = view.utc_offset_min if view.timezone == "browser" else None
        view = ViewState.parse(
            build_search(view.params),
            ctx.clock(),
            offset,
            default_from=board.time_from or "now-6h",
            default_to=board.time_to or "now",
        )
    # Variable queries over whole minutes: redraws within a minute hit the cache.
    resolved = resolve_variables(
        board,
        view.variables,
        ctx.client,
        view.range.start // 60 * 60,
        -(-view.range.end // 60) * 60,
    )
    rows = expand_repeats(board, resolved)
    annotations: list[Annotation] = []
    if board.alert_annotations:
        try:
            events = ctx.client.alert_history(view.start_ms, view.end_ms)
        except QueryError:
            events = []
        for e in events:
            when = _event_seconds(e)
            if when is None:
                continue
            labels = e.get("labels", {})
            text = f"{labels.get('alertname', 'alert')} {e.get('state', '')}"
            annotations.append((when, None, text, _ALERT_COLORS.get(e.get("state", ""), "#8e8e8e")))
    return DashboardView(board, view, resolved, rows, annotations)


def _event_seconds(event: dict[str, Any]) -> float | None:
    import datetime as dt

    text = event.get("time") or event.get("activeAt")
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _service_of(lp: LaidOutPanel, scope: VariableScope) -> str:
    if lp.scoped.get("service"):
        return lp.scoped["service"]
    values = scope.values.get("service") or []
    return values[0] if len(values) == 1 and values[0] != ALL_VALUE else ""


def render_rows(ctx: Context, dv: DashboardView, rows: Sequence[LaidOutRow]) -> list[Any]:
    """The panels of ``rows``, their queries run in parallel on the context's workers."""
    view = dv.view
    jobs: dict[str, Future[PanelData]] = {}
    scopes: dict[str, VariableScope] = {}
    for row in rows:
        for lp in row.panels:
            scope = VariableScope.of(dv.resolved, {**row.scoped, **lp.scoped})
            scopes[lp.key] = scope
            if lp.panel.type in _QUERY_KINDS:
                q = PanelQuery(ctx.client, view.range.start, view.range.end, scope)
                jobs[lp.key] = ctx.workers.submit(query_panel, lp.panel, q)
    out: list[Any] = []
    for row in rows:
        panels = []
        for lp in row.panels:
            scope = scopes[lp.key]
            service = _service_of(lp, scope)
            links = [traces_link(service, time_query(view.params))] if service else []
            if lp.key in jobs:
                data = jobs[lp.key].result()
                body = panel_body(
                    lp,
                    data,
                    time_range=(view.range.start, view.range.end),
                    utc_offset_min=view.utc_offset_min,
                    timezone=view.timezone,
                    annotations=dv.annotations,
                )
                panels.append(panel_component(lp, body, links=links, errors=data.errors))
            else:
                body = special_body(ctx, lp, view, service, body_height(lp), scope)
                panels.append(panel_component(lp, body, links=links))
        out.append(panels)
    return out


VARIABLES_SHOWN = "dashboard-variables"


def _variable_bar(resolved: Sequence[ResolvedVariable]) -> html.Div:
    shown: dict[str, Any] = {}
    items: list[Any] = []
    for r in resolved:
        if r.hide == 2 or r.type in ("datasource", "constant"):
            continue
        options = [{"label": text, "value": value} for text, value in r.options]
        value: Any = list(r.current) if r.multi else (r.current[0] if r.current else None)
        shown[r.name] = value
        items.append(
            html.Div(
                className="variable",
                children=[
                    html.Label(r.label or r.name) if r.hide == 0 else None,
                    dcc.Dropdown(
                        id={"type": ids.VARIABLE, "name": r.name},
                        options=options,
                        value=value,
                        multi=r.multi,
                        clearable=False,
                    ),
                ],
                title=r.error or r.description,
            )
        )
    # What the dropdowns showed when drawn: only a change from it goes to the URL.
    items.append(dcc.Store(id=VARIABLES_SHOWN, data=shown))
    return html.Div(className="variables", children=items)


def _grid(panels: list[Any]) -> html.Div:
    return html.Div(className="grid", children=panels)


def layout(ctx: Context, view: ViewState, uid: str, slug: str = "") -> Any:
    dv = open_dashboard(ctx, view, uid)
    if dv is None:
        return html.Div(
            className="not-found",
            children=[
                html.H2(f"Dashboard {uid} not found"),
                dcc.Link("All dashboards", href="/dashboards"),
            ],
        )
    open_rows = [row for row in dv.rows if not row.collapsed]
    drawn = dict(zip((r.key for r in open_rows), render_rows(ctx, dv, open_rows), strict=True))
    sections: list[Any] = []
    for row in dv.rows:
        grid = _grid(drawn.get(row.key, []))
        body = html.Div(id={"type": ids.ROW_BODY, "key": row.key}, children=grid)
        if row.row is None and not row.title:
            sections.append(body)
            continue
        sections.append(
            html.Details(
                id={"type": ids.ROW, "key": row.key},
                className="row",
                open=not row.collapsed,
                children=[html.Summary(f"{row.title} ({len(row.panels)} panels)"), body],
            )
        )
    return html.Div(
        className="dashboard",
        **cast(Any, {"data-uid": dv.dashboard.uid}),
        children=[
            html.H2(dv.dashboard.title),
            html.Div(dv.view.error, className="notice bad") if dv.view.error else None,
            _variable_bar(dv.resolved),
            *sections,
        ],
    )
