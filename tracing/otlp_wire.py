"""OTLP's protobuf wire format, read the fast way: a view of the messages and
the codec for the parts spans keep encoded.

Walking the generated ``ExportTraceServiceRequest`` classes costs about 0.5 µs
per attribute on the upb backend (a Python wrapper for every ``KeyValue`` and
``AnyValue``, then ``WhichOneof``), which alone caps a span with ten attributes
near 200k/s before any other work. So bodies are parsed (by upb, in C) into a
*wire-compatible view* of the same messages in which every ``repeated KeyValue
attributes`` field is ``repeated bytes`` and ``Span.status`` is ``bytes``
(length-delimited either way, field numbers unchanged; see opentelemetry-proto
``trace/v1/trace.proto``, ``common/v1/common.proto``,
``resource/v1/resource.proto``). Attributes and statuses then arrive as their
encoded bytes: a batch has few distinct ones, and each is decoded once.

Decoding an attribute: the common ``KeyValue{key, value: AnyValue{string_value}}``
laid out as every protobuf encoder writes it (tags 0x0a, 0x12, 0x0a and one-byte
lengths that add up exactly) is sliced directly, for a whole batch at once in
Arrow (:meth:`OtlpWire.attribute_columns`). Anything else goes through the
generated ``KeyValue`` class behind a bounded cache, so malformed or non-UTF-8
attributes are refused exactly as a full parse refuses them.

Text forms follow :class:`tinct.spans.ValueType`; doubles use Python's
round-tripping ``repr`` except NaN and infinities, which take the proto3 JSON
spellings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; arrays and key/value lists
are stored as the OTLP JSON of their ``AnyValue``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import cache
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message, message_factory
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tinct.errors import DecodeError
from tinct.spans import ValueType, double_text

from .batch import Attr

__all__ = [
    "OTLP_WIRE",
    "OtlpWire",
    "SPAN_FIELDS",
    "any_value_text",
    "decode_attributes",
    "decode_status",
    "double_text",
    "view_class",
]

# Plain ints, not the IntEnum members: they end up in hot C conversions (bytes()).
_EMPTY, _STRING, _BOOL, _INT, _DOUBLE, _BYTES_T, _ARRAY, _KVLIST = (int(t) for t in ValueType)
# Attributes whose encoding is longer than this are decoded but not cached: they
# are rarely repeated (stack traces, SQL) and would make the cache's memory
# unbounded in practice. 32k entries of <= 256 bytes stay in the tens of MB.
_CACHE_VALUE_MAX = 256
_CACHE_ENTRIES_MAX = 1 << 15
_CACHE: dict[bytes, Attr] = {}

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_BYTES, _STR, _U32, _I32 = _F.TYPE_BYTES, _F.TYPE_STRING, _F.TYPE_UINT32, _F.TYPE_INT32
_FX32, _FX64, _MSG = _F.TYPE_FIXED32, _F.TYPE_FIXED64, _F.TYPE_MESSAGE
_PKG = "tinct.otlp_view"

# (message, [(number, name, type, label, message type)]) mirroring trace.proto.
_VIEW: tuple[tuple[str, tuple[tuple[int, str, int, int, str], ...]], ...] = (
    ("Resource", ((1, "attributes", _BYTES, _REP, ""), (2, "dropped_attributes_count", _U32, _OPT, ""))),  # noqa: E501
    ("Scope", (
        (1, "name", _STR, _OPT, ""), (2, "version", _STR, _OPT, ""),
        (3, "attributes", _BYTES, _REP, ""), (4, "dropped_attributes_count", _U32, _OPT, ""),
    )),
    ("Status", ((2, "message", _STR, _OPT, ""), (3, "code", _I32, _OPT, ""))),
    ("Event", (
        (1, "time_unix_nano", _FX64, _OPT, ""), (2, "name", _STR, _OPT, ""),
        (3, "attributes", _BYTES, _REP, ""), (4, "dropped_attributes_count", _U32, _OPT, ""),
    )),
    ("Link", (
        (1, "trace_id", _BYTES, _OPT, ""), (2, "span_id", _BYTES, _OPT, ""),
        (3, "trace_state", _STR, _OPT, ""), (4, "attributes", _BYTES, _REP, ""),
        (5, "dropped_attributes_count", _U32, _OPT, ""), (6, "flags", _FX32, _OPT, ""),
    )),
    ("Span", (
        (1, "trace_id", _BYTES, _OPT, ""), (2, "span_id", _BYTES, _OPT, ""),
        (3, "trace_state", _STR, _OPT, ""), (4, "parent_span_id", _BYTES, _OPT, ""),
        (16, "flags", _FX32, _OPT, ""), (5, "name", _STR, _OPT, ""),
        # SpanKind and StatusCode are open enums: any int32 on the wire.
        (6, "kind", _I32, _OPT, ""), (7, "start_time_unix_nano", _FX64, _OPT, ""),
        (8, "end_time_unix_nano", _FX64, _OPT, ""), (9, "attributes", _BYTES, _REP, ""),
        (10, "dropped_attributes_count", _U32, _OPT, ""), (11, "events", _MSG, _REP, "Event"),
        (12, "dropped_events_count", _U32, _OPT, ""), (13, "links", _MSG, _REP, "Link"),
        # Status stays encoded: most spans share one of a few statuses, decoded
        # once each per batch. (A status split over several occurrences on the
        # wire, which protobuf would merge, keeps only the last one.)
        (14, "dropped_links_count", _U32, _OPT, ""), (15, "status", _BYTES, _OPT, ""),
    )),
    ("ScopeSpans", (
        (1, "scope", _MSG, _OPT, "Scope"), (2, "spans", _MSG, _REP, "Span"),
        (3, "schema_url", _STR, _OPT, ""),
    )),
    ("ResourceSpans", (
        (1, "resource", _MSG, _OPT, "Resource"), (2, "scope_spans", _MSG, _REP, "ScopeSpans"),
        (3, "schema_url", _STR, _OPT, ""),
    )),
    ("Request", ((1, "resource_spans", _MSG, _REP, "ResourceSpans"),)),
)  # fmt: skip


@cache
def _view_pool() -> descriptor_pool.DescriptorPool:
    """A private pool holding the view (the default pool, shared by everyone, is untouched)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tinct/otlp_view.proto", package=_PKG, syntax="proto3"
    )
    for name, fields in _VIEW:
        msg = fdp.message_type.add(name=name)
        for number, fname, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".{_PKG}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


