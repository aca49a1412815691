"""Build SPAN_SCHEMA batches from dicts, with a default for every column.

Independent of the OTLP decoder on purpose: storage tests say exactly which
column values they store.
"""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa

from tinct.spans import SPAN_SCHEMA

# 2017-07-14T02:40:00Z, a fixed, partition-friendly base time.
BASE_NS = 1_500_000_000 * 10**9
MS = 10**6
DAY_NS = 86_400 * 10**9

_counter = itertools.count(1)


def _default(field: pa.Field) -> Any:
    t = field.type
    if pa.types.is_list(t):
        return []
    if pa.types.is_binary(t):
        return b""
    if pa.types.is_string(t):
        return ""
    if pa.types.is_floating(t):
        return 0.0
    return 0


def trace_id(n: int | None = None) -> bytes:
    """A distinct 16-byte trace id (deterministic when ``n`` is given)."""
    return (n if n is not None else next(_counter)).to_bytes(16, "big")


def span_id(n: int | None = None) -> bytes:
    """A distinct 8-byte span id."""
    return (n if n is not None else next(_counter)).to_bytes(8, "big")


def span(**values: Any) -> dict[str, Any]:
    """One span row: defaults for every SPAN_SCHEMA column, overridden by ``values``."""
    unknown = set(values) - set(SPAN_SCHEMA.names)
    if unknown:
        raise KeyError(f"not SPAN_SCHEMA columns: {sorted(unknown)}")
    row = {f.name: _default(f) for f in SPAN_SCHEMA}
    row.update(trace_id=trace_id(), span_id=span_id(), service="svc", name="op", start_ns=BASE_NS)
    row.update(values)
    return row


def batch(*rows: dict[str, Any]) -> pa.Table:
    """A SPAN_SCHEMA table of ``rows``."""
    return pa.Table.from_pylist(list(rows), schema=SPAN_SCHEMA)
