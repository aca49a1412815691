"""Encode stored spans as a trace in the Jaeger query API v1 JSON shape.

This is what Jaeger's query service returns from ``/api/traces/<id>`` (one
element of ``data``) and what jaeger-ui and Grafana's Jaeger data source read:
Jaeger's ``model/json`` structs as produced by ``model/converter/json``
(``FromDomain``) after the OTLP-to-Jaeger translation of
opentelemetry-collector-contrib ``pkg/translator/jaeger``
(``traces_to_jaegerproto.go``). Following that translator:

* span tags are ``otel.scope.name`` / ``otel.scope.version`` first, then the
  span attributes, ``span.kind``, ``otel.status_code`` (``OK``/``ERROR``),
  ``error=true`` for ERROR, ``otel.status_description`` and ``w3c.tracestate``;
* the parent becomes the first ``CHILD_OF`` reference; links become
  ``FOLLOWS_FROM`` references unless a link has ``opentracing.ref_type =
  child_of`` (a link to the parent itself only retypes that reference);
* events become logs whose fields start with ``event`` = the event name
  (unless the event has an ``event`` attribute), then its attributes;
* a process per distinct resource, ``serviceName`` and the other resource
  attributes as tags; processes are numbered ``p1``, ``p2``... in span order.

Tag types are Jaeger's ``string``, ``bool``, ``int64``, ``float64`` and
``binary`` (base64, as Go's encoding/json writes []byte); int64 values beyond
JavaScript's safe range are sent as strings (``FromDomain`` does the same);
arrays and maps become strings holding their plain JSON, like pdata's
``AsString``. Times are microseconds.
"""

from __future__ import annotations

import json
from typing import Any

from tinct.spans import SpanKind, StatusCode, ValueType, load_attrs, plain_any_value

__all__ = ["encode_trace", "jaeger_tags"]

_JS_SAFE = (1 << 53) - 1
_KINDS = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_NON_FINITE = ("NaN", "Infinity", "-Infinity")  # JSON has no such numbers: sent as text


def _tag(key: str, vtype: int, text: str) -> dict[str, Any]:
    value: Any
    if vtype == ValueType.BOOL:
        kind, value = "bool", text == "true"
    elif vtype == ValueType.INT:
        kind, value = "int64", int(text)
        if not -_JS_SAFE <= value <= _JS_SAFE:
            value = text
    elif vtype == ValueType.DOUBLE:
        kind, value = "float64", float(text) if text not in _NON_FINITE else text
    elif vtype == ValueType.BYTES:
        kind, value = "binary", text
    elif vtype in (ValueType.ARRAY, ValueType.KVLIST):
        kind = "string"
        value = json.dumps(
            plain_any_value(json.loads(text)), separators=(",", ":"), ensure_ascii=False
        )
    else:
        kind, value = "string", text
    return {"key": key, "type": kind, "value": value}


def jaeger_tags(keys: list[str], types: list[int], texts: list[str]) -> list[dict[str, Any]]:
    """Jaeger tags for stored attributes (key, type code, text)."""
    return [_tag(k, t, v) for k, t, v in zip(keys, types, texts, strict=True)]


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def _span_tags(row: dict[str, Any]) -> list[dict[str, Any]]:
    tags = []
    if row["scope_name"]:
        tags.append(_string("otel.scope.name", row["scope_name"]))
    if row["scope_version"]:
        tags.append(_string("otel.scope.version", row["scope_version"]))
    tags += jaeger_tags(row["attr_keys"], row["attr_types"], row["attr_values"])
    if row["kind"] in _KINDS:
        tags.append(_string("span.kind", _KINDS[row["kind"]]))
    code = row["status_code"]
    if code == StatusCode.OK:
        tags.append(_string("otel.status_code", "OK"))
    elif code == StatusCode.ERROR:
        tags.append(_string("otel.status_code", "ERROR"))
        tags.append({"key": "error", "type": "bool", "value": True})
    if row["status_message"]:
        tags.append(_string("otel.status_description", row["status_message"]))
    if row["trace_state"]:
        tags.append(_string("w3c.tracestate", row["trace_state"]))
    return tags


def _references(row: dict[str, Any]) -> list[dict[str, Any]]:
    trace_id = row["trace_id"].hex()
    refs = []
    parent = row["parent_span_id"]
    if parent:
        refs.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent.hex()})
    for link_trace, link_span, attrs in zip(
        row["link_trace_ids"], row["link_span_ids"], row["link_attrs"], strict=True
    ):
        keys, _, texts = load_attrs(attrs)
        ref_type = dict(zip(keys, texts, strict=True)).get("opentracing.ref_type")
        ref = {
            "refType": "CHILD_OF" if ref_type == "child_of" else "FOLLOWS_FROM",
            "traceID": link_trace.hex(),
            "spanID": link_span.hex(),
        }
        if parent and link_trace == row["trace_id"] and link_span == parent:
            refs[0]["refType"] = ref["refType"]
        else:
            refs.append(ref)
    return refs


def _logs(row: dict[str, Any]) -> list[dict[str, Any]]:
    logs = []
    for time_ns, name, attrs in zip(
        row["event_times"], row["event_names"], row["event_attrs"], strict=True
    ):
        keys, types, texts = load_attrs(attrs)
        fields = [_string("event", name)] if name and "event" not in keys else []
        fields += jaeger_tags(keys, types, texts)
        logs.append({"timestamp": time_ns // 1000, "fields": fields})
    return logs


def encode_trace(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One trace's stored span rows as a Jaeger v1 trace ``{traceID, spans, processes, warnings}``.

    Spans keep the given order; ids are 32/16 lowercase hex characters.
    """
    processes: dict[tuple[Any, ...], str] = {}
    process_json: dict[str, Any] = {}
    spans = []
    for row in rows:
        key = (
            row["service"], tuple(row["resource_keys"]), tuple(row["resource_types"]),
            tuple(row["resource_values"]),
        )  # fmt: skip
        pid = processes.get(key)
        if pid is None:
            pid = processes[key] = f"p{len(processes) + 1}"
            keep = [i for i, k in enumerate(row["resource_keys"]) if k != "service.name"]
            process_json[pid] = {
                "serviceName": row["service"],
                "tags": jaeger_tags(
                    [row["resource_keys"][i] for i in keep],
                    [row["resource_types"][i] for i in keep],
                    [row["resource_values"][i] for i in keep],
                ),
            }
        spans.append(
            {
                "traceID": row["trace_id"].hex(),
                "spanID": row["span_id"].hex(),
                "operationName": row["name"],
                "references": _references(row),
                # W3C trace-flags (low byte): bit 0 "sampled" is also Jaeger's sampled flag.
                "flags": row["flags"] & 0xFF,
                "startTime": row["start_ns"] // 1000,
                "duration": row["duration_ns"] // 1000,
                "tags": _span_tags(row),
                "logs": _logs(row),
                "processID": pid,
                "warnings": None,
            }
        )
    trace_id = rows[0]["trace_id"].hex() if rows else ""
    return {"traceID": trace_id, "spans": spans, "processes": process_json, "warnings": None}
