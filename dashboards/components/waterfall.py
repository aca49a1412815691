"""A trace's waterfall and a span's details: pure functions of a parsed trace.

The waterfall is Jaeger UI's trace timeline: one row per span, in tree order,
indented by depth, the service's color chip and the operation on the left,
and on the right a bar placed by the span's start and duration relative to the
whole trace (CSS ``left``/``width`` percentages, so it scales with the page).
Failed spans' bars are red (``bar error``), rows on the critical path are
``span-row critical`` and carry the path's sections as ``cp-segment`` marks
over their bar, the way Jaeger UI draws them.

Element contract (the browser tests rely on it):

* ``#waterfall.waterfall``: the container (``ids.WATERFALL``);
* ``.span-row``: exactly one per span, no Dash id (a click is caught by
  ``assets/tinct.js``), ``title`` and ``data-span-id`` the span id,
  ``data-depth`` its depth, classes ``critical`` and ``error`` when they
  apply, ``selected`` on the clicked one;
* inside a row: ``.span-name`` (``.service-chip``, ``.span-service``,
  ``.span-op``, ``.span-duration``) and ``.bar-track`` > ``.bar`` (+
  ``.cp-segment`` marks);
* :func:`span_detail` renders ``.span-detail-body`` with tables
  ``.span-fields``, ``.span-tags``, ``.span-process``, ``.span-events`` and
  ``.span-links``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from html import escape
from typing import Any

from dash import dcc, html

from tinct.dashboards import ids
from tinct.dashboards.traces_view import (
    CriticalSection,
    SpanView,
    TraceView,
    critical_path,
    format_duration_us,
    format_time_us,
    tag_text,
)
from tinct.dashboards.urlstate import with_params

__all__ = [
    "waterfall",
    "span_detail",
    "service_color",
    "service_chip",
    "bar_geometry",
]

# Grafana's classic palette: distinct on the dark theme, stable per service.
_PALETTE = (
    "#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9",
    "#705da0", "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c",
)  # fmt: skip
_INDENT_PX = 14
_TICKS = (0, 25, 50, 75, 100)


def _data(**values: str) -> dict[str, Any]:
    """HTML ``data-*`` attributes (``span_id`` → ``data-span-id``) for a Dash component."""
    return {"data-" + key.replace("_", "-"): value for key, value in values.items()}


def service_color(service: str) -> str:
    """The service's chip color: the same in every trace and on every page load."""
    return _PALETTE[zlib.crc32(service.encode()) % len(_PALETTE)]


def bar_geometry(view: TraceView, start_us: int, duration_us: int) -> tuple[float, float]:
    """``(left, width)`` in percent of the trace's duration."""
    total = view.duration_us
    if total <= 0:
        return 0.0, 0.0
    left = (start_us - view.start_us) / total * 100
    return left, duration_us / total * 100


def _pct(value: float) -> str:
    return f"{value:.3f}%"


def _segments(view: TraceView, sections: Sequence[CriticalSection]) -> str:
    marks = []
    for section in sections:
        left, width = bar_geometry(view, section.start_us, section.end_us - section.start_us)
        marks.append(
            f'<div class="cp-segment" style="left:{_pct(left)};width:{_pct(width)}"></div>'
        )
    return "".join(marks)


def service_chip(service: str) -> html.Span:
    """A small square in the service's color, as Jaeger UI marks services."""
    return html.Span(
        className="service-chip",
        title=service,
        style={
            "background": service_color(service),
            "display": "inline-block",
            "width": "8px",
            "height": "8px",
            "marginRight": "4px",
        },
    )


def _row(view: TraceView, span: SpanView, sections: Sequence[CriticalSection]) -> str:
    """One row as HTML text (see :func:`waterfall` for why not components)."""
    left, width = bar_geometry(view, span.start_us, span.duration_us)
    classes = ["span-row"]
    if sections:
        classes.append("critical")
    if span.error:
        classes.append("error")
    sid, service = escape(span.span_id), escape(span.service)
    chip = (
        f'<span class="service-chip" title="{service}" style="background:'
        f'{service_color(span.service)}"></span>'
    )
    name = (
        f'<div class="span-name" style="padding-left:{span.depth * _INDENT_PX}px">{chip}'
        f'<span class="span-service">{service}</span> '
        f'<span class="span-op">{escape(span.operation)}</span> '
        f'<span class="span-duration">{escape(format_duration_us(span.duration_us))}</span></div>'
    )
    bar = (
        f'<div class="{"bar error" if span.error else "bar"}" '
        f'style="left:{_pct(left)};width:{_pct(width)}"></div>'
    )
    return (
        f'<div class="{" ".join(classes)}" title="{sid}" data-span-id="{sid}" '
        f'data-depth="{span.depth}">{name}<div class="bar-track">{bar}'
        f"{_segments(view, sections)}</div></div>"
    )


