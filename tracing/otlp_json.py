"""Read OTLP/JSON trace exports (``POST /v1/traces``, ``application/json``).

OTLP/JSON is the proto3 JSON mapping of ``ExportTraceServiceRequest`` with the
deviations the OTLP specification lists
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): trace and
span ids are hex strings, not base64; enums are integers (names accepted too);
field names are lowerCamelCase (the proto field names accepted too); unknown
fields are ignored. 64-bit integers may be strings or numbers, ``null`` means
the default, doubles may be ``"NaN"``/``"Infinity"``/``"-Infinity"``, bytes
are base64 (standard or URL-safe, padding optional).

protobuf's own ``json_format.ParseDict`` does all that but costs ~130 µs a span
in pure Python, so :func:`transcode` re-encodes the parsed document as protobuf
wire bytes directly (field numbers from opentelemetry-proto ``trace.proto``,
``common.proto``, ``resource.proto``) and the protobuf decoder takes it from
there: one decode path, validation included. An id that is not hex only
refuses its span: it is encoded as a one-byte placeholder (never a valid id
length) and reported with its reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from typing import Any

from tinct.errors import DecodeError
from tinct.tracing.protowire import varint

__all__ = ["transcode", "hex_ids_to_base64"]

_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
}  # fmt: skip
_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_DECIMAL = re.compile(r"-?[0-9]+")
_U64 = (1 << 64) - 1
_PLACEHOLDER = b"\xff"
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_KV_CACHE: dict[tuple[str, str, type, Any], bytes] = {}
_KV_CACHE_MAX = 1 << 14


class _Shape(Exception):
    """The document does not have the shape of an ExportTraceServiceRequest."""


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return tag + varint(len(payload)) + payload


def _opt(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited scalar, omitted at its default (empty) like protobuf encoders do."""
    return tag + varint(len(payload)) + payload if payload else b""


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _obj(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Shape(f"{what} must be an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Shape(f"{what} must be a list")
    return value


def _str(value: Any, what: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise _Shape(f"{what} must be a string")
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise _Shape(f"{what} is not valid Unicode") from None


def _int(value: Any, what: str, low: int, high: int) -> int:
    """An integer field: a JSON number or a decimal string (proto3 JSON)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _Shape(f"{what} must be an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        n = int(value)
    else:
        raise _Shape(f"{what} must be an integer, got {json.dumps(value)[:40]}")
    if not low <= n <= high:
        raise _Shape(f"{what} is out of range")
    return n


def _uint(tag: bytes, value: Any, what: str, bits: int = 32) -> bytes:
    n = _int(value, what, 0, (1 << bits) - 1)
    return tag + varint(n) if n else b""


def _fixed(tag: bytes, value: Any, what: str, fmt: str, bits: int) -> bytes:
    n = _int(value, what, 0, (1 << bits) - 1)
    return tag + struct.pack(fmt, n) if n else b""


def _enum(tag: bytes, value: Any, names: dict[str, int], what: str) -> bytes:
    # An unknown name is ignored like any unknown field (ParseDict's ignore_unknown_fields).
    n = names.get(value, 0) if isinstance(value, str) else _int(value, what, -(2**31), 2**31 - 1)
    return tag + varint(n & _U64) if n else b""


def _bytes_b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise _Shape(f"{what} must be a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Shape(f"{what} is not base64") from None


def _any_value(value: Any, what: str) -> bytes:
    """An encoded ``AnyValue``; oneof members are written even at their default."""
    value = _obj(value, what)
    for name, v in value.items():
        if v is None:
            continue
        if name in ("stringValue", "string_value"):
            return _ld(b"\x0a", _str(v, what))
        if name in ("boolValue", "bool_value"):
            if not isinstance(v, bool):
                raise _Shape(f"{what} boolValue must be true or false")
            return b"\x10\x01" if v else b"\x10\x00"
        if name in ("intValue", "int_value"):
            return b"\x18" + varint(_int(v, what, -(2**63), 2**63 - 1) & _U64)
        if name in ("doubleValue", "double_value"):
            return b"\x21" + struct.pack("<d", _double(v, what))
        if name in ("bytesValue", "bytes_value"):
            return _ld(b"\x3a", _bytes_b64(v, what))
        if name in ("arrayValue", "array_value"):
            items = _list(_obj(v, what).get("values"), what)
            return _ld(b"\x2a", b"".join(_ld(b"\x0a", _any_value(x, what)) for x in items))
        if name in ("kvlistValue", "kvlist_value"):
            items = _list(_obj(v, what).get("values"), what)
            return _ld(b"\x32", b"".join(_ld(b"\x0a", _key_value(x)) for x in items))
    return b""


def _double(value: Any, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise _Shape(f"{what} doubleValue must be a number")


def _key_value(kv: Any) -> bytes:
    kv = _obj(kv, "attribute")
    key = kv.get("key")
    value = kv.get("value")
    if isinstance(value, dict) and len(value) == 1:
        ((name, v),) = value.items()
        if isinstance(v, str | int | float) and isinstance(key, str):
            cache_key = (key, name, type(v), v)  # the type: True == 1 but is not valid for ints
            found = _KV_CACHE.get(cache_key)
            if found is None:
                found = _encode_kv(key, value)
                if len(_KV_CACHE) >= _KV_CACHE_MAX:
                    _KV_CACHE.clear()
                _KV_CACHE[cache_key] = found
            return found
    return _encode_kv(key, value)


def _encode_kv(key: Any, value: Any) -> bytes:
    what = f"attribute {json.dumps(key)[:40]}"
    out = _opt(b"\x0a", _str(key, "attribute key"))
    return out if value is None else out + _ld(b"\x12", _any_value(value, what))


def _attributes(tag: bytes, obj: dict[str, Any]) -> bytes:
    return b"".join([_ld(tag, _key_value(kv)) for kv in _list(obj.get("attributes"), "attributes")])


def _hex_id(value: Any, what: str, problems: list[str]) -> bytes:
    if value is None or value == "":
        return b""
    try:
        if not isinstance(value, str) or not value.isascii():
            raise ValueError
        return binascii.unhexlify(value)
    except (ValueError, binascii.Error):
        problems.append(f"{what} is not a hex string: {json.dumps(value)[:40]}")
        return _PLACEHOLDER


def _link(link: Any, i: int, problems: list[str]) -> bytes:
    link = _obj(link, "link")
    where = f"link {i}: "
    return b"".join(
        (
            _opt(b"\x0a", _hex_id(_get(link, "traceId", "trace_id"), where + "trace_id", problems)),
            _opt(b"\x12", _hex_id(_get(link, "spanId", "span_id"), where + "span_id", problems)),
            _opt(b"\x1a", _str(_get(link, "traceState", "trace_state"), "traceState")),
            _attributes(b"\x22", link),
            _uint(b"\x28", _get(link, "droppedAttributesCount", "dropped_attributes_count"), "n"),
            _fixed(b"\x35", link.get("flags"), "flags", "<I", 32),
        )
    )


def _event(event: Any) -> bytes:
    event = _obj(event, "event")
    return b"".join(
        (
            _fixed(b"\x09", _get(event, "timeUnixNano", "time_unix_nano"), "time", "<Q", 64),
            _opt(b"\x12", _str(event.get("name"), "event name")),
            _attributes(b"\x1a", event),
            _uint(b"\x20", _get(event, "droppedAttributesCount", "dropped_attributes_count"), "n"),
        )
    )


def _status(status: Any) -> bytes:
    status = _obj(status, "status")
    return _opt(b"\x12", _str(status.get("message"), "status message")) + _enum(
        b"\x18", status.get("code"), _CODES, "status code"
    )


def _span(span: Any, problems: list[str]) -> bytes:
    span = _obj(span, "span")
    get = span.get
    parent = _get(span, "parentSpanId", "parent_span_id")
    parts = [
        _opt(b"\x0a", _hex_id(_get(span, "traceId", "trace_id"), "trace_id", problems)),
        _opt(b"\x12", _hex_id(_get(span, "spanId", "span_id"), "span_id", problems)),
        _opt(b"\x1a", _str(_get(span, "traceState", "trace_state"), "traceState")),
        _opt(b"\x22", _hex_id(parent, "parent_span_id", problems)),
        _opt(b"\x2a", _str(get("name"), "name")),
        _enum(b"\x30", get("kind"), _KINDS, "kind"),
        _fixed(b"\x39", _get(span, "startTimeUnixNano", "start_time_unix_nano"), "start", "<Q", 64),
        _fixed(b"\x41", _get(span, "endTimeUnixNano", "end_time_unix_nano"), "end", "<Q", 64),
        _attributes(b"\x4a", span),
        _uint(b"\x50", _get(span, "droppedAttributesCount", "dropped_attributes_count"), "n"),
        b"".join([_ld(b"\x5a", _event(e)) for e in _list(get("events"), "events")]),
        _uint(b"\x60", _get(span, "droppedEventsCount", "dropped_events_count"), "n"),
        b"".join(
            [
                _ld(b"\x6a", _link(x, i, problems))
                for i, x in enumerate(_list(get("links"), "links"))
            ]
        ),
        _uint(b"\x70", _get(span, "droppedLinksCount", "dropped_links_count"), "n"),
        # Messages are written when present, even empty (protobuf keeps their presence).
        _ld(b"\x7a", _status(get("status"))) if get("status") is not None else b"",
        _fixed(b"\x85\x01", get("flags"), "flags", "<I", 32),
    ]
    return b"".join(parts)


def transcode(body: bytes) -> tuple[bytes, dict[tuple[int, int, int], str]]:
    """An OTLP/JSON body as the protobuf bytes of the same ``ExportTraceServiceRequest``.

    Also returns, keyed by (resource, scope, span) index, why a span's id was
    not hex (that span holds a placeholder id that validation refuses).

    Raises:
        DecodeError: the body is not JSON, or not shaped like an
            ``ExportTraceServiceRequest``.
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"OTLP/JSON body must be an object, got {type(doc).__name__}")
    id_problems: dict[tuple[int, int, int], str] = {}
    out = []
    try:
        for ri, rs in enumerate(
            _list(_get(doc, "resourceSpans", "resource_spans"), "resourceSpans")
        ):
            rs = _obj(rs, "resourceSpans[]")
            res = _obj(rs.get("resource"), "resource")
            resource = _attributes(b"\x0a", res) + _uint(
                b"\x10", _get(res, "droppedAttributesCount", "dropped_attributes_count"), "n"
            )
            parts = [_ld(b"\x0a", resource) if rs.get("resource") is not None else b""]
            scope_spans = _list(_get(rs, "scopeSpans", "scope_spans"), "scopeSpans")
            for si, ss in enumerate(scope_spans):
                ss = _obj(ss, "scopeSpans[]")
                parts.append(_ld(b"\x12", _scope_spans(ss, ri, si, id_problems)))
            parts.append(_opt(b"\x1a", _str(_get(rs, "schemaUrl", "schema_url"), "schemaUrl")))
            out.append(_ld(b"\x0a", b"".join(parts)))
    except (_Shape, RecursionError) as exc:
        raise DecodeError(f"invalid OTLP/JSON traces request: {exc}") from exc
    return b"".join(out), id_problems


def _scope_spans(
    ss: dict[str, Any], ri: int, si: int, id_problems: dict[tuple[int, int, int], str]
) -> bytes:
    scope = _obj(ss.get("scope"), "scope")
    encoded_scope = b"".join(
        (
            _opt(b"\x0a", _str(scope.get("name"), "scope name")),
            _opt(b"\x12", _str(scope.get("version"), "scope version")),
            _attributes(b"\x1a", scope),
            _uint(b"\x20", _get(scope, "droppedAttributesCount", "dropped_attributes_count"), "n"),
        )
    )
    parts = [_ld(b"\x0a", encoded_scope) if ss.get("scope") is not None else b""]
    for k, span in enumerate(_list(ss.get("spans"), "spans")):
        problems: list[str] = []
        parts.append(_ld(b"\x12", _span(span, problems)))
        if problems:
            id_problems[(ri, si, k)] = problems[0]
    parts.append(_opt(b"\x1a", _str(_get(ss, "schemaUrl", "schema_url"), "schemaUrl")))
    return b"".join(parts)


def hex_ids_to_base64(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite, in place, an OTLP/JSON traces document's hex ids as base64, as
    protobuf's own JSON parser (``json_format``) expects; returns ``doc``."""
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for obj in (span, *span.get("links", [])):
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in obj:
                            obj[name] = base64.b64encode(bytes.fromhex(obj[name])).decode()
    return doc
