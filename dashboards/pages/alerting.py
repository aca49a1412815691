"""``/alerting``: rules, active alerts, silences and the alert history.

Grafana's alert list and Prometheus's ``/alerts`` on one page, read through
the query layer only: rule groups from ``/api/v1/rules``, pending and firing
alerts from ``/api/v1/alerts``, the silences of every Alertmanager that
``/api/v1/alertmanagers`` names (Alertmanager's ``GET /api/v2/silences``) and
the transitions of the URL's time range from ``/api/tinct/alerts/history``.
Each active alert has a Silence button that silences exactly its label set
(``tinct.dashboards.callbacks.alerting``). A section whose API fails shows
the error in place; the rest of the page still draws.

URL: ``/alerting?state=firing&q=disk`` (and the shell's ``from``/``to``/``tz``).
``state`` (``firing``, ``pending``, ``inactive``) keeps the alerts and the
alerting rules in that state; ``q`` keeps the rules, alerts and history
entries whose name, group or labels contain the text (case-insensitive).

Element ids, stable for browser tests:

- ``alerting-state`` (dropdown) and ``alerting-q`` (text input, applied on
  Enter or blur): the filters; they rewrite the URL.
- ``alerting-silence-duration``: how long a Silence click silences for
  (``1h``, ``2h`` (default), ``1d``).
- ``silence-result`` (``ids.SILENCE_RESULT``): after a Silence click, a
  ``div.notice`` naming the silence id(s), or a ``div.notice.bad`` with the error.
- ``alerting-alerts``: the active alerts section; its ``table`` has one
  ``tr[data-alert=<fp>]`` per alert, ``<fp>`` being Alertmanager's fingerprint of its labels (the 16
  hex digits its UI and webhooks show). Its Silence button has the id
  ``{"type": "silence", "alert": <fp>}`` (``ids.SILENCE``).
- ``alerting-alert-labels``: a ``dcc.Store`` of ``{<fp>: labels}``.
- ``alerting-rules``: the rules section; one ``div.rule-group[data-group=<name>]`` per group, a
  ``tr[data-rule=<name>]`` per rule, the state in ``span.badge.<state>``.
- ``alerting-silences``: the silences section, redrawn in place after a
  silence is created; its ``table`` has a ``tr[data-silence=<id>]`` per
  active or pending silence.
- ``alerting-history``: the history section; its ``table`` has a
  ``tr.transition`` per transition, newest first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from tinct.alerting.notifier import alertmanager_fingerprint
from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState

__all__ = [
    "layout",
    "silences_section",
    "alert_fingerprint",
    "format_time",
    "SILENCE_DURATIONS",
    "DEFAULT_SILENCE",
    "STATES",
    "STATE_FILTER",
    "TEXT_FILTER",
    "SILENCE_DURATION",
    "ALERT_LABELS",
    "ALERTS",
    "RULES",
    "SILENCES",
    "HISTORY",
]

STATE_FILTER = "alerting-state"
TEXT_FILTER = "alerting-q"
SILENCE_DURATION = "alerting-silence-duration"
ALERT_LABELS = "alerting-alert-labels"
ALERTS = "alerting-alerts"
RULES = "alerting-rules"
SILENCES = "alerting-silences"
HISTORY = "alerting-history"

# What a Silence click can silence for: (dropdown value, seconds).
SILENCE_DURATIONS: tuple[tuple[str, int], ...] = (("1h", 3600), ("2h", 7200), ("1d", 86400))
DEFAULT_SILENCE = "2h"
STATES = ("firing", "pending", "inactive")
# Prometheus's "zero" time: a rule never evaluated, an alert never active.
_ZERO_YEAR = 1


def _data(name: str, value: str) -> dict[str, Any]:
    """A ``data-*`` attribute as keyword arguments (Dash passes them through)."""
    return {name: value}


def alert_fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of ``labels``: the alert's id on this page."""
    return alertmanager_fingerprint(dict(labels))


def format_time(rfc3339: str, utc_offset_min: int) -> str:
    """``2024-05-01T12:00:00.000Z`` as ``2024-05-01 14:00:00`` at ``utc_offset_min``.

    Prometheus's zero time and unparsable text come back as "" and the text.
    """
    try:
        moment = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return str(rfc3339 or "")
    if moment.year <= _ZERO_YEAR:
        return ""
    shown = moment.astimezone(dt.timezone(dt.timedelta(minutes=utc_offset_min)))
    return shown.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    """``300`` → ``5m``, ``5400`` → ``1h30m``, Prometheus's duration style."""
    total = int(seconds)
    if total <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out


