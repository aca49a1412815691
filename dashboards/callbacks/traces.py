"""The traces page's callbacks: the search form, the scatter, span rows, "Dye user".

Searching and opening a trace only change the URL (``url.search``); the
router redraws the page from it, so every view stays a link. The bodies are
plain functions (``search_from_form``, ``search_for_point``...) so tests call
them without a browser; the registered callbacks only unpack Dash's inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html

from tinct.dashboards import ids
from tinct.dashboards.components.waterfall import span_detail
from tinct.dashboards.context import Context
from tinct.dashboards.pages.traces import (
    DYE_TTL_SECONDS,
    FIND,
    LIMIT,
    MAX_DURATION,
    MIN_DURATION,
    OPERATION,
    SERVICE,
    TAGS,
    trace_id_param,
)
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.traces_view import parse_trace
from tinct.dashboards.urlstate import ViewState, with_params

__all__ = [
    "register",
    "search_from_form",
    "search_for_point",
    "operation_choices",
    "span_detail_for",
    "dye_user",
    "DYE_TTL_SECONDS",
]

logger = logging.getLogger(__name__)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def search_from_form(
    search: str | None,
    service: str | None,
    operation: str | None,
    tags: str | None,
    min_duration: str | None,
    max_duration: str | None,
    limit: Any,
) -> str:
    """The URL query after "Find traces": the form's fields, no open trace.

    The time range and the other parameters stay; empty fields are dropped.
    Values are checked when the page draws (the form shows what is wrong).
    """
    return with_params(
        search,
        service=_text(service),
        operation=_text(operation),
        tags=_text(tags),
        minDuration=_text(min_duration),
        maxDuration=_text(max_duration),
        limit=_text(limit),
        trace=None,
    )


def search_for_point(search: str | None, click_data: Mapping[str, Any] | None) -> str | None:
    """The URL query opening the trace of a clicked scatter point; None if no point."""
    points = (click_data or {}).get("points") or []
    if not points:
        return None
    trace_id = points[0].get("customdata")
    if isinstance(trace_id, list | tuple):  # Plotly sends a list for 2-D customdata
        trace_id = trace_id[0] if trace_id else None
    if not trace_id:
        return None
    return with_params(search, trace=str(trace_id))


def operation_choices(
    client: TinctClient, service: str | None, current: str | None
) -> tuple[list[dict[str, str]], str | None]:
    """The operation dropdown's options for ``service``, and its value (kept if still offered)."""
    if not service:
        return [], None
    try:
        operations = sorted(client.operations(service))
    except QueryError:
        logger.warning("operations of %s failed", service, exc_info=True)
        operations = []
    value = current if current in operations else None
    return [{"label": o, "value": o} for o in operations], value


def span_detail_for(
    client: TinctClient,
    search: str | None,
    span_id: str,
    *,
    now: float,
    browser_offset_min: int | None = None,
) -> Any:
    """The details of ``span_id`` in the URL's open trace; a notice when it can't be read."""
    view = ViewState.parse(search, now, browser_offset_min)
    try:
        trace_id = trace_id_param(view)
        trace = client.trace(trace_id) if trace_id else None
    except (ValueError, QueryError) as exc:
        return html.Div(str(exc), className="notice bad")
    if trace is None:
        return html.Div("The trace is no longer available.", className="notice bad")
    return span_detail(
        parse_trace(trace), span_id, utc_offset_min=view.utc_offset_min, search=search or ""
    )


def dye_user(client: TinctClient, user: str) -> html.Div:
    """Dye ``user``'s requests for 30 minutes; the notice to show (never raises)."""
    rule = {"match": {"kind": "user", "value": user}, "ttl_seconds": DYE_TTL_SECONDS}
    try:
        answer = client.add_dye_rule(rule) or {}
    except QueryError as exc:
        return html.Div(f"Could not dye user {user}: {exc}", className="notice bad")
    except Exception as exc:  # a button must answer, never leave the page blank
        logger.exception("dyeing user %s failed", user)
        return html.Div(f"Could not dye user {user}: {exc}", className="notice bad")
    rule_id = str(answer.get("id", ""))
    until = str(answer.get("expires_at", ""))
    return html.Div(
        className="notice",
        children=[
            f"Dyeing user {user}'s requests for {DYE_TTL_SECONDS // 60} minutes",
            f" (rule {rule_id}" + (f", until {until})" if until else ")"),
            ". ",
            dcc.Link("See the dye rules", href="/dye"),
        ],
    )


def _triggered_value() -> Any:
    triggered = dash.ctx.triggered
    return triggered[0].get("value") if triggered else None


def register(app: dash.Dash, ctx: Context) -> None:
    """Attach the traces page's callbacks to ``app``."""

    @app.callback(
        Output(OPERATION, "options"),
        Output(OPERATION, "value"),
        Input(SERVICE, "value"),
        State(OPERATION, "value"),
        prevent_initial_call=True,
    )
    def operations(service: str | None, current: str | None) -> tuple[Any, ...]:
        return operation_choices(ctx.client, service, current)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input(FIND, "n_clicks"),
        Input(TAGS, "n_submit"),
        Input(MIN_DURATION, "n_submit"),
        Input(MAX_DURATION, "n_submit"),
        Input(LIMIT, "n_submit"),
        State(SERVICE, "value"),
        State(OPERATION, "value"),
        State(TAGS, "value"),
        State(MIN_DURATION, "value"),
        State(MAX_DURATION, "value"),
        State(LIMIT, "value"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def find(
        _find: int | None,
        _tags_enter: int | None,
        _min_enter: int | None,
        _max_enter: int | None,
        _limit_enter: int | None,
        service: str | None,
        operation: str | None,
        tags: str | None,
        min_duration: str | None,
        max_duration: str | None,
        limit: Any,
        search: str | None,
    ) -> Any:
        if not _triggered_value():
            return dash.no_update
        return search_from_form(search, service, operation, tags, min_duration, max_duration, limit)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input(ids.TRACE_SCATTER, "clickData"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def open_point(click_data: dict[str, Any] | None, search: str | None) -> Any:
        found = search_for_point(search, click_data)
        return dash.no_update if found is None else found

    @app.callback(
        Output(ids.SPAN_DETAIL, "children"),
        Input(ids.SPAN_SELECTED, "data"),
        State(ids.URL, "search"),
        State(ids.TZ_OFFSET, "data"),
        prevent_initial_call=True,
    )
    def open_span(selected: dict[str, Any] | None, search: str | None, offset: int | None) -> Any:
        # Set by assets/tinct.js when a waterfall row is clicked (it also
        # moves the row's ``selected`` class).
        if not selected or not selected.get("span"):
            return dash.no_update
        return span_detail_for(
            ctx.client, search, str(selected["span"]), now=ctx.clock(), browser_offset_min=offset
        )

    @app.callback(
        Output(ids.DYE_USER_RESULT, "children"),
        Input({"type": ids.DYE_USER, "user": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def dye(_clicks: list[int | None]) -> Any:
        trigger = dash.ctx.triggered_id
        if not isinstance(trigger, Mapping) or not _triggered_value():
            return dash.no_update
        return dye_user(ctx.client, str(trigger["user"]))
