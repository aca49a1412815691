"""Compare OTLP traces independently of tinct's codecs.

Two documents holding the same spans compare equal whatever their grouping
into resources and scopes, the case of their hex ids or how ints are spelled.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

SpanKey = tuple[bytes, bytes, bytes]


def _hex_ids_to_base64(node: Any) -> Any:
    # OTLP JSON carries ids as hex; protobuf's JSON mapping expects base64.
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                out[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                out[k] = _hex_ids_to_base64(v)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def canonical_message(msg: Any) -> Counter[SpanKey]:
    """(resource, scope, span) triples of a TracesData/ExportTraceServiceRequest."""
    out: Counter[SpanKey] = Counter()
    for rs in msg.resource_spans:
        res = rs.resource.SerializeToString(deterministic=True) + rs.schema_url.encode()
        for ss in rs.scope_spans:
            scope = ss.scope.SerializeToString(deterministic=True) + ss.schema_url.encode()
            for span in ss.spans:
                out[(res, scope, span.SerializeToString(deterministic=True))] += 1
    return out


def canonical_spans(traces_data: dict[str, Any]) -> Counter[SpanKey]:
    """Like :func:`canonical_message`, from an OTLP JSON document."""
    return canonical_message(json_format.ParseDict(_hex_ids_to_base64(traces_data), TracesData()))
