"""``/dye``: the dye console, the live dye rules and a form to add one.

An operator dyes a user's (tenant's, route's, header's) requests for a
while: entry services poll the live rules and trace every matching request
(a share of them, the ratio) with the dye in its baggage, so the user's path
through the system can be followed on the Traces and Topology pages. Rules
come from and go to ``/api/tinct/dye-rules`` (``tinct/dye_api.py``) through
the query layer; the API validates, and its message (naming the field) is
shown as it is. Adding and ending are in ``tinct.dashboards.callbacks.dye``;
both redraw the table in place.

Element ids, stable for browser tests:

- ``dye-kind`` (dropdown: user, tenant, route, header), ``dye-key`` (text,
  the header name; shown only for ``header``), ``dye-value`` (text),
  ``dye-service`` (text, empty = every service), ``dye-ratio`` (number,
  default 1), ``dye-ttl`` (dropdown: 15m, 30m (default), 1h, 6h, 24h, 7d),
  ``dye-add`` (the button): the form.
- ``dye-result``: after Add or End, a ``div.notice`` (the rule's id) or a
  ``div.notice.bad`` (the API's error, e.g. ``match.value: must not be empty``).
- ``dye-table``: the live rules' ``table``; one ``tr[data-rule=<id>]`` per
  rule with cells ``td.rule-id``, ``td.match-kind``, ``td.match-key``,
  ``td.match-value``, ``td.dye`` (``user:42`` or ``header:x-tenant=a``),
  ``td.service``, ``td.ratio``, ``td.created``, ``td.expires``, ``td.left``;
  its End button is ``{"type": "dye-end", "rule": <id>}``. With no rules, or
  when the list fails, one ``tr.empty`` row says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from tinct.dashboards import ids
from tinct.dashboards.context import Context
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState

__all__ = [
    "layout",
    "rules_table_children",
    "dye_of",
    "format_time",
    "time_left",
    "KINDS",
    "TTLS",
    "DEFAULT_TTL",
    "DYE_RATIO",
]

DYE_RATIO = "dye-ratio"

KINDS = ("user", "tenant", "route", "header")
# The TTL dropdown: (label, seconds); the API's default is 30 minutes.
TTLS: tuple[tuple[str, int], ...] = (
    ("15m", 900),
    ("30m", 1800),
    ("1h", 3600),
    ("6h", 21600),
    ("24h", 86400),
    ("7d", 604800),
)
DEFAULT_TTL = 1800
_HEAD = (
    "ID",
    "Kind",
    "Key",
    "Value",
    "Dye",
    "Service",
    "Ratio",
    "Created",
    "Expires",
    "Left",
    "",
)


def _data(name: str, value: str) -> dict[str, Any]:
    """A ``data-*`` attribute as keyword arguments (Dash passes them through)."""
    return {name: value}


def dye_of(match: Mapping[str, Any]) -> str:
    """The dye a match gives: ``user:42``, or ``header:x-tenant=a`` for headers."""
    kind, key, value = match.get("kind", ""), match.get("key", ""), match.get("value", "")
    return f"header:{key}={value}" if kind == "header" else f"{kind}:{value}"


def _unix(rfc3339: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def format_time(rfc3339: str, utc_offset_min: int) -> str:
    """``2024-05-01T12:00:00.000Z`` as ``2024-05-01 14:00:00`` at ``utc_offset_min``."""
    unix = _unix(rfc3339)
    if unix is None:
        return str(rfc3339 or "")
    zone = dt.timezone(dt.timedelta(minutes=utc_offset_min))
    return dt.datetime.fromtimestamp(unix, zone).strftime("%Y-%m-%d %H:%M:%S")


def time_left(seconds: float) -> str:
    """``1799`` → ``29m 59s``, ``21600`` → ``6h``: the two largest units;
    ``expired`` at or below 0."""
    total = int(seconds)
    if total <= 0:
        return "expired"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or parts:
            parts.append(f"{total // size}{unit}")
            total %= size
    shown = parts[:2]
    if len(shown) == 2 and shown[1].startswith("0"):
        shown = shown[:1]
    return " ".join(shown)


def _ratio(value: Any) -> str:
    try:
        return f"{float(value) * 100:g}%"
    except (TypeError, ValueError):
        return str(value)


def _row(rule: Mapping[str, Any], now_s: float, utc_offset_min: int) -> html.Tr:
    rule_id = str(rule.get("id", ""))
    match = rule.get("match", {})
    expires = _unix(str(rule.get("expires_at", "")))
    return html.Tr(
        **_data("data-rule", rule_id),
        children=[
            html.Td(rule_id, className="rule-id"),
            html.Td(match.get("kind", ""), className="match-kind"),
            html.Td(match.get("key", ""), className="match-key"),
            html.Td(match.get("value", ""), className="match-value"),
            html.Td(html.Code(dye_of(match)), className="dye"),
            html.Td(rule.get("service") or "every", className="service"),
            html.Td(_ratio(rule.get("ratio", 1)), className="ratio"),
            html.Td(
                format_time(str(rule.get("created_at", "")), utc_offset_min), className="created"
            ),
            html.Td(
                format_time(str(rule.get("expires_at", "")), utc_offset_min), className="expires"
            ),
            html.Td(time_left(expires - now_s) if expires else "", className="left"),
            html.Td(
                html.Button(
                    "End",
                    id={"type": ids.DYE_END, "rule": rule_id},
                    n_clicks=0,
                    className="secondary",
                )
            ),
        ],
    )


def _one_row(text: str, css: str = "") -> html.Tr:
    return html.Tr(className=f"empty {css}".strip(), children=html.Td(text, colSpan=len(_HEAD)))


def rules_table_children(client: TinctClient, now_s: float, utc_offset_min: int) -> list[Component]:
    """The live rules table's head and rows, soonest to expire first; when the
    list fails, one row with the error. Never raises on an API error.

    Blocks on the dye rules API.
    """
    rows: Sequence[Component]
    try:
        rules = client.dye_rules()
    except QueryError as exc:
        rows = [_one_row(f"Could not list the dye rules: {exc}", "error")]
    else:
        rules = sorted(rules, key=lambda r: (str(r.get("expires_at", "")), str(r.get("id", ""))))
        rows = [_row(r, now_s, utc_offset_min) for r in rules] or [_one_row("No live dye rules.")]
    return [html.Thead(html.Tr([html.Th(h) for h in _HEAD])), html.Tbody(list(rows))]


def _form() -> html.Div:
    kinds = [{"label": k.title(), "value": k} for k in KINDS]
    ttls = [{"label": label, "value": seconds} for label, seconds in TTLS]
    return html.Div(
        className="form-row",
        children=[
            dcc.Dropdown(
                id=ids.DYE_KIND, options=kinds, value="user", clearable=False, style={"width": 120}
            ),
            # Only header rules have a key; the kind's callback shows it.
            dcc.Input(
                id=ids.DYE_KEY, type="text", placeholder="header name", style={"display": "none"}
            ),
            dcc.Input(id=ids.DYE_VALUE, type="text", placeholder="value (user id, route...)"),
            dcc.Input(id=ids.DYE_SERVICE, type="text", placeholder="service (empty: every)"),
            html.Label("ratio", htmlFor=DYE_RATIO),
            dcc.Input(id=DYE_RATIO, type="number", value=1, step="any", style={"width": 70}),
            html.Label("for", htmlFor=ids.DYE_TTL),
            dcc.Dropdown(
                id=ids.DYE_TTL,
                options=ttls,
                value=DEFAULT_TTL,
                clearable=False,
                style={"width": 90},
            ),
            html.Button("Add rule", id=ids.DYE_ADD, n_clicks=0),
        ],
    )


def layout(ctx: Context, view: ViewState, **_: str) -> Any:
    """The console: the form, the action notice and the live rules (times in
    the view's zone). Blocks on the dye rules API."""
    return html.Div(
        className="dye",
        children=[
            html.H2("Dye"),
            html.P(
                "Dye a user's, tenant's, route's or header's requests for a while: entry "
                "services trace the matching requests (the ratio of them) and carry the dye "
                "to every service they reach.",
                className="muted",
            ),
            _form(),
            html.Div(id=ids.DYE_RESULT),
            html.H3("Live rules"),
            html.Table(
                id=ids.DYE_TABLE,
                className="simple",
                children=rules_table_children(ctx.client, ctx.clock(), view.utc_offset_min),
            ),
        ],
    )
