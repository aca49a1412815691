"""A trace as the traces page parses and draws it: tree, critical path, waterfall, scatter.

The hand-made trace (times in ms after ``T0``; ``web`` and ``shop``)::

    A web  GET /checkout   [  0, 100]  root; enduser.id=42, tinct.dye=user:42
    ├ B web  auth          [  5,  28]  enduser.id=7
    ├ C shop POST /cart    [ 25,  90]
    │ ├ D shop SELECT cart [ 30,  60]  error (error=true, otel.status_code=ERROR)
    │ └ E shop cache.get   [ 62,  70]  + a FOLLOWS_FROM link to another trace
    ├ G web  send-email    [ 40,  91]  its parent reference is FOLLOWS_FROM A
    └ F web  audit         [ 92, 130]  overflows A's end (100)

The JSON lists them shuffled, so the tree order is the parser's doing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest

from tests.dashboards.tree import classes, text, walk
from tinct.dashboards import ids
from tinct.dashboards.components.waterfall import span_detail, waterfall
from tinct.dashboards.figures.traces import ERROR_COLOR, OK_COLOR, trace_scatter_figure
from tinct.dashboards.timerange import TimeRange
from tinct.dashboards.traces_view import (
    CriticalSection,
    critical_path,
    critical_span_ids,
    format_duration_us,
    format_time_us,
    parse_trace,
    summarize,
)

T0 = 1_714_564_800_000_000  # 2024-05-01T12:00:00Z in µs
TRACE_ID = "5b8efff798038103d269b633813fc60c"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
A, B, C, D, E, F = (c * 16 for c in "abcdef")  # 16-hex span ids
G = "1234567890abcdef"
NAMES = {A: "A", B: "B", C: "C", D: "D", E: "E", F: "F", G: "G"}


def _tag(key: str, value: Any) -> dict[str, Any]:
    kind = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": kind, "value": value}


def _span(
    span_id: str,
    operation: str,
    process: str,
    start_ms: float,
    end_ms: float,
    refs: Sequence[tuple[str, str, str]] = (),
    tags: dict[str, Any] | None = None,
    logs: list[dict[str, Any]] | None = None,
    trace_id: str = TRACE_ID,
) -> dict[str, Any]:
    return {
        "traceID": trace_id,
        "spanID": span_id,
        "operationName": operation,
        "references": [{"refType": r, "traceID": t, "spanID": s} for r, t, s in refs],
        "flags": 1,
        "startTime": T0 + int(start_ms * 1000),
        "duration": int((end_ms - start_ms) * 1000),
        "tags": [_tag(k, v) for k, v in (tags or {}).items()],
        "logs": logs or [],
        "processID": process,
        "warnings": None,
    }


def make_trace() -> dict[str, Any]:
    """The trace of the module docstring, as Jaeger's ``/api/traces/<id>`` answers it."""
    spans = {
        A: _span(A, "GET /checkout", "p1", 0, 100, tags={
            "http.method": "GET", "enduser.id": "42", "tinct.dye": "user:42",
            "span.kind": "server",
        }),
        B: _span(B, "auth", "p1", 5, 28, [("CHILD_OF", TRACE_ID, A)], {"enduser.id": "7"}),
        C: _span(C, "POST /cart", "p2", 25, 90, [("CHILD_OF", TRACE_ID, A)],
                 {"span.kind": "server", "enduser.id": "42"}),
        D: _span(D, "SELECT cart", "p2", 30, 60, [("CHILD_OF", TRACE_ID, C)], {
            "db.system": "postgresql", "span.kind": "client", "otel.status_code": "ERROR",
            "error": True, "otel.status_description": "deadlock detected",
        }, logs=[{"timestamp": T0 + 45_000, "fields": [
            _tag("event", "exception"), _tag("exception.message", "deadlock detected"),
        ]}]),
        E: _span(E, "cache.get", "p2", 62, 70,
                 [("CHILD_OF", TRACE_ID, C), ("FOLLOWS_FROM", OTHER_TRACE, "1" * 16)]),
        G: _span(G, "send-email", "p1", 40, 91, [("FOLLOWS_FROM", TRACE_ID, A)]),
        F: _span(F, "audit", "p1", 92, 130, [("CHILD_OF", TRACE_ID, A)]),
    }  # fmt: skip
    return {
        "traceID": TRACE_ID,
        "spans": [spans[s] for s in (C, A, F, D, G, B, E)],
        "processes": {
            "p1": {"serviceName": "web", "tags": [_tag("host.name", "web-1")]},
            "p2": {"serviceName": "shop", "tags": [_tag("host.name", "shop-1")]},
        },
        "warnings": None,
    }


