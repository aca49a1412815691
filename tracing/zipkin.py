"""Decode Zipkin v2 JSON span lists (``POST /api/v2/spans``) into span batches.

The model is zipkin2's (https://zipkin.io/zipkin-api/, ``Span`` in
zipkin2-api.yaml); the mapping to OpenTelemetry follows the OpenTelemetry
Collector's Zipkin receiver (opentelemetry-collector-contrib
``pkg/translator/zipkin/zipkinv2/to_translator.go``) with current semantic
convention names:

* ids are hex; like zipkin2's ``Span.Builder`` shorter ids are left-padded
  with zeros (a 64-bit trace id becomes the low half of a 128-bit one);
  ``parentId`` equal to ``id`` means no parent;
* ``timestamp``/``duration`` are microseconds; ``kind`` CLIENT, SERVER,
  PRODUCER, CONSUMER map to the OTLP kinds, an absent kind with tag
  ``span.kind=internal`` to INTERNAL;
* ``localEndpoint.serviceName`` is the resource's ``service.name`` (one
  resource per service), its address and port become ``network.local.*``;
* ``remoteEndpoint``: ``serviceName`` -> ``peer.service``, address and port ->
  ``network.peer.address`` / ``network.peer.port``, and for CLIENT and PRODUCER
  spans, whose remote end is the server, also ``server.address`` /
  ``server.port`` unless tags already say so;
* tags are string attributes, except ``error`` (status ERROR, its value as the
  message unless it is just ``true``), ``otel.status_code`` /
  ``otel.status_description``, ``w3c.tracestate`` and the scope name/version
  tags (``otel.scope.*``, legacy ``otel.library.*``), which fill their OTLP fields;
* annotations are events; ``debug`` and ``shared`` are kept as the boolean
  attributes ``zipkin.debug`` / ``zipkin.shared`` (a shared server span reuses
  its client's span id).
"""

from __future__ import annotations

import binascii
import json
from typing import Any, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tinct.errors import DecodeError
from tinct.spans import SpanKind, StatusCode

from .batch import DecodeResult, SpanBatchBuilder, SpanFields, decode_result
from .otlp_wire import OTLP_WIRE, decode_attributes

__all__ = ["decode_zipkin_json"]

_KINDS = {
    "CLIENT": SpanKind.CLIENT,
    "SERVER": SpanKind.SERVER,
    "PRODUCER": SpanKind.PRODUCER,
    "CONSUMER": SpanKind.CONSUMER,
}
_STATUS_NAMES = {
    "STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2,
    "UNSET": 0, "OK": 1, "ERROR": 2, "Unset": 0, "Ok": 1, "Error": 2,
}  # fmt: skip
_SCOPE_NAME = ("otel.scope.name", "otel.library.name")
_SCOPE_VERSION = ("otel.scope.version", "otel.library.version")


class _Event(NamedTuple):
    time_unix_nano: int
    name: str
    attributes: tuple[bytes, ...]
    dropped_attributes_count: int


class _Invalid(ValueError):
    """A span that cannot be taken; the message says why."""


def _kv(key: str, value: str | int | bool) -> bytes:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value).SerializeToString()


def _hex_id(span: dict[str, Any], field: str, size: int, required: bool = True) -> bytes:
    """A Zipkin hex id of up to ``size`` bytes, left-padded with zeros to ``size``."""
    value = span.get(field)
    if value is None and not required:
        return b""
    if not isinstance(value, str) or not value or len(value) > 2 * size or not value.isascii():
        raise _Invalid(f"{field} must be 1 to {2 * size} hex characters, got {json.dumps(value)}")
    try:
        return binascii.unhexlify(value.rjust(2 * size, "0"))
    except binascii.Error:
        raise _Invalid(f"{field} is not hex: {json.dumps(value)[:40]}") from None


def _micros(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Invalid(f"{field} must be a non-negative integer (microseconds)")
    return value


def _endpoint(span: dict[str, Any], field: str) -> dict[str, Any]:
    value = span.get(field) or {}
    if not isinstance(value, dict):
        raise _Invalid(f"{field} must be an object")
    return value


def _tags(span: dict[str, Any]) -> dict[str, str]:
    tags = span.get("tags") or {}
    if not isinstance(tags, dict):
        raise _Invalid("tags must be an object")
    out = {}
    for key, value in tags.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool | int | float):  # lenient: zipkin2 wants strings
            out[key] = json.dumps(value)
        elif value is not None:
            raise _Invalid(f"tag {json.dumps(key)} must be a string")
    return out


def _status(tags: dict[str, str]) -> bytes:
    code: Any = 0  # the generated stub types Status.code as its enum
    message = ""
    if "otel.status_code" in tags:
        code = _STATUS_NAMES.get(tags.pop("otel.status_code"), 0)
        message = tags.pop("otel.status_description", "")
    if "error" in tags:
        error = tags.pop("error")
        code = StatusCode.ERROR
        message = message or ("" if error in ("", "true") else error)
    return Status(code=code, message=message).SerializeToString() if code or message else b""


