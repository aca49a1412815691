"""An in-memory :class:`~tinct.storage.rum.RumEventStore` for tests.

Same answers as the SQL stores for the same writes (``tests/storage/test_rum.py``
holds all three to that), without a database, so the browser beacon's API and
its browser test run against it in microseconds. Nothing is persisted and
every read is a linear scan.
"""

from __future__ import annotations

import threading

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage.rum import (
    MAX_RUM_EVENT_LIMIT,
    RumEventQuery,
    RumEventRow,
    normalize_rum_batch,
)

__all__ = ["InMemoryRumEventStore"]


class InMemoryRumEventStore:
    """Browser error events in a list. Thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[RumEventRow] = []
        self._closed = False

    def write_rum_events(self, batch: pa.Table) -> None:
        """Store every event of a RUM_EVENT_SCHEMA batch.

        Raises:
            InvalidBatchError: the batch does not fit RUM_EVENT_SCHEMA.
            StorageError: the store is closed.
        """
        rows = normalize_rum_batch(batch).to_pylist()
        with self._lock:
            if self._closed:
                raise StorageError("in-memory browser event store is closed")
            self._events.extend(rows)

    def find_rum_events(self, query: RumEventQuery) -> list[RumEventRow]:
        """The events ``query`` selects, newest first, as storage.rum.find_rum_events."""
        if query.limit <= 0 or query.end_ns < query.start_ns or query.end_ns < 0:
            return []
        with self._lock:
            if self._closed:
                raise StorageError("in-memory browser event store is closed")
            found = [
                dict(r)
                for r in self._events
                if query.start_ns <= r["time_ns"] <= query.end_ns
                and (not query.app or r["app"] == query.app)
                and (not query.kind or r["kind"] == query.kind)
                and (not query.user_id or r["user_id"] == query.user_id)
            ]
        found.sort(key=lambda r: (-r["time_ns"], r["app"], r["kind"], r["page"], r["message"]))
        return found[: min(query.limit, MAX_RUM_EVENT_LIMIT)]

    def close(self) -> None:
        """Forget everything. Idempotent."""
        with self._lock:
            self._closed = True
            self._events.clear()