@cache
def view_class(name: str) -> Any:
    """A message class of the view, e.g. ``view_class("Request")``."""
    return message_factory.GetMessageClass(_view_pool().FindMessageTypeByName(f"{_PKG}.{name}"))


def any_value_text(value: AnyValue) -> tuple[int, str]:
    """``(ValueType, text)`` of an ``AnyValue``.

    An unset value, and ``string_value_strindex`` (an index into a profiles
    dictionary that traces do not have), are ``EMPTY``.
    """
    which = value.WhichOneof("value")
    if which == "string_value":
        return _STRING, value.string_value
    if which == "int_value":
        return _INT, str(value.int_value)
    if which == "bool_value":
        return _BOOL, "true" if value.bool_value else "false"
    if which == "double_value":
        return _DOUBLE, double_text(value.double_value)
    if which == "bytes_value":
        return _BYTES_T, base64.b64encode(value.bytes_value).decode("ascii")
    if which in ("array_value", "kvlist_value"):
        doc = json_format.MessageToDict(value)
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        return (_ARRAY if which == "array_value" else _KVLIST), text
    return _EMPTY, ""


def _decode_kv(raw: bytes) -> Attr:
    """Decode one encoded ``KeyValue`` (a cache miss).

    The common ``KeyValue{key, value: AnyValue{string_value}}``, laid out as
    every protobuf encoder writes it (tags 0x0a, 0x12, 0x0a and one-byte
    lengths that add up exactly), is sliced directly. Anything else, including
    invalid UTF-8, goes through the generated ``KeyValue`` class, which also
    decides whether the bytes are valid at all.
    """
    n = len(raw)
    if n > 5 and raw[0] == 0x0A and raw[1] < 0x80:
        p = raw[1] + 2
        if (
            p + 4 <= n
            and raw[p] == 0x12
            and raw[p + 2] == 0x0A
            and raw[p + 1] < 0x80
            and n == p + 2 + raw[p + 1]
            and raw[p + 3] == raw[p + 1] - 2
        ):
            try:
                return raw[2:p].decode(), _STRING, raw[p + 4 :].decode()
            except UnicodeDecodeError:
                pass
    try:
        kv = KeyValue.FromString(raw)
    except message.DecodeError as exc:
        raise DecodeError(f"invalid OTLP attribute: {exc}") from exc
    return (kv.key, *any_value_text(kv.value))