def _span(span: Any) -> tuple[tuple[str, str, str], SpanFields]:
    """((service, scope name, scope version), span fields) of one Zipkin span."""
    if not isinstance(span, dict):
        raise _Invalid("must be an object")
    trace_id = _hex_id(span, "traceId", 16)
    span_id = _hex_id(span, "id", 8)
    parent = _hex_id(span, "parentId", 8, required=False)
    kind_name = span.get("kind")
    tags = _tags(span)
    if kind_name is None:
        kind = SpanKind.INTERNAL if tags.pop("span.kind", "") == "internal" else 0
    elif kind_name in _KINDS:
        kind = _KINDS[kind_name]
    else:
        raise _Invalid(f"kind must be CLIENT, SERVER, PRODUCER or CONSUMER, got {kind_name!r}")
    name = span.get("name") or ""
    if not isinstance(name, str):
        raise _Invalid("name must be a string")
    start = _micros(span, "timestamp") * 1000
    end = start + _micros(span, "duration") * 1000
    local, remote = _endpoint(span, "localEndpoint"), _endpoint(span, "remoteEndpoint")
    service = local.get("serviceName") or ""
    scope_name = next((tags.pop(k) for k in _SCOPE_NAME if k in tags), "")
    scope_version = next((tags.pop(k) for k in _SCOPE_VERSION if k in tags), "")
    for k in (*_SCOPE_NAME, *_SCOPE_VERSION):
        tags.pop(k, None)
    trace_state = tags.pop("w3c.tracestate", "")
    status = _status(tags)
    attrs: dict[str, str | int | bool] = dict(tags)
    _address(attrs, local, "network.local")
    _address(attrs, remote, "network.peer")
    if remote.get("serviceName"):
        attrs.setdefault("peer.service", str(remote["serviceName"]))
    if kind in (SpanKind.CLIENT, SpanKind.PRODUCER) and "network.peer.address" in attrs:
        attrs.setdefault("server.address", attrs["network.peer.address"])
        if "network.peer.port" in attrs:
            attrs.setdefault("server.port", attrs["network.peer.port"])
    for flag in ("debug", "shared"):
        if span.get(flag) is True:
            attrs[f"zipkin.{flag}"] = True
    fields: SpanFields = (
        trace_id, span_id, b"" if parent == span_id else parent, trace_state, 0, name, kind,
        start, end, status, [_kv(k, v) for k, v in attrs.items()], 0,
        _annotations(span), 0, (), 0,
    )  # fmt: skip
    return (str(service), scope_name, scope_version), fields


def _address(attrs: dict[str, str | int | bool], endpoint: dict[str, Any], prefix: str) -> None:
    address = endpoint.get("ipv4") or endpoint.get("ipv6")
    if address:
        attrs.setdefault(f"{prefix}.address", str(address))
    port = endpoint.get("port")
    if isinstance(port, int) and not isinstance(port, bool) and port > 0:
        attrs.setdefault(f"{prefix}.port", port)


def _annotations(span: dict[str, Any]) -> list[_Event]:
    annotations = span.get("annotations") or []
    if not isinstance(annotations, list):
        raise _Invalid("annotations must be a list")
    events = []
    for a in annotations:
        if not isinstance(a, dict) or not isinstance(a.get("value"), str):
            raise _Invalid("an annotation must be an object with a string value")
        events.append(_Event(_micros(a, "timestamp") * 1000, a["value"], (), 0))
    return events


def decode_zipkin_json(body: bytes) -> DecodeResult:
    """Decode a Zipkin v2 JSON list of spans.

    Invalid spans are refused and counted (message ``span <i>: <why>``, ``i``
    the position in the list), the rest kept. Thread-safe; CPU-bound, no I/O.

    Raises:
        DecodeError: the body is not JSON or not a list.
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, list):
        raise DecodeError(f"Zipkin v2 body must be a list of spans, got {type(doc).__name__}")
    builder = SpanBatchBuilder(OTLP_WIRE)
    groups: dict[tuple[str, str, str], int] = {}
    origin: list[int] = []  # position in the list of each span given to the builder
    invalid: list[tuple[int, str]] = []
    for i, item in enumerate(doc):
        try:
            key, fields = _span(item)
        except _Invalid as exc:
            invalid.append((i, str(exc)))
            continue
        group = groups.get(key)
        if group is None:
            service, scope_name, scope_version = key
            resource = decode_attributes([_kv("service.name", service)] if service else [])
            group = groups[key] = builder.add_group(
                resource, 0, "", scope_name, scope_version, [], 0, ""
            )
        builder.add_spans(group, [fields])
        origin.append(i)
    return decode_result(
        builder,
        lambda i, problem: f"span {origin[i]}: {problem}",
        [f"span {i}: {problem}" for i, problem in invalid],
    )
