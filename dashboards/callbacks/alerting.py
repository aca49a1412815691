"""The alerting page's actions: silence an alert, filter by state and text.

A Silence click silences the clicked alert's exact label set in every
Alertmanager (Alertmanager v2 ``POST /api/v2/silences``, one equality
matcher per label) until now plus the chosen duration, then redraws the
silences section in place. The callback bodies are plain functions
(:func:`silence_alert`, :func:`filter_search`) so tests call them without Dash.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import dash
from dash import ALL, Input, Output, State, html
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.pages import alerting as page
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState, parse_search, with_params

__all__ = ["register", "silence_alert", "filter_search", "CREATED_BY"]

logger = logging.getLogger(__name__)

CREATED_BY = "tinct"
_DURATIONS = dict(page.SILENCE_DURATIONS)


def _rfc3339(unix_s: float) -> str:
    moment = dt.datetime.fromtimestamp(unix_s, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def silence_alert(
    client: TinctClient,
    labels: Mapping[str, str] | None,
    duration: str | None,
    now_s: float,
    utc_offset_min: int,
) -> tuple[Component, list[Component]]:
    """Silence the alert with exactly ``labels`` for ``duration`` from ``now_s``.

    Returns:
        The notice (``notice``: the silence ids; ``notice bad``: what went
        wrong) and the redrawn silences section. Never raises.

    Blocks on tinct's and the Alertmanagers' APIs.
    """
    if not labels:
        notice = html.Div(
            "This alert is no longer listed: reload the page and try again.",
            className="notice bad",
        )
        return notice, page.silences_section(client, utc_offset_min)
    name = labels.get("alertname", "the alert")
    label = duration if duration in _DURATIONS else page.DEFAULT_SILENCE
    ends_s = now_s + _DURATIONS[label]
    try:
        silence_ids = client.add_silence(
            dict(labels), _rfc3339(ends_s), CREATED_BY, f"silenced from tinct: {name}"
        )
    except QueryError as exc:
        notice = html.Div(f"Could not silence {name}: {exc}", className="notice bad")
    except Exception as exc:  # shown, not raised: a click must never break the page
        logger.exception("silencing %s failed", name)
        notice = html.Div(f"Could not silence {name}: {exc}", className="notice bad")
    else:
        until = page.format_time(_rfc3339(ends_s), utc_offset_min)
        notice = html.Div(
            f"Silenced {name} for {label} (until {until}): silence {', '.join(silence_ids)}",
            className="notice",
        )
    return notice, page.silences_section(client, utc_offset_min)


def filter_search(search: str | None, state: str | None, text: str | None) -> str | None:
    """The URL's query string with the filters applied; None when unchanged."""
    params = parse_search(search)
    state = state if state in page.STATES else ""
    text = (text or "").strip()
    if params.get("state", [""])[0] == state and params.get("q", [""])[0] == text:
        return None
    return with_params(search, state=state or None, q=text or None)


def register(app: dash.Dash, ctx: Context) -> None:
    """Attach the alerting page's callbacks to ``app``."""

    @app.callback(
        Output(ids.SILENCE_RESULT, "children"),
        Output(page.SILENCES, "children"),
        Input({"type": ids.SILENCE, "alert": ALL}, "n_clicks"),
        State(page.ALERT_LABELS, "data"),
        State(page.SILENCE_DURATION, "value"),
        State(ids.URL, "search"),
        State(ids.TZ_OFFSET, "data"),
        prevent_initial_call=True,
    )
    def on_silence(
        _clicks: list[int | None],
        labels_by_fp: dict[str, dict[str, str]] | None,
        duration: str | None,
        search: str | None,
        offset: int | None,
    ) -> tuple[Any, Any]:
        trigger = dash.ctx.triggered_id
        # Buttons drawn anew (n_clicks 0) trigger too: only a click counts.
        if not isinstance(trigger, Mapping) or not dash.ctx.triggered[0].get("value"):
            raise PreventUpdate
        now = ctx.clock()
        view = ViewState.parse(search, now, offset)
        labels = (labels_by_fp or {}).get(str(trigger.get("alert")))
        return silence_alert(ctx.client, labels, duration, now, view.utc_offset_min)

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input(page.STATE_FILTER, "value"),
        Input(page.TEXT_FILTER, "value"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def on_filter(state: str | None, text: str | None, search: str | None) -> Any:
        new = filter_search(search, state, text)
        return dash.no_update if new is None else new
