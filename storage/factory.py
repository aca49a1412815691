"""``open_store(url)``: from the ``--store`` setting to a running SpanStore.

Accepted forms (DESIGN.md, "Interfaces users rely on")::

    chdb:///abs/path           embedded chdb, absolute data folder
    chdb://relative/path       embedded chdb, folder relative to the cwd
    some/folder, /abs/folder   the same, without a scheme
    "" or chdb://              embedded chdb in ./tinct-data
    clickhouse://[user[:password]@]host[:port][/database]
                               a ClickHouse server, native protocol
                               (port 9000, database "default" if omitted)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tinct.errors import ConfigError
from tinct.storage.base import SpanStore
from tinct.storage.chdb_store import ChdbSpanStore
from tinct.storage.clickhouse_store import ClickHouseSpanStore
from tinct.storage.sql import ident

__all__ = [
    "StoreLocation",
    "parse_store_url",
    "open_store",
    "redact_store_url",
    "DEFAULT_DATA_DIR",
]

DEFAULT_DATA_DIR = "./tinct-data"

_ACCEPTED = (
    "chdb:///abs/path, chdb://relative/path, a plain folder path, or "
    "clickhouse://[user[:password]@]host[:port][/database]"
)


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store URL: ``kind`` is ``"chdb"`` (uses ``path``) or ``"clickhouse"``."""

    kind: str
    path: str = ""
    host: str = ""
    port: int = 9000
    database: str = "default"
    user: str = "default"
    password: str = ""


def redact_store_url(url: str) -> str:
    """``url`` with its password (``clickhouse://user:pw@host``) masked, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def parse_store_url(url: str) -> StoreLocation:
    """Parse a ``--store`` value.

    Raises:
        ConfigError: naming the (password-redacted) url and the accepted forms.
    """

    def bad(why: str) -> ConfigError:
        return ConfigError(f"store url {redact_store_url(url)!r}: {why}; accepted: {_ACCEPTED}")

    if "://" not in url:
        if ":" in url.split("/", 1)[0] and not url.startswith((".", "/", "~")):
            raise bad("unknown scheme")
        return StoreLocation("chdb", path=url or DEFAULT_DATA_DIR)
    scheme, rest = url.split("://", 1)
    if scheme == "chdb":
        if "?" in rest or "#" in rest:
            raise bad("chdb urls take no query or fragment")
        return StoreLocation("chdb", path=unquote(rest) or DEFAULT_DATA_DIR)
    if scheme != "clickhouse":
        raise bad(f"unknown scheme {scheme!r}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not supported")
    if not parts.hostname:
        raise bad("missing host")
    try:
        port = parts.port or 9000
    except ValueError as exc:
        raise bad("invalid port") from exc
    database = parts.path.strip("/") or "default"
    try:
        ident(database)
    except ValueError as exc:
        raise bad(f"database name must be [A-Za-z_][A-Za-z0-9_]*, got {database!r}") from exc
    return StoreLocation(
        "clickhouse",
        host=parts.hostname,
        port=port,
        database=database,
        user=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
    )


def open_store(url: str, *, retention_days: int = 0, max_series_per_metric: int = 0) -> SpanStore:
    """Open (creating and migrating as needed) the store at ``url``.

    Args:
        url: see the module docstring.
        retention_days: keep at least this many days of data; 0 keeps all.
        max_series_per_metric: the per-metric, per-day series limit; 0: none.

    Returns:
        A thread-safe store; call ``close()`` when done.

    Raises:
        ConfigError: bad url or retention.
        StorageError: the backend cannot be reached or opened
            (SchemaError if its schema cannot be created or migrated).
    """
    where = parse_store_url(url)
    if where.kind == "chdb":
        return ChdbSpanStore(
            where.path,
            retention_days=retention_days,
            max_series_per_metric=max_series_per_metric,
        )
    return ClickHouseSpanStore(
        where.host,
        where.port,
        where.database,
        user=where.user,
        password=where.password,
        retention_days=retention_days,
        max_series_per_metric=max_series_per_metric,
    )