def _ruler(view: TraceView) -> html.Div:
    grid = {"display": "grid", "gridTemplateColumns": "35% 65%", "color": "var(--muted)"}
    ticks = [
        html.Span(
            format_duration_us(view.duration_us * p / 100),
            className="tick",
            style={
                "position": "absolute",
                "left": f"{p}%",
                "transform": "translateX(-100%)" if p == 100 else None,
            },
        )
        for p in _TICKS
    ]
    return html.Div(
        className="waterfall-ruler",
        style=grid,
        children=[
            html.Div("Service & operation", className="span-name"),
            html.Div(className="bar-track", children=ticks),
        ],
    )


def waterfall(view: TraceView, sections: Sequence[CriticalSection] | None = None) -> html.Div:
    """The trace's timeline, one ``span-row`` per span.

    Args:
        view: the parsed trace.
        sections: its critical path; computed with :func:`critical_path` when None.
    """
    if sections is None:
        sections = critical_path(view)
    by_span: dict[str, list[CriticalSection]] = {}
    for section in sections:
        by_span.setdefault(section.span_id, []).append(section)
    # The rows are HTML text in one component: Dash's renderer costs some
    # milliseconds per component, and a 500-span trace as components (4,000
    # of them) took 40 s to draw. Every text is escaped; a click on a row is
    # picked up by assets/tinct.js (``.span-row[data-span-id]``).
    rows = "".join(_row(view, span, by_span.get(span.span_id, [])) for span in view.spans)
    return html.Div(
        id=ids.WATERFALL,
        className="waterfall",
        children=[
            _ruler(view),
            dcc.Markdown(rows, dangerously_allow_html=True, className="waterfall-rows"),
        ],
    )


# -- span details ----------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return tag_text(value)


def _table(pairs: Sequence[tuple[str, Any]], css: str, empty: str) -> html.Div | html.Table:
    if not pairs:
        return html.Div(empty, className=f"{css} empty")
    return html.Table(
        className=f"simple {css}",
        children=html.Tbody(
            [html.Tr([html.Th(k), html.Td(_value(v))]) for k, v in pairs],
        ),
    )


def _span_label(view: TraceView, span_id: str) -> str:
    span = view.by_id.get(span_id)
    return f"{span.service}: {span.operation} ({span_id})" if span else span_id


def _links(view: TraceView, span: SpanView, search: str) -> html.Div | html.Table:
    if not span.links:
        return html.Div("No links.", className="span-links empty")
    rows = []
    for ref in span.links:
        if ref.trace_id in ("", view.trace_id):
            target: Any = _span_label(view, ref.span_id)
        else:
            target = dcc.Link(
                f"trace {ref.trace_id}, span {ref.span_id}",
                href="/traces" + with_params(search, trace=ref.trace_id),
            )
        rows.append(html.Tr([html.Th(ref.ref_type), html.Td(target)]))
    return html.Table(className="simple span-links", children=html.Tbody(rows))


def _events(view: TraceView, span: SpanView, utc_offset_min: int) -> html.Div | html.Table:
    if not span.events:
        return html.Div("No events.", className="span-events empty")
    rows = [
        html.Tr(
            [
                html.Td(format_duration_us(view.offset_us(event.timestamp_us))),
                html.Td(format_time_us(event.timestamp_us, utc_offset_min)),
                html.Td(" ".join(f"{k}={_value(v)}" for k, v in event.fields)),
            ]
        )
        for event in span.events
    ]
    head = html.Thead(html.Tr([html.Th("Offset"), html.Th("Time"), html.Th("Fields")]))
    return html.Table(className="simple span-events", children=[head, html.Tbody(rows)])


def span_detail(
    view: TraceView, span_id: str, *, utc_offset_min: int = 0, search: str = ""
) -> html.Div:
    """What Jaeger UI shows of a span once its row is opened.

    Args:
        view: the parsed trace.
        span_id: the span to show; a short notice when it is not in the trace.
        utc_offset_min: the page's offset from UTC, for absolute times.
        search: the page's query string, kept by links to other traces.
    """
    span = view.by_id.get(span_id)
    if span is None:
        return html.Div(f"Span {span_id} is not in this trace.", className="notice bad")
    status = span.status
    message = tag_text(span.tag("otel.status_description"))
    fields: list[tuple[str, Any]] = [
        ("Span ID", span.span_id),
        ("Parent", _span_label(view, span.parent_id) if span.parent_id else "(root)"),
        ("Start offset", format_duration_us(view.offset_us(span.start_us))),
        ("Start time", format_time_us(span.start_us, utc_offset_min)),
        ("Duration", format_duration_us(span.duration_us)),
        ("Kind", span.kind or "unspecified"),
        ("Status", f"{status}: {message}" if message else status),
    ]
    fields += [("Warning", w) for w in span.warnings]
    return html.Div(
        className="span-detail-body",
        **_data(span_id=span.span_id),
        children=[
            html.H4([service_chip(span.service), f"{span.service}: {span.operation}"]),
            _table(fields, "span-fields", ""),
            html.H5("Tags"),
            _table(span.tags, "span-tags", "No tags."),
            html.H5(f"Process: {span.service}"),
            _table(span.process_tags, "span-process", "No process tags."),
            html.H5("Events"),
            _events(view, span, utc_offset_min),
            html.H5("Links"),
            _links(view, span, search),
        ],
    )
