"""``/topology``: the dynamic call graph beside the declared one.

URL: ``?level=service|interface&service=&dye=&trace=&from=&to=``. The graph
is ``GET /api/tinct/topology`` drawn with Cytoscape: nodes by kind (services,
interfaces, databases, caches, queues, external peers, the user), edges
styled by status (``declared`` solid, ``missing`` dashed grey,
``undeclared`` orange), RED figures on nodes and edges, nodes red when an
alert about them fires. ``dye=`` or ``trace=`` highlights the path that dyed
user or that trace took over the whole graph. Clicking a service (or
interface) node opens its service dashboard.

Element ids for tests: ``ids.TOPOLOGY_GRAPH`` (the Cytoscape component; each
node's ``data.id`` is the API's node id), ``ids.TOPOLOGY_LEVEL``.
"""

from __future__ import annotations

from typing import Any

import dash_cytoscape as cyto
from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.components.topology import STYLESHEET, elements
from tinct.dashboards.context import Context
from tinct.dashboards.query import QueryError
from tinct.dashboards.urlstate import ViewState, with_params

__all__ = ["layout"]


def _firing_services(ctx: Context) -> set[str]:
    """Services, components and interfaces named by a firing alert's labels."""
    try:
        alerts = ctx.client.alerts()
    except QueryError:
        return set()
    named: set[str] = set()
    for alert in alerts:
        if alert.get("state") != "firing":
            continue
        labels = alert.get("labels", {})
        for key in ("service", "component", "instance"):
            if labels.get(key):
                named.add(labels[key])
        if labels.get("service") and labels.get("interface"):
            named.add(f"{labels['service']} {labels['interface']}")
    return named


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    level = view.get("level", "service")
    level = level if level in ("service", "interface") else "service"
    base: dict[str, Any] = {"start": view.start_ms, "end": view.end_ms, "level": level}
    if view.get("service"):
        base["service"] = view.get("service")
    highlight = {k: view.get(k) for k in ("dye", "trace") if view.get(k)}
    try:
        graph = ctx.client.topology(base)
        path = ctx.client.topology({**base, **highlight}) if highlight else None
    except QueryError as exc:
        return html.Div(className="page-error", children=f"topology: {exc}")
    search = "?" + "&".join(f"{k}={v[0]}" for k, v in view.params.items() if k != "level")
    levels = [
        dcc.Link(
            name.title(),
            href="/topology" + with_params(search, level=name),
            className="level active" if name == level else "level",
            id=f"topology-level-{name}",
        )
        for name in ("service", "interface")
    ]
    counts = {s: sum(1 for e in graph["edges"] if e["status"] == s) for s in _STATUSES}
    legend = " · ".join(f"{counts[s]} {s}" for s in _STATUSES)
    return html.Div(
        [
            html.H2("Topology"),
            html.Div(
                className="form-row",
                children=[
                    html.Span("Level:"),
                    html.Span(id=ids.TOPOLOGY_LEVEL, children=levels),
                    html.Span(f"edges: {legend}", className="muted"),
                    html.Span(
                        f"highlighting {', '.join(f'{k}={v}' for k, v in highlight.items())}"
                        if highlight
                        else ""
                    ),
                ],
            ),
            cyto.Cytoscape(
                id=ids.TOPOLOGY_GRAPH,
                elements=elements(graph, path, _firing_services(ctx), level),
                stylesheet=STYLESHEET,
                layout={"name": "breadthfirst", "directed": True, "spacingFactor": 1.1},
                style={"width": "100%", "height": "calc(100vh - 150px)"},
                userZoomingEnabled=True,
                minZoom=0.2,
                maxZoom=3,
            ),
        ]
    )


_STATUSES = ("declared", "undeclared", "missing")