def decode_attributes(raw: Sequence[bytes]) -> list[Attr]:
    """Decode encoded OTLP ``KeyValue`` messages into ``(key, type, text)`` triples.

    Thread-safe: the shared cache only ever maps bytes to their one decoding.

    Raises:
        DecodeError: one of them is not a valid ``KeyValue``.
    """
    out: list[Any] = list(map(_CACHE.get, raw))
    if None in out:
        cache = _CACHE
        for i, attr in enumerate(out):
            if attr is None:
                b = raw[i]
                attr = out[i] = _decode_kv(b)
                if len(b) <= _CACHE_VALUE_MAX:
                    if len(cache) >= _CACHE_ENTRIES_MAX:
                        cache.clear()  # crude, O(1) amortised; hot values come straight back
                    cache[b] = attr
    return out


# The view Span's fields in the order of batch.SpanFields, read in C.
SPAN_FIELDS = attrgetter(
    "trace_id", "span_id", "parent_span_id", "trace_state", "flags", "name", "kind",
    "start_time_unix_nano", "end_time_unix_nano", "status",
    "attributes", "dropped_attributes_count", "events", "dropped_events_count",
    "links", "dropped_links_count",
)  # fmt: skip


def decode_status(raw: bytes) -> tuple[int, str]:
    """(code, message) of an encoded OTLP ``Status``; ``(0, "")`` for b"" (unset).

    Raises:
        DecodeError: ``raw`` is not a valid ``Status``.
    """
    if not raw:
        return 0, ""
    try:
        status = view_class("Status").FromString(raw)
    except message.DecodeError as exc:
        raise DecodeError(f"invalid OTLP span status: {exc}") from exc
    return status.code, status.message


_INT32 = pa.int32()


def _i32(value: int) -> pa.Scalar:
    return pa.scalar(value, _INT32)  # a Python int would widen int32 arithmetic to int64


