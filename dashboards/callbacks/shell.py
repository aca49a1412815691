"""The time picker and the router: URL in, page out."""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import Input, Output, State, html

from tinct.dashboards import ids
from tinct.dashboards.components.shell import CUSTOM
from tinct.dashboards.context import Context
from tinct.dashboards.pages import route
from tinct.dashboards.timerange import RELATIVE_RANGES, duration_seconds
from tinct.dashboards.urlstate import DEFAULT_FROM, ViewState, parse_search, with_params

__all__ = ["register"]

logger = logging.getLogger(__name__)
_RELATIVE = {value for value, _ in RELATIVE_RANGES}

# The browser's offset from UTC, for times drawn in browser time.
_TZ_OFFSET_JS = "function(_) { return -new Date().getTimezoneOffset(); }"


def register(app: dash.Dash, ctx: Context) -> None:
    app.clientside_callback(  # type: ignore[no-untyped-call]
        _TZ_OFFSET_JS, Output(ids.TZ_OFFSET, "data"), Input(ids.URL, "pathname")
    )

    @app.callback(
        Output(ids.URL, "search"),
        Output(ids.RANGE, "value"),
        Output(ids.CUSTOM_FROM, "value"),
        Output(ids.CUSTOM_TO, "value"),
        Output(ids.TIMEZONE, "value"),
        Output(ids.REFRESH, "value"),
        Output(ids.REFRESH_TIMER, "interval"),
        Output(ids.REFRESH_TIMER, "disabled"),
        Input(ids.URL, "search"),
        Input(ids.RANGE, "value"),
        Input(ids.CUSTOM_APPLY, "n_clicks"),
        Input(ids.TIMEZONE, "value"),
        Input(ids.REFRESH, "value"),
        State(ids.CUSTOM_FROM, "value"),
        State(ids.CUSTOM_TO, "value"),
    )
    def time_picker(
        search: str | None,
        picked: str | None,
        _apply: int,
        timezone: str | None,
        refresh: str | None,
        custom_from: str | None,
        custom_to: str | None,
    ) -> tuple[Any, ...]:
        trigger = dash.ctx.triggered_id
        new_search: Any = dash.no_update
        if trigger == ids.RANGE and picked and picked != CUSTOM:
            new_search = with_params(search, **{"from": picked, "to": "now"})
        elif trigger == ids.CUSTOM_APPLY and custom_from and custom_to:
            new_search = with_params(search, **{"from": custom_from, "to": custom_to})
        elif trigger == ids.TIMEZONE:
            new_search = with_params(search, tz=None if timezone == "browser" else timezone)
        elif trigger == ids.REFRESH:
            new_search = with_params(search, refresh=refresh or None)
        shown = search if new_search is dash.no_update else new_search
        params = parse_search(shown)
        raw_from = params.get("from", [DEFAULT_FROM])[0]
        raw_to = params.get("to", ["now"])[0]
        relative = raw_from in _RELATIVE and raw_to == "now"
        every = params.get("refresh", [""])[0]
        try:
            interval_ms = int(duration_seconds(every) * 1000)
        except ValueError:
            interval_ms = 0
        return (
            new_search,
            raw_from if relative else CUSTOM,
            raw_from,
            raw_to,
            "utc" if params.get("tz", [""])[0].lower() == "utc" else "browser",
            every,
            max(interval_ms, 1000),
            interval_ms <= 0,
        )

    @app.callback(
        Output(ids.PAGE, "children"),
        Input(ids.URL, "pathname"),
        Input(ids.URL, "search"),
        Input(ids.TZ_OFFSET, "data"),
        Input(ids.REFRESH_TIMER, "n_intervals"),
    )
    def page(pathname: str | None, search: str | None, offset: int | None, _tick: int) -> Any:
        view = ViewState.parse(search, ctx.clock(), offset)
        try:
            return route(ctx, pathname or "/", view)
        except Exception as exc:  # a page must show its error, never a blank screen
            logger.exception("drawing %s failed", pathname)
            return html.Div(className="page-error", children=f"This page failed: {exc}")
