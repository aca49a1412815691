"""The span record every layer agrees on.

Receivers (OTLP protobuf and JSON, Zipkin) decode into a columnar batch with
:data:`SPAN_SCHEMA`; ``tinct.storage`` writes such batches and hands spans back
as plain dicts with the same keys; the query APIs encode those dicts as OTLP
JSON (lossless) or Jaeger's v1 shape. Keeping one schema here means a receiver
never knows about SQL and the store never knows about a wire format.

Attribute values keep their OTLP type through a (type code, text) pair, see
:class:`ValueType` and :func:`value_text`; event and link attributes, which
ClickHouse 18.16 cannot hold as nested typed arrays, are stored as the compact
JSON of their ``[key, type, text]`` triples (:func:`dump_attrs`).
"""

from __future__ import annotations

import base64
import json.encoder
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import pyarrow as pa

__all__ = [
    "SPAN_SCHEMA",
    "SPAN_COLUMNS",
    "typed_attribute_fields",
    "SpanKind",
    "StatusCode",
    "ValueType",
    "TraceQuery",
    "value_text",
    "tag_entry",
    "dump_attrs",
    "dump_triples",
    "double_text",
    "plain_any_value",
    "load_attrs",
    "TAG_SEPARATOR",
]


class SpanKind(IntEnum):
    """OTLP ``Span.SpanKind`` numbers (opentelemetry-proto trace.proto)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTLP ``Status.StatusCode`` numbers."""

    UNSET = 0
    OK = 1
    ERROR = 2


class ValueType(IntEnum):
    """Which ``AnyValue`` field an attribute value came from.

    The text form stored beside it is: the string itself; ``true``/``false``;
    the decimal integer; ``repr(float)`` (round-trips exactly); base64 for
    bytes; the OTLP JSON of the ``AnyValue`` for arrays and key/value lists.
    """

    EMPTY = 0
    STRING = 1
    BOOL = 2
    INT = 3
    DOUBLE = 4
    BYTES = 5
    ARRAY = 6
    KVLIST = 7


# Separates key and value in the ``tags`` search column: a byte that cannot
# appear in an attribute key sent by any sane client and keeps `has()` exact.
TAG_SEPARATOR = "\x1f"

_ids = pa.binary()
_strs = pa.list_(pa.string())
_types = pa.list_(pa.uint8())


def typed_attribute_fields(prefix: str) -> list[pa.Field]:
    """The ``<prefix>_keys``, ``_types`` and ``_values`` columns of an attribute
    set: parallel arrays keeping each value's :class:`ValueType`."""
    return [
        pa.field(f"{prefix}_keys", _strs, nullable=False),
        pa.field(f"{prefix}_types", _types, nullable=False),
        pa.field(f"{prefix}_values", _strs, nullable=False),
    ]


