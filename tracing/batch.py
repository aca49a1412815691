"""Accumulate decoded spans and turn them into one :data:`~tinct.spans.SPAN_SCHEMA` table.

Every receiver path (OTLP protobuf, OTLP/JSON, Zipkin) ends here, so span
validation, the promoted semantic-convention columns and the ``tags`` search
column (event and link attributes) are defined once.

The builder is on ingest's hot path, where Python per-value work is the cost:
a decoder hands over one tuple of raw field values per span (the OTLP decoder
gets it from ``operator.attrgetter`` in C) and everything else happens per
column at :meth:`SpanBatchBuilder.build`: validation with C-level passes over
each column, span attributes kept encoded and dictionary-encoded by Arrow so each
distinct one is decoded once, resource/scope columns built once per group and
repeated with ``take``, promoted columns (:mod:`tracing.promoted`) assembled in
Arrow.
"""

from __future__ import annotations

import json.encoder
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, compress, islice, repeat
from operator import attrgetter, itemgetter, or_, sub
from typing import Any, NamedTuple, Protocol

import pyarrow as pa

from tinct.spans import SPAN_SCHEMA, ValueType, tag_entry

from .promoted import promoted_columns

__all__ = [
    "Attr",
    "DecodeResult",
    "EventLike",
    "LinkLike",
    "SpanBatchBuilder",
    "SpanFields",
    "WireDecoder",
    "UNKNOWN_SERVICE",
    "decode_result",
]

# (key, ValueType code, text form) -- see tinct.spans.ValueType for the text forms.
Attr = tuple[str, int, str]


