"""Bodies of the panels that are not PromQL queries: text, and tinct's
``traces``, ``alertlist`` and ``topology`` panels (they read their own APIs)."""

from __future__ import annotations

from typing import Any

import dash_cytoscape as cyto
from dash import dcc, html

from tinct.dashboards.components.topology import STYLESHEET, elements
from tinct.dashboards.context import Context
from tinct.dashboards.query import QueryError
from tinct.dashboards.repeats import LaidOutPanel
from tinct.dashboards.urlstate import ViewState
from tinct.dashboards.variables import VariableScope

__all__ = ["special_body"]


def _text(lp: LaidOutPanel, scope: VariableScope) -> Any:
    content = scope.interpolate(lp.panel.content or "")
    if lp.panel.mode == "code":
        return html.Pre(content, className="panel-text")
    return dcc.Markdown(content, className="panel-text")


def _traces(ctx: Context, lp: LaidOutPanel, view: ViewState, service: str) -> Any:
    if not service:
        return html.Div("Pick one service to list its traces.", className="panel-text muted")
    limit = int((lp.panel.options or {}).get("limit", 20))
    params = {
        "service": service,
        "start": int(view.range.start * 1e6),
        "end": int(view.range.end * 1e6),
        "limit": limit,
    }
    try:
        traces = ctx.client.find_traces(params)
    except QueryError as exc:
        return html.Div(str(exc), className="panel-error")
    rows = []
    for t in traces:
        spans = t.get("spans", [])
        root = min(spans, key=lambda s: s.get("startTime", 0)) if spans else {}
        errors = sum(
            1 for s in spans for tag in s.get("tags", []) if tag["key"] == "error" and tag["value"]
        )
        rows.append(
            html.Tr(
                [
                    html.Td(
                        dcc.Link(
                            root.get("operationName", "?"), href=f"/traces?trace={t['traceID']}"
                        )
                    ),
                    html.Td(f"{root.get('duration', 0) / 1000:.1f} ms"),
                    html.Td(str(len(spans))),
                    html.Td(str(errors) if errors else "", className="error"),
                ]
            )
        )
    header = html.Tr([html.Th("trace"), html.Th("duration"), html.Th("spans"), html.Th("errors")])
    return html.Table(className="simple", children=[header, *rows])


def _alertlist(ctx: Context) -> Any:
    try:
        alerts = ctx.client.alerts()
    except QueryError as exc:
        return html.Div(str(exc), className="panel-error")
    live = [a for a in alerts if a.get("state") in ("firing", "pending")]
    if not live:
        return html.Div("No alert is firing.", className="panel-text muted")
    return html.Ul(
        [
            html.Li(
                [
                    html.Span(a.get("state", ""), className=f"badge {a.get('state', '')}"),
                    " ",
                    a["labels"].get("alertname", ""),
                    " ",
                    html.Span(
                        ", ".join(
                            f"{k}={v}" for k, v in sorted(a["labels"].items()) if k != "alertname"
                        ),
                        className="muted",
                    ),
                ]
            )
            for a in live
        ]
    )


def _topology(ctx: Context, view: ViewState, service: str, height: int) -> Any:
    params: dict[str, Any] = {"start": view.start_ms, "end": view.end_ms}
    if service:
        params["service"] = service
    try:
        graph = ctx.client.topology(params)
    except QueryError as exc:
        return html.Div(str(exc), className="panel-error")
    return cyto.Cytoscape(
        elements=elements(graph, None),
        stylesheet=STYLESHEET,
        layout={"name": "breadthfirst", "directed": True},
        style={"width": "100%", "height": f"{height}px"},
    )


def special_body(
    ctx: Context,
    lp: LaidOutPanel,
    view: ViewState,
    service: str,
    height: int,
    scope: VariableScope,
) -> Any:
    kind = lp.panel.type
    if kind == "text":
        return _text(lp, scope)
    if kind == "traces":
        return _traces(ctx, lp, view, service)
    if kind == "alertlist":
        return _alertlist(ctx)
    if kind == "topology":
        return _topology(ctx, view, service, height)
    return html.Div(f"unsupported panel type {kind!r}", className="panel-text muted")
