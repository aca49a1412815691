"""MySQL and MariaDB, measured under mysqld_exporter's metric names.

Dashboards and alert rules written for prometheus/mysqld_exporter work on
what this collector emits, so it maps the server's own tables the way that
exporter does (``collector/global_status.go``, ``global_variables.go``):

* ``SHOW GLOBAL STATUS``: every numeric value as the untyped
  ``mysql_global_status_<name>`` (name lowercased, characters outside
  ``[a-z0-9_]`` replaced by ``_``), except the groups the exporter labels:
  ``Com_*`` as the counter ``mysql_global_status_commands_total{command}``,
  ``Handler_*`` as ``..._handlers_total{handler}``, ``Connection_errors_*``
  as ``..._connection_errors_total{error}``, ``Innodb_buffer_pool_pages_*`` as
  the gauges ``..._buffer_pool_pages{state}`` (data, free, misc, old) and
  ``..._buffer_pool_dirty_pages`` or the counter
  ``..._buffer_pool_page_changes_total{operation}`` (``total`` is dropped),
  ``Innodb_rows_*`` as ``..._innodb_row_ops_total{operation}`` and
  ``Performance_schema_*`` as ``..._performance_schema_lost_total``.
* ``SHOW GLOBAL VARIABLES``: every numeric value as the gauge
  ``mysql_global_variables_<name>``, and ``mysql_version_info`` (gauge 1)
  labelled ``version``, ``version_comment`` and ``innodb_version`` (empty on
  MariaDB 10.10+, which dropped that variable).

"Numeric" is the exporter's ``parseStatus``: a number, ON/YES (1),
OFF/NO/DISABLED (0), the replication and Galera state words it knows, or a
date it can read; anything else is skipped.

One connection is kept between collections and reopened after a failure:
connecting every time would itself move ``Connections`` and
``Threads_created``, figures this collector reports. Connecting, and each read
and write on the socket, is bounded by the timeout (PyMySQL's
``connect_timeout``, ``read_timeout`` and ``write_timeout``).
"""

from __future__ import annotations

import calendar
import contextlib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pymysql
from prometheus_client import Metric

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["MysqlCollector"]

_DEFAULT_PORT = 3306
_OPTIONS = ("user", "password", "database", "unix_socket")

_STATUS = "mysql_global_status"
_VARIABLES = "mysql_global_variables"

# mysqld_exporter's globalStatusRE: the status groups it turns into labels.
_STATUS_GROUP = re.compile(
    r"^(com|handler|connection_errors|innodb_buffer_pool_pages|innodb_rows|performance_schema)"
    r"_(.*)$"
)
# validPrometheusName: anything outside [a-zA-Z0-9_] becomes "_".
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# parseStatus's words (lowercased).
_WORDS = {
    "yes": 1.0,
    "on": 1.0,
    "no": 0.0,
    "off": 0.0,
    "disabled": 0.0,
    "connecting": 0.0,
    "primary": 1.0,
    "non-primary": 0.0,
    "disconnected": 0.0,
}

# (family, type, help, label) per status group; the exposed sample name of a
# counter carries _total.
_GROUPS: dict[str, tuple[str, str, str, str]] = {
    "com": ("commands", "counter", "Total number of executed MySQL commands.", "command"),
    "handler": ("handlers", "counter", "Total number of executed MySQL handlers.", "handler"),
    "connection_errors": (
        "connection_errors",
        "counter",
        "Total number of MySQL connection errors.",
        "error",
    ),
    "innodb_rows": (
        "innodb_row_ops",
        "counter",
        "Total number of MySQL InnoDB row operations.",
        "operation",
    ),
    "performance_schema": (
        "performance_schema_lost",
        "counter",
        "Total number of MySQL instrumentations that could not be loaded or created due to "
        "memory constraints.",
        "instrumentation",
    ),
}
_PAGE_STATES = ("data", "free", "misc", "old")


