"""An in-memory :class:`~tinct.storage.topology.TopologyStore` for tests.

It answers like the SQL stores (the topology tests run against all three):
edges are summed per node pair over the minutes a query covers, pending
spans are replaced whole by each save.
"""

from __future__ import annotations

import threading
from collections import Counter

import pyarrow as pa

from tinct.storage.topology import EDGE_SCHEMA, PENDING_SCHEMA, EdgeQuery, EdgeRow

__all__ = ["InMemoryTopologyStore"]

_MINUTE_MS = 60_000


class InMemoryTopologyStore:
    """Topology edges and pending spans in lists. Thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edges: list[dict[str, object]] = []
        self._pending = PENDING_SCHEMA.empty_table()
        self._checkpoint = 0

    def write_topology_edges(self, batch: pa.Table) -> None:
        rows = batch.select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA).to_pylist()
        with self._lock:
            self._edges.extend(rows)

    def topology_edges(self, query: EdgeQuery) -> list[EdgeRow]:
        first = query.start_ms - query.start_ms % _MINUTE_MS
        wanted = set(query.services)
        sums: dict[tuple[str, ...], EdgeRow] = {}
        with self._lock:
            rows = list(self._edges)
        for r in rows:
            if not first <= r["minute_ms"] <= query.end_ms:  # type: ignore[operator]
                continue
            if query.dye is not None and r["dye"] != query.dye:
                continue
            if wanted and r["source_service"] not in wanted and r["target_service"] not in wanted:
                continue
            si = str(r["source_interface"]) if query.interfaces else ""
            ti = str(r["target_interface"]) if query.interfaces else ""
            key = (
                str(r["source_service"]), si, str(r["source_kind"]),
                str(r["target_service"]), ti, str(r["target_kind"]),
            )  # fmt: skip
            row = sums.get(key)
            if row is None:
                row = sums[key] = EdgeRow(*key, 0, 0, 0.0, 0.0, {})
            row.calls += int(r["calls"])  # type: ignore[call-overload]
            row.errors += int(r["errors"])  # type: ignore[call-overload]
            row.weighted_calls += float(r["weighted_calls"])  # type: ignore[arg-type]
            row.weighted_errors += float(r["weighted_errors"])  # type: ignore[arg-type]
            latency = Counter(row.latency)
            latency.update(dict(zip(r["latency_buckets"], r["latency_counts"], strict=True)))  # type: ignore[call-overload]
            row.latency = {b: c for b, c in latency.items() if c}
        return [sums[k] for k in sorted(sums)]

    def save_topology_pending(self, batch: pa.Table, checkpoint: int) -> None:
        table = batch.select(PENDING_SCHEMA.names).cast(PENDING_SCHEMA)
        with self._lock:
            self._pending, self._checkpoint = table, checkpoint

    def load_topology_pending(self) -> tuple[pa.Table, int]:
        with self._lock:
            return self._pending, self._checkpoint
