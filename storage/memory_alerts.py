"""An in-memory :class:`~tinct.storage.alert_history.AlertHistoryStore` for tests.

Same answers as the SQL stores for the same writes
(``tests/storage/test_alert_history.py`` holds all three to that), without a
database, so the evaluator and the alerts API are tested in microseconds.
Nothing is persisted and every read is a linear scan.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tinct.errors import StorageError
from tinct.storage.alert_history import (
    MAX_ALERT_EVENT_LIMIT,
    AlertEvent,
    AlertEventQuery,
    alert_events_table,
    to_alert_events,
)

__all__ = ["InMemoryAlertHistoryStore"]


class InMemoryAlertHistoryStore:
    """Alert transitions in a list. Thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[AlertEvent] = []
        self._closed = False

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None:
        """Store ``events`` (as the SQL stores would give them back).

        Raises:
            StorageError: the store is closed.
        """
        # Through the Arrow table, so labels come back sorted like the SQL stores'.
        stored = to_alert_events(alert_events_table(events))
        with self._lock:
            if self._closed:
                raise StorageError("in-memory alert history store is closed")
            self._events.extend(stored)

    def find_alert_events(self, query: AlertEventQuery) -> list[AlertEvent]:
        """The events ``query`` selects, newest first, as the SQL stores."""
        if query.limit <= 0 or query.end_ms < query.start_ms:
            return []
        with self._lock:
            if self._closed:
                raise StorageError("in-memory alert history store is closed")
            found = [
                e
                for e in self._events
                if query.start_ms <= e.time_ms <= query.end_ms
                and (not query.alertname or e.alertname == query.alertname)
            ]
        found.sort(key=lambda e: (-e.time_ms, e.alertname, e.fingerprint, e.state))
        return found[: min(query.limit, MAX_ALERT_EVENT_LIMIT)]

    def close(self) -> None:
        """Forget everything. Idempotent."""
        with self._lock:
            self._closed = True
            self._events.clear()
