"""The demo services' storage: SQLite tables and a Redis cache (or a dict).

Redis calls are traced by OpenTelemetry's redis instrumentation (switched on
by ``instrument_clients``); the standard library's ``sqlite3`` has no
instrumentation, so :class:`SqliteDatabase` opens a client span per statement
with the semantic-convention database attributes (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.query.text``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["Cache", "MemoryCache", "RedisCache", "SqliteDatabase", "open_cache"]

_tracer = trace.get_tracer("tinct.demo.stores")


class Cache(Protocol):
    """The little of Redis the demo uses."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryCache:
    """A dict standing in for Redis when no redis-server is there. Thread-safe."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or item[1] < time.monotonic():
            return None
        return item[0]

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._items[key] = (value, time.monotonic() + ttl_seconds)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisCache:
    """A real Redis (``redis`` package); connection errors propagate to the request."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=2)

    def get(self, key: str) -> str | None:
        value = self._client.get(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._client.set(key, value, ex=ttl_seconds)

    def delete(self, key: str) -> None:
        self._client.delete(key)


def open_cache(url: str | None) -> Cache:
    """A Redis cache at ``url``, else (no URL, or no ``redis`` package) a dict."""
    if url is None:
        return MemoryCache()
    try:
        return RedisCache(url)
    except ImportError:
        return MemoryCache()


class SqliteDatabase:
    """One SQLite file; each statement runs in a client span. Thread-safe.

    A connection per call: sqlite3 connections are cheap to open and must
    not be shared across threads without a lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        return connection

    def script(self, sql: str) -> None:
        """Run DDL and seed statements, untraced (start-up)."""
        with self._connect() as connection:
            connection.executescript(sql)
        connection.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one statement in a span; its rows as dicts (none for writes)."""
        operation = sql.split(None, 1)[0].upper()
        attributes = {
            "db.system.name": "sqlite",
            "db.system": "sqlite",
            "db.namespace": self.path.name,
            "db.operation.name": operation,
            "db.query.text": sql,
        }
        with _tracer.start_as_current_span(
            f"{operation} {self.path.stem}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                connection = self._connect()
                try:
                    with connection:
                        rows = connection.execute(sql, params).fetchall()
                finally:
                    connection.close()
            except sqlite3.Error as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
        return [dict(row) for row in rows]
