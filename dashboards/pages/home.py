"""``/``: the overview, one card per layer with its health and key figures.

A layer's health comes from the alerts firing about it (their ``layer``
label, as tinct's layer rules set it): red when one fires, orange when one
is pending, green otherwise. Each card's figures are instant PromQL queries
over the layer's standard series, and the card opens the layer's dashboard.
Below, the alerts firing now.

Element ids for tests: each card is ``layer-card-<layer>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from tinct.dashboards.components.shell import LAYER_LINKS
from tinct.dashboards.context import Context
from tinct.dashboards.figures.units import format_value
from tinct.dashboards.query import QueryError
from tinct.dashboards.urlstate import ViewState, time_query

__all__ = ["layout", "LAYER_FIGURES"]

_W = "[5m]"
# (layer, [(label, instant PromQL, Grafana unit)]).
LAYER_FIGURES: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "infrastructure",
        (
            ("hosts", "count(count by (host) (system_uptime_seconds))", "short"),
            ("CPU busy", '1 - avg(system_cpu_utilization_ratio{state="idle"})', "percentunit"),
        ),
    ),
    (
        "component",
        (
            ("up", 'count(up{layer="component"} == 1)', "short"),
            ("down", 'count(up{layer="component"} == 0)', "short"),
        ),
    ),
    (
        "service",
        (
            ("requests/s", f"sum(rate(service_request_duration_seconds_count{_W}))", "reqps"),
            (
                "errors",
                f'sum(rate(service_request_duration_seconds_count{{status_class="5xx"}}{_W}))'
                f" / sum(rate(service_request_duration_seconds_count{_W}))",
                "percentunit",
            ),
        ),
    ),
    (
        "interface",
        (
            (
                "worst p99",
                "max(histogram_quantile(0.99, sum by (le, service, interface) "
                f"(rate(interface_request_duration_seconds_bucket{_W}))))",
                "s",
            ),
            (
                "interfaces",
                "count(count by (service, interface) (interface_request_duration_seconds_count))",
                "short",
            ),
        ),
    ),
    (
        "user",
        (
            ("probes failing", "count(probe_success == 0) or vector(0)", "short"),
            ("users", "count(count by (user) (user_request_duration_seconds_count))", "short"),
        ),
    ),
)


def _value(ctx: Context, expr: str, at: float) -> float | None:
    try:
        result = ctx.client.query(expr, at)
    except QueryError:
        return None
    return result[0][1] if result else None


def _health(alerts: Sequence[dict[str, Any]], layer: str) -> tuple[str, str]:
    mine = [a for a in alerts if a.get("labels", {}).get("layer") == layer]
    firing = sum(1 for a in mine if a.get("state") == "firing")
    pending = sum(1 for a in mine if a.get("state") == "pending")
    if firing:
        return "bad", f"{firing} firing"
    if pending:
        return "warn", f"{pending} pending"
    return "ok", "healthy"


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    at = view.range.end
    try:
        alerts = ctx.client.alerts()
    except QueryError:
        alerts = []
    jobs = [
        (layer, label, unit, ctx.workers.submit(_value, ctx, expr, at))
        for layer, figures in LAYER_FIGURES
        for label, expr, unit in figures
    ]
    hrefs = dict(
        zip((layer for layer, _ in LAYER_FIGURES), (h for _, h in LAYER_LINKS), strict=True)
    )
    names = dict(
        zip((layer for layer, _ in LAYER_FIGURES), (n for n, _ in LAYER_LINKS), strict=True)
    )
    cards = []
    for layer, _figures in LAYER_FIGURES:
        state, text = _health(alerts, layer)
        rows = [
            html.Div(
                [
                    html.Span(
                        format_value(value, unit) if value is not None else "–", className="figure"
                    ),
                    html.Span(f" {label}", className="muted"),
                ]
            )
            for lyr, label, unit, job in jobs
            if lyr == layer
            for value in [job.result()]
        ]
        cards.append(
            dcc.Link(
                href=hrefs[layer] + time_query(view.params).replace("&", "?", 1),
                children=html.Div(
                    id=f"layer-card-{layer}",
                    className=f"card {state}",
                    children=[html.H3(names[layer]), html.Div(text, className="health"), *rows],
                ),
            )
        )
    firing = [a for a in alerts if a.get("state") in ("firing", "pending")]
    table = html.Table(
        className="simple",
        children=[
            html.Tr([html.Th("alert"), html.Th("state"), html.Th("layer"), html.Th("labels")]),
            *[
                html.Tr(
                    [
                        html.Td(a["labels"].get("alertname", "")),
                        html.Td(a.get("state", "")),
                        html.Td(a["labels"].get("layer", "")),
                        html.Td(
                            ", ".join(
                                f"{k}={v}"
                                for k, v in sorted(a["labels"].items())
                                if k not in ("alertname", "layer")
                            )
                        ),
                    ]
                )
                for a in firing
            ],
        ],
    )
    return html.Div(
        [
            html.H2("Overview"),
            html.Div(className="cards", children=cards),
            html.H3("Alerts"),
            table if firing else html.P("No alert is firing.", className="muted"),
        ]
    )
