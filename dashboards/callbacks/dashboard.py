"""Dashboard callbacks: variables into the URL, collapsed rows drawn when opened."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, MATCH, Input, Output, State, html

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.pages.dashboard import VARIABLES_SHOWN, open_dashboard, render_rows
from tinct.dashboards.urlstate import ViewState

__all__ = ["register"]


# A picked variable goes into the URL in the browser (no server round trip):
# only values changed from what the dropdown was drawn with (``shown``), and
# Grafana's multi-value rule: picking a value while All is selected replaces
# All, picking All replaces the values (Dash appends the option just clicked).
_PICK_VARIABLE_JS = """function(values, shown, search) {
    const names = dash_clientside.callback_context.inputs_list[0].map(i => i.id.name);
    const params = new URLSearchParams(search || "");
    let changed = false;
    names.forEach((name, i) => {
        const value = values[i];
        if (JSON.stringify((shown || {})[name]) === JSON.stringify(value)) { return; }
        let list = Array.isArray(value) ? value.slice() : (value == null ? [] : [value]);
        if (list.includes("$__all") && list.length > 1) {
            const all = list[list.length - 1] === "$__all";
            list = all ? ["$__all"] : list.filter(v => v !== "$__all");
        }
        params.delete("var-" + name);
        list.forEach(v => params.append("var-" + name, String(v)));
        changed = true;
    });
    if (!changed) { return dash_clientside.no_update; }
    const text = params.toString();
    return text ? "?" + text : "";
}"""


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
    app.clientside_callback(  # type: ignore[no-untyped-call]
        _PICK_VARIABLE_JS,
        Output(ids.URL, "search", allow_duplicate=True),
        Input({"type": ids.VARIABLE, "name": ALL}, "value"),
        State(VARIABLES_SHOWN, "data"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )

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
