"""Redis, measured under redis_exporter's metric names.

Dashboards and alert rules written for oliver006/redis_exporter
(https://github.com/oliver006/redis_exporter) work unchanged on what this
collector emits: the same family names, types and labels, read from the same
commands the exporter runs (``exporter/exporter.go``, ``exporter/info.go``):
``INFO ALL`` for the server, client, memory, stats, replication, command and
keyspace sections, and ``CONFIG GET databases`` so that every database has a
``redis_db_keys`` series, 0 when the database is empty, as the exporter pads
them. Only the core families are emitted (see :data:`_GAUGES`,
:data:`_COUNTERS`); the target labels are the scheduler's to add.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import redis
from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from redis.backoff import NoBackoff
from redis.retry import Retry

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["RedisCollector"]

DEFAULT_PORT = 6379

# INFO field -> (family, help); redis_exporter's metricMapGauges.
_GAUGES: dict[str, tuple[str, str]] = {
    "uptime_in_seconds": ("redis_uptime_in_seconds", "Seconds since Redis started."),
    "connected_clients": ("redis_connected_clients", "Client connections."),
    "blocked_clients": ("redis_blocked_clients", "Clients blocked on a call."),
    "used_memory": ("redis_memory_used_bytes", "Memory Redis allocated."),
    "maxmemory": ("redis_memory_max_bytes", "maxmemory, 0 for no limit."),
    "connected_slaves": ("redis_connected_slaves", "Connected replicas."),
}

# INFO field -> (family without _total, help); redis_exporter's metricMapCounters.
_COUNTERS: dict[str, tuple[str, str]] = {
    "total_commands_processed": ("redis_commands_processed", "Commands processed."),
    "total_connections_received": ("redis_connections_received", "Connections accepted."),
    "rejected_connections": ("redis_rejected_connections", "Connections rejected (maxclients)."),
    "keyspace_hits": ("redis_keyspace_hits", "Key lookups that hit."),
    "keyspace_misses": ("redis_keyspace_misses", "Key lookups that missed."),
    "expired_keys": ("redis_expired_keys", "Keys expired."),
    "evicted_keys": ("redis_evicted_keys", "Keys evicted."),
    "total_net_input_bytes": ("redis_net_input_bytes", "Bytes received."),
    "total_net_output_bytes": ("redis_net_output_bytes", "Bytes sent."),
}

# The number of databases when CONFIG is refused (renamed, ACL): Redis's default.
_DEFAULT_DATABASES = 16


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; the port may be left out) split and checked."""
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port = address, str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"redis address {address!r} is not host:port")
    return host, int(port)


def _number(value: Any) -> float | None:
    """An INFO value as a number; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


class RedisCollector:
    """Measures one Redis server with ``INFO ALL`` (and ``CONFIG GET databases``).

    Args:
        address: ``host:port`` of the server.
        timeout: seconds each network operation (connect, each command) may take.
        options: ``password`` and ``username`` to authenticate (AUTH);
            ``db`` is accepted and ignored, INFO being server-wide.

    Raises:
        ConfigError: ``address`` is not ``host:port``.

    ``collect`` blocks on the network; it opens one connection per collection
    and closes it, as redis_exporter does per scrape.
    """

    up_metric = "redis_up"

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        options = options or {}
        self.address = address
        self._host, self._port = _host_port(address, DEFAULT_PORT)
        self._timeout = timeout
        self._password: str | None = options.get("password") or None
        self._username: str | None = options.get("username") or None

    def collect(self) -> Iterator[Metric]:
        """The core redis_exporter families. Raises CollectError when Redis fails."""
        # No retries: redis-py's default retries a refused connection three
        # times with backoff, which would stretch a collection past its timeout.
        client = redis.Redis(
            host=self._host,
            port=self._port,
            password=self._password,
            username=self._username,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            try:
                info: dict[str, Any] = client.info("all")
            except redis.ResponseError:
                info = client.info()  # before Redis 2.6 there is no INFO ALL
            databases = self._databases(client, info)
        except (redis.RedisError, OSError) as exc:
            raise CollectError(f"redis {self.address}: {type(exc).__name__}: {exc}") from exc
        finally:
            client.close()
        if not info:
            raise CollectError(f"redis {self.address}: INFO returned nothing")
        return iter(_families(info, databases))

    def _databases(self, client: redis.Redis, info: Mapping[str, Any]) -> int:
        """How many databases get a ``redis_db_keys`` series (exporter.go's dbCount)."""
        if info.get("cluster_enabled") == 1:
            return 1  # a cluster node has db0 only
        try:
            reply = client.config_get("databases")
        except redis.ResponseError:
            return _DEFAULT_DATABASES
        count = _number(reply.get("databases"))
        return int(count) if count else _DEFAULT_DATABASES


def _families(info: Mapping[str, Any], databases: int) -> list[Metric]:
    """INFO (as redis-py parses it) to metric families; a field Redis lacks is left out."""
    families: list[Metric] = [GaugeMetricFamily("redis_up", "1 if Redis answered.", value=1)]
    for field, (name, help_) in _GAUGES.items():
        if (value := _number(info.get(field))) is not None:
            families.append(GaugeMetricFamily(name, help_, value=value))
    for field, (name, help_) in _COUNTERS.items():
        if (value := _number(info.get(field))) is not None:
            families.append(CounterMetricFamily(name, help_, value=value))

    # Keyspace: "db0:keys=25,expires=0,avg_ttl=0"; absent databases are 0.
    keys = GaugeMetricFamily("redis_db_keys", "Keys per database.", labels=["db"])
    expiring = GaugeMetricFamily(
        "redis_db_keys_expiring", "Keys with an expiry per database.", labels=["db"]
    )
    present = {
        name: stats
        for name, stats in info.items()
        if name.startswith("db") and name[2:].isdigit() and isinstance(stats, dict)
    }
    names = [f"db{index}" for index in range(databases)]
    names += sorted(set(present) - set(names), key=lambda name: int(name[2:]))
    for db in names:
        stats = present.get(db, {})
        keys.add_metric([db], _number(stats.get("keys")) or 0.0)
        expiring.add_metric([db], _number(stats.get("expires")) or 0.0)
    families += [keys, expiring]

    # Commandstats: "cmdstat_get:calls=10,usec=25,usec_per_call=2.50,...".
    calls = CounterMetricFamily("redis_commands", "Calls per command.", labels=["cmd"])
    seconds = CounterMetricFamily(
        "redis_commands_duration_seconds", "Seconds spent per command.", labels=["cmd"]
    )
    for field, stats in info.items():
        if not field.startswith("cmdstat_") or not isinstance(stats, dict):
            continue
        count, usec = _number(stats.get("calls")), _number(stats.get("usec"))
        if count is None or usec is None:
            continue
        cmd = field.removeprefix("cmdstat_")
        calls.add_metric([cmd], count)
        seconds.add_metric([cmd], usec / 1e6)
    families += [calls, seconds]
    return families