def make_small_trace(trace_id: str = OTHER_TRACE, start_ms: float = 500) -> dict[str, Any]:
    """A healthy two-span trace of ``web``, 500 ms after the main one."""
    root = "2" * 16
    return {
        "traceID": trace_id,
        "spans": [
            _span(root, "GET /", "p1", start_ms, start_ms + 10, trace_id=trace_id),
            _span(
                "3" * 16,
                "render",
                "p1",
                start_ms + 2,
                start_ms + 8,
                [("CHILD_OF", trace_id, root)],
                trace_id=trace_id,
            ),
        ],  # fmt: skip
        "processes": {"p1": {"serviceName": "web", "tags": []}},
    }


def ms(value: float) -> int:
    """T0 + ``value`` ms, in µs."""
    return T0 + int(value * 1000)


# -- the tree ----------------------------------------------------------------------------


def test_spans_are_in_tree_order_children_by_start_with_depths() -> None:
    view = parse_trace(make_trace())
    assert [(NAMES[s.span_id], s.depth) for s in view.spans] == [
        ("A", 0), ("B", 1), ("C", 1), ("D", 2), ("E", 2), ("G", 1), ("F", 1),
    ]  # fmt: skip
    assert view.roots == (A,)
    assert view.by_id[A].children == (B, C, G, F)
    assert view.by_id[C].children == (D, E)
    assert view.by_id[G].parent_id == A and view.by_id[G].parent_ref_type == "FOLLOWS_FROM"


def test_the_trace_facts_the_header_shows() -> None:
    view = parse_trace(make_trace())
    assert view.trace_id == TRACE_ID
    assert (view.start_us, view.end_us) == (T0, ms(130))  # F's overflowing end counts
    assert view.duration_us == 130_000
    assert dict(view.services) == {"shop": 3, "web": 4}
    assert view.root is not None and view.root.operation == "GET /checkout"
    assert view.dye == "user:42"
    assert view.enduser_ids == ("42", "7")  # distinct, in tree order
    assert view.error_count == 1 and view.by_id[D].error and view.by_id[D].status == "ERROR"
    assert view.by_id[A].status == "UNSET" and not view.by_id[A].error


def test_span_fields_tags_process_events_and_links() -> None:
    view = parse_trace(make_trace())
    d = view.by_id[D]
    assert (d.service, d.operation, d.kind) == ("shop", "SELECT cart", "client")
    assert d.tag("db.system") == "postgresql" and d.tag("missing") is None
    assert d.process_tags == (("host.name", "shop-1"),)
    assert [(e.timestamp_us, e.fields[0]) for e in d.events] == [(ms(45), ("event", "exception"))]
    e = view.by_id[E]
    assert [(r.ref_type, r.trace_id) for r in e.links] == [("FOLLOWS_FROM", OTHER_TRACE)]
    assert e.parent_id == C
    # G's only reference is its parent, by FOLLOWS_FROM: a link too (not CHILD_OF).
    assert [r.span_id for r in view.by_id[G].links] == [A]


def test_the_summary_row_of_a_trace() -> None:
    row = summarize(make_trace())
    assert (row.trace_id, row.root_service, row.root_operation) == (
        TRACE_ID,
        "web",
        "GET /checkout",
    )
    assert (row.start_us, row.duration_us, row.span_count, row.error_count) == (T0, 130_000, 7, 1)
    assert row.services == (("web", 4), ("shop", 3)) and row.dye == "user:42"


def test_odd_traces_still_parse_with_warnings() -> None:
    lonely = _span("4" * 16, "orphan", "p1", 0, 5, [("CHILD_OF", TRACE_ID, "9" * 16)])
    loop_a = _span("5" * 16, "loop a", "p1", 1, 4, [("CHILD_OF", TRACE_ID, "6" * 16)])
    loop_b = _span("6" * 16, "loop b", "p9", 2, 3, [("CHILD_OF", TRACE_ID, "5" * 16)])
    dup = dict(lonely, operationName="duplicate")
    view = parse_trace(
        {"traceID": TRACE_ID, "spans": [lonely, loop_a, loop_b, dup], "processes": {"p1": {}}}
    )
    assert [(s.operation, s.depth) for s in view.spans] == [
        ("orphan", 0),  # its parent is not in the trace: a root
        ("loop a", 0),  # the cycle is cut at its earliest span
        ("loop b", 1),
    ]
    assert view.by_id["5" * 16].parent_id is None
    assert view.by_id["6" * 16].service == "unknown"  # no such process
    assert len(view.warnings) == 2
    assert parse_trace({}).spans == () and parse_trace({}).root is None


# -- the critical path ----------------------------------------------------------------


