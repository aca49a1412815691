"""Decode OTLP log exports (protobuf, OTLP/JSON) into :data:`~tinct.logs.LOG_SCHEMA` batches.

``ExportLogsServiceRequest`` (opentelemetry-proto ``collector/logs/v1``) is
parsed with the generated classes and read record by record: logs arrive at a
small fraction of the spans' volume, so none of the spans' wire-level tricks
(:mod:`tracing.otlp_wire`) are needed. OTLP/JSON differs from protobuf's own
JSON mapping only in its ids, which are hex instead of base64
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding); they are
rewritten before ``json_format`` parses the document.

Validation follows the spans' partial-success rules: a record with a bad id
is refused (counted in ``rejected_log_records`` with a message naming it),
the rest kept. Unlike a span, a log record may have no trace or span id at
all (the OTLP logs data model makes both optional); all-zero ids mean the same.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from google.protobuf import json_format, message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from tinct.errors import DecodeError
from tinct.logs import LOG_SCHEMA
from tinct.tracing.dye import DYE_ATTRIBUTE

from .batch import UNKNOWN_SERVICE, DecodeResult
from .otlp_wire import any_value_text

__all__ = ["decode_logs_protobuf", "decode_logs_json", "decode_logs_request"]

_MAX_REASONS = 10
_STRING = 1  # tinct.spans.ValueType.STRING
_ZERO_IDS = (bytes(16), bytes(8))
_MAX_U64 = 2**64 - 1


def _attrs(kvs: Any) -> tuple[list[str], list[int], list[str]]:
    keys, types, texts = [], [], []
    for kv in kvs:
        vtype, text = any_value_text(kv.value)
        keys.append(kv.key)
        types.append(vtype)
        texts.append(text)
    return keys, types, texts


def _string_attr(keys: list[str], types: list[int], texts: list[str], name: str) -> str | None:
    for k, t, v in zip(keys, types, texts, strict=True):
        if k == name and t == _STRING:
            return v
    return None


def _id(raw: bytes, size: int, what: str) -> tuple[bytes, str]:
    """(the id, "" or the problem): empty and all-zero ids both mean "none"."""
    if not raw or raw == _ZERO_IDS[0 if size == 16 else 1]:
        return b"", ""
    if len(raw) != size:
        return b"", f"{what} must be {size} bytes, got {len(raw)}"
    return raw, ""


def decode_logs_request(
    req: ExportLogsServiceRequest,
    id_problems: dict[tuple[int, int, int], str] | None = None,
    *,
    now_ns: Callable[[], int] = time.time_ns,
) -> DecodeResult:
    """Decode an already-parsed request (e.g. a gRPC servicer's argument).

    Args:
        req: the request.
        id_problems: problems found before parsing, by (resource, scope,
            record) index (OTLP/JSON ids that are not hex); those records are
            refused.
        now_ns: receive time, used when a record has neither time nor
            observed time.

    Returns:
        The valid records as a LOG_SCHEMA table (``batch``), the refused count
        and a message naming the first ten refusals.
    """
    rows: dict[str, list[Any]] = {name: [] for name in LOG_SCHEMA.names}
    reasons: list[str] = []
    rejected = 0
    received = 0
    for ri, rl in enumerate(req.resource_logs):
        rkeys, rtypes, rtexts = _attrs(rl.resource.attributes)
        service = _string_attr(rkeys, rtypes, rtexts, "service.name") or UNKNOWN_SERVICE
        for si, sl in enumerate(rl.scope_logs):
            for li, record in enumerate(sl.log_records):
                problem = (id_problems or {}).get((ri, si, li), "")
                trace_id, trace_problem = _id(record.trace_id, 16, "trace_id")
                span_id, span_problem = _id(record.span_id, 8, "span_id")
                problem = problem or trace_problem or span_problem
                if not 0 <= record.severity_number <= 24:
                    problem = problem or f"severity_number {record.severity_number} is not 0-24"
                if problem:
                    rejected += 1
                    if len(reasons) < _MAX_REASONS:
                        reasons.append(f"log record {li} of scope {si} of resource {ri}: {problem}")
                    continue
                keys, types, texts = _attrs(record.attributes)
                body_type, body = any_value_text(record.body)
                when = record.time_unix_nano or record.observed_time_unix_nano
                if not when:
                    received = received or now_ns()
                    when = received
                rows["time_ns"].append(min(when, _MAX_U64))
                rows["observed_time_ns"].append(record.observed_time_unix_nano)
                rows["trace_id"].append(trace_id)
                rows["span_id"].append(span_id)
                rows["flags"].append(record.flags)
                rows["severity_number"].append(record.severity_number)
                rows["severity_text"].append(record.severity_text)
                rows["body_type"].append(body_type)
                rows["body"].append(body)
                rows["event_name"].append(record.event_name)
                rows["service"].append(service)
                rows["dye"].append(_string_attr(keys, types, texts, DYE_ATTRIBUTE) or "")
                rows["attr_keys"].append(keys)
                rows["attr_types"].append(types)
                rows["attr_values"].append(texts)
                rows["dropped_attributes_count"].append(record.dropped_attributes_count)
                rows["resource_keys"].append(rkeys)
                rows["resource_types"].append(rtypes)
                rows["resource_values"].append(rtexts)
                rows["scope_name"].append(sl.scope.name)
                rows["scope_version"].append(sl.scope.version)
    batch = pa.Table.from_pydict(rows, schema=LOG_SCHEMA)
    more = rejected - len(reasons)
    text = "; ".join(reasons) + (f"; and {more} more" if more else "")
    return DecodeResult(batch, rejected, text)


def decode_logs_protobuf(body: bytes) -> DecodeResult:
    """Decode a protobuf ``ExportLogsServiceRequest`` (OTLP/HTTP body or gRPC bytes).

    Thread-safe; CPU-bound, no I/O.

    Raises:
        DecodeError: the body is not a valid ``ExportLogsServiceRequest``.
    """
    try:
        req = ExportLogsServiceRequest.FromString(body)
    except message.DecodeError as exc:
        raise DecodeError(f"body is not a valid ExportLogsServiceRequest: {exc}") from exc
    return decode_logs_request(req)


def decode_logs_json(body: bytes) -> DecodeResult:
    """Decode an OTLP/JSON ``ExportLogsServiceRequest`` body (hex ids).

    A record whose id is not hex is refused, the rest kept. Thread-safe.

    Raises:
        DecodeError: the body is not JSON, not an object, or not shaped like
            an ``ExportLogsServiceRequest``.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError("body is not an ExportLogsServiceRequest: not a JSON object")
    problems = _hex_ids_to_base64(doc)
    req = ExportLogsServiceRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError) as exc:
        raise DecodeError(f"body is not a valid ExportLogsServiceRequest: {exc}") from exc
    return decode_logs_request(req, problems)