class WireDecoder(Protocol):
    """Decodes the parts of :data:`SpanFields` that stay encoded (OTLP wire format).

    ``tracing.otlp_wire.OTLP_WIRE`` is the implementation.
    """

    def attributes(self, raw: Sequence[bytes]) -> list[Attr]:
        """Encoded ``KeyValue`` messages as :data:`Attr` triples."""
        ...

    def attribute_columns(self, raw: pa.BinaryArray) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Encoded ``KeyValue`` messages as key (string), type (uint8) and text (string) arrays."""
        ...

    def status(self, raw: bytes) -> tuple[int, str]:
        """An encoded ``Status`` (b"" when unset) as (code, message)."""
        ...


class EventLike(Protocol):
    """A span event: the OTLP ``Span.Event`` fields, attributes still encoded."""

    @property
    def time_unix_nano(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def attributes(self) -> Sequence[bytes]: ...
    @property
    def dropped_attributes_count(self) -> int: ...


class LinkLike(Protocol):
    """A span link: the OTLP ``Span.Link`` fields, attributes still encoded."""

    @property
    def trace_id(self) -> bytes: ...
    @property
    def span_id(self) -> bytes: ...
    @property
    def trace_state(self) -> str: ...
    @property
    def flags(self) -> int: ...
    @property
    def attributes(self) -> Sequence[bytes]: ...
    @property
    def dropped_attributes_count(self) -> int: ...


# One span's fields in OTLP Span order: trace_id, span_id, parent_span_id,
# trace_state, flags, name, kind, start_time_unix_nano, end_time_unix_nano,
# status, attributes, dropped_attributes_count, events, dropped_events_count,
# links, dropped_links_count. The status (an OTLP ``Status`` message, b"" when
# unset) and the attributes (OTLP ``KeyValue`` messages) stay *encoded*: that is
# what the protobuf hot path has without touching each one, and a batch has few
# distinct ones, each decoded once.
SpanFields = tuple[
    bytes, bytes, bytes, str, int, str, int, int, int, bytes,
    Sequence[bytes], int, Sequence[EventLike], int, Sequence[LinkLike], int,
]  # fmt: skip

# OpenTelemetry's resource semantic conventions: the SDK default when service.name is unset.
UNKNOWN_SERVICE = "unknown_service"

_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_I64 = 1 << 63
_MAX_REASONS = 10

_LIST_STR = pa.list_(pa.string())
_LIST_U8 = pa.list_(pa.uint8())
_SLICE = itemgetter(slice(None))
_EVENT = attrgetter("time_unix_nano", "name", "attributes", "dropped_attributes_count")
_LINK = attrgetter(
    "trace_id", "span_id", "trace_state", "flags", "attributes", "dropped_attributes_count"
)
_JSON_STR = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def _dump(attrs: list[Attr]) -> str:
    """Exactly tinct.spans.dump_attrs' text (compact JSON of [key, type, text]
    triples, non-ASCII kept) at a third of the cost of ``json.dumps``."""
    if not attrs:
        return ""
    return "[" + ",".join([f"[{_JSON_STR(k)},{t:d},{_JSON_STR(v)}]" for k, t, v in attrs]) + "]"


@dataclass(frozen=True)
class DecodeResult:
    """What a receiver decoded from one request.

    Attributes:
        batch: the valid spans, as a :data:`~tinct.spans.SPAN_SCHEMA` table.
        rejected: spans refused (OTLP ``ExportTracePartialSuccess.rejected_spans``).
        message: ``""``, or a human message naming the first problems, suitable
            for ``ExportTracePartialSuccess.error_message``.
    """

    batch: pa.Table
    rejected: int
    message: str


def decode_result(
    builder: SpanBatchBuilder,
    describe: Callable[[int, str], str],
    refused_before: Sequence[str] = (),
) -> DecodeResult:
    """Build ``builder``'s batch and word the refusals.

    Args:
        builder: the spans.
        describe: ``describe(index, problem)`` names one span the builder refused.
        refused_before: messages for spans the caller refused itself (they count
            too and come first).

    OTLP's ``error_message`` is for a human: only the first ten reasons are
    spelled out and the rest counted, so a bad batch can't produce megabytes.
    """
    batch = builder.build()
    count = len(refused_before) + len(builder.refused)
    reasons = list(refused_before[:_MAX_REASONS])
    reasons += [describe(i, p) for i, p in builder.refused[: _MAX_REASONS - len(reasons)]]
    more = count - len(reasons)
    message = "; ".join(reasons) + (f"; and {more} more" if more else "")
    return DecodeResult(batch, count, message)


class SpanBatchBuilder:
    """Collects spans and builds one Arrow table.

    Not thread-safe: one builder per request. Usage: :meth:`add_group` per
    (resource, scope) pair, then :meth:`add_spans` with that group's spans, and
    finally :meth:`build`. The span tuples may hold views into a parsed
    message; they are only read during :meth:`build`.

    Args:
        wire: decodes the statuses and attributes, which spans carry encoded.
    """

    __slots__ = ("_wire", "_groups", "_runs", "_spans", "refused")

    def __init__(self, wire: WireDecoder) -> None:
        self._wire = wire
        self._groups: list[tuple[Any, ...]] = []
        self._runs: list[tuple[int, int]] = []  # (group, number of spans)
        self._spans: list[SpanFields] = []
        #: After :meth:`build`: the refused spans as (index in add order, reason).
        self.refused: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._spans)

    def add_group(
        self,
        resource: list[Attr],
        resource_dropped: int,
        resource_schema_url: str,
        scope_name: str,
        scope_version: str,
        scope: list[Attr],
        scope_dropped: int,
        scope_schema_url: str,
    ) -> int:
        """Register a resource and scope pair; returns its id for :meth:`add_spans`.

        The ``service`` column is the resource's string ``service.name``, or
        ``unknown_service`` (OpenTelemetry's default) when it is missing or empty;
        the resource attributes themselves are kept exactly as sent.
        """
        service = UNKNOWN_SERVICE
        for key, vtype, text in resource:
            if key == "service.name" and vtype == ValueType.STRING and text:
                service = text
                break
        self._groups.append(
            (
                service,
                *_split(resource),
                resource_dropped,
                resource_schema_url,
                scope_name,
                scope_version,
                *_split(scope),
                scope_dropped,
                scope_schema_url,
            )
        )
        return len(self._groups) - 1

    def add_spans(self, group: int, spans: Iterable[SpanFields]) -> None:
        """Append spans of ``group`` (see :data:`SpanFields`); they are validated at build."""
        before = len(self._spans)
        self._spans.extend(spans)
        if len(self._spans) > before:
            self._runs.append((group, len(self._spans) - before))

    def build(self) -> pa.Table:
        """The valid spans as a SPAN_SCHEMA table; the others are listed in :attr:`refused`.

        Refused spans are given by their index in the order they were added. Rules (OTLP
        trace.proto, W3C Trace Context): trace_id is 16 bytes and span_id 8
        bytes, neither all zero; parent_span_id is empty or 8 bytes (an all-zero
        parent means "no parent" and is stored empty); link ids follow the
        trace/span id rules; kind and status code fit the stored uint8; end -
        start fits int64. Names may be empty.

        Raises:
            DecodeError: from the decoders, for a malformed attribute or status.
        """
        spans = self._spans
        refused: list[tuple[int, str]] = []
        self.refused = refused
        if not spans:
            return SPAN_SCHEMA.empty_table()
        gidx = list(chain.from_iterable(repeat(g, n) for g, n in self._runs))
        cols = list(zip(*spans, strict=True))
        durations = list(map(sub, cols[8], cols[7]))
        statuses = {raw: self._wire.status(raw) for raw in dict.fromkeys(cols[9])}
        if not _all_valid(cols, durations, statuses):
            problems = [_problem(span, statuses[span[9]][0]) for span in spans]
            refused.extend((i, p) for i, p in enumerate(problems) if p)
            keep = [not p for p in problems]
            spans = [_normal(s) for s in compress(spans, keep)]
            if not spans:
                return SPAN_SCHEMA.empty_table()
            gidx = list(compress(gidx, keep))
            cols = list(zip(*spans, strict=True))
            durations = list(map(sub, cols[8], cols[7]))
        return self._table(cols, durations, statuses, pa.array(gidx, pa.int32()))

    def _table(
        self,
        cols: list[tuple[Any, ...]],
        durations: list[int],
        statuses: dict[bytes, tuple[int, str]],
        gidx: pa.Array,
    ) -> pa.Table:
        (tid, sid, pid, tstate, flags, name, kind, start, _end, status,
         attrs, dattrs, events, devents, links, dlinks) = cols  # fmt: skip
        a = _attr_columns(attrs, self._wire)
        position = {raw: i for i, raw in enumerate(statuses)}
        status_idx = pa.array(map(position.__getitem__, status), pa.int32())
        codes, messages = zip(*statuses.values(), strict=True)
        codes = tuple(c if 0 <= c < 256 else 0 for c in codes)  # others only on refused spans
        out: dict[str, pa.Array] = {
            "trace_id": pa.array(tid, pa.binary()),
            "span_id": pa.array(sid, pa.binary()),
            "parent_span_id": pa.array(pid, pa.binary()),
            "trace_state": pa.array(tstate, pa.string()),
            "flags": pa.array(flags, pa.uint32()),
            "name": pa.array(name, pa.string()),
            "kind": pa.array(kind, pa.uint8()),
            "start_ns": pa.array(start, pa.uint64()),
            "duration_ns": pa.array(durations, pa.int64()),
            "status_code": pa.array(codes, pa.uint8()).take(status_idx),
            "status_message": pa.array(messages, pa.string()).take(status_idx),
            "attr_keys": a.keys,
            "attr_types": a.types,
            "attr_values": a.values,
            "dropped_attributes_count": pa.array(dattrs, pa.uint32()),
            "dropped_events_count": pa.array(devents, pa.uint32()),
            "dropped_links_count": pa.array(dlinks, pa.uint32()),
        }
        out.update(_group_columns(self._groups, gidx))
        out.update(promoted_columns(a.keys, a.values, a.unique_keys, a.indices))
        extra_tags = _event_link_columns(events, links, out, self._wire.attributes)
        out["tags"] = extra_tags
        return pa.Table.from_arrays([out[f] for f in SPAN_SCHEMA.names], schema=SPAN_SCHEMA)


def _split(attrs: list[Attr]) -> tuple[list[str], list[int], list[str]]:
    return [a[0] for a in attrs], [a[1] for a in attrs], [a[2] for a in attrs]


def _all_valid(
    cols: list[tuple[Any, ...]], durations: list[int], statuses: dict[bytes, tuple[int, str]]
) -> bool:
    """The common case, checked column-wise with C-level passes (no per-span bytecode)."""
    tid, sid, pid, kind, links = cols[0], cols[1], cols[2], cols[6], cols[14]
    return (
        set(map(len, tid)) == {16}
        and set(map(len, sid)) == {8}
        and set(map(len, pid)) <= {0, 8}
        and _ZERO16 not in tid
        and _ZERO8 not in sid
        and _ZERO8 not in pid
        and 0 <= min(kind)
        and max(kind) < 256
        and all(0 <= code < 256 for code, _ in statuses.values())
        and -_I64 <= min(durations)
        and max(durations) < _I64
        and not any(
            _link_problem(i, link) for ls in compress(links, links) for i, link in enumerate(ls)
        )
    )


def _id_problem(what: str, value: bytes, size: int) -> str:
    if len(value) != size:
        return f"{what} must be {size} bytes, got {len(value)}"
    if value == bytes(size):
        return f"{what} must not be all zeros"
    return ""


def _problem(span: SpanFields, status_code: int) -> str:
    """The first rule ``span`` (whose status has ``status_code``) breaks, or ``""``."""
    problem = _id_problem("trace_id", span[0], 16) or _id_problem("span_id", span[1], 8)
    if problem:
        return problem
    parent = span[2]
    if parent and len(parent) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(parent)}"
    if not 0 <= span[6] < 256:
        return f"kind {span[6]} is out of range"
    if not 0 <= status_code < 256:
        return f"status code {status_code} is out of range"
    if not -_I64 <= span[8] - span[7] < _I64:
        return "end_time_unix_nano - start_time_unix_nano does not fit int64"
    for i, link in enumerate(span[14]):
        problem = _link_problem(i, link)
        if problem:
            return problem
    return ""


def _link_problem(i: int, link: LinkLike) -> str:
    problem = _id_problem("trace_id", link.trace_id, 16) or _id_problem("span_id", link.span_id, 8)
    return f"link {i}: {problem}" if problem else ""


def _normal(span: SpanFields) -> SpanFields:
    """An all-zero parent id is W3C's "invalid span id": store the span as a root."""
    if span[2] == _ZERO8:
        return (*span[:2], b"", *span[3:])  # type: ignore[return-value]
    return span


def _group_columns(groups: list[tuple[Any, ...]], gidx: pa.Array) -> dict[str, pa.Array]:
    """Resource/scope columns: one small array per column, repeated per span by ``take``."""
    g = list(zip(*groups, strict=True))
    types = (
        pa.string(), _LIST_STR, _LIST_U8, _LIST_STR, pa.uint32(), pa.string(),
        pa.string(), pa.string(), _LIST_STR, _LIST_U8, _LIST_STR, pa.uint32(), pa.string(),
    )  # fmt: skip
    names = (
        "service", "resource_keys", "resource_types", "resource_values", "resource_dropped",
        "resource_schema_url", "scope_name", "scope_version", "scope_keys", "scope_types",
        "scope_values", "scope_dropped", "scope_schema_url",
    )  # fmt: skip
    return {
        name: pa.array(values, typ).take(gidx)
        for name, values, typ in zip(names, g, types, strict=True)
    }


def _offsets(lists: Iterable[Sequence[object]]) -> pa.Array:
    return pa.array(accumulate(map(len, lists), initial=0), pa.int32())


class _AttrColumns(NamedTuple):
    keys: pa.ListArray
    types: pa.ListArray
    values: pa.ListArray
    unique_keys: pa.Array  # key of each distinct encoded attribute
    indices: pa.Array  # per flattened attribute: which distinct attribute it is


def _attr_columns(attrs: Sequence[Sequence[bytes]], wire: WireDecoder) -> _AttrColumns:
    """The attr_* columns, decoding each distinct attribute once.

    Arrow dictionary-encodes the flattened encoded attributes (hashing in C), the
    distinct ones are decoded, and ``take`` spreads the results.
    """
    flat = list(chain.from_iterable(map(_SLICE, attrs)))
    offsets = _offsets(attrs)
    enc = pa.array(flat, pa.binary()).dictionary_encode()
    unique_keys, type_codes, unique_texts = wire.attribute_columns(enc.dictionary)
    idx = enc.indices

    def spread(unique: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, unique.take(idx))

    return _AttrColumns(
        spread(unique_keys),
        spread(type_codes),
        spread(unique_texts),
        unique_keys,
        idx,
    )


def _event_link_columns(
    events: Sequence[Sequence[EventLike]],
    links: Sequence[Sequence[LinkLike]],
    out: dict[str, pa.Array],
    decode: Callable[[Sequence[bytes]], list[Attr]],
) -> pa.ListArray:
    """Fill the event_* and link_* columns; returns their attributes' ``tags`` entries per span.

    Most spans have neither, so only spans that do are visited in Python.
    """
    ev_n = list(map(len, events))
    lk_n = list(map(len, links))
    busy = list(compress(range(len(ev_n)), map(or_, ev_n, lk_n)))
    ev_flat = map(_EVENT, chain.from_iterable(compress(events, ev_n)))
    lk_flat = map(_LINK, chain.from_iterable(compress(links, lk_n)))
    ev = list(zip(*ev_flat, strict=True)) or [()] * 4
    lk = list(zip(*lk_flat, strict=True)) or [()] * 6
    ev_dumps, ev_tags = _attr_texts(ev[2], decode)
    lk_dumps, lk_tags = _attr_texts(lk[4], decode)
    ev_off = pa.array(accumulate(ev_n, initial=0), pa.int32())
    lk_off = pa.array(accumulate(lk_n, initial=0), pa.int32())

    def lists(offsets: pa.Array, values: Sequence[Any], typ: pa.DataType) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, pa.array(values, typ))

    out["event_times"] = lists(ev_off, ev[0], pa.uint64())
    out["event_names"] = lists(ev_off, ev[1], pa.string())
    out["event_attrs"] = lists(ev_off, ev_dumps, pa.string())
    out["event_dropped"] = lists(ev_off, ev[3], pa.uint32())
    out["link_trace_ids"] = lists(lk_off, lk[0], pa.binary())
    out["link_span_ids"] = lists(lk_off, lk[1], pa.binary())
    out["link_trace_states"] = lists(lk_off, lk[2], pa.string())
    out["link_flags"] = lists(lk_off, lk[3], pa.uint32())
    out["link_attrs"] = lists(lk_off, lk_dumps, pa.string())
    out["link_dropped"] = lists(lk_off, lk[5], pa.uint32())
    # The tags of event and link attributes, per span, in span order.
    per_span: list[Sequence[str]] = [()] * len(ev_n)
    ev_iter, lk_iter = iter(ev_tags), iter(lk_tags)
    for i in busy:
        per_span[i] = list(
            chain.from_iterable(chain(islice(ev_iter, ev_n[i]), islice(lk_iter, lk_n[i])))
        )
    return pa.array(per_span, _LIST_STR)


def _attr_texts(
    raws: Sequence[Sequence[bytes]], decode: Callable[[Sequence[bytes]], list[Attr]]
) -> tuple[list[str], list[list[str]]]:
    """Per event (or link): its attributes' ``_dump`` text and ``tags`` entries.

    Events repeat within a batch (every failed request's ``exception`` event
    alike), so each distinct encoded attribute list is decoded and dumped once.
    """
    done: dict[tuple[bytes, ...], tuple[str, list[str]]] = {}
    dumps: list[str] = []
    tags: list[list[str]] = []
    for raw in raws:
        key = tuple(raw)
        texts = done.get(key)
        if texts is None:
            attrs = decode(raw)
            texts = done[key] = (_dump(attrs), [tag_entry(k, text) for k, _, text in attrs])
        dumps.append(texts[0])
        tags.append(texts[1])
    return dumps, tags