def test_critical_path_is_jaeger_uis() -> None:
    # jaeger-ui's computeCriticalPath on this trace, step by step:
    # 1. G's parent reference is FOLLOWS_FROM: A does not wait for it, so G is
    #    left out (getChildOfSpans) although it would otherwise be picked in 3.
    # 2. F [92, 130] overflows A [0, 100]: cut to [92, 100] (sanitizeOverFlowingChildren).
    # 3. A, from its end (100): the last finishing child is F (100); A's own
    #    section [100, 100] is empty and skipped. F has no children: F [92, 100].
    #    Back in A before 92: children ending before 92 are B (28) and C (90):
    #    C, with A's own time between: A [90, 92].
    # 4. C from its end (90): last finishing child E (70): C [70, 90]; E [62, 70].
    #    Back in C before 62: D (60): C [60, 62]; D [30, 60]. Back in C before
    #    30: no child ended by then: C [25, 30].
    # 5. Back in A before 25: B ends at 28, after that: no child. A [0, 25], done.
    # B ran in parallel with C's start, G was not waited on: neither is on the path.
    view = parse_trace(make_trace())
    sections = critical_path(view)
    assert [(NAMES[s.span_id], s.start_us - T0, s.end_us - T0) for s in sections] == [
        ("F", 92_000, 100_000),
        ("A", 90_000, 92_000),
        ("C", 70_000, 90_000),
        ("E", 62_000, 70_000),
        ("C", 60_000, 62_000),
        ("D", 30_000, 60_000),
        ("C", 25_000, 30_000),
        ("A", 0, 25_000),
    ]
    # The sections tile the root span exactly.
    assert sum(s.end_us - s.start_us for s in sections) == 100_000
    assert critical_span_ids(view) == {A, C, D, E, F}
    assert critical_span_ids(sections) == {A, C, D, E, F}


def test_critical_path_of_jaeger_uis_documented_example() -> None:
    # computeCriticalPath's doc comment: |---A---| over |-B-|  |-C-|.
    trace = {
        "traceID": TRACE_ID,
        "spans": [
            _span(A, "a", "p1", 0, 100),
            _span(B, "b", "p1", 10, 40, [("CHILD_OF", TRACE_ID, A)]),
            _span(C, "c", "p1", 50, 80, [("CHILD_OF", TRACE_ID, A)]),
        ],
        "processes": {"p1": {"serviceName": "web"}},
    }
    assert critical_path(parse_trace(trace)) == [
        CriticalSection(A, ms(80), ms(100)),
        CriticalSection(C, ms(50), ms(80)),
        CriticalSection(A, ms(40), ms(50)),
        CriticalSection(B, ms(10), ms(40)),
        CriticalSection(A, ms(0), ms(10)),
    ]


def test_a_consumer_of_a_producer_is_not_waited_on() -> None:
    # createCPSpanMap's isBlockingSpan: PRODUCER -> CONSUMER does not block.
    trace = {
        "traceID": TRACE_ID,
        "spans": [
            _span(A, "publish", "p1", 0, 50, tags={"span.kind": "producer"}),
            _span(
                B, "consume", "p1", 10, 40, [("CHILD_OF", TRACE_ID, A)], {"span.kind": "consumer"}
            ),
        ],
        "processes": {"p1": {"serviceName": "web"}},
    }
    assert critical_path(parse_trace(trace)) == [CriticalSection(A, ms(0), ms(50))]


def test_children_wholly_outside_their_parent_are_dropped_with_their_children() -> None:
    trace = {
        "traceID": TRACE_ID,
        "spans": [
            _span(A, "a", "p1", 0, 10),
            _span(B, "late", "p1", 20, 30, [("CHILD_OF", TRACE_ID, A)]),
            _span(C, "under late", "p1", 22, 28, [("CHILD_OF", TRACE_ID, B)]),
        ],
        "processes": {"p1": {"serviceName": "web"}},
    }
    assert critical_path(parse_trace(trace)) == [CriticalSection(A, ms(0), ms(10))]


# -- the waterfall -----------------------------------------------------------------------


def _pct(style: dict[str, str], key: str) -> float:
    return float(style[key].rstrip("%"))


def test_the_waterfall_has_one_row_per_span_with_its_bar_placed_in_percent() -> None:
    view = parse_trace(make_trace())
    tree: Any = waterfall(view)
    assert tree.id == ids.WATERFALL and "waterfall" in classes(tree)
    rows = [c for c in walk(tree) if "span-row" in classes(c)]
    assert [getattr(r, "data-span-id") for r in rows] == [s.span_id for s in view.spans]
    total_ms = 130.0
    expected_ms = {A: (0, 100), B: (5, 28), C: (25, 90), D: (30, 60), E: (62, 70), G: (40, 91),
                   F: (92, 130)}  # fmt: skip
    for row in rows:
        span_id = getattr(row, "data-span-id")
        assert row.title == span_id and getattr(row, "data-span-id") == span_id
        bar = next(c for c in walk(row) if "bar" in classes(c))
        start, end = expected_ms[span_id]
        assert _pct(bar.style, "left") == pytest.approx(start / total_ms * 100, abs=1e-3)
        assert _pct(bar.style, "width") == pytest.approx((end - start) / total_ms * 100, abs=1e-3)
    f_bar = next(c for c in walk(rows[-1]) if "bar" in classes(c))
    assert f_bar.style["left"] == "70.769%" and f_bar.style["width"] == "29.231%"