SPAN_SCHEMA = pa.schema(
    [
        # Identity. Ids are raw bytes (16 / 8); parent is empty for a root.
        pa.field("trace_id", _ids, nullable=False),
        pa.field("span_id", _ids, nullable=False),
        pa.field("parent_span_id", _ids, nullable=False),
        pa.field("trace_state", pa.string(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
        # What and when.
        pa.field("service", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("start_ns", pa.uint64(), nullable=False),
        # end - start; signed so a clock-skewed span (end < start) survives.
        pa.field("duration_ns", pa.int64(), nullable=False),
        pa.field("status_code", pa.uint8(), nullable=False),
        pa.field("status_message", pa.string(), nullable=False),
        # Promoted semantic-convention attributes (copies; the arrays below
        # still hold the originals so reads are lossless).
        pa.field("http_route", pa.string(), nullable=False),
        pa.field("http_method", pa.string(), nullable=False),
        pa.field("http_status_code", pa.uint16(), nullable=False),
        pa.field("peer_service", pa.string(), nullable=False),
        pa.field("server_address", pa.string(), nullable=False),
        pa.field("db_system", pa.string(), nullable=False),
        pa.field("enduser_id", pa.string(), nullable=False),
        pa.field("dye", pa.string(), nullable=False),
        # 0 when the span carries no tinct.sampling.probability.
        pa.field("sampling_probability", pa.float64(), nullable=False),
        # Span attributes.
        *typed_attribute_fields("attr"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        # Resource.
        *typed_attribute_fields("resource"),
        pa.field("resource_dropped", pa.uint32(), nullable=False),
        pa.field("resource_schema_url", pa.string(), nullable=False),
        # Instrumentation scope.
        pa.field("scope_name", pa.string(), nullable=False),
        pa.field("scope_version", pa.string(), nullable=False),
        *typed_attribute_fields("scope"),
        pa.field("scope_dropped", pa.uint32(), nullable=False),
        pa.field("scope_schema_url", pa.string(), nullable=False),
        # Events: parallel arrays; attrs are dump_attrs() JSON per event.
        pa.field("event_times", pa.list_(pa.uint64()), nullable=False),
        pa.field("event_names", _strs, nullable=False),
        pa.field("event_attrs", _strs, nullable=False),
        pa.field("event_dropped", pa.list_(pa.uint32()), nullable=False),
        pa.field("dropped_events_count", pa.uint32(), nullable=False),
        # Links: parallel arrays; ids raw bytes.
        pa.field("link_trace_ids", pa.list_(_ids), nullable=False),
        pa.field("link_span_ids", pa.list_(_ids), nullable=False),
        pa.field("link_trace_states", _strs, nullable=False),
        pa.field("link_flags", pa.list_(pa.uint32()), nullable=False),
        pa.field("link_attrs", _strs, nullable=False),
        pa.field("link_dropped", pa.list_(pa.uint32()), nullable=False),
        pa.field("dropped_links_count", pa.uint32(), nullable=False),
        # Search column for the attributes that have no typed arrays of their
        # own: tag_entry(key, text) for each attribute of the span's events and
        # links. Span, resource and scope attributes are searched in their
        # arrays, so they are not stored twice (Jaeger's tag-search rule covers
        # all five places; see storage.queries.matching_traces).
        pa.field("tags", _strs, nullable=False),
    ]
)

SPAN_COLUMNS: tuple[str, ...] = tuple(SPAN_SCHEMA.names)


def value_text(vtype: int, value: Any) -> str:
    """Text form of a scalar attribute value of type ``vtype``.

    This is also the form a Jaeger tag query matches against (Jaeger compares
    typed tags by their string form: ``123``, ``72.5``, ``true``).
    """
    if vtype == ValueType.STRING:
        return str(value)
    if vtype == ValueType.BOOL:
        return "true" if value else "false"
    if vtype == ValueType.INT:
        return str(int(value))
    if vtype == ValueType.DOUBLE:
        return double_text(float(value))
    if vtype == ValueType.BYTES:
        return base64.b64encode(value).decode("ascii")
    if vtype == ValueType.EMPTY:
        return ""
    # Arrays and kvlists arrive here already as OTLP JSON text.
    return str(value)


def double_text(value: float) -> str:
    """Text of a double: ``repr`` (exact round trip); NaN and infinities as the
    proto3 JSON mapping spells them (``NaN``, ``Infinity``, ``-Infinity``)."""
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


_INF = float("inf")


def tag_entry(key: str, text: str) -> str:
    """One element of the ``tags`` search column."""
    return key + TAG_SEPARATOR + text


def dump_triples(attrs: Sequence[tuple[str, int, str]]) -> str:
    """Compact JSON of ``[[key, type, text], ...]`` for event/link attributes.

    The same text as ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``
    at a third of its cost: it runs for every event and link on ingest.
    """
    if not attrs:
        return ""
    return "[" + ",".join([f"[{_JSON_STR(k)},{t:d},{_JSON_STR(v)}]" for k, t, v in attrs]) + "]"


_JSON_STR = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def dump_attrs(keys: list[str], types: list[int], texts: list[str]) -> str:
    """:func:`dump_triples` of parallel key, type and text lists."""
    return dump_triples(list(zip(keys, types, texts, strict=True)))


def load_attrs(text: str) -> tuple[list[str], list[int], list[str]]:
    """Inverse of :func:`dump_attrs`."""
    if not text:
        return [], [], []
    triples = json.loads(text)
    return (
        [str(t[0]) for t in triples],
        [int(t[1]) for t in triples],
        [str(t[2]) for t in triples],
    )


def plain_any_value(value: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` object as the plain JSON value it stands for
    (what OpenTelemetry's pdata ``AsRaw`` gives): lists for arrays, objects
    for key/value lists, ints for ``intValue``; None for an empty value."""
    if not isinstance(value, dict):
        return None
    if "arrayValue" in value:
        return [plain_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        pairs = value["kvlistValue"].get("values", [])
        return {kv.get("key", ""): plain_any_value(kv.get("value", {})) for kv in pairs}
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return value["doubleValue"]
    for name in ("stringValue", "boolValue", "bytesValue"):
        if name in value:
            return value[name]
    return None


@dataclass(frozen=True)
class TraceQuery:
    """A trace search, in Jaeger's terms (``FindTraces`` parameters).

    A trace matches when at least one of its spans satisfies every given
    condition at once. Times are Unix nanoseconds; ``None`` means no bound.
    ``tags`` values are compared with the text form of the stored value.
    """

    service: str
    operation: str = ""
    span_kind: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    start_min_ns: int | None = None
    start_max_ns: int | None = None
    duration_min_ns: int | None = None
    duration_max_ns: int | None = None
    limit: int = 20
