"""One trace as the traces page shows it: a span tree, its critical path, its summary.

The query layer hands the page Jaeger's v1 JSON (``/api/traces/<id>``, see
``tinct/tracing/jaeger_json.py``): flat spans with ``references``, times in
microseconds, services in ``processes``. :func:`parse_trace` turns that into a
:class:`TraceView`, the tree Jaeger UI draws (``transformTraceData``: a span's
parent is its first reference when that span is in the trace; roots and
siblings ordered by start time, depth-first), with what tinct adds on top:
the dye of a dyed request (the ``tinct.dye`` tag) and the users it served
(``enduser.id``, OpenTelemetry's semantic convention), which the page offers
to dye.

:func:`critical_path` is Jaeger UI's (``packages/jaeger-ui/src/components/
TracePage/CriticalPath/``): from the root, walk back from the span's end; the
child that finished last before the current point is on the path, recursively,
with the parent's own time between children. Children the parent does not wait
for are left out first, and children sticking out of their parent are cut to it.

Everything here is pure and never raises on odd input (missing fields,
duplicate ids, parent cycles): a trace from any client should draw.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SpanRef",
    "SpanEvent",
    "SpanView",
    "TraceView",
    "TraceSummary",
    "CriticalSection",
    "parse_trace",
    "summarize",
    "critical_path",
    "critical_span_ids",
    "tag_text",
    "format_duration_us",
    "format_time_us",
    "DYE_TAG",
    "ENDUSER_TAG",
]

DYE_TAG = "tinct.dye"
ENDUSER_TAG = "enduser.id"
CHILD_OF = "CHILD_OF"
FOLLOWS_FROM = "FOLLOWS_FROM"
UNKNOWN_SERVICE = "unknown"


@dataclass(frozen=True)
class SpanRef:
    """A Jaeger reference: the parent (``CHILD_OF``) or a link (``FOLLOWS_FROM``)."""

    ref_type: str
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class SpanEvent:
    """A Jaeger span log (an OpenTelemetry event): its time and fields in order."""

    timestamp_us: int
    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SpanView:
    """One span, placed in its trace's tree.

    Attributes:
        parent_id: the tree parent, None for a root (also when the referenced
            parent is not in the trace).
        parent_ref_type: how the tree parent is referenced (``CHILD_OF`` or
            ``FOLLOWS_FROM``), "" for a root.
        children: the children's span ids, by start time.
        depth: 0 for a root.
        tags, process_tags: ``(key, value)`` in the order Jaeger sent them.
    """

    span_id: str
    trace_id: str
    operation: str
    service: str
    start_us: int
    duration_us: int
    parent_id: str | None = None
    parent_ref_type: str = ""
    children: tuple[str, ...] = ()
    depth: int = 0
    tags: tuple[tuple[str, Any], ...] = ()
    process_tags: tuple[tuple[str, Any], ...] = ()
    events: tuple[SpanEvent, ...] = ()
    references: tuple[SpanRef, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def tag(self, key: str) -> Any:
        """The first value of tag ``key``, None when absent."""
        for k, v in self.tags:
            if k == key:
                return v
        return None

    @property
    def kind(self) -> str:
        """``server``, ``client``, ``producer``, ``consumer``, ``internal`` or ""."""
        return tag_text(self.tag("span.kind")).lower()

    @property
    def error(self) -> bool:
        """Jaeger's error flag (``error=true``) or OpenTelemetry's ERROR status."""
        return tag_text(self.tag("error")).lower() == "true" or self.status == "ERROR"

    @property
    def status(self) -> str:
        """``OK``, ``ERROR`` or ``UNSET`` (``otel.status_code``, or ``error=true``)."""
        code = tag_text(self.tag("otel.status_code")).upper()
        if code:
            return code
        return "ERROR" if tag_text(self.tag("error")).lower() == "true" else "UNSET"

    @property
    def links(self) -> tuple[SpanRef, ...]:
        """The references other than ``CHILD_OF`` (span links, async follow-ups)."""
        return tuple(r for r in self.references if r.ref_type != CHILD_OF)


@dataclass(frozen=True)
class TraceView:
    """A parsed trace.

    Attributes:
        spans: every span once, in tree order (depth-first, siblings by start).
        roots: the root span ids, by start time.
        start_us, end_us: the earliest start and the latest end of any span.
        services: span count per service, in order of first appearance.
        dye: the request's dye (the first ``tinct.dye`` tag), "" when undyed.
        enduser_ids: the distinct ``enduser.id`` values, in tree order.
        warnings: Jaeger's trace warnings and what parsing had to repair.
    """

    trace_id: str
    spans: tuple[SpanView, ...]
    roots: tuple[str, ...]
    start_us: int
    end_us: int
    services: Mapping[str, int] = field(default_factory=dict)
    dye: str = ""
    enduser_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    by_id: Mapping[str, SpanView] = field(default_factory=dict)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def root(self) -> SpanView | None:
        """The first root span (what the trace is named after), None when empty."""
        return self.by_id[self.roots[0]] if self.roots else None

    @property
    def error_count(self) -> int:
        return sum(1 for s in self.spans if s.error)

    def offset_us(self, time_us: int) -> int:
        """Microseconds since the trace started."""
        return time_us - self.start_us


@dataclass(frozen=True)
class TraceSummary:
    """A search result row: what Jaeger UI's result list shows of one trace."""

    trace_id: str
    root_service: str
    root_operation: str
    start_us: int
    duration_us: int
    span_count: int
    error_count: int
    services: tuple[tuple[str, int], ...]
    dye: str = ""