def _value(text: Any) -> str:
    """An alert value (``1.5e+00``) as people write numbers (``1.5``)."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return str(text)
    return str(text) if math.isnan(number) or math.isinf(number) else f"{number:g}"


def _badge(state: str) -> html.Span:
    return html.Span(state, className=f"badge {state}")


def _labels(labels: Mapping[str, str], skip: Iterable[str] = ()) -> list[html.Span]:
    hidden = set(skip)
    return [
        html.Span(f"{k}={v}", className="label")
        for k, v in sorted(labels.items())
        if k not in hidden
    ]


def _summary(annotations: Mapping[str, str]) -> str:
    return annotations.get("summary") or annotations.get("description") or ""


def _matches(text: str, *fields: str, labels: Mapping[str, str] | None = None) -> bool:
    if not text:
        return True
    needle = text.lower()
    haystack = [*fields, *(f"{k}={v}" for k, v in (labels or {}).items())]
    return any(needle in field.lower() for field in haystack)


def _notice_bad(text: str) -> html.Div:
    return html.Div(text, className="notice bad")


# -- sections ----------------------------------------------------------------------------


def _filters(state: str, text: str) -> html.Div:
    states = [{"label": "Every state", "value": ""}]
    states += [{"label": s.title(), "value": s} for s in STATES]
    durations = [{"label": d, "value": d} for d, _ in SILENCE_DURATIONS]
    return html.Div(
        className="form-row",
        children=[
            dcc.Dropdown(
                id=STATE_FILTER, options=states, value=state, clearable=False, style={"width": 160}
            ),
            dcc.Input(
                id=TEXT_FILTER,
                type="text",
                value=text,
                debounce=True,
                placeholder="Search by name or label",
            ),
            html.Label("Silence for", htmlFor=SILENCE_DURATION),
            dcc.Dropdown(
                id=SILENCE_DURATION,
                options=durations,
                value=DEFAULT_SILENCE,
                clearable=False,
                style={"width": 90},
            ),
        ],
    )


def _alerts_section(
    alerts: Sequence[Mapping[str, Any]], state: str, text: str, offset: int
) -> tuple[Component, dict[str, dict[str, str]]]:
    """The active alerts table and the labels of each row's alert, by fingerprint."""
    shown = [
        a
        for a in alerts
        if a.get("state") in ("firing", "pending")
        and (not state or a.get("state") == state)
        and _matches(text, labels=a.get("labels", {}))
    ]
    # Firing before pending, then the longest active first.
    shown.sort(key=lambda a: (a.get("state") != "firing", a.get("activeAt", "")))
    by_fp: dict[str, dict[str, str]] = {}
    rows: list[Component] = []
    for alert in shown:
        labels = {str(k): str(v) for k, v in alert.get("labels", {}).items()}
        fp = alert_fingerprint(labels)
        by_fp[fp] = labels
        annotations = alert.get("annotations", {})
        rows.append(
            html.Tr(
                **_data("data-alert", fp),
                children=[
                    html.Td(labels.get("alertname", ""), className="alertname"),
                    html.Td(_labels(labels, skip=["alertname"])),
                    html.Td(_badge(str(alert.get("state", "")))),
                    html.Td(format_time(alert.get("activeAt", ""), offset)),
                    html.Td(_value(alert.get("value", ""))),
                    html.Td(_summary(annotations), title=annotations.get("description", "")),
                    html.Td(
                        html.Button(
                            "Silence",
                            id={"type": ids.SILENCE, "alert": fp},
                            n_clicks=0,
                            className="secondary",
                        )
                    ),
                ],
            )
        )
    head = ["Alert", "Labels", "State", "Active since", "Value", "Summary", ""]
    if not rows:
        rows = [html.Tr(html.Td("No pending or firing alerts.", colSpan=len(head)))]
    table = html.Table(
        className="simple",
        children=[html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
    )
    return table, by_fp


def _rule_row(rule: Mapping[str, Any]) -> html.Tr:
    alerting = rule.get("type") == "alerting"
    health = str(rule.get("health", "unknown"))
    return html.Tr(
        **_data("data-rule", str(rule.get("name", ""))),
        children=[
            html.Td(rule.get("name", ""), className="rule-name"),
            html.Td(rule.get("type", "")),
            html.Td(_badge(str(rule.get("state", ""))) if alerting else "—"),
            html.Td(_badge(health)),
            html.Td(rule.get("lastError", ""), className="error"),
            html.Td(html.Code(rule.get("query", ""))),
            html.Td(_duration(rule.get("duration", 0)) if alerting else ""),
            html.Td(_labels(rule.get("labels", {}))),
            html.Td(_summary(rule.get("annotations", {}))),
        ],
    )


def _rules_section(groups: Sequence[Mapping[str, Any]], state: str, text: str) -> list[Component]:
    head = ["Rule", "Type", "State", "Health", "Last error", "Query", "For", "Labels", "Summary"]
    out: list[Component] = []
    for group in groups:
        name = str(group.get("name", ""))
        rules = [
            r
            for r in group.get("rules", [])
            if (not state or (r.get("type") == "alerting" and r.get("state") == state))
            and _matches(text, str(r.get("name", "")), name, labels=r.get("labels", {}))
        ]
        if not rules:
            continue
        about = f"{group.get('file', '')} · every {_duration(group.get('interval', 0))}"
        out.append(
            html.Div(
                className="card rule-group",
                **_data("data-group", name),
                children=[
                    html.H4(name),
                    html.Div(about, className="muted"),
                    html.Table(
                        className="simple",
                        children=[
                            html.Thead(html.Tr([html.Th(h) for h in head])),
                            html.Tbody([_rule_row(r) for r in rules]),
                        ],
                    ),
                ],
            )
        )
    if not out:
        filtered = " match the filters" if state or text else " are loaded"
        out.append(html.P(f"No rules{filtered}."))
    return out


def _matcher(m: Mapping[str, Any]) -> str:
    equal = m.get("isEqual", True)  # absent before Alertmanager 0.22
    op = ("=~" if equal else "!~") if m.get("isRegex") else ("=" if equal else "!=")
    return f'{m.get("name", "")}{op}"{m.get("value", "")}"'


def silences_section(client: TinctClient, utc_offset_min: int) -> list[Component]:
    """The current (active and pending) silences of every Alertmanager, or why
    there are none to show. Never raises on an API error: it is shown instead.

    Blocks on the Alertmanagers' APIs.
    """
    try:
        if not client.alertmanagers():
            return [
                html.P(
                    "No Alertmanager is configured (alerting.alertmanagers): alerts are "
                    "not sent anywhere and cannot be silenced."
                )
            ]
        silences = client.silences()
    except QueryError as exc:
        return [_notice_bad(f"Could not list the silences: {exc}")]
    current = [s for s in silences if s.get("status", {}).get("state") != "expired"]
    current.sort(key=lambda s: str(s.get("endsAt", "")))
    head = ["ID", "Matchers", "State", "Ends", "Created by", "Comment"]
    rows: list[Component] = [
        html.Tr(
            **_data("data-silence", str(s.get("id", ""))),
            children=[
                html.Td(s.get("id", ""), className="silence-id"),
                html.Td([html.Span(_matcher(m), className="label") for m in s.get("matchers", [])]),
                html.Td(_badge(str(s.get("status", {}).get("state", "")))),
                html.Td(format_time(str(s.get("endsAt", "")), utc_offset_min)),
                html.Td(s.get("createdBy", "")),
                html.Td(s.get("comment", "")),
            ],
        )
        for s in current
    ]
    if not rows:
        rows = [html.Tr(html.Td("No active silences.", colSpan=len(head)))]
    return [
        html.Table(
            className="simple",
            children=[html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
        )
    ]


def _history_section(
    events: Sequence[Mapping[str, Any]], text: str, utc_offset_min: int
) -> Component:
    shown = [
        e for e in events if _matches(text, str(e.get("alertname", "")), labels=e.get("labels", {}))
    ]
    shown = sorted(shown, key=lambda e: str(e.get("time", "")), reverse=True)
    head = ["Time", "Alert", "State", "Labels", "Value"]
    rows: list[Component] = [
        html.Tr(
            className="transition",
            children=[
                html.Td(format_time(str(e.get("time", "")), utc_offset_min)),
                html.Td(e.get("alertname", "")),
                html.Td(_badge(str(e.get("state", "")))),
                html.Td(_labels(e.get("labels", {}), skip=["alertname"])),
                html.Td(_value(e.get("value", ""))),
            ],
        )
        for e in shown
    ]
    if not rows:
        rows = [html.Tr(html.Td("No alert transitions in this time range.", colSpan=len(head)))]
    return html.Table(
        className="simple",
        children=[html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
    )


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    """The page for ``view`` (``state`` and ``q`` filter; times in the view's zone).

    Blocks on the rules, alerts, Alertmanager and history APIs.
    """
    state = view.get("state")
    state = state if state in STATES else ""
    text = view.get("q").strip()
    offset = view.utc_offset_min
    client = ctx.client

    alerts_part: Component
    labels_by_fp: dict[str, dict[str, str]] = {}
    try:
        alerts_part, labels_by_fp = _alerts_section(client.alerts(), state, text, offset)
    except QueryError as exc:
        alerts_part = _notice_bad(f"Could not list the alerts: {exc}")

    try:
        rules_part = _rules_section(client.rules(), state, text)
    except QueryError as exc:
        rules_part = [_notice_bad(f"Could not list the rules: {exc}")]

    history_part: Component
    try:
        events = client.alert_history(view.start_ms, view.end_ms)
        history_part = _history_section(events, text, offset)
    except QueryError as exc:
        history_part = _notice_bad(f"Could not read the alert history: {exc}")

    return html.Div(
        className="alerting",
        children=[
            html.H2("Alerting"),
            _filters(state, text),
            html.Div(id=ids.SILENCE_RESULT),
            dcc.Store(id=ALERT_LABELS, data=labels_by_fp),
            html.H3(f"Active alerts ({len(labels_by_fp)})"),
            html.Div(id=ALERTS, children=alerts_part),
            html.H3("Rules"),
            html.Div(id=RULES, children=rules_part),
            html.H3("Silences"),
            html.Div(id=SILENCES, children=silences_section(client, offset)),
            html.H3("History"),
            html.Div(id=HISTORY, children=history_part),
        ],
    )
