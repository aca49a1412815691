"""Embedded ClickHouse (chdb): the default store of ``tinct up``.

chdb runs one embedded server per process, for one data folder: connecting
to a second folder while the first is open fails, and the server stops when
its last connection closes. Separate connections may run queries from
separate threads at the same time, but one connection must not be shared by
two threads, hence the :class:`~tinct.storage.pool.Pool`. Only one process
may use a data folder.

Inserts hand the Arrow table to ClickHouse in-process through the
``Python()`` table function; reads come back as Arrow tables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage.migrations import MIGRATIONS, Migration
from tinct.storage.pool import Pool
from tinct.storage.sql import Sql
from tinct.storage.sqlstore import SqlSpanStore

__all__ = ["ChdbBackend", "ChdbSpanStore", "CHDB_DATABASE"]

# Database inside the data folder holding tinct's tables.
CHDB_DATABASE = "tinct"


def _connect(target: str) -> Any:
    import chdb  # imported lazily: loading the engine takes ~0.5 s and 100+ MB

    connect: Callable[[str], Any] = chdb.connect
    return connect(target)


class ChdbBackend:
    """Runs SQL on the embedded engine with a data folder at ``path``.

    Args:
        path: data folder; created if missing.
        pool_size: most connections (concurrent queries) at once.

    Raises:
        StorageError: the engine cannot open ``path`` (e.g. another folder is
            already open in this process, or another process holds it).

    Thread-safe: each call checks a connection out of a pool.
    """

    def __init__(self, path: str, *, pool_size: int = 8) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create chdb data folder {self.path}: {exc}") from exc
        self._pool: Pool[Any] = Pool(
            self._open, lambda c: c.close(), pool_size, name=f"chdb store {self.path}"
        )
        # Open one connection now so a bad folder fails here, not on first use;
        # keeping it pooled also keeps the embedded server running.
        with self._pool.acquire():
            pass

    def _open(self) -> Any:
        try:
            conn = _connect(self.path)
            # Strings as Arrow binary: ids and arbitrary bytes are not UTF-8.
            conn.query("SET output_format_arrow_string_as_string = 0")
        except Exception as exc:
            raise StorageError(
                f"cannot open chdb data folder {self.path}: {exc} "
                "(chdb serves one data folder per process, and one process per folder)"
            ) from exc
        return conn

    def execute(self, sql: Sql) -> None:
        """Run a statement without a result."""
        text, params = sql.for_chdb()
        with self._pool.acquire() as conn:
            try:
                conn.query(text, "CSV", params=params)
            except Exception as exc:
                raise StorageError(f"chdb statement failed: {exc}") from exc

    def select(self, sql: Sql) -> pa.Table:
        """Run a query; an Arrow table (no columns at all when it has no rows)."""
        text, params = sql.for_chdb()
        with self._pool.acquire() as conn:
            try:
                result = conn.query(text, "ArrowTable", params=params)
            except Exception as exc:
                raise StorageError(f"chdb query failed: {exc}") from exc
        if not isinstance(result, pa.Table):
            raise StorageError(f"chdb returned {type(result).__name__}, not an Arrow table")
        return result

    def insert(self, table: str, data: pa.Table) -> None:
        """Insert ``data`` (columns named like the table's) into ``table``."""
        # Back-quoted so nested columns (``Events.Name``) keep their dotted names;
        # column names come from tinct's own schemas, never from requests.
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        text = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM Python(tinct_insert_batch)"
        # chdb's Python() table function resolves the name by walking up the
        # calling Python frames of this thread: the table must be a local of
        # the frame that calls query(), under a name no frame in between uses.
        tinct_insert_batch = data
        with self._pool.acquire() as conn:
            try:
                conn.query(text, "CSV")
            except Exception as exc:
                raise StorageError(f"chdb insert into {table} failed: {exc}") from exc
            finally:
                del tinct_insert_batch

    def close(self) -> None:
        """Close every connection, which stops the embedded engine. Idempotent."""
        self._pool.close()


class ChdbSpanStore(SqlSpanStore):
    """The span store in an embedded chdb data folder.

    Args:
        path: data folder (created if missing).
        retention_days: see :class:`~tinct.storage.sqlstore.SqlSpanStore`.
        pool_size: most concurrent queries.
        migrations: schema steps; tests only.
        max_series_per_metric: the per-metric, per-day series limit (0: none).

    Raises:
        StorageError, SchemaError, ConfigError: as for SqlSpanStore.

    Threading: safe from any thread (a pool of per-call connections).
    """

    def __init__(
        self,
        path: str,
        *,
        retention_days: int = 0,
        pool_size: int = 8,
        migrations: Sequence[Migration] = MIGRATIONS,
        max_series_per_metric: int = 0,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        super().__init__(
            ChdbBackend(self.path, pool_size=pool_size),
            CHDB_DATABASE,
            retention_days=retention_days,
            migrations=migrations,
            max_series_per_metric=max_series_per_metric,
        )