@dataclass(frozen=True)
class CriticalSection:
    """A stretch of the critical path: ``span_id`` was what the request waited on."""

    span_id: str
    start_us: int
    end_us: int


# -- parsing ---------------------------------------------------------------------


def tag_text(value: Any) -> str:
    """A tag value as text: booleans as ``true``/``false``, None as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if math.isfinite(number) else 0


def _pairs(items: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((str(t.get("key", "")), t.get("value")) for t in items if isinstance(t, Mapping))


def _refs(items: Any) -> tuple[SpanRef, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        SpanRef(
            str(r.get("refType", CHILD_OF)), str(r.get("traceID", "")), str(r.get("spanID", ""))
        )
        for r in items
        if isinstance(r, Mapping)
    )


def _events(items: Any) -> tuple[SpanEvent, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        SpanEvent(_int(e.get("timestamp")), _pairs(e.get("fields")))
        for e in items
        if isinstance(e, Mapping)
    )


def _process(raw: Mapping[str, Any], processes: Mapping[str, Any]) -> Mapping[str, Any]:
    # Jaeger's query API puts processes beside the spans; older answers and
    # some clients embed each span's process instead.
    found = processes.get(str(raw.get("processID", "")))
    if isinstance(found, Mapping):
        return found
    inline = raw.get("process")
    return inline if isinstance(inline, Mapping) else {}


def _parent(refs: Sequence[SpanRef], known: Mapping[str, Any]) -> SpanRef | None:
    # Jaeger UI's tree takes the first reference as the parent (tinct's encoder
    # puts the parent first); a first CHILD_OF in the trace is preferred for
    # hand-made traces that list a link before the parent.
    in_trace = [r for r in refs if r.span_id in known]
    for ref in in_trace:
        if ref.ref_type == CHILD_OF:
            return ref
    return in_trace[0] if in_trace else None


def parse_trace(trace: Mapping[str, Any]) -> TraceView:
    """Jaeger's trace JSON (one element of ``/api/traces``' ``data``) as a :class:`TraceView`.

    Spans repeating an earlier span id are dropped, spans whose parent is
    missing become roots, and parent cycles are broken at their earliest
    span; each repair is noted in ``warnings``.
    """
    processes = trace.get("processes")
    processes = processes if isinstance(processes, Mapping) else {}
    warnings = [str(w) for w in (trace.get("warnings") or []) if w]
    raw_by_id: dict[str, Mapping[str, Any]] = {}
    for raw in trace.get("spans") or []:
        if not isinstance(raw, Mapping):
            continue
        span_id = str(raw.get("spanID", ""))
        if span_id in raw_by_id:
            warnings.append(f"span {span_id} appears more than once; the first is shown")
            continue
        raw_by_id[span_id] = raw
    index = {sid: i for i, sid in enumerate(raw_by_id)}

    def order(sid: str) -> tuple[int, int]:
        # Jaeger UI sorts by start time with a stable sort: ties keep JSON order.
        return (_int(raw_by_id[sid].get("startTime")), index[sid])

    refs = {sid: _refs(raw.get("references")) for sid, raw in raw_by_id.items()}
    parents: dict[str, SpanRef | None] = {
        sid: _parent([r for r in refs[sid] if r.span_id != sid], raw_by_id) for sid in raw_by_id
    }
    children: dict[str, list[str]] = {sid: [] for sid in raw_by_id}
    for sid, parent in parents.items():
        if parent is not None:
            children[parent.span_id].append(sid)
    for kids in children.values():
        kids.sort(key=order)

    ordered: list[tuple[str, int]] = []
    seen: set[str] = set()
    roots: list[str] = []

    def walk(root: str) -> None:
        roots.append(root)
        stack = [(root, 0)]
        while stack:
            sid, depth = stack.pop()
            if sid in seen:
                continue
            seen.add(sid)
            ordered.append((sid, depth))
            stack.extend((kid, depth + 1) for kid in reversed(children[sid]))

    for sid in sorted((s for s, p in parents.items() if p is None), key=order):
        walk(sid)
    while len(seen) < len(raw_by_id):  # only spans in parent cycles are left
        first = min((s for s in raw_by_id if s not in seen), key=order)
        cut, parents[first] = parents[first], None
        warnings.append(f"span {first}'s parent {cut.span_id if cut else ''} is its descendant")
        walk(first)

    root_set = set(roots)
    spans: list[SpanView] = []
    services: dict[str, int] = {}
    dye = ""
    users: list[str] = []
    for sid, depth in ordered:
        raw = raw_by_id[sid]
        process = _process(raw, processes)
        service = str(process.get("serviceName") or UNKNOWN_SERVICE)
        parent = None if sid in root_set else parents[sid]
        span = SpanView(
            span_id=sid,
            trace_id=str(raw.get("traceID", "")),
            operation=str(raw.get("operationName", "")),
            service=service,
            start_us=_int(raw.get("startTime")),
            duration_us=max(_int(raw.get("duration")), 0),
            parent_id=parent.span_id if parent else None,
            parent_ref_type=parent.ref_type if parent else "",
            children=tuple(k for k in children[sid] if k not in root_set),
            depth=depth,
            tags=_pairs(raw.get("tags")),
            process_tags=_pairs(process.get("tags")),
            events=_events(raw.get("logs")),
            references=refs[sid],
            warnings=tuple(str(w) for w in (raw.get("warnings") or []) if w),
        )
        spans.append(span)
        services[service] = services.get(service, 0) + 1
        dye = dye or tag_text(span.tag(DYE_TAG))
        user = tag_text(span.tag(ENDUSER_TAG))
        if user and user not in users:
            users.append(user)
    start = min((s.start_us for s in spans), default=0)
    end = max((s.end_us for s in spans), default=0)
    trace_id = str(trace.get("traceID") or (spans[0].trace_id if spans else ""))
    return TraceView(
        trace_id=trace_id,
        spans=tuple(spans),
        roots=tuple(roots),
        start_us=start,
        end_us=end,
        services=services,
        dye=dye,
        enduser_ids=tuple(users),
        warnings=tuple(warnings),
        by_id={s.span_id: s for s in spans},
    )


def summarize(trace: Mapping[str, Any] | TraceView) -> TraceSummary:
    """The result-list row of a trace (Jaeger JSON or already parsed)."""
    view = trace if isinstance(trace, TraceView) else parse_trace(trace)
    root = view.root
    return TraceSummary(
        trace_id=view.trace_id,
        root_service=root.service if root else "",
        root_operation=root.operation if root else "",
        start_us=view.start_us,
        duration_us=view.duration_us,
        span_count=len(view.spans),
        error_count=view.error_count,
        services=tuple(view.services.items()),
        dye=view.dye,
    )


# -- critical path ---------------------------------------------------------------


@dataclass
class _CPSpan:
    span_id: str
    parent_id: str | None
    start_us: int
    end_us: int
    children: list[str]


def _blocking(span: SpanView, parent: SpanView) -> bool:
    # The parent does not wait for a span that merely follows from it
    # (getChildOfSpans, for Jaeger's model) nor for a consumer of the message
    # it produced (createCPSpanMap's isBlockingSpan, for OpenTelemetry's).
    if span.parent_ref_type == FOLLOWS_FROM:
        return False
    return not (parent.kind == "producer" and span.kind == "consumer")


def _cp_spans(view: TraceView, root: str) -> dict[str, _CPSpan]:
    """The spans under ``root`` its end waits on, parents before children."""
    spans: dict[str, _CPSpan] = {}
    stack = [root]
    while stack:
        sid = stack.pop()
        span = view.by_id[sid]
        kids = [k for k in span.children if _blocking(view.by_id[k], span)]
        parent = None if sid == root else span.parent_id
        spans[sid] = _CPSpan(sid, parent, span.start_us, span.end_us, kids)
        stack.extend(reversed(kids))
    return spans


def _sanitize(spans: dict[str, _CPSpan]) -> None:
    """Cut children to their parent's time and drop those outside it.

    sanitizeOverFlowingChildren: a parent is seen before its children, so each
    child is compared with its parent as already cut; a dropped span's
    children go with it.
    """
    for sid in list(spans):
        span = spans.get(sid)
        if span is None or span.parent_id is None:
            continue
        parent = spans.get(span.parent_id)
        if parent is None:
            del spans[sid]
            continue
        if span.start_us >= parent.start_us:
            outside = span.start_us >= parent.end_us
        else:
            outside = span.end_us <= parent.start_us
        if outside:
            del spans[sid]
            parent.children.remove(sid)
            continue
        span.start_us = max(span.start_us, parent.start_us)
        span.end_us = min(span.end_us, parent.end_us)


def _last_finishing_child(
    spans: Mapping[str, _CPSpan], span: _CPSpan, before: int | None
) -> _CPSpan | None:
    # findLastFinishingChildSpan: the child ending last (strictly before
    # ``before`` when walking back); the first such child on ties.
    best: _CPSpan | None = None
    for kid_id in span.children:
        kid = spans.get(kid_id)
        if kid is None or (before is not None and kid.end_us >= before):
            continue
        if best is None or kid.end_us > best.end_us:
            best = kid
    return best


def _walk(spans: Mapping[str, _CPSpan], root: str, out: list[CriticalSection]) -> None:
    # computeCriticalPath, its recursion unrolled: going down to the last
    # finishing child forgets ``before``; coming back up to the parent brings
    # the child's start as the point to look back from.
    current: str | None = root
    before: int | None = None
    while current is not None and current in spans:
        span = spans[current]
        end = before if before is not None else span.end_us
        lfc = _last_finishing_child(spans, span, before)
        if lfc is not None:
            if lfc.end_us != end:
                out.append(CriticalSection(span.span_id, lfc.end_us, end))
            current, before = lfc.span_id, None
        else:
            if span.start_us != end:
                out.append(CriticalSection(span.span_id, span.start_us, end))
            current, before = span.parent_id, span.start_us


def critical_path(view: TraceView) -> list[CriticalSection]:
    """The trace's critical path, latest section first, each root's tree in turn."""
    sections: list[CriticalSection] = []
    for root in view.roots:
        spans = _cp_spans(view, root)
        _sanitize(spans)
        _walk(spans, root, sections)
    return sections


def critical_span_ids(
    view_or_sections: TraceView | Iterable[CriticalSection],
) -> frozenset[str]:
    """The ids of the spans with a section on the critical path."""
    sections = (
        critical_path(view_or_sections)
        if isinstance(view_or_sections, TraceView)
        else view_or_sections
    )
    return frozenset(s.span_id for s in sections)


# -- formatting ------------------------------------------------------------------


def format_duration_us(us: float) -> str:
    """Jaeger UI's short durations: ``850µs``, ``12.35ms``, ``1.2s``, ``2m 5s``."""
    if us < 1000:
        return f"{us:g}µs"
    if us < 1_000_000:
        return f"{us / 1000:.2f}".rstrip("0").rstrip(".") + "ms"
    seconds = us / 1_000_000
    if seconds < 60:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m {rest:.0f}s"


def format_time_us(us: int, utc_offset_min: int = 0, *, millis: bool = True) -> str:
    """``2024-05-01 12:00:00.123``: Unix microseconds on the page's clock."""
    try:
        moment = dt.datetime.fromtimestamp(us / 1e6, dt.UTC) + dt.timedelta(minutes=utc_offset_min)
    except (OverflowError, OSError, ValueError):
        return str(us)
    text = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] if millis else text[:-7]
