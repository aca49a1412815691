"""Test helpers for receivers and query APIs: a recording writer and span rows.

The in-memory store is ``tinct.storage.InMemorySpanStore`` (storage's own,
held to the same read tests as the ClickHouse stores).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tinct.spans import SPAN_SCHEMA, tag_entry
from tinct.storage import InMemorySpanStore, QueueFullError

__all__ = ["ListWriter", "span_row", "span_table"]

SpanRow = dict[str, Any]


class ListWriter:
    """A batch writer that keeps every submitted batch; ``full`` makes it refuse."""

    def __init__(self, store: InMemorySpanStore | None = None) -> None:
        self.batches: list[pa.Table] = []
        self.store = store
        self.full = False
        self.closed = False

    def submit(self, batch: pa.Table) -> None:
        if self.full:
            raise QueueFullError("the write queue is full")
        self.batches.append(batch)
        if self.store is not None:
            self.store.write_spans(batch)

    @property
    def pending_rows(self) -> int:
        return 0

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


_DEFAULTS: dict[str, Any] = {
    "trace_id": b"\x00" * 15 + b"\x01",
    "span_id": b"\x00" * 7 + b"\x01",
    "parent_span_id": b"",
    "trace_state": "",
    "flags": 0,
    "service": "svc",
    "name": "op",
    "kind": 2,
    "start_ns": 1_700_000_000_000_000_000,
    "duration_ns": 1_000_000,
    "status_code": 0,
    "status_message": "",
    "http_route": "",
    "http_method": "",
    "http_status_code": 0,
    "peer_service": "",
    "server_address": "",
    "db_system": "",
    "enduser_id": "",
    "dye": "",
    "sampling_probability": 0.0,
    "resource_dropped": 0,
    "resource_schema_url": "",
    "scope_name": "",
    "scope_version": "",
    "scope_dropped": 0,
    "scope_schema_url": "",
    "dropped_attributes_count": 0,
    "dropped_events_count": 0,
    "dropped_links_count": 0,
}


def span_row(**fields: Any) -> SpanRow:
    """A complete span row: SPAN_SCHEMA defaults (empty lists, zeros) plus ``fields``.

    ``attrs={"k": "v"}`` fills the span attribute arrays and the ``tags``
    search column with string attributes.
    """
    attrs: dict[str, str] = fields.pop("attrs", {})
    row: SpanRow = {}
    for field in SPAN_SCHEMA:
        if field.name in _DEFAULTS:
            row[field.name] = _DEFAULTS[field.name]
        elif pa.types.is_list(field.type):
            row[field.name] = []
        else:
            raise AssertionError(f"no default for {field.name}")
    row["service"] = fields.get("service", row["service"])
    row["attr_keys"] = list(attrs)
    row["attr_types"] = [1] * len(attrs)
    row["attr_values"] = list(attrs.values())
    row["resource_keys"] = ["service.name"]
    row["resource_types"] = [1]
    row["resource_values"] = [row["service"]]
    row["tags"] = [tag_entry(k, v) for k, v in attrs.items()] + [
        tag_entry("service.name", row["service"])
    ]
    row.update(fields)
    return row


def span_table(rows: list[SpanRow]) -> pa.Table:
    """A SPAN_SCHEMA table of ``rows``."""
    return pa.Table.from_pylist(rows, schema=SPAN_SCHEMA)
