"""PostgreSQL, measured under postgres_exporter's metric names.

Dashboards and alert rules written for prometheus-community/postgres_exporter
(``pg_up``, ``pg_stat_database_*``, ``pg_stat_activity_count``...) work on
what this collector emits, so it follows that exporter's queries, names, types
and labels rather than inventing its own: ``collector/pg_stat_database.go``,
``pg_locks.go``, ``pg_database.go``, ``pg_postmaster.go``, ``pg_setting.go``,
and the ``pg_stat_activity`` query of ``cmd/postgres_exporter/queries.go``,
which yields a row per database for every known state, zeros included. Its
counters are exposed without ``_total`` (``pg_stat_database_xact_commit``),
as the exporter does. Rows without a database (PostgreSQL 12+ keeps one for
shared objects in ``pg_stat_database``) are skipped, as there.

One connection is kept between collections (autocommit, so it never sits
``idle in transaction``) and reopened on the next collection after any
failure: connecting forks a backend and authenticates every time, which would
cost more than the measurement and show up in the very activity figures being
measured; postgres_exporter keeps its connection pool the same way.

Every network operation is bounded: connecting by libpq's ``connect_timeout``
(which libpq rounds up to at least 2 s), each statement by the server's
``statement_timeout``, and a collection as a whole by a watchdog that shuts
the socket down when the server stops answering altogether (a frozen server
or a lost network keeps ``statement_timeout`` from ever firing).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import psycopg
from prometheus_client import Metric
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["PostgresCollector"]

_DEFAULT_PORT = 5432
_OPTIONS = ("user", "password", "dbname", "sslmode")

# pg_stat_database columns exposed as counters, with postgres_exporter's help.
_STAT_DATABASE_COUNTERS = (
    ("xact_commit", "Number of transactions in this database that have been committed"),
    ("xact_rollback", "Number of transactions in this database that have been rolled back"),
    ("blks_read", "Number of disk blocks read in this database"),
    ("blks_hit", "Number of times disk blocks were found already in the buffer cache"),
    ("tup_returned", "Number of rows returned by queries in this database"),
    ("tup_fetched", "Number of rows fetched by queries in this database"),
    ("tup_inserted", "Number of rows inserted by queries in this database"),
    ("tup_updated", "Number of rows updated by queries in this database"),
    ("tup_deleted", "Number of rows deleted by queries in this database"),
    ("conflicts", "Number of queries canceled due to conflicts with recovery in this database"),
    ("temp_files", "Number of temporary files created by queries in this database"),
    ("temp_bytes", "Total amount of data written to temporary files by queries in this database"),
    ("deadlocks", "Number of deadlocks detected in this database"),
)

_STAT_DATABASE = "SELECT datid, datname, numbackends, {} FROM pg_stat_database".format(
    ", ".join(column for column, _ in _STAT_DATABASE_COUNTERS)
)

# postgres_exporter's query (queries.go, PostgreSQL >= 9.2): every database
# crossed with every known state, so idle states read 0 instead of vanishing.
_STAT_ACTIVITY = """
SELECT pg_database.datname, tmp.state,
       COALESCE(count, 0) AS count,
       COALESCE(max_tx_duration, 0) AS max_tx_duration
FROM (VALUES ('active'), ('idle'), ('idle in transaction'),
             ('idle in transaction (aborted)'), ('fastpath function call'),
             ('disabled')) AS tmp(state)
CROSS JOIN pg_database
LEFT JOIN (
    SELECT datname, state, count(*) AS count,
           MAX(EXTRACT(EPOCH FROM now() - xact_start))::float AS max_tx_duration
    FROM pg_stat_activity GROUP BY datname, state
) AS tmp2 ON tmp.state = tmp2.state AND pg_database.datname = tmp2.datname
"""

# postgres_exporter's pg_locks.go: every database crossed with every lock mode.
_LOCKS = """
SELECT pg_database.datname, tmp.mode, COALESCE(count, 0) AS count
FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'),
             ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'),
             ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS tmp(mode)
CROSS JOIN pg_database
LEFT JOIN (
    SELECT database, lower(mode) AS mode, count(*) AS count
    FROM pg_locks WHERE database IS NOT NULL GROUP BY database, lower(mode)
) AS tmp2 ON tmp.mode = tmp2.mode AND pg_database.oid = tmp2.database
ORDER BY 1
"""

_DATABASE_SIZE = "SELECT datname, pg_database_size(oid)::float8 FROM pg_database"

_SERVER = """
SELECT current_setting('max_connections')::float8,
       EXTRACT(EPOCH FROM pg_postmaster_start_time())::float8
