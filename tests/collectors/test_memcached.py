"""MemcachedCollector against a real memcached: memcached_exporter's names, real values."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import Metric

from tests.servers import free_port
from tests.servers_cache import memcached_server, silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.components import component_collector
from tinct.collectors.memcached import MemcachedCollector

pytestmark = pytest.mark.server

# Every sample name the collector emits: memcached_exporter's, for these families.
EXPECTED = {
    "memcached_up",
    "memcached_uptime_seconds",
    "memcached_current_connections",
    "memcached_connections_total",
    "memcached_max_connections",
    "memcached_commands_total",
    "memcached_current_items",
    "memcached_items_total",
    "memcached_items_evicted_total",
    "memcached_current_bytes",
    "memcached_limit_bytes",
    "memcached_read_bytes_total",
    "memcached_written_bytes_total",
}

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def memcached_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with memcached_server(tmp_path_factory.mktemp("memcached")) as port:
        yield port


def values(families: list[Metric]) -> Values:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def command(sock: socket.socket, request: bytes, *ends: bytes) -> bytes:
    """One text-protocol request; the reply up to one of ``ends``."""
    sock.sendall(request)
    reply = b""
    while not reply.endswith(ends):
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {reply!r}"
        reply += chunk
    return reply


def commands(after: Values, before: Values, name: str, status: str) -> float:
    key = ("memcached_commands_total", (("command", name), ("status", status)))
    return after[key] - before.get(key, 0.0)


def test_names_types_and_labels_follow_the_catalog(memcached_port: int) -> None:
    address = f"127.0.0.1:{memcached_port}"
    families = list(component_collector("memcached", address, timeout=2.0).collect())

    assert {s.name for f in families for s in f.samples} == EXPECTED
    for family in families:
        for sample in family.samples:
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {**sample.labels, "layer": "component", "component": "memcached"}
            assert CATALOG.problems(sample.name, {**labels, "instance": address}) == []
            assert set(sample.labels) <= {"command", "status"}, sample
    # memcached_exporter's commands{command,status} series.
    found = {
        (s.labels["command"], s.labels["status"])
        for f in families
        if f.name == "memcached_commands"
        for s in f.samples
    }
    hit_miss = {
        (op, st)
        for op in ("get", "delete", "incr", "decr", "cas", "touch")
        for st in ("hit", "miss")
    }
    assert found == hit_miss | {("cas", "badval"), ("flush", "hit"), ("set", "hit")}


def test_values_follow_the_traffic(memcached_port: int) -> None:
    collector = MemcachedCollector(f"127.0.0.1:{memcached_port}", timeout=2.0, options={})
    with socket.create_connection(("127.0.0.1", memcached_port), 2.0) as sock:
        assert command(sock, b"flush_all\r\n", b"OK\r\n") == b"OK\r\n"
        before = values(list(collector.collect()))
        for i in range(25):
            assert command(sock, b"set k%d 0 0 5\r\nvalue\r\n" % i, b"\r\n") == b"STORED\r\n"
        for i in range(10):  # 6 hits, 4 misses
            key = b"k%d" % i if i < 6 else b"absent%d" % i
            command(sock, b"get " + key + b"\r\n", b"END\r\n")
        gets = command(sock, b"gets k0\r\n", b"END\r\n")
        cas_unique = gets.split(b"\r\n")[0].split()[-1]
        assert command(sock, b"cas k0 0 0 3 " + cas_unique + b"\r\nnew\r\n", b"\r\n") == (
            b"STORED\r\n"
        )
        assert command(sock, b"delete absent\r\n", b"\r\n") == b"NOT_FOUND\r\n"
        after = values(list(collector.collect()))

    assert after[("memcached_up", ())] == 1
    assert commands(after, before, "get", "hit") == 7  # 6 gets and the gets
    assert commands(after, before, "get", "miss") == 4
    # cmd_set counts the cas too; memcached_exporter takes it out of set.
    assert commands(after, before, "set", "hit") == 25
    assert commands(after, before, "cas", "hit") == 1
    assert commands(after, before, "delete", "miss") == 1
    assert after[("memcached_current_items", ())] == 25
    assert after[("memcached_items_total", ())] - before[("memcached_items_total", ())] == 26
    assert after[("memcached_current_bytes", ())] > 0
    assert after[("memcached_limit_bytes", ())] == 64 * 1024 * 1024
    assert after[("memcached_max_connections", ())] == 256
    assert after[("memcached_current_connections", ())] >= 2  # the test's and the collector's
    connections = ("memcached_connections_total", ())
    assert after[connections] - before[connections] == 1  # the collector's second
    read = ("memcached_read_bytes_total", ())
    assert after[read] - before[read] > 25 * len(b"set k0 0 0 5\r\nvalue\r\n")
    assert after[("memcached_uptime_seconds", ())] >= before[("memcached_uptime_seconds", ())]


def test_a_closed_port_raises_quickly() -> None:
    collector = MemcachedCollector(f"127.0.0.1:{free_port()}", timeout=1.0, options={})
    start = time.monotonic()
    with pytest.raises(CollectError, match="memcached 127.0.0.1:"):
        list(collector.collect())
    assert time.monotonic() - start < 1.0


def test_a_silent_server_raises_within_the_timeout() -> None:
    with silent_port() as port:
        collector = MemcachedCollector(f"127.0.0.1:{port}", timeout=0.5, options={})
        start = time.monotonic()
        with pytest.raises(CollectError, match="Timeout"):
            list(collector.collect())
        assert time.monotonic() - start < 1.0


def test_a_stopped_server_raises(tmp_path: Path) -> None:
    with memcached_server(tmp_path) as port:
        collector = MemcachedCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        assert list(collector.collect())
    with pytest.raises(CollectError):
        list(collector.collect())