class MysqlCollector:
    """Measures one MySQL or MariaDB server.

    Args:
        address: ``host:port`` (the port defaults to 3306); names the target
            even when ``unix_socket`` is used to reach it.
        timeout: seconds each network operation may take.
        options: ``user``, ``password``, ``database``, ``unix_socket``.

    Raises:
        ConfigError: a bad address, timeout or option.

    ``collect`` blocks; call it from one thread at a time.
    """

    up_metric: str | None = "mysql_up"

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        self._host, self._port = _split_address(address)
        if not timeout > 0:
            raise ConfigError(f"mysql {address}: timeout must be above 0, got {timeout!r}")
        self._timeout = float(timeout)
        options = dict(options or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"mysql {address}: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(_OPTIONS)})"
            )
        self._options = {k: str(v) for k, v in options.items() if v is not None}
        self._conn: pymysql.connections.Connection[Any] | None = None

    def collect(self) -> list[Metric]:
        """This collection's families. Raises CollectError on any failure."""
        try:
            conn = self._connection()
            with conn.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS")
                status = cursor.fetchall()
                cursor.execute("SHOW GLOBAL VARIABLES")
                variables = cursor.fetchall()
        except (pymysql.MySQLError, OSError) as exc:
            self.close()
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise CollectError(f"mysql {self.address}: {message}") from exc
        up = Metric("mysql_up", "Whether the MySQL server is up.", "gauge")
        up.add_sample("mysql_up", {}, 1.0)
        return [up, *_status_families(status), *_variable_families(variables)]

    def close(self) -> None:
        """Close the kept connection (the next collection reopens it)."""
        conn, self._conn = self._conn, None
        if conn is not None and conn.open:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self) -> pymysql.connections.Connection[Any]:
        if self._conn is not None and self._conn.open:
            return self._conn
        options = self._options
        self._conn = pymysql.connect(
            host=self._host,
            port=self._port,
            user=options.get("user"),
            password=options.get("password", ""),
            database=options.get("database"),
            unix_socket=options.get("unix_socket"),
            connect_timeout=self._timeout,
            read_timeout=self._timeout,
            write_timeout=self._timeout,
            autocommit=True,
            program_name="tinct",
        )
        return self._conn


def _status_families(rows: Iterable[tuple[Any, ...]]) -> list[Metric]:
    """SHOW GLOBAL STATUS rows as mysqld_exporter's families."""
    families: dict[str, Metric] = {}

    def family(name: str, type_: str, help_: str) -> Metric:
        if name not in families:
            families[name] = Metric(name, help_, type_)
        return families[name]

    for key, raw in rows:
        value = _parse_status(raw)
        if value is None:
            continue
        name = _INVALID.sub("_", str(key)).lower()
        match = _STATUS_GROUP.match(name)
        if match is None:
            generic = family(
                f"{_STATUS}_{name}", "unknown", "Generic metric from SHOW GLOBAL STATUS."
            )
            if not generic.samples:
                generic.add_sample(generic.name, {}, value)
            continue
        group, member = match.groups()
        if group == "innodb_buffer_pool_pages":
            if member in _PAGE_STATES:
                pages = family(
                    f"{_STATUS}_buffer_pool_pages", "gauge", "Innodb buffer pool pages by state."
                )
                pages.add_sample(pages.name, {"state": member}, value)
            elif member == "dirty":
                dirty = family(
                    f"{_STATUS}_buffer_pool_dirty_pages", "gauge", "Innodb buffer pool dirty pages."
                )
                dirty.add_sample(dirty.name, {}, value)
            elif member != "total":
                changes = family(
                    f"{_STATUS}_buffer_pool_page_changes",
                    "counter",
                    "Innodb buffer pool page state changes.",
                )
                changes.add_sample(f"{changes.name}_total", {"operation": member}, value)
            continue
        suffix, type_, help_, label = _GROUPS[group]
        labelled = family(f"{_STATUS}_{suffix}", type_, help_)
        labelled.add_sample(f"{labelled.name}_total", {label: member}, value)
    return list(families.values())


def _variable_families(rows: Iterable[tuple[Any, ...]]) -> list[Metric]:
    """SHOW GLOBAL VARIABLES rows as gauges, and mysql_version_info."""
    families: dict[str, Metric] = {}
    text = {"innodb_version": "", "version": "", "version_comment": ""}
    for key, raw in rows:
        name = _INVALID.sub("_", str(key)).lower()
        value = _parse_status(raw)
        if value is None:
            if name in text:
                text[name] = str(raw)
            continue
        full = f"{_VARIABLES}_{name}"
        if full not in families:
            gauge = Metric(full, "Generic gauge metric from SHOW GLOBAL VARIABLES.", "gauge")
            gauge.add_sample(full, {}, value)
            families[full] = gauge
    info = Metric("mysql_version_info", "MySQL version and distribution.", "gauge")
    info.add_sample(info.name, text, 1.0)
    return [*families.values(), info]


def _parse_status(raw: object) -> float | None:
    """mysqld_exporter's parseStatus: the value as a number, or None."""
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    word = _WORDS.get(text.lower())
    if word is not None:
        return word
    if _NUMBER.fullmatch(text):
        return float(text)
    # Dates, e.g. Ssl_server_not_after "Jan 02 15:04:05 2006 GMT": Go reads a
    # zone abbreviation it doesn't know as UTC, so the zone is not parsed.
    parts = text.split()
    if len(parts) == 5:
        candidate, layout = " ".join(parts[:4]), "%b %d %H:%M:%S %Y"
    elif len(parts) == 2:
        candidate, layout = text, "%Y-%m-%d %H:%M:%S"
    else:
        return None
    try:
        return float(calendar.timegm(time.strptime(candidate, layout)))
    except ValueError:
        return None


def _split_address(address: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port)."""
    try:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"mysql address {address!r}: {exc}") from exc
    if not host or parts.path or parts.query or parts.username:
        raise ConfigError(f"mysql address {address!r} is not host:port")
    return host, port or _DEFAULT_PORT
