"""Clicking a topology node opens that service's dashboard."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash
from dash import Input, Output, State

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.urlstate import parse_search, time_query

__all__ = ["register", "service_dashboard_href"]

SERVICE_DASHBOARD = "/d/tinct-services/services"
INTERFACE_DASHBOARD = "/d/tinct-interfaces/interfaces"


def service_dashboard_href(node: dict[str, Any], search: str | None) -> str | None:
    """The dashboard a node opens, keeping the time range; None for nodes without one."""
    params = parse_search(search)
    keep = time_query(params)
    if node.get("kind") == "service":
        return f"{SERVICE_DASHBOARD}?var-service={quote(node['id'])}{keep}"
    if node.get("kind") == "interface":
        service, _, route = str(node["id"]).partition(" ")
        return (
            f"{INTERFACE_DASHBOARD}?var-service={quote(service)}&var-interface={quote(route)}{keep}"
        )
    return None


def register(app: dash.Dash, ctx: Context) -> None:
    @app.callback(
        Output(ids.URL, "pathname", allow_duplicate=True),
        Output(ids.URL, "search", allow_duplicate=True),
        Input(ids.TOPOLOGY_GRAPH, "tapNodeData"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def open_service(node: dict[str, Any] | None, search: str | None) -> Any:
        href = service_dashboard_href(node or {}, search)
        if not href:
            return dash.no_update, dash.no_update
        path, _, query = href.partition("?")
        return path, "?" + query