def test_rows_are_indented_marked_critical_and_error() -> None:
    view = parse_trace(make_trace())
    rows = {
        getattr(r, "data-span-id"): r for r in walk(waterfall(view)) if "span-row" in classes(r)
    }
    assert {s for s, r in rows.items() if "critical" in classes(r)} == {A, C, D, E, F}
    assert {s for s, r in rows.items() if "error" in classes(r)} == {D}
    d_bar = next(c for c in walk(rows[D]) if "bar" in classes(c))
    assert classes(d_bar) == {"bar", "error"}
    names = {s: next(c for c in walk(r) if "span-name" in classes(c)) for s, r in rows.items()}
    assert [names[s].style["paddingLeft"] for s in (A, C, D)] == ["0px", "14px", "28px"]
    assert "shop" in text(names[D]) and "SELECT cart" in text(names[D]) and "30ms" in text(names[D])
    # C is on the path three times: one mark per section over its bar.
    marks = [c for c in walk(rows[C]) if "cp-segment" in classes(c)]
    assert [m.style["left"] for m in marks] == ["53.846%", "46.154%", "19.231%"]


def test_span_details_show_tags_process_events_and_links() -> None:
    view = parse_trace(make_trace())
    detail = span_detail(view, D, utc_offset_min=120)
    tables = {
        name: next(c for c in walk(detail) if name in classes(c))
        for name in ("span-fields", "span-tags", "span-process", "span-events")
    }
    fields = text(tables["span-fields"])
    assert "Start offset 30ms" in fields and "Duration 30ms" in fields
    assert "2024-05-01 14:00:00.030" in fields  # in UTC+2
    assert "Status ERROR: deadlock detected" in fields and f"({C})" in fields
    assert "db.system postgresql" in text(tables["span-tags"]) and "error true" in text(
        tables["span-tags"]
    )
    assert text(tables["span-process"]) == "host.name shop-1"
    assert "45ms" in text(tables["span-events"]) and "event=exception" in text(
        tables["span-events"]
    )

    links = next(
        c for c in walk(span_detail(view, E, search="?service=web")) if "span-links" in classes(c)
    )
    link = next(c for c in walk(links) if getattr(c, "href", None))
    assert link.href == f"/traces?service=web&trace={OTHER_TRACE}"
    assert "FOLLOWS_FROM" in text(links)
    assert classes(span_detail(view, "nope")) == {"notice", "bad"}


# -- the scatter -------------------------------------------------------------------------


def test_scatter_has_a_point_per_trace_sized_by_spans_red_on_errors() -> None:
    rows = [summarize(make_trace()), summarize(make_small_trace())]
    window = TimeRange("now-1h", "now", T0 / 1e6 - 3600, T0 / 1e6 + 60)
    figure = trace_scatter_figure(rows, utc_offset_min=60, time_range=window)
    (points,) = figure.data
    assert list(points.customdata) == [TRACE_ID, OTHER_TRACE]
    assert list(points.x) == [
        dt.datetime(2024, 5, 1, 13, 0),
        dt.datetime(2024, 5, 1, 13, 0, 0, 500000),
    ]
    assert list(points.y) == [130.0, 10.0]
    assert list(points.marker.color) == [ERROR_COLOR, OK_COLOR]
    small, big = sorted(points.marker.size)
    assert points.marker.size[0] == big > small == points.marker.size[1]
    assert list(figure.layout.xaxis.range) == [
        dt.datetime(2024, 5, 1, 12, 0), dt.datetime(2024, 5, 1, 13, 1),
    ]  # fmt: skip
    assert "web: GET /checkout" in points.text[0] and "1 errors" in points.text[0]


def test_an_empty_scatter_still_draws() -> None:
    figure = trace_scatter_figure([], utc_offset_min=0, time_range=None)
    assert len(figure.data) == 1 and list(figure.data[0].x or []) == []


# -- formatting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("us", "shown"),
    [
        (850, "850µs"),
        (1000, "1ms"),
        (12_345, "12.35ms"),
        (1_200_000, "1.2s"),
        (125_000_000, "2m 5s"),
    ],
)
def test_durations_read_like_jaeger_uis(us: int, shown: str) -> None:
    assert format_duration_us(us) == shown


def test_times_are_on_the_pages_clock() -> None:
    assert format_time_us(ms(1.5)) == "2024-05-01 12:00:00.001"
    assert format_time_us(ms(0), -300, millis=False) == "2024-05-01 07:00:00"
