"""Dashboard callbacks: variables into the URL, collapsed rows drawn when opened."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, MATCH, Input, Output, State, html

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.pages import ROUTES, route  # noqa: F401  (route table is built lazily)
from tinct.dashboards.pages.dashboard import open_dashboard, render_rows
from tinct.dashboards.urlstate import ViewState, parse_search, with_params

__all__ = ["register", "variables_search"]


def variables_search(search: str | None, picked: dict[str, Any]) -> str | None:
    """``search`` with ``var-<name>`` set from the picked values; None when unchanged."""
    updates: dict[str, Any] = {}
    for name, value in picked.items():
        values = value if isinstance(value, list) else [value] if value is not None else []
        updates[f"var__{name}"] = [str(v) for v in values] or None
    new = with_params(search, **updates)
    return None if parse_search(new) == parse_search(search) else new


def _uid(pathname: str | None) -> str:
    parts = (pathname or "").strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "d" else ""


def register(app: dash.Dash, ctx: Context) -> None:
    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input({"type": ids.VARIABLE, "name": ALL}, "value"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def pick_variable(values: list[Any], search: str | None) -> Any:
        names = [item["id"]["name"] for item in dash.ctx.inputs_list[0]]
        if not names:
            return dash.no_update
        new = variables_search(search, dict(zip(names, values, strict=True)))
        return dash.no_update if new is None else new

    @app.callback(
        Output({"type": ids.ROW_BODY, "key": MATCH}, "children"),
        Input({"type": ids.ROW, "key": MATCH}, "open"),
        State(ids.URL, "pathname"),
        State(ids.URL, "search"),
        State(ids.TZ_OFFSET, "data"),
        prevent_initial_call=True,
    )
    def open_row(
        is_open: bool | None, pathname: str | None, search: str | None, offset: int | None
    ) -> Any:
        if not is_open:
            return dash.no_update
        key = dash.ctx.triggered_id["key"]
        view = ViewState.parse(search, ctx.clock(), offset)
        dv = open_dashboard(ctx, view, _uid(pathname))
        if dv is None:
            return dash.no_update
        rows = [row for row in dv.rows if row.key == key]
        if not rows:
            return dash.no_update
        (panels,) = render_rows(ctx, dv, rows)
        return html.Div(className="grid", children=panels)
