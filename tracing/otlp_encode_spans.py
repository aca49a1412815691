"""SDK spans straight to OTLP protobuf bytes, for tinct's span exporter.

The SDK's encoder (``opentelemetry.exporter.otlp.proto.common.trace_encoder``)
builds a protobuf object per span, attribute and value through Python, then
serializes the tree: about 45 µs per typical span, most of an app's cost of a
sampled span. Here the wire format is written directly (protobuf encoding
guide, https://protobuf.dev/programming-guides/encoding/): tags and lengths are
byte constants, the encoded ``Resource`` and ``InstrumentationScope`` are built
once per object, and each attribute's encoded ``KeyValue`` field is memoized by
(key, value) in a bounded dict, since keys and most values repeat from span to
span.

The message is the one the SDK's ``encode_spans`` builds, field for field
(opentelemetry-proto ``collector/trace/v1/trace_service.proto``,
``trace/v1/trace.proto``, ``common/v1/common.proto``), so a receiver sees the
same spans: spans grouped by resource, then by instrumentation scope, in
first-seen order; ``Span.status`` always present; ``Span.flags`` and
``Link.flags`` carry the ``SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE`` /
``CONTEXT_IS_REMOTE`` bits of the parent (link) context. One difference: a
link's ``trace_state`` is sent (the SDK leaves it out). An attribute whose
value cannot be encoded (an int outside int64, an unknown type) is left out
and logged, as the SDK does.

Not thread-safe per instance beyond what the GIL gives dict operations: the
caches tolerate concurrent use, and one exporter's worker thread is the normal
caller.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanKind, StatusCode

from tinct.tracing.protowire import ONE_BYTE, varint

__all__ = ["SpanEncoder"]

logger = logging.getLogger(__name__)

_MAX_CACHED = 8192  # (key, value) encodings kept; the cache is emptied when full
_MAX_CACHED_VALUE = 256  # longer string values are encoded every time, not kept
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_U64 = (1 << 64) - 1


# Span.kind (trace.proto SpanKind): the API's INTERNAL..CONSUMER are 0..4, OTLP's 1..5.
_KIND = {kind.value: bytes((0x30, kind.value + 1)) for kind in SpanKind}
# Span.flags, field 16 fixed32 (tag 0x85 0x01): SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
# (0x100), plus CONTEXT_IS_REMOTE_MASK (0x200) for a remote parent.
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
# Link.flags, field 6 fixed32.
_LINK_FLAGS_LOCAL = b"\x35" + struct.pack("<I", 0x100)
_LINK_FLAGS_REMOTE = b"\x35" + struct.pack("<I", 0x300)
# Span.status (field 15) when it has no message: code field 3.
_STATUS = {
    StatusCode.UNSET.value: b"\x7a\x00",
    StatusCode.OK.value: b"\x7a\x02\x18\x01",
    StatusCode.ERROR.value: b"\x7a\x02\x18\x02",
}

# trace_id (1), span_id (2), [parent_span_id (4)] as one struct call each.
_IDS = struct.Struct(">HQQHQ").pack
_IDS_PARENT = struct.Struct(">HQQHQHQ").pack
# start_time_unix_nano (7) and end_time_unix_nano (8), both fixed64.
_TIMES = struct.Struct("<BQBQ").pack
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack


# ScopeSpans.spans (field 2) tag and length, for spans shorter than 16 KiB.
_SPAN_TAG = [b"\x12" + varint(n) for n in range(0x4000)]


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (ONE_BYTE[n] if n < 0x80 else varint(n)) + payload


def _any_value(value: Any) -> bytes:
    """The encoded ``AnyValue`` message (common.proto) of an attribute value.

    Raises:
        ValueError: an int outside int64 or a type OTLP cannot carry.
    """
    if value is None:
        return b""
    t = type(value)
    if t is str or isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"int {value} is outside int64")
        return b"\x18" + varint(value & _U64)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        # ArrayValue.values, field 1.
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        # KeyValueList.values, field 1, of KeyValue.
        pairs = [_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]
        return _field(b"\x32", b"".join(pairs))
    raise ValueError(f"attribute values of type {t.__name__} cannot be encoded")


def _key_value(key: str, value: Any) -> bytes:
    """The encoded ``KeyValue`` message: key (1), value (2)."""
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


def _status_field(status: Any) -> bytes:
    """Span.status (field 15): Status{message (2), code (3)}."""
    code = status.status_code.value
    message = status.description
    if not message:
        return _STATUS[code]
    return _field(
        b"\x7a", _field(b"\x12", message.encode()) + (b"\x18" + ONE_BYTE[code] if code else b"")
    )


def _dropped(attributes: Any) -> int:
    return attributes.dropped if isinstance(attributes, BoundedAttributes) else 0


class SpanEncoder:
    """Encodes SDK ``ReadableSpan`` batches to ``ExportTraceServiceRequest`` bytes."""

    def __init__(self) -> None:
        # Encoded attribute fields by (key, value, type(value)).
        self._attrs: dict[tuple[str, Any, type], bytes] = {}
        self._names: dict[str, bytes] = {}
        # Encoded Resource / InstrumentationScope by object identity; the object
        # is kept beside its encoding so its id cannot be reused meanwhile.
        self._resources: dict[int, tuple[Any, bytes, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes, bytes]] = {}
        # One-entry caches by identity: a trace's spans share their TraceState,
        # and unset statuses are one shared object.
        self._trace_state: tuple[Any, bytes] = (None, b"")
        self._status: tuple[Any, bytes] = (None, b"")
        self._failed_keys: set[str] = set()

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The ``ExportTraceServiceRequest`` of ``spans``, serialized.

        Raises:
            Exception: only on a span that is not a well-formed ended SDK span
                (missing context or timestamps); attribute problems are logged.
        """
        groups: dict[tuple[int, int], list[bytes]] = {}
        resources: dict[int, list[tuple[int, int]]] = {}
        encode_span = self._span
        resource = scope = group = None
        for span in spans:
            # Nearly every span shares its predecessor's resource and scope.
            if span._resource is not resource or span._instrumentation_scope is not scope:
                resource, scope = span._resource, span._instrumentation_scope
                key = (id(resource), id(scope))
                group = groups.get(key)
                if group is None:
                    group = groups[key] = []
                    self._remember(resource, scope)
                    resources.setdefault(key[0], []).append(key)
            assert group is not None
            group.append(encode_span(span))
        out = []
        for resource_id, keys in resources.items():
            _, resource_field, resource_schema = self._resources[resource_id]
            parts = [resource_field]
            for key in keys:
                _, scope_field, scope_schema = self._scopes[key[1]]
                scope_spans = [scope_field]
                for encoded in groups[key]:
                    n = len(encoded)
                    scope_spans += (_SPAN_TAG[n] if n < 0x4000 else b"\x12" + varint(n), encoded)
                scope_spans.append(scope_schema)
                parts.append(_field(b"\x12", b"".join(scope_spans)))
            parts.append(resource_schema)
            out.append(_field(b"\x0a", b"".join(parts)))
        return b"".join(out)

    def _remember(self, resource: Any, scope: Any) -> None:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            if len(self._resources) >= 64:
                self._resources.clear()
            # ResourceSpans: resource (1) = Resource{attributes (1), dropped (2)}; schema_url (3).
            attrs = getattr(resource, "attributes", None)
            body = self._attributes(b"\x0a", attrs) + self._count(b"\x10", _dropped(attrs))
            schema = getattr(resource, "schema_url", "") or ""
            self._resources[id(resource)] = (
                resource,
                _field(b"\x0a", body),
                _field(b"\x1a", schema.encode()) if schema else b"",
            )
        cached = self._scopes.get(id(scope))
        if cached is None or cached[0] is not scope:
            if len(self._scopes) >= 256:
                self._scopes.clear()
            # ScopeSpans: scope (1) = InstrumentationScope{name (1), version (2),
            # attributes (3), dropped_attributes_count (4)}; schema_url (3).
            body = b""
            schema = ""
            if scope is not None:
                name, version = scope.name, scope.version
                attrs = scope.attributes
                body = (
                    (_field(b"\x0a", name.encode()) if name else b"")
                    + (_field(b"\x12", version.encode()) if version else b"")
                    + self._attributes(b"\x1a", attrs)
                    + self._count(b"\x20", _dropped(attrs))
                )
                schema = scope.schema_url or ""
            self._scopes[id(scope)] = (
                scope,
                _field(b"\x0a", body),
                _field(b"\x1a", schema.encode()) if schema else b"",
            )

    @staticmethod
    def _count(tag: bytes, n: int) -> bytes:
        return tag + varint(n) if n else b""

    def _attributes(self, tag: bytes, attributes: Any) -> bytes:
        """Each attribute as a ``repeated KeyValue`` field numbered by ``tag``."""
        if not attributes:
            return b""
        return b"".join([tag + field[1:] for field in self._attribute_fields(attributes)])

    def _attribute_fields(self, attributes: Any) -> list[bytes]:
        """Each attribute as a field with tag 0x4a (Span.attributes), memoized."""
        items = attributes._dict if type(attributes) is BoundedAttributes else attributes
        if type(items) is not dict:
            items = dict(items)
        values = items.values()
        # The look-ups run in C: one (key, value, type) tuple per attribute.
        # The type is part of the key because True == 1 == 1.0 in Python.
        fields: list[bytes | None] = list(
            map(self._attrs.get, zip(items, values, map(type, values), strict=True))
        )
        if None not in fields:
            return fields  # type: ignore[return-value]
        out = []
        cache = self._attrs
        for field, (key, value) in zip(fields, items.items(), strict=True):
            if field is not None:
                out.append(field)
                continue
            try:
                field = _field(b"\x4a", _key_value(key, value))
            except Exception:
                if key not in self._failed_keys and len(self._failed_keys) < 100:
                    self._failed_keys.add(key)
                    logger.exception("attribute %r cannot be encoded to OTLP; left out", key)
                continue
            out.append(field)
            t = type(value)
            # Only scalars are kept, and no float zero: equal keys then always
            # mean identical bytes (0.0 == -0.0 and (1,) == (True,) would not).
            if (
                (t is str and len(value) <= _MAX_CACHED_VALUE)
                or t is int
                or t is bool
                or (t is float and value != 0.0)
            ):
                if len(cache) >= _MAX_CACHED:
                    cache.clear()
                cache[(key, value, t)] = field
        return out

    def _span(self, span: ReadableSpan) -> bytes:
        """The encoded ``Span`` message (trace.proto), without its own tag and length.

        Reads ``ReadableSpan``'s fields and unpacks ``SpanContext`` (a tuple:
        trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)
        directly: each public property is a Python call, a tenth of the cost
        of a span here. tests/tracing/test_exporter.py pins the result to the
        SDK's own encoder.
        """
        trace_id, span_id, _, _, trace_state, _ = span._context  # type: ignore[misc]
        parent = span._parent
        if parent is None:
            parts = [_IDS(0x0A10, trace_id >> 64, trace_id & _U64, 0x1208, span_id)]
        else:
            parts = [
                _IDS_PARENT(
                    0x0A10, trace_id >> 64, trace_id & _U64, 0x1208, span_id, 0x2208, parent[1]
                )
            ]
        cached_state = self._trace_state
        if cached_state[0] is not trace_state:
            cached_state = self._trace_state = (
                trace_state,
                self._state_field(b"\x1a", trace_state),
            )
        if cached_state[1]:
            parts.append(cached_state[1])
        name = span._name
        name_field = self._names.get(name)
        if name_field is None:
            name_field = _field(b"\x2a", name.encode())
            if len(self._names) >= _MAX_CACHED:
                self._names.clear()
            self._names[name] = name_field
        parts.append(name_field)
        parts.append(_KIND[span._kind._value_])
        parts.append(_TIMES(0x39, span._start_time or 0, 0x41, span._end_time or 0))
        attributes = span._attributes
        if attributes:
            parts += self._attribute_fields(attributes)
            dropped = _dropped(attributes)
            if dropped:
                parts.append(b"\x50" + varint(dropped))
        events: Any = span._events
        if type(events) is BoundedList:
            if events._dq:  # type: ignore[attr-defined]
                parts += [self._event(event) for event in events._dq]  # type: ignore[attr-defined]
            if events.dropped:
                parts.append(b"\x60" + varint(events.dropped))
        elif events:
            parts += [self._event(event) for event in events]
        links: Any = span._links
        if type(links) is BoundedList:
            if links._dq:  # type: ignore[attr-defined]
                parts += [self._link(link) for link in links._dq]  # type: ignore[attr-defined]
            if links.dropped:
                parts.append(b"\x70" + varint(links.dropped))
        elif links:
            parts += [self._link(link) for link in links]
        status = span._status
        cached_status = self._status
        if cached_status[0] is not status:
            cached_status = self._status = (status, _status_field(status))
        parts.append(cached_status[1])
        parts.append(_FLAGS_REMOTE if parent is not None and parent[2] else _FLAGS_LOCAL)
        return b"".join(parts)

    def _state_field(self, tag: bytes, trace_state: Any) -> bytes:
        if not trace_state:
            return b""
        return _field(tag, ",".join([f"{k}={v}" for k, v in trace_state.items()]).encode())

    def _event(self, event: Any) -> bytes:
        # Span.Event (field 11): time_unix_nano (1, fixed64), name (2),
        # attributes (3), dropped_attributes_count (4).
        attributes = event.attributes
        body = (
            b"\x09"
            + _FIXED64(event.timestamp or 0)
            + (_field(b"\x12", event.name.encode()) if event.name else b"")
            + self._attributes(b"\x1a", attributes)
            + self._count(b"\x20", _dropped(attributes))
        )
        return _field(b"\x5a", body)

    def _link(self, link: Any) -> bytes:
        # Span.Link (field 13): trace_id (1), span_id (2), trace_state (3),
        # attributes (4), dropped_attributes_count (5), flags (6, fixed32).
        ctx = link.context
        attributes = link.attributes
        body = (
            _field(b"\x0a", ctx.trace_id.to_bytes(16, "big"))
            + _field(b"\x12", ctx.span_id.to_bytes(8, "big"))
            + self._state_field(b"\x1a", ctx.trace_state)
            + self._attributes(b"\x22", attributes)
            + self._count(b"\x28", _dropped(attributes))
            + (_LINK_FLAGS_REMOTE if ctx.is_remote else _LINK_FLAGS_LOCAL)
        )
        return _field(b"\x6a", body)
