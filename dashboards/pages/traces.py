"""``/traces``: Jaeger UI's search page and trace view, with the URL holding everything.

URL: ``?service=&operation=&tags=k=v k2=v2&minDuration=&maxDuration=&limit=20
&from=&to=`` is a search, run as soon as ``service`` is set (so a service
panel's ``/traces?service=X&from=..&to=..`` shows that service's traces at
once); ``&trace=<hex id>`` opens one trace above the results, the search
staying in the URL. ``tags`` is logfmt, as Jaeger UI's form takes it
(``http.status_code=500 error=true``, values with spaces in double quotes),
sent to Jaeger's ``/api/traces`` as its ``tags`` JSON object; durations are
Go durations (``1.2s``, ``100ms``, ``500us``). Results are the page's time range.

A trace shows its header (root, duration, spans, services, the request's dye),
the waterfall (``components/waterfall.py``) with its critical path, the span
details of the row clicked, the trace's log records (the dyed request's logs
when it is dyed) and a "Dye user <id>" button per ``enduser.id`` found.

Element ids and classes for tests (stable):

==========================================  ==============================================
``#trace-search`` (``ids.TRACE_SEARCH``)      the search form, ``.form-row.trace-search``
``#traces-service`` / ``#traces-operation``   service and operation dropdowns
``#traces-tags``, ``#traces-min-duration``,   the form's inputs (Enter submits)
``#traces-max-duration``, ``#traces-limit``
``#traces-find``                              the "Find traces" button
``#traces-messages``                          the form's problems, ``.notice.bad`` each
``#trace-scatter`` (``ids.TRACE_SCATTER``)    duration-over-time scatter (click opens)
``#traces-results``                           the result table; rows ``tr.trace-result``
                                              (``data-trace-id``, ``.error``,
                                              ``.selected``) with ``a.trace-link``
``#traces-trace``                             the open trace (``data-trace-id``)
``#traces-trace-header``                      its header: ``.trace-title``, ``.trace-facts``,
                                              ``.trace-dye`` (dyed only), ``#traces-close``
``#waterfall`` (``ids.WATERFALL``)            rows ``.span-row`` (see the waterfall module)
``#span-detail`` (``ids.SPAN_DETAIL``)        the clicked span's details
``{"type": "dye-user", "user": id}``          "Dye user <id>" buttons, ``.dye-user``
``#dye-user-result``                          their answer, ``.notice`` / ``.notice.bad``
``#traces-logs``                              the log records, rows ``tr.log-row``
                                              (``data-span-id``, ``.dyed``); section
                                              ``.trace-logs-section`` (``.dyed`` if dyed)
==========================================  ==============================================

Errors from the query layer render in place (``.notice.bad``): a failed
search still shows the form, a failed log query still shows the trace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.components.waterfall import service_chip, waterfall
from tinct.dashboards.context import Context
from tinct.dashboards.figures.traces import trace_scatter_figure
from tinct.dashboards.query import QueryError
from tinct.dashboards.traces_view import (
    TraceSummary,
    TraceView,
    critical_path,
    format_duration_us,
    format_time_us,
    parse_trace,
    summarize,
)
from tinct.dashboards.urlstate import ViewState, build_search, with_params

__all__ = [
    "layout",
    "parse_tags",
    "search_params",
    "trace_id_param",
    "SERVICE",
    "OPERATION",
    "TAGS",
    "MIN_DURATION",
    "MAX_DURATION",
    "LIMIT",
    "FIND",
    "MESSAGES",
    "RESULTS",
    "TRACE_VIEW",
    "TRACE_HEADER",
    "CLOSE",
    "LOGS",
    "DEFAULT_LIMIT",
    "DYE_TTL_SECONDS",
    "MAX_LIMIT",
]

SERVICE = "traces-service"
OPERATION = "traces-operation"
TAGS = "traces-tags"
MIN_DURATION = "traces-min-duration"
MAX_DURATION = "traces-max-duration"
LIMIT = "traces-limit"
FIND = "traces-find"
MESSAGES = "traces-messages"
RESULTS = "traces-results"
TRACE_VIEW = "traces-trace"
TRACE_HEADER = "traces-trace-header"
CLOSE = "traces-close"
LOGS = "traces-logs"

DEFAULT_LIMIT = 20
DYE_TTL_SECONDS = 1800  # what "Dye user" asks for: the dye rules API's default
MAX_LIMIT = 1500  # Jaeger UI's search form allows at most 1500 results
_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}\Z")
# Go's time.ParseDuration: a sequence of decimal numbers with units.
_GO_DURATION = re.compile(r"(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+\Z")
# logfmt pairs: key=value or key="quoted value", separated by spaces.
_LOGFMT_PAIR = re.compile(r'([^\s="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))(?=\s|\Z)')


def _data(**values: str) -> dict[str, Any]:
    """HTML ``data-*`` attributes (``span_id`` → ``data-span-id``) for a Dash component."""
    return {"data-" + key.replace("_", "-"): value for key, value in values.items()}


# -- the search ------------------------------------------------------------------


def parse_tags(text: str) -> dict[str, str]:
    """logfmt (``http.status_code=500 error=true msg="a b"``) as Jaeger's tags object.

    Raises:
        ValueError: a token is not ``key=value``; the message names it.
    """
    tags: dict[str, str] = {}
    pos, text = 0, text.strip()
    while pos < len(text):
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None:
            token = text[pos:].split()[0]
            raise ValueError(f"tags: expected key=value (logfmt), got {token!r}")
        key, quoted, plain = match.groups()
        if quoted is not None:
            try:
                tags[key] = json.loads(f'"{quoted}"')
            except ValueError:
                raise ValueError(f"tags: bad escape in the value of {key!r}") from None
        else:
            tags[key] = plain
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tags


def _limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    try:
        limit = int(float(text))
    except (ValueError, OverflowError):  # "x", "nan", "inf"
        raise ValueError(f"limit: {text!r} is not a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit: {limit} is outside 1..{MAX_LIMIT}")
    return limit


def search_params(view: ViewState) -> tuple[dict[str, Any], list[str]]:
    """The URL's search as ``/api/traces`` parameters, and what is wrong with it.

    The parameters are only meant to be sent when the problems list is empty.
    """
    problems: list[str] = []
    params: dict[str, Any] = {
        "service": view.get("service"),
        "start": int(view.range.start * 1_000_000),
        "end": int(view.range.end * 1_000_000),
    }
    if view.get("operation"):
        params["operation"] = view.get("operation")
    try:
        tags = parse_tags(view.get("tags"))
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if tags:
            params["tags"] = json.dumps(tags, separators=(",", ":"))
    for name in ("minDuration", "maxDuration"):
        text = view.get(name).strip()
        if text and text != "0" and not _GO_DURATION.match(text):
            problems.append(f"{name}: {text!r} is not a duration like 1.2s, 100ms or 500us")
        elif text:
            params[name] = text
    try:
        params["limit"] = _limit(view.get("limit").strip())
    except ValueError as exc:
        problems.append(str(exc))
    return params, problems


def trace_id_param(view: ViewState) -> str:
    """The ``trace`` parameter in lower case, "" when absent.

    Raises:
        ValueError: it is not 1-32 hex digits.
    """
    text = view.get("trace").strip()
    if text and not _HEX_ID.match(text):
        raise ValueError(f"trace: {text!r} is not a trace id (1-32 hex digits)")
    return text.lower()


def _options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


def _form(ctx: Context, view: ViewState) -> tuple[html.Div, list[str]]:
    problems: list[str] = []
    service = view.get("service") or None
    try:
        services = sorted(ctx.client.services())
    except QueryError as exc:
        services, problems = [], [f"services: {exc}"]
    if service and service not in services:
        services.append(service)
    operations: list[str] = []
    if service:
        try:
            operations = sorted(ctx.client.operations(service))
        except QueryError as exc:
            problems.append(f"operations of {service}: {exc}")
    operation = view.get("operation") or None
    if operation and operation not in operations:
        operations.append(operation)

    def field(label: str, control: Any) -> html.Label:
        return html.Label(className="field", children=[html.Span(label), control])

    def text_input(
        id_: str,
        value: str,
        placeholder: str,
        width: str,
        type_: Literal["text", "number"] = "text",
    ) -> dcc.Input:
        return dcc.Input(
            id=id_,
            type=type_,
            value=value,
            placeholder=placeholder,
            n_submit=0,
            style={"width": width},
        )

    form = html.Div(
        id=ids.TRACE_SEARCH,
        className="form-row trace-search",
        children=[
            field(
                "Service",
                dcc.Dropdown(
                    id=SERVICE,
                    options=_options(services),
                    value=service,
                    placeholder="service",
                    clearable=False,
                    className="service",
                    style={"minWidth": "180px"},
                ),
            ),
            field(
                "Operation",
                dcc.Dropdown(
                    id=OPERATION,
                    options=_options(operations),
                    value=operation,
                    placeholder="all operations",
                    className="operation",
                    style={"minWidth": "220px"},
                ),
            ),
            field(
                "Tags",
                text_input(TAGS, view.get("tags"), "http.status_code=500 error=true", "260px"),
            ),
            field(
                "Min duration",
                text_input(MIN_DURATION, view.get("minDuration"), "e.g. 1.2s", "90px"),
            ),
            field(
                "Max duration",
                text_input(MAX_DURATION, view.get("maxDuration"), "e.g. 100ms", "90px"),
            ),
            field(
                "Limit",
                text_input(LIMIT, view.get("limit") or str(DEFAULT_LIMIT), "20", "60px", "number"),
            ),
            html.Button("Find traces", id=FIND, n_clicks=0),
        ],
    )
    return form, problems


def _notices(problems: Sequence[str]) -> html.Div:
    return html.Div(id=MESSAGES, children=[html.Div(p, className="notice bad") for p in problems])


def _result_row(row: TraceSummary, search: str, open_id: str, offset: int) -> html.Tr:
    classes = ["trace-result"]
    if row.error_count:
        classes.append("error")
    if open_id and row.trace_id.lstrip("0") == open_id.lstrip("0"):
        classes.append("selected")
    services = ", ".join(f"{name} ({count})" for name, count in row.services)
    return html.Tr(
        className=" ".join(classes),
        **_data(trace_id=row.trace_id),
        children=[
            html.Td(
                [
                    dcc.Link(
                        f"{row.root_service}: {row.root_operation}",
                        href="/traces" + with_params(search, trace=row.trace_id),
                        className="trace-link",
                    ),
                    " ",
                    html.Code(row.trace_id[:8], className="muted", title=row.trace_id),
                ]
            ),
            html.Td(format_duration_us(row.duration_us)),
            html.Td(str(row.span_count)),
            html.Td(str(row.error_count) if row.error_count else ""),
            html.Td(services),
            html.Td(format_time_us(row.start_us, offset)),
        ],
    )


def _results(ctx: Context, view: ViewState, search: str, open_id: str) -> list[Any]:
    if not view.get("service"):
        return [html.P("Choose a service and press Find traces.", className="muted")]
    params, problems = search_params(view)
    if problems:
        return []  # shown with the form's problems
    try:
        traces = ctx.client.find_traces(params)
    except QueryError as exc:
        return [html.Div(f"find traces: {exc}", className="notice bad")]
    rows = sorted((summarize(t) for t in traces), key=lambda r: r.start_us, reverse=True)
    if not rows:
        return [html.P("No traces found in this time range.", className="muted")]
    offset = view.utc_offset_min
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("Trace", "Duration", "Spans", "Errors", "Services", "Start")])
    )
    return [
        html.H3(f"{len(rows)} trace{'s' if len(rows) != 1 else ''}"),
        dcc.Graph(
            id=ids.TRACE_SCATTER,
            className="trace-scatter",
            figure=trace_scatter_figure(rows, utc_offset_min=offset, time_range=view.range),
            config={"displayModeBar": False},
        ),
        html.Table(
            id=RESULTS,
            className="simple trace-results",
            children=[head, html.Tbody([_result_row(r, search, open_id, offset) for r in rows])],
        ),
    ]


# -- the open trace --------------------------------------------------------------


def _joined(items: Iterable[Any], separator: str = " · ") -> list[Any]:
    """``items`` with ``separator`` text between them."""
    out: list[Any] = []
    for item in items:
        if out:
            out.append(separator)
        out.append(item)
    return out


def _header(tv: TraceView, search: str, offset: int, critical_us: int) -> html.Div:
    root = tv.root
    title = f"{root.service}: {root.operation}" if root else "(empty trace)"
    facts = [
        ("Started", format_time_us(tv.start_us, offset)),
        ("Duration", format_duration_us(tv.duration_us)),
        ("Spans", str(len(tv.spans))),
        ("Errors", str(tv.error_count)),
        ("Depth", str(max((s.depth for s in tv.spans), default=0) + 1)),
        ("Critical path", format_duration_us(critical_us)),
    ]
    services = [
        html.Span(className="trace-service", children=[service_chip(name), f"{name} ({count})"])
        for name, count in tv.services.items()
    ]
    children: list[Any] = [
        html.H3(
            className="trace-title",
            children=[title, " ", html.Code(tv.trace_id, className="muted")],
        ),
        html.Div(
            className="trace-facts",
            children=_joined(
                html.Span(className="fact", children=[html.Span(f"{k} ", className="muted"), v])
                for k, v in facts
            ),
        ),
        html.Div(className="trace-services", children=_joined(services)),
    ]
    if tv.dye:
        children.append(
            html.Div(className="trace-dye", children=["Dyed request: ", html.Code(tv.dye)])
        )
    children.append(
        html.Div(
            className="trace-actions",
            children=[
                dcc.Link("Close trace", id=CLOSE, href="/traces" + with_params(search, trace=None)),
                " · ",
                html.A("JSON", href=f"/api/traces/{tv.trace_id}", target="_blank"),
                " · ",
                dcc.Link(
                    "Topology of this trace",
                    href="/topology" + with_params(search, trace=tv.trace_id),
                ),
            ],
        )
    )
    return html.Div(id=TRACE_HEADER, className="trace-header", children=children)


def _dye_users(tv: TraceView) -> list[Any]:
    if not tv.enduser_ids:
        return []
    buttons = [
        html.Button(
            f"Dye user {user}",
            id={"type": ids.DYE_USER, "user": user},
            n_clicks=0,
            className="dye-user secondary",
            title=f"Dye every request of user {user} for {DYE_TTL_SECONDS // 60} minutes",
        )
        for user in tv.enduser_ids
    ]
    return [
        html.Div(className="form-row dye-users", children=buttons),
        html.Div(id=ids.DYE_USER_RESULT),
    ]


def _body(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _log_time(record: Mapping[str, Any], offset: int) -> str:
    try:
        return format_time_us(int(record["time_unix_nano"]) // 1000, offset)
    except (KeyError, TypeError, ValueError):
        return str(record.get("time", ""))


def _logs(ctx: Context, tv: TraceView, offset: int) -> html.Div:
    title = f"Logs of the dyed request ({tv.dye})" if tv.dye else "Logs"
    css = "trace-logs-section dyed" if tv.dye else "trace-logs-section"
    try:
        records = ctx.client.logs(tv.trace_id)
    except QueryError as exc:
        return html.Div(
            className=css,
            children=[html.H3(title), html.Div(f"logs: {exc}", className="notice bad")],
        )
    if not records:
        return html.Div(
            className=css,
            children=[html.H3(title), html.P("No log records for this trace.", className="muted")],
        )
    rows = []
    for record in records:
        span_id = str(record.get("span_id") or "")
        span = tv.by_id.get(span_id)
        severity = str(record.get("severity_text") or record.get("severity_number") or "")
        rows.append(
            html.Tr(
                className="log-row dyed" if record.get("dye") else "log-row",
                **_data(span_id=span_id),
                children=[
                    html.Td(_log_time(record, offset)),
                    html.Td(severity, className=f"severity {severity.lower()}"),
                    html.Td(str(record.get("service") or "")),
                    html.Td(_body(record.get("body"))),
                    html.Td(
                        [html.Code(span_id), " ", html.Span(span.operation, className="muted")]
                        if span
                        else html.Code(span_id)
                    ),
                ],
            )
        )
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("Time", "Severity", "Service", "Body", "Span")])
    )
    return html.Div(
        className=css,
        children=[
            html.H3(title),
            html.Table(id=LOGS, className="simple trace-logs", children=[head, html.Tbody(rows)]),
        ],
    )


def _trace(ctx: Context, view: ViewState, trace_id: str, search: str) -> html.Div:
    def failed(message: str) -> html.Div:
        return html.Div(id=TRACE_VIEW, children=html.Div(message, className="notice bad"))

    try:
        trace = ctx.client.trace(trace_id)
    except QueryError as exc:
        return failed(f"trace {trace_id}: {exc}")
    if trace is None:
        return failed(f"Trace {trace_id} was not found.")
    tv = parse_trace(trace)
    sections = critical_path(tv)
    offset = view.utc_offset_min
    warnings = [html.Div(w, className="notice bad trace-warning") for w in tv.warnings]
    return html.Div(
        id=TRACE_VIEW,
        className="trace-view",
        **_data(trace_id=tv.trace_id),
        children=[
            _header(tv, search, offset, sum(s.end_us - s.start_us for s in sections)),
            *warnings,
            *_dye_users(tv),
            waterfall(tv, sections),
            dcc.Store(id=ids.SPAN_SELECTED),
            html.Div(
                id=ids.SPAN_DETAIL,
                className="span-detail",
                children=html.Span(
                    "Click a span for its tags, events and links.", className="muted"
                ),
            ),
            _logs(ctx, tv, offset),
        ],
    )


def layout(ctx: Context, view: ViewState, **_: str) -> html.Div:
    """The traces page for ``view``'s URL; never raises on the query layer's errors."""
    search = build_search(view.params)
    form, problems = _form(ctx, view)
    if view.get("service"):
        problems += search_params(view)[1]
    if view.error:
        problems.append(view.error)
    try:
        open_id = trace_id_param(view)
    except ValueError as exc:
        open_id, problems = "", [*problems, str(exc)]
    children: list[Any] = [html.H2("Traces"), form, _notices(problems)]
    if open_id:
        children.append(_trace(ctx, view, open_id, search))
    children.append(
        html.Div(className="trace-results-section", children=_results(ctx, view, search, open_id))
    )
    return html.Div(className="traces-page", children=children)
