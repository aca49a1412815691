"""Encode stored spans back to OTLP: JSON ``TracesData`` (``/api/v3/traces``) or protobuf.

The stored record keeps every attribute's OTLP type next to its text form
(:class:`tinct.spans.ValueType`), so the trip is lossless: spans are regrouped
under identical resources (attributes, dropped count, schema URL) and, inside
them, identical instrumentation scopes, in first-seen order; typed
``AnyValue``s are rebuilt from (type, text).

The JSON follows the OTLP/JSON rules (https://opentelemetry.io/docs/specs/otlp/
#json-protobuf-encoding): ids as lowercase hex, 64-bit integers as decimal
strings, enums as integers, lowerCamelCase names, and fields at their default
value omitted as the proto3 JSON mapping does (no ``parentSpanId`` for a root,
no empty strings, zeros or lists). ``status`` is the exception: SDKs always set
it, so it is always written, ``{}`` when unset.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tinct.spans import ValueType, load_attrs

from .otlp_json import hex_ids_to_base64

__all__ = ["encode_traces_data", "encode_request", "any_value_json"]

_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def any_value_json(vtype: int, text: str) -> dict[str, Any]:
    """The OTLP/JSON ``AnyValue`` of a stored (type, text) pair."""
    if vtype == ValueType.STRING:
        return {"stringValue": text}
    if vtype == ValueType.INT:
        return {"intValue": text}
    if vtype == ValueType.BOOL:
        return {"boolValue": text == "true"}
    if vtype == ValueType.DOUBLE:
        # proto3 JSON spells non-finite doubles as strings; JSON has no NaN.
        return {"doubleValue": text if text in _NON_FINITE else float(text)}
    if vtype == ValueType.BYTES:
        return {"bytesValue": text}
    if vtype in (ValueType.ARRAY, ValueType.KVLIST):
        value: dict[str, Any] = json.loads(text)
        return value
    return {}


def _attributes(keys: list[str], types: list[int], texts: list[str]) -> list[dict[str, Any]]:
    triples = zip(keys, types, texts, strict=True)
    return [{"key": k, "value": any_value_json(t, v)} for k, t, v in triples]


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    """Set ``name`` unless ``value`` is the proto3 default (omitted in JSON)."""
    if value:
        out[name] = value


def _event(time_ns: int, name: str, attrs: str, dropped: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "timeUnixNano", str(time_ns) if time_ns else "")
    _put(out, "name", name)
    _put(out, "attributes", _attributes(*load_attrs(attrs)))
    _put(out, "droppedAttributesCount", dropped)
    return out


def _link(
    trace_id: bytes, span_id: bytes, trace_state: str, flags: int, attrs: str, dropped: int
) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": trace_id.hex(), "spanId": span_id.hex()}
    _put(out, "traceState", trace_state)
    _put(out, "attributes", _attributes(*load_attrs(attrs)))
    _put(out, "droppedAttributesCount", dropped)
    _put(out, "flags", flags)
    return out


def _span(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": row["trace_id"].hex(), "spanId": row["span_id"].hex()}
    _put(out, "traceState", row["trace_state"])
    _put(out, "parentSpanId", row["parent_span_id"].hex())
    _put(out, "flags", row["flags"])
    _put(out, "name", row["name"])
    _put(out, "kind", row["kind"])
    start = row["start_ns"]
    end = start + row["duration_ns"]
    _put(out, "startTimeUnixNano", str(start) if start else "")
    _put(out, "endTimeUnixNano", str(end) if end else "")
    _put(out, "attributes", _attributes(row["attr_keys"], row["attr_types"], row["attr_values"]))
    _put(out, "droppedAttributesCount", row["dropped_attributes_count"])
    events = zip(
        row["event_times"], row["event_names"], row["event_attrs"], row["event_dropped"],
        strict=True,
    )  # fmt: skip
    _put(out, "events", [_event(*e) for e in events])
    _put(out, "droppedEventsCount", row["dropped_events_count"])
    links = zip(
        row["link_trace_ids"], row["link_span_ids"], row["link_trace_states"],
        row["link_flags"], row["link_attrs"], row["link_dropped"], strict=True,
    )  # fmt: skip
    _put(out, "links", [_link(*link) for link in links])
    _put(out, "droppedLinksCount", row["dropped_links_count"])
    # Always present: every OpenTelemetry SDK sets Span.status, so an unset one is
    # the empty message ``{}`` (what protobuf's JSON mapping prints for a set,
    # default-valued message), not an absent field.
    status: dict[str, Any] = {}
    _put(status, "message", row["status_message"])
    _put(status, "code", row["status_code"])
    out["status"] = status
    return out


def _resource_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        tuple(row["resource_keys"]), tuple(row["resource_types"]), tuple(row["resource_values"]),
        row["resource_dropped"], row["resource_schema_url"],
    )  # fmt: skip


def _scope_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["scope_name"], row["scope_version"], tuple(row["scope_keys"]),
        tuple(row["scope_types"]), tuple(row["scope_values"]), row["scope_dropped"],
        row["scope_schema_url"],
    )  # fmt: skip


def encode_traces_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Stored span rows (SPAN_SCHEMA keys, plain values) as an OTLP/JSON ``TracesData`` dict.

    Spans keep their order inside each (resource, scope) group.
    """
    groups: dict[tuple[Any, ...], dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
    for row in rows:
        groups.setdefault(_resource_key(row), {}).setdefault(_scope_key(row), []).append(row)
    resource_spans = []
    for (keys, types, texts, dropped, schema_url), scopes in groups.items():
        resource: dict[str, Any] = {}
        _put(resource, "attributes", _attributes(list(keys), list(types), list(texts)))
        _put(resource, "droppedAttributesCount", dropped)
        scope_spans = []
        for (name, version, skeys, stypes, stexts, sdropped, sschema_url), spans in scopes.items():
            scope: dict[str, Any] = {}
            _put(scope, "name", name)
            _put(scope, "version", version)
            _put(scope, "attributes", _attributes(list(skeys), list(stypes), list(stexts)))
            _put(scope, "droppedAttributesCount", sdropped)
            entry: dict[str, Any] = {}
            _put(entry, "scope", scope)
            entry["spans"] = [_span(row) for row in spans]
            _put(entry, "schemaUrl", sschema_url)
            scope_spans.append(entry)
        out: dict[str, Any] = {}
        _put(out, "resource", resource)
        out["scopeSpans"] = scope_spans
        _put(out, "schemaUrl", schema_url)
        resource_spans.append(out)
    return {"resourceSpans": resource_spans}


def encode_request(rows: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    """The same as :func:`encode_traces_data`, as a protobuf ``ExportTraceServiceRequest``."""
    doc = encode_traces_data(rows)
    hex_ids_to_base64(doc)  # protobuf's JSON parser reads bytes as base64
    return json_format.ParseDict(doc, ExportTraceServiceRequest())
