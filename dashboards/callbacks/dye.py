"""The dye console's actions: add a rule, end one, show the key for headers.

Both actions call the dye rules API through the query layer and redraw the
live rules table in place with a notice: the new rule's id, the ended one's,
or the API's error (its 4xx messages name the field, ``ratio: must be > 0
and <= 1, got 2``). The bodies are plain functions (:func:`add_rule`,
:func:`end_rule`, :func:`rule_request`) so tests call them without Dash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import dash
from dash import ALL, Input, Output, State, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.pages import dye as page
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState

__all__ = ["register", "add_rule", "end_rule", "rule_request", "key_style"]

logger = logging.getLogger(__name__)

_Result = tuple[Component, list[Component]]
_TTL_LABELS = {seconds: label for label, seconds in page.TTLS}


def rule_request(
    kind: str | None,
    key: str | None,
    value: str | None,
    service: str | None,
    ratio: float | str | None,
    ttl_seconds: int | None,
) -> dict[str, Any]:
    """The POST body for the form's fields (the API's shape, ``tinct/dye_api.py``).

    Nothing is checked here: the API does, and names the field. An empty
    ratio or TTL is left out (the API's defaults, 1 and 30 minutes); the key
    is sent for header rules only.
    """
    match: dict[str, Any] = {"kind": kind or "", "value": (value or "").strip()}
    if kind == "header":
        match["key"] = (key or "").strip()
    body: dict[str, Any] = {"match": match, "service": (service or "").strip()}
    if ratio is not None and ratio != "":
        body["ratio"] = _number(ratio)
    if ttl_seconds:
        body["ttl_seconds"] = ttl_seconds
    return body


def _number(text: float | str) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text  # the API answers "ratio: must be a number, got ..."


def _guarded(action: Callable[[], Component], what: str) -> Component:
    try:
        return action()
    except QueryError as exc:
        return html.Div(f"Could not {what}: {exc}", className="notice bad")
    except Exception as exc:  # shown, not raised: a click must never break the page
        logger.exception("dye console: could not %s", what)
        return html.Div(f"Could not {what}: {exc}", className="notice bad")


def add_rule(
    client: TinctClient, body: Mapping[str, Any], now_s: float, utc_offset_min: int
) -> _Result:
    """Create the rule ``body`` describes; the notice and the redrawn table.

    Never raises. Blocks on the dye rules API.
    """

    def add() -> Component:
        rule = client.add_dye_rule(body)
        ttl = _TTL_LABELS.get(int(rule.get("ttl_seconds", 0)), f"{rule.get('ttl_seconds')}s")
        where = f"on {rule['service']}" if rule.get("service") else "on every service"
        until = page.format_time(str(rule.get("expires_at", "")), utc_offset_min)
        return html.Div(
            f"Added dye rule {rule['id']}: {page.dye_of(rule.get('match', {}))} {where}, "
            f"{float(rule.get('ratio', 1)) * 100:g}% of requests, for {ttl} (until {until}).",
            className="notice",
        )

    notice = _guarded(add, "add the dye rule")
    return notice, page.rules_table_children(client, now_s, utc_offset_min)


def end_rule(client: TinctClient, rule_id: str, now_s: float, utc_offset_min: int) -> _Result:
    """End the live rule ``rule_id``; the notice and the redrawn table.

    Never raises. Blocks on the dye rules API.
    """

    def end() -> Component:
        client.end_dye_rule(rule_id)
        return html.Div(f"Ended dye rule {rule_id}.", className="notice")

    notice = _guarded(end, f"end dye rule {rule_id}")
    return notice, page.rules_table_children(client, now_s, utc_offset_min)


def key_style(kind: str | None) -> dict[str, str]:
    """The key input is for header rules only."""
    return {} if kind == "header" else {"display": "none"}


def register(app: dash.Dash, ctx: Context) -> None:
    """Attach the dye console's callbacks to ``app``."""
    app.callback(Output(ids.DYE_KEY, "style"), Input(ids.DYE_KIND, "value"))(key_style)

    @app.callback(
        Output(ids.DYE_RESULT, "children"),
        Output(ids.DYE_TABLE, "children"),
        Input(ids.DYE_ADD, "n_clicks"),
        Input({"type": ids.DYE_END, "rule": ALL}, "n_clicks"),
        State(ids.DYE_KIND, "value"),
        State(ids.DYE_KEY, "value"),
        State(ids.DYE_VALUE, "value"),
        State(ids.DYE_SERVICE, "value"),
        State(page.DYE_RATIO, "value"),
        State(ids.DYE_TTL, "value"),
        State(ids.URL, "search"),
        State(ids.TZ_OFFSET, "data"),
        prevent_initial_call=True,
    )
    def on_action(
        _add: int | None,
        _ends: list[int | None],
        kind: str | None,
        key: str | None,
        value: str | None,
        service: str | None,
        ratio: float | str | None,
        ttl: int | None,
        search: str | None,
        offset: int | None,
    ) -> tuple[Any, Any]:
        trigger = dash.ctx.triggered_id
        # End buttons drawn anew (n_clicks 0) trigger too: only a click counts.
        if trigger is None or not dash.ctx.triggered[0].get("value"):
            raise PreventUpdate
        now = ctx.clock()
        offset_min = ViewState.parse(search, now, offset).utc_offset_min
        if trigger == ids.DYE_ADD:
            body = rule_request(kind, key, value, service, ratio, ttl)
            return add_rule(ctx.client, body, now, offset_min)
        return end_rule(ctx.client, str(trigger["rule"]), now, offset_min)