def _hex_ids_to_base64(doc: dict[str, Any]) -> dict[tuple[int, int, int], str]:
    """Rewrite, in place, the records' hex ``traceId``/``spanId`` as base64.

    A malformed id is removed and its record's problem returned, keyed by
    (resource, scope, record) index; parts of the wrong JSON type are left
    for ``json_format`` to refuse.
    """
    problems: dict[tuple[int, int, int], str] = {}
    for ri, rl in enumerate(_items(doc, "resourceLogs", "resource_logs")):
        for si, sl in enumerate(_items(rl, "scopeLogs", "scope_logs")):
            for li, record in enumerate(_items(sl, "logRecords", "log_records")):
                if not isinstance(record, dict):
                    continue
                for camel, snake in (("traceId", "trace_id"), ("spanId", "span_id")):
                    name = camel if camel in record else snake
                    value = record.get(name)
                    if value is None:
                        continue
                    try:
                        if not isinstance(value, str) or not value.isascii():
                            raise ValueError(value)
                        record[name] = base64.b64encode(binascii.unhexlify(value)).decode()
                    except (ValueError, binascii.Error):
                        problems.setdefault(
                            (ri, si, li),
                            f"{snake} is not a hex string: {json.dumps(value)[:40]}",
                        )
                        del record[name]
    return problems


def _items(obj: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    value = obj.get(camel, obj.get(snake))
    return value if isinstance(value, list) else []