"""


class PostgresCollector:
    """Measures one PostgreSQL server.

    Args:
        address: ``host:port`` (the port defaults to 5432).
        timeout: seconds one collection may take (see the module docstring
            for how each step is bounded).
        options: ``user`` (default ``postgres``), ``password``, ``dbname``
            (default ``postgres``), ``sslmode``.

    Raises:
        ConfigError: a bad address, timeout or option.

    ``collect`` blocks; call it from one thread at a time.
    """

    up_metric: str | None = "pg_up"

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        self._host, self._port = _split_address(address, _DEFAULT_PORT)
        if not timeout > 0:
            raise ConfigError(f"postgresql {address}: timeout must be above 0, got {timeout!r}")
        self._timeout = float(timeout)
        options = dict(options or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"postgresql {address}: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(_OPTIONS)})"
            )
        self._params: dict[str, str] = {
            "user": str(options.get("user") or "postgres"),
            "dbname": str(options.get("dbname") or "postgres"),
        }
        for name in ("password", "sslmode"):
            if options.get(name) is not None:
                self._params[name] = str(options[name])
        self._conn: psycopg.Connection[TupleRow] | None = None

    def collect(self) -> list[Metric]:
        """This collection's families. Raises CollectError on any failure."""
        watchdog: _Watchdog | None = None
        try:
            conn = self._connection()
            with _Watchdog(conn.pgconn.socket, self._timeout) as watchdog:
                return self._measure(conn)
        except (psycopg.Error, OSError) as exc:
            self.close()
            if watchdog is not None and watchdog.fired:
                message = f"no answer within {self._timeout:g}s"
            else:
                message = " ".join(str(exc).split()) or type(exc).__name__
            raise CollectError(f"postgresql {self.address}: {message}") from exc

    def close(self) -> None:
        """Close the kept connection (the next collection reopens it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conninfo = make_conninfo(
            host=self._host,
            port=self._port,
            connect_timeout=max(2, math.ceil(self._timeout)),
            application_name="tinct",
            **self._params,
        )
        conn = psycopg.connect(conninfo, autocommit=True)
        try:
            # Server-side bound on each statement; the watchdog is the backstop.
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                [f"{max(1, int(self._timeout * 1000))}ms"],
            )
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _measure(self, conn: psycopg.Connection[TupleRow]) -> list[Metric]:
        up = Metric(
            "pg_up",
            "Whether the last scrape of metrics from PostgreSQL was able to connect "
            "to the server (1 for yes, 0 for no).",
            "gauge",
        )
        up.add_sample("pg_up", {}, 1.0)

        numbackends = Metric(
            "pg_stat_database_numbackends",
            "Number of backends currently connected to this database",
            "gauge",
        )
        counters = [
            Metric(f"pg_stat_database_{column}", help_, "counter")
            for column, help_ in _STAT_DATABASE_COUNTERS
        ]
        for datid, datname, backends, *values in conn.execute(_STAT_DATABASE):
            if datid is None or datname is None:
                continue
            labels = {"datid": str(datid), "datname": datname}
            numbackends.add_sample(numbackends.name, labels, float(backends or 0))
            for family, value in zip(counters, values, strict=True):
                family.add_sample(family.name, labels, float(value or 0))

        count = Metric("pg_stat_activity_count", "number of connections in this state", "gauge")
        duration = Metric(
            "pg_stat_activity_max_tx_duration",
            "max duration in seconds any active transaction has been running",
            "gauge",
        )
        for datname, state, connections, longest in conn.execute(_STAT_ACTIVITY):
            labels = {"datname": datname, "state": state}
            count.add_sample(count.name, labels, float(connections))
            duration.add_sample(duration.name, labels, float(longest))

        size = Metric("pg_database_size_bytes", "Disk space used by the database", "gauge")
        for datname, size_bytes in conn.execute(_DATABASE_SIZE):
            size.add_sample(size.name, {"datname": datname}, float(size_bytes or 0))

        locks = Metric("pg_locks_count", "Number of locks", "gauge")
        for datname, mode, held in conn.execute(_LOCKS):
            locks.add_sample(locks.name, {"datname": datname, "mode": mode}, float(held))

        row = conn.execute(_SERVER).fetchone()
        assert row is not None  # a SELECT without FROM returns one row
        max_connections = Metric(
            "pg_settings_max_connections",
            "Sets the maximum number of concurrent connections.",
            "gauge",
        )
        max_connections.add_sample(max_connections.name, {}, float(row[0]))
        started = Metric(
            "pg_postmaster_start_time_seconds", "Time at which postmaster started", "gauge"
        )
        started.add_sample(started.name, {}, float(row[1]))

        return [up, numbackends, *counters, count, duration, size, locks, max_connections, started]


class _Watchdog:
    """Shuts a socket down if a collection is still running at its deadline.

    ``shutdown`` wakes the blocked read with end-of-file, so psycopg raises
    instead of waiting forever on a server that stopped answering. The socket
    is reached through a duplicated descriptor: it keeps the same socket open,
    so a late timer can never hit an unrelated one that reused the number.
    """

    def __init__(self, fileno: int, seconds: float) -> None:
        self._sock = socket.socket(fileno=os.dup(fileno))
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self.fired = False

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._timer.join()  # a timer already firing finishes before the close
        self._sock.close()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)


def _split_address(address: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port)."""
    try:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"postgresql address {address!r}: {exc}") from exc
    if not host or parts.path or parts.query or parts.username:
        raise ConfigError(f"postgresql address {address!r} is not host:port")
    return host, port or default_port
