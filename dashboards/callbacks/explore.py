"""Explore's Run button puts the query in the URL (the router draws it)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.urlstate import with_params

__all__ = ["register"]


def register(app: dash.Dash, ctx: Context) -> None:
    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input(ids.EXPLORE_RUN, "n_clicks"),
        State(ids.EXPLORE_EXPR, "value"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def run(clicks: int, expr: str | None, search: str | None) -> Any:
        if not clicks:
            return dash.no_update
        return with_params(search, expr=(expr or "").strip() or None)
