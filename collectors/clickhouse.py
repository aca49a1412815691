"""ClickHouse, measured as its own Prometheus endpoint exposes it.

Dashboards written for ClickHouse's built-in ``/metrics`` endpoint
(``src/Server/PrometheusMetricsWriter.cpp``) work on what this collector
emits, read over the native protocol instead (the endpoint is often not
enabled, and servers as old as 18.16 lack it):

* ``system.metrics`` as gauges ``ClickHouseMetrics_<metric>``;
* ``system.events`` as counters ``ClickHouseProfileEvents_<event>``, their
  sample named without ``_total`` as the endpoint writes it;
* ``system.asynchronous_metrics`` as gauges ``ClickHouseAsyncMetrics_<metric>``.

Names are sanitized as ``replaceInvalidChars`` does there: characters outside
``[a-zA-Z0-9_:]`` become ``_``; for metrics and events, leading characters
that are not letters are then dropped from the name (before the prefix) and a
name left empty is skipped. The HELP text is the table's ``description``
column where the server has one (``system.asynchronous_metrics`` has none
on older servers, 18.16 among them).

The endpoint writes every event, zeros included; ``system.events`` hides
zeros unless ``system_events_show_zero_values`` is set, so it is asked for,
and left out on servers that don't know it (18.16 among them), where events
appear from their first occurrence.

The columns are read by name from ``SELECT *``, so the tables' differences
between versions (columns added or reordered) don't matter; the name column
may be ``metric``, ``event`` or ``name``.

The client keeps its connection between collections and reconnects after a
failure; connecting and each socket operation are bounded by the timeout
(clickhouse-driver's ``connect_timeout``, ``send_receive_timeout`` and
``sync_request_timeout``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from prometheus_client import Metric

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["ClickHouseCollector"]

_DEFAULT_PORT = 9000
_OPTIONS = ("user", "password", "database")

# ClickHouse error codes meaning "this server doesn't know the setting".
_UNKNOWN_SETTING, _SYNTAX_ERROR = 115, 62

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_LEADING = re.compile(r"^[^a-zA-Z]*")

# (table, prefix, type, strip leading non-letters from the bare name)
_TABLES = (
    ("system.events", "ClickHouseProfileEvents_", "counter", True),
    ("system.metrics", "ClickHouseMetrics_", "gauge", True),
    ("system.asynchronous_metrics", "ClickHouseAsyncMetrics_", "gauge", False),
)
_ZERO_EVENTS = " SETTINGS system_events_show_zero_values = 1"


class ClickHouseCollector:
    """Measures one ClickHouse server over the native protocol.

    Args:
        address: ``host:port`` of the native (TCP) protocol; the port
            defaults to 9000.
        timeout: seconds each network operation may take.
        options: ``user`` (default ``default``), ``password``, ``database``
            (default ``default``).

    Raises:
        ConfigError: a bad address, timeout or option.

    ``collect`` blocks; call it from one thread at a time.
    """

    # ClickHouse's endpoint has no <component>_up family; the scheduler's
    # own ``up`` says whether a collection succeeded.
    up_metric: str | None = None

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        host, port = _split_address(address)
        if not timeout > 0:
            raise ConfigError(f"clickhouse {address}: timeout must be above 0, got {timeout!r}")
        options = dict(options or {})
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"clickhouse {address}: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(_OPTIONS)})"
            )
        self._client = Client(
            host,
            port=port,
            user=str(options.get("user") or "default"),
            password=str(options.get("password") or ""),
            database=str(options.get("database") or "default"),
            client_name="tinct",
            connect_timeout=timeout,
            send_receive_timeout=timeout,
            sync_request_timeout=timeout,
        )
        self._zero_events = True  # until the server says it can't

    def collect(self) -> list[Metric]:
        """This collection's families. Raises CollectError on any failure."""
        try:
            return [
                family
                for table, prefix, type_, strip in _TABLES
                for family in self._families(table, prefix, type_, strip)
            ]
        except (ch_errors.Error, OSError, EOFError) as exc:
            self.close()
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise CollectError(f"clickhouse {self.address}: {message}") from exc

    def close(self) -> None:
        """Drop the connection (the next collection reconnects)."""
        with contextlib.suppress(Exception):
            self._client.disconnect()

    def _families(self, table: str, prefix: str, type_: str, strip: bool) -> list[Metric]:
        rows, columns = self._select(table)
        names = [name for name, _ in columns]
        keys = [i for i, name in enumerate(names) if name in ("metric", "event", "name")]
        if not keys or "value" not in names:
            raise CollectError(
                f"clickhouse {self.address}: {table} has no name and value columns ({names})"
            )
        key, value = keys[0], names.index("value")
        help_ = names.index("description") if "description" in names else None
        families: dict[str, Metric] = {}
        for row in rows:
            name = _INVALID.sub("_", str(row[key]))
            if strip:
                name = _LEADING.sub("", name)
                if not name:
                    continue
            full = prefix + name
            if full in families:
                continue
            # convertHelpToSingleLine: the endpoint's HELP is one line.
            doc = "" if help_ is None else str(row[help_]).replace("\n", " ")
            family = Metric(full, doc, type_)
            family.add_sample(full, {}, float(row[value]))
            families[full] = family
        return list(families.values())

    def _select(self, table: str) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
        query = f"SELECT * FROM {table}"
        if table == "system.events" and self._zero_events:
            try:
                return self._execute(query + _ZERO_EVENTS)
            except ch_errors.ServerException as exc:
                if exc.code not in (_UNKNOWN_SETTING, _SYNTAX_ERROR):
                    raise
                self._zero_events = False
        return self._execute(query)

    def _execute(self, query: str) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
        result: tuple[list[tuple[Any, ...]], list[tuple[str, str]]] = self._client.execute(
            query, with_column_types=True
        )
        return result


def _split_address(address: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port)."""
    try:
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"clickhouse address {address!r}: {exc}") from exc
    if not host or parts.path or parts.query or parts.username:
        raise ConfigError(f"clickhouse address {address!r} is not host:port")
    return host, port or _DEFAULT_PORT
