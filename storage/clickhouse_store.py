"""A ClickHouse server over the native protocol (clickhouse-driver).

This is the store for ``--store clickhouse://host:9000/db``. The SQL is the
same as on chdb; only the transport differs: parameters are substituted by
the driver on the client (ClickHouse 18.16 has no server-side parameters),
inserts are columnar Python lists compressed with LZ4, and results are read
as Arrow with every String as bytes. A driver ``Client`` is not thread-safe,
so calls check one out of a small pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage.migrations import MIGRATIONS, Migration
from tinct.storage.pool import Pool
from tinct.storage.sql import Sql
from tinct.storage.sqlstore import SqlSpanStore

__all__ = ["ClickHouseBackend", "ClickHouseSpanStore"]

# Client-side: String/FixedString in results as bytes, not decoded text.
_READ_SETTINGS = {"strings_as_bytes": True}


def _python_values(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """A column as the Python values clickhouse-driver's columnar insert takes.

    Arrays become tuples, not lists: the cyclic garbage collector stops
    tracking a tuple of atoms the first time it sees it, while every list
    stays tracked, and with ~20 array columns a 50k-span batch holds a
    million of them; as lists, collections took most of the insert time.
    Numbers go through NumPy, whose ``tolist`` is faster than Arrow's.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(array.type):
        offsets = array.offsets.to_numpy()
        start = int(offsets[0]) if len(offsets) else 0
        flat = (
            _python_values(array.values.slice(start, int(offsets[-1]) - start))
            if len(array)
            else []
        )
        bounds = (offsets - start).tolist()
        return [tuple(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return array.to_numpy().tolist()  # type: ignore[no-any-return]
    return array.to_pylist()  # type: ignore[no-any-return]


def _brief(exc: Exception) -> str:
    """The server's message without the stack trace older servers append."""
    return str(exc).split("Stack trace:", 1)[0].strip()


class ClickHouseBackend:
    """Runs SQL on a ClickHouse server through clickhouse-driver clients.

    Args:
        host: server host name or address.
        port: native protocol TCP port (9000 by default on servers).
        user: ClickHouse user.
        password: its password.
        pool_size: most clients (concurrent queries) at once.
        connect_timeout: seconds to wait for a connection.
        send_receive_timeout: seconds a query may go without network progress.

    Connections are opened lazily and re-opened by the driver after errors.
    Thread-safe: each call checks a client out of a pool.
    """

    def __init__(
        self,
        host: str,
        port: int = 9000,
        *,
        user: str = "default",
        password: str = "",
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        send_receive_timeout: float = 300.0,
    ) -> None:
        self.host, self.port = host, port
        self._client_args: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "compression": "lz4",
            "connect_timeout": connect_timeout,
            "send_receive_timeout": send_receive_timeout,
            "client_name": "tinct",
        }
        self._pool: Pool[Any] = Pool(
            self._open, lambda c: c.disconnect(), pool_size, name=f"ClickHouse {host}:{port}"
        )

    def _open(self) -> Any:
        from clickhouse_driver import Client

        return Client(**self._client_args)

    def _where(self) -> str:
        return f"ClickHouse {self.host}:{self.port}"

    def execute(self, sql: Sql) -> None:
        """Run a statement without a result."""
        text, params = sql.for_driver()
        with self._pool.acquire() as client:
            try:
                client.execute(text, params)
            except Exception as exc:
                raise StorageError(f"{self._where()}: statement failed: {_brief(exc)}") from exc

    def select(self, sql: Sql) -> pa.Table:
        """Run a query; an Arrow table with String columns as ``binary``."""
        text, params = sql.for_driver()
        with self._pool.acquire() as client:
            try:
                result = client.query_arrow(text, params, settings=_READ_SETTINGS)
            except Exception as exc:
                raise StorageError(f"{self._where()}: query failed: {_brief(exc)}") from exc
        if not isinstance(result, pa.Table):
            raise StorageError(f"driver returned {type(result).__name__}, not an Arrow table")
        return result

    def insert(self, table: str, data: pa.Table) -> None:
        """Columnar insert of ``data`` (columns named like the table's)."""
        columns = ", ".join(data.column_names)
        # Binary columns become bytes, which the driver writes to String and
        # FixedString as is.
        values = [_python_values(column) for column in data.itercolumns()]
        with self._pool.acquire() as client:
            try:
                client.execute(f"INSERT INTO {table} ({columns}) VALUES", values, columnar=True)
            except Exception as exc:
                raise StorageError(
                    f"{self._where()}: insert into {table} failed: {_brief(exc)}"
                ) from exc

    def close(self) -> None:
        """Disconnect every client. Idempotent."""
        self._pool.close()


class ClickHouseSpanStore(SqlSpanStore):
    """The span store in database ``database`` of a ClickHouse server.

    Args:
        host, port, user, password: where and as whom to connect.
        database: created if missing.
        retention_days: see :class:`~tinct.storage.sqlstore.SqlSpanStore`.
        pool_size: most concurrent queries.
        migrations: schema steps; tests only.
        max_series_per_metric: the per-metric, per-day series limit (0: none).

    Raises:
        StorageError, SchemaError, ConfigError: as for SqlSpanStore
        (an unreachable server is a StorageError).

    Threading: safe from any thread (a pool of driver clients).
    """

    def __init__(
        self,
        host: str,
        port: int = 9000,
        database: str = "default",
        *,
        user: str = "default",
        password: str = "",
        retention_days: int = 0,
        pool_size: int = 8,
        migrations: Sequence[Migration] = MIGRATIONS,
        max_series_per_metric: int = 0,
    ) -> None:
        backend = ClickHouseBackend(host, port, user=user, password=password, pool_size=pool_size)
        super().__init__(
            backend,
            database,
            retention_days=retention_days,
            migrations=migrations,
            max_series_per_metric=max_series_per_metric,
        )
