"""The log record every layer agrees on, the logs' counterpart of :mod:`tinct.spans`.

The OTLP logs receivers decode ``ExportLogsServiceRequest`` bodies into a
columnar batch with :data:`LOG_SCHEMA`; ``tinct.storage`` writes such batches
into the logs table and hands records back as plain dicts with the same keys
(:data:`LogRow`); ``GET /api/tinct/logs`` turns those into JSON with
:func:`plain_value`. A receiver never knows about SQL, the store never knows
about a wire format.

Values keep their OTLP type the way span attributes do: a
:class:`~tinct.spans.ValueType` code beside the text form of
:func:`tinct.spans.value_text` (arrays and key/value lists as their OTLP JSON).
The body is an ``AnyValue`` too (OTLP ``LogRecord.body``), so it is stored the
same way: ``body_type`` and ``body``. Ids are raw bytes, empty when the record
was not emitted inside a span (OTLP: "optional" trace and span ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tinct.spans import ValueType, plain_any_value, typed_attribute_fields

__all__ = [
    "LOG_SCHEMA",
    "LOG_COLUMNS",
    "LogQuery",
    "LogRow",
    "MAX_LOG_LIMIT",
    "plain_value",
]

# A stored log record: keys are LOG_COLUMNS, values plain Python.
LogRow = dict[str, Any]

# Most records one query returns (GET /api/tinct/logs's limit bound).
MAX_LOG_LIMIT = 10_000

LOG_SCHEMA = pa.schema(
    [
        # When: OTLP time_unix_nano, or observed_time_unix_nano when the
        # source gave no time (the OTLP logs data model's rule for "Timestamp").
        pa.field("time_ns", pa.uint64(), nullable=False),
        pa.field("observed_time_ns", pa.uint64(), nullable=False),
        # Correlation: 16 / 8 raw bytes, or empty.
        pa.field("trace_id", pa.binary(), nullable=False),
        pa.field("span_id", pa.binary(), nullable=False),
        pa.field("flags", pa.uint32(), nullable=False),
        # What.
        pa.field("severity_number", pa.uint8(), nullable=False),
        pa.field("severity_text", pa.string(), nullable=False),
        pa.field("body_type", pa.uint8(), nullable=False),
        pa.field("body", pa.string(), nullable=False),
        pa.field("event_name", pa.string(), nullable=False),
        # Copies for search (the arrays below keep the originals).
        pa.field("service", pa.string(), nullable=False),
        pa.field("dye", pa.string(), nullable=False),
        # Record attributes.
        *typed_attribute_fields("attr"),
        pa.field("dropped_attributes_count", pa.uint32(), nullable=False),
        # Resource.
        *typed_attribute_fields("resource"),
        # Instrumentation scope.
        pa.field("scope_name", pa.string(), nullable=False),
        pa.field("scope_version", pa.string(), nullable=False),
    ]
)

LOG_COLUMNS: tuple[str, ...] = tuple(LOG_SCHEMA.names)


@dataclass(frozen=True)
class LogQuery:
    """Which log records to read.

    Attributes:
        trace_id: 16 raw bytes; records of that trace.
        span_id: 8 raw bytes to keep only that span's records; b"" for all.
        limit: at most this many records, the oldest first.
    """

    trace_id: bytes
    span_id: bytes = b""
    limit: int = 1000


_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


def plain_value(vtype: int, text: str) -> Any:
    """A stored (type, text) value as a plain JSON value.

    Strings, booleans, integers and doubles become JSON strings, booleans and
    numbers (non-finite doubles stay strings: JSON has no NaN); bytes stay
    base64 text; arrays and key/value lists become JSON arrays and objects
    (the shape of the OpenTelemetry Collector's ``pcommon.Value.AsRaw``);
    an empty value is ``null``.
    """
    if vtype == ValueType.STRING:
        return text
    if vtype == ValueType.BOOL:
        return text == "true"
    if vtype == ValueType.INT:
        return int(text)
    if vtype == ValueType.DOUBLE:
        return _NON_FINITE.get(text) or float(text)
    if vtype == ValueType.BYTES:
        return text
    if vtype in (ValueType.ARRAY, ValueType.KVLIST):
        return plain_any_value(json.loads(text))
    return None