def _string_layout(raw: pa.BinaryArray) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Slice every ``KeyValue{key, AnyValue{string_value}}`` of ``raw`` at once, in Arrow.

    Returns (which elements have that exact layout, their keys, their values);
    the other elements get "". The layout, in wire bytes: 0x0a klen key 0x12
    vlen 0x0a slen value, both lengths one-byte varints, vlen == slen + 2 and
    the element ending right after the value. Bytes are read at clamped
    positions, so a malformed element can only fail the checks, and the checks
    passing imply every byte read lies inside its element. If a key or value
    so laid out is not UTF-8, no element is taken (the general parser decides).
    """
    n = len(raw)
    _, offset_buf, data_buf = raw.buffers()
    offsets = pa.Array.from_buffers(_INT32, n + 1, [None, offset_buf], offset=raw.offset)
    starts = offsets.slice(0, n)
    length = pc.subtract(offsets.slice(1), starts)
    last = offsets[n].as_py() - 1
    if last < 0:  # only empty elements
        return pa.repeat(False, n), pa.repeat("", n), pa.repeat("", n)
    data = pa.Array.from_buffers(pa.uint8(), last + 1, [None, data_buf])

    def read(*positions: pa.Array) -> list[pa.Array]:
        where = pc.min_element_wise(pa.concat_arrays(positions), _i32(last))
        got = data.take(where).cast(_INT32)
        return [got.slice(i * n, n) for i in range(len(positions))]

    b0, klen = read(starts, pc.add(starts, _i32(1)))
    p = pc.add(pc.add(starts, klen), _i32(2))
    tag, vlen, tag2, slen = read(p, pc.add(p, _i32(1)), pc.add(p, _i32(2)), pc.add(p, _i32(3)))
    checks = (
        pc.greater(length, _i32(5)),
        pc.equal(b0, _i32(0x0A)),
        pc.less(klen, _i32(0x80)),
        pc.equal(tag, _i32(0x12)),
        pc.equal(tag2, _i32(0x0A)),
        pc.less(vlen, _i32(0x80)),
        pc.equal(pc.add(slen, _i32(2)), vlen),
        pc.equal(length, pc.add(pc.add(klen, vlen), _i32(4))),
    )
    ok = checks[0]
    for check in checks[1:]:
        ok = pc.and_(ok, check)
    # Key and value byte ranges; elements not so laid out get empty ranges at their start.
    key_start = pc.if_else(ok, pc.add(starts, _i32(2)), starts)
    key_end = pc.if_else(ok, pc.add(key_start, klen), starts)
    text_start = pc.if_else(ok, pc.add(p, _i32(4)), starts)
    text_end = pc.if_else(ok, pc.add(text_start, slen), starts)
    # In element order these four bounds never decrease, so sorting them all
    # interleaves them: key i is element 4i of a binary array over the data
    # buffer with the sorted bounds as offsets, its value element 4i + 2.
    bounds = pa.concat_arrays([key_start, key_end, text_start, text_end]).sort()
    bounds = pa.concat_arrays([bounds, offsets.slice(n)])  # 4n elements need 4n + 1 offsets
    spans = pa.Array.from_buffers(pa.binary(), 4 * n, [None, bounds.buffers()[1], data_buf])
    fours = pc.cumulative_sum(pa.repeat(_i32(4), n))
    picked = spans.take(
        pa.concat_arrays([pc.subtract(fours, _i32(4)), pc.subtract(fours, _i32(2))])
    )
    try:
        strings = picked.cast(pa.string())  # validates UTF-8, as protobuf requires of strings
    except pa.ArrowInvalid:  # let protobuf's parser say which element and why
        return pa.repeat(False, n), pa.repeat("", n), pa.repeat("", n)
    return ok, strings.slice(0, n), strings.slice(n, n)


class OtlpWire:
    """The :class:`tracing.batch.WireDecoder` for OTLP protobuf. Stateless apart from
    the shared attribute cache; thread-safe."""

    def attributes(self, raw: Sequence[bytes]) -> list[Attr]:
        return decode_attributes(raw)

    def status(self, raw: bytes) -> tuple[int, str]:
        return decode_status(raw)

    def attribute_columns(self, raw: pa.BinaryArray) -> tuple[pa.Array, pa.Array, pa.Array]:
        n = len(raw)
        if not n:
            empty = pa.array([], pa.string())
            return empty, pa.array([], pa.uint8()), empty
        fast, keys, texts = _string_layout(raw)
        types = pa.repeat(pa.scalar(_STRING, pa.uint8()), n)
        slow = pc.invert(fast)
        if slow.true_count:
            entries = decode_attributes(raw.filter(slow).to_pylist())
            k, t, v = zip(*entries, strict=True)
            keys = pc.replace_with_mask(keys, slow, pa.array(k, pa.string()))
            types = pc.replace_with_mask(types, slow, pa.array(t, pa.uint8()))
            texts = pc.replace_with_mask(texts, slow, pa.array(v, pa.string()))
        return keys, types, texts


OTLP_WIRE = OtlpWire()
