"""memcached, measured under memcached_exporter's metric names.

Dashboards and alert rules written for prometheus/memcached_exporter
(https://github.com/prometheus/memcached_exporter, ``pkg/exporter/exporter.go``)
work unchanged on what this collector emits: the same family names, types and
labels, mapped from the same ``stats`` and ``stats settings`` fields. Only
the core families are emitted; the target labels are the scheduler's to add.

The text protocol's ``stats`` command is one line to send and a
``STAT <name> <value>`` line per field to read, up to ``END`` (memcached's ``doc/protocol.txt``,
"General-purpose statistics"), so a plain socket is used instead of a client
library: no dependency, and one deadline bounds the whole exchange.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["MemcachedCollector"]

DEFAULT_PORT = 11211

# A stats reply is a few kilobytes; anything this long is not memcached.
_MAX_REPLY = 1 << 20

# stats field -> (family, help); gauges of memcached_exporter.
_GAUGES: dict[str, tuple[str, str]] = {
    "curr_connections": ("memcached_current_connections", "Open connections."),
    "curr_items": ("memcached_current_items", "Items stored."),
    "bytes": ("memcached_current_bytes", "Bytes used by items."),
    "limit_maxbytes": ("memcached_limit_bytes", "Memory limit."),
}

# stats field -> (family without _total, help); counters of memcached_exporter.
_COUNTERS: dict[str, tuple[str, str]] = {
    "total_connections": ("memcached_connections", "Connections opened."),
    "total_items": ("memcached_items", "Items stored since start."),
    "evictions": ("memcached_items_evicted", "Items evicted."),
    "bytes_read": ("memcached_read_bytes", "Bytes read."),
    "bytes_written": ("memcached_written_bytes", "Bytes written."),
}

# memcached_exporter reports <op>_hits and <op>_misses as commands_total{command=op}.
_HIT_MISS_OPS = ("get", "delete", "incr", "decr", "cas", "touch")


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; the port may be left out) split and checked."""
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":"):  # no port, or a bare IPv6 address
        host, port = address, str(default_port)
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"memcached address {address!r} is not host:port")
    return host, int(port)


class MemcachedCollector:
    """Measures one memcached server with ``stats`` and ``stats settings``.

    Args:
        address: ``host:port`` of the server.
        timeout: seconds the whole collection (connect, both commands) may take.
        options: none are used.

    Raises:
        ConfigError: ``address`` is not ``host:port``.

    ``collect`` blocks on the network, one connection per collection.
    """

    up_metric = "memcached_up"

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        self.address = address
        self._host, self._port = _host_port(address, DEFAULT_PORT)
        self._timeout = timeout

    def collect(self) -> Iterator[Metric]:
        """The core memcached_exporter families. Raises CollectError when memcached fails."""
        deadline = time.monotonic() + self._timeout
        try:
            with socket.create_connection((self._host, self._port), self._timeout) as sock:
                stats = _stats(sock, b"stats", deadline)
                settings = _stats(sock, b"stats settings", deadline)
        except (OSError, ValueError) as exc:
            raise CollectError(f"memcached {self.address}: {type(exc).__name__}: {exc}") from exc
        try:
            return iter(_families(stats, settings))
        except ValueError as exc:
            raise CollectError(f"memcached {self.address}: bad stats value: {exc}") from exc


def _stats(sock: socket.socket, command: bytes, deadline: float) -> dict[str, str]:
    """Send a stats command, read ``STAT <name> <value>`` lines up to ``END``.

    Raises:
        OSError: the connection failed or the deadline passed (TimeoutError).
        ValueError: the reply is not a stats reply.
    """
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    sock.sendall(command + b"\r\n")
    reply = b""
    while not (reply.endswith(b"\r\nEND\r\n") or reply == b"END\r\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete reply to {command.decode()!r} in time")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed during {command.decode()!r}")
        reply += chunk
        if len(reply) > _MAX_REPLY or reply.startswith(
            (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")
        ):
            first = reply.split(b"\r\n", 1)[0][:200].decode(errors="replace")
            raise ValueError(f"not a stats reply to {command.decode()!r}: {first!r}")
    stats: dict[str, str] = {}
    for line in reply.decode(errors="replace").split("\r\n"):
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    return stats


def _families(stats: Mapping[str, str], settings: Mapping[str, str]) -> list[Metric]:
    """stats and stats settings to metric families; a field memcached lacks is left out."""
    if "uptime" not in stats:
        raise ValueError("stats has no uptime")
    families: list[Metric] = [
        GaugeMetricFamily("memcached_up", "1 if memcached answered.", value=1)
    ]
    # memcached_exporter exposes uptime as a counter named without _total.
    uptime = Metric("memcached_uptime_seconds", "Seconds since memcached started.", "counter")
    uptime.add_sample("memcached_uptime_seconds", {}, float(stats["uptime"]))
    families.append(uptime)
    for field, (name, help_) in _GAUGES.items():
        if field in stats:
            families.append(GaugeMetricFamily(name, help_, value=float(stats[field])))
    if "maxconns" in settings:
        families.append(
            GaugeMetricFamily(
                "memcached_max_connections", "Connection limit.", value=float(settings["maxconns"])
            )
        )
    for field, (name, help_) in _COUNTERS.items():
        if field in stats:
            families.append(CounterMetricFamily(name, help_, value=float(stats[field])))

    commands = CounterMetricFamily(
        "memcached_commands", "Commands per command and status.", labels=["command", "status"]
    )
    for op in _HIT_MISS_OPS:
        for status, suffix in (("hit", "_hits"), ("miss", "_misses")):
            if op + suffix in stats:
                commands.add_metric([op, status], float(stats[op + suffix]))
    if "cas_badval" in stats:
        commands.add_metric(["cas", "badval"], float(stats["cas_badval"]))
    if "cmd_flush" in stats:
        commands.add_metric(["flush", "hit"], float(stats["cmd_flush"]))
    if "cmd_set" in stats:
        # memcached counts cas commands in cmd_set too; the exporter takes them out.
        cas = sum(float(stats.get(f, 0)) for f in ("cas_misses", "cas_hits", "cas_badval"))
        commands.add_metric(["set", "hit"], float(stats["cmd_set"]) - cas)
    families.append(commands)
    return families
