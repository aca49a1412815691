"""Dashboard callbacks: variables into the URL, collapsed rows drawn when opened."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, MATCH, Input, Output, State, html

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.pages import ROUTES, route  # noqa: F401  (route table is built lazily)
from tinct.dashboards.pages.dashboard import VARIABLES_SHOWN, open_dashboard, render_rows
from tinct.dashboards.urlstate import ViewState, parse_search, with_params
from tinct.dashboards.variables import ALL_VALUE

__all__ = ["register", "variables_search"]


def _all_or_values(values: list[Any]) -> list[Any]:
    """Grafana's multi-value picker: picking a value while All is selected
    replaces All, picking All replaces the values. Dash's multi dropdown
    appends the option just clicked, so the last value is the new pick."""
    if ALL_VALUE not in values or len(values) < 2:
        return values
    return [ALL_VALUE] if values[-1] == ALL_VALUE else [v for v in values if v != ALL_VALUE]


def variables_search(search: str | None, picked: dict[str, Any]) -> str | None:
    """``search`` with ``var-<name>`` set from the picked values; None when unchanged."""
    updates: dict[str, Any] = {}
    for name, value in picked.items():
        values = value if isinstance(value, list) else [value] if value is not None else []
        updates[f"var__{name}"] = [str(v) for v in _all_or_values(values)] or None
    new = with_params(search, **updates)
    return None if parse_search(new) == parse_search(search) else new


# Dash's ``html.Details`` counts clicks but never reports ``open`` when the
# user toggles it, so a row's ``open`` is copied from the element after each
# click (the toggle is the summary click's default action: read it a task
# later); clicks that don't toggle (inside an open row) change nothing.
_ROW_OPEN_JS = """async function(_clicks, wasOpen, id) {
    await new Promise(resolve => setTimeout(resolve, 0));
    const row = document.getElementById(JSON.stringify({key: id.key, type: id.type}));
    if (!row || row.open === Boolean(wasOpen)) { return window.dash_clientside.no_update; }
    return row.open;
}"""


def _uid(pathname: str | None) -> str:
    parts = (pathname or "").strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "d" else ""


def register(app: dash.Dash, ctx: Context) -> None:
    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input({"type": ids.VARIABLE, "name": ALL}, "value"),
        State(VARIABLES_SHOWN, "data"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def pick_variable(values: list[Any], shown: dict[str, Any] | None, search: str | None) -> Any:
        names = [item["id"]["name"] for item in dash.ctx.inputs_list[0]]
        # Only what the user changed: a dropdown settling on the value it was
        # drawn with must not add var-<name> (nor a history entry).
        picked = {
            n: v for n, v in zip(names, values, strict=True) if (shown or {}).get(n, object()) != v
        }
        if not picked:
            return dash.no_update
        new = variables_search(search, picked)
        return dash.no_update if new is None else new

    app.clientside_callback(  # type: ignore[no-untyped-call]
        _ROW_OPEN_JS,
        Output({"type": ids.ROW, "key": MATCH}, "open"),
        Input({"type": ids.ROW, "key": MATCH}, "n_clicks"),
        State({"type": ids.ROW, "key": MATCH}, "open"),
        State({"type": ids.ROW, "key": MATCH}, "id"),
        prevent_initial_call=True,
    )

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
