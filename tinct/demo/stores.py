"""The demo services' storage: PostgreSQL (or SQLite) tables and a Redis cache (or a dict).

:class:`PostgresDatabase` talks to the demo's PostgreSQL with psycopg (v3); its
statements are traced by ``instrument_clients`` (tinct's psycopg wrapper,
tracing.dbapi, when OpenTelemetry's is not installed). Redis calls are traced
by OpenTelemetry's redis instrumentation. Without PostgreSQL the demo uses
:class:`SqliteDatabase`: the standard library's ``sqlite3`` has no
instrumentation, so it opens a client span per statement with the
semantic-convention database attributes (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.query.text``).

Both take the same SQL, with ``?`` placeholders (:class:`PostgresDatabase`
turns them into psycopg's ``%s``); ``dialect`` says which DDL to use.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = [
    "Cache",
    "Database",
    "MemoryCache",
    "PostgresDatabase",
    "RedisCache",
    "SqliteDatabase",
    "create_postgres_database",
    "open_cache",
]

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


class Database(Protocol):
    """What the demo's handlers use of a database."""

    dialect: str  # "postgresql" or "sqlite"

    def script(self, sql: str) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class SqliteDatabase:
    """One SQLite file; each statement runs in a client span. Thread-safe.

    A connection per call: sqlite3 connections are cheap to open and must
    not be shared across threads without a lock.
    """

    dialect = "sqlite"

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


def create_postgres_database(url: str, name: str, timeout: float = 30.0) -> None:
    """Create database ``name`` (unless there) once PostgreSQL at ``url`` accepts sessions.

    Raises:
        psycopg.Error: not accepting sessions within ``timeout`` seconds, or
            the database could not be created.
    """
    import psycopg
    from psycopg import sql

    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:  # "the database system is starting up"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


class PostgresDatabase:
    """A PostgreSQL database through psycopg, a few pooled autocommit connections.

    Thread-safe: a connection serves one statement at a time. The spans come
    from the psycopg instrumentation (``instrument_clients``).
    """

    dialect = "postgresql"

    def __init__(self, url: str, max_idle: int = 8) -> None:
        import psycopg  # noqa: F401 - fail at start-up, not at the first request

        self.url = url
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue(max_idle)

    def _take(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row)

    def _give_back(self, connection: Any) -> None:
        if connection.closed or connection.broken:
            return
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def script(self, sql: str) -> None:
        """Run DDL and seed statements (several, no parameters) at start-up."""
        connection = self._take()
        try:
            connection.execute(sql)
        finally:
            self._give_back(connection)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one statement; its rows as dicts (none for writes without RETURNING)."""
        connection = self._take()
        try:
            cursor = connection.execute(sql.replace("?", "%s"), tuple(params))
            rows = cursor.fetchall() if cursor.description is not None else []
        finally:
            self._give_back(connection)
        return [dict(row) for row in rows]
