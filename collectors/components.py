"""Component collectors by type: the names the ``collectors`` config uses.

Each type maps to the class measuring that component under its standard
exporter's metric names (redis_exporter, postgres_exporter,
mysqld_exporter, nginx-prometheus-exporter, memcached_exporter, and
ClickHouse's own Prometheus endpoint). Modules are imported when a target of
their type is configured, so a missing optional client library only affects
that type.

Every class is built as ``Cls(address, timeout=seconds, options=mapping)``:
``address`` is the target (``host:port``, or a URL for nginx), ``options``
the type's settings from the config (user, password, database, path...).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from tinct.collectors.base import Collector
from tinct.errors import ConfigError

__all__ = ["COMPONENT_TYPES", "component_collector"]

# type -> (module, class)
COMPONENT_TYPES: dict[str, tuple[str, str]] = {
    "redis": ("tinct.collectors.redis", "RedisCollector"),
    "postgresql": ("tinct.collectors.postgres", "PostgresCollector"),
    "mysql": ("tinct.collectors.mysql", "MysqlCollector"),
    "nginx": ("tinct.collectors.nginx", "NginxCollector"),
    "memcached": ("tinct.collectors.memcached", "MemcachedCollector"),
    "clickhouse": ("tinct.collectors.clickhouse", "ClickHouseCollector"),
}


def component_collector(
    kind: str, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
) -> Collector:
    """A collector for the component ``kind`` at ``address``.

    Raises:
        ConfigError: unknown ``kind`` or options the collector refuses.
    """
    where = COMPONENT_TYPES.get(kind)
    if where is None:
        known = ", ".join(sorted(COMPONENT_TYPES))
        raise ConfigError(f"component type {kind!r} is not known (known: {known})")
    cls = getattr(importlib.import_module(where[0]), where[1])
    collector: Collector = cls(address, timeout=timeout, options=dict(options or {}))
    return collector
