"""RedisCollector against a real redis-server: redis_exporter's names, real values."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import Metric

from tests.servers import free_port
from tests.servers_cache import redis_server, silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.components import component_collector
from tinct.collectors.redis import RedisCollector

pytestmark = pytest.mark.server

# Every sample name the collector emits: redis_exporter's, for these families.
EXPECTED = {
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_connected_slaves",
    "redis_commands_processed_total",
    "redis_connections_received_total",
    "redis_rejected_connections_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_commands_total",
    "redis_commands_duration_seconds_total",
}


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    # Not Redis's default 16, to see the collector read it (CONFIG GET databases).
    with redis_server(tmp_path_factory.mktemp("redis"), databases=20) as port:
        yield port


def values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_names_types_and_labels_follow_the_catalog(redis_port: int) -> None:
    address = f"127.0.0.1:{redis_port}"
    collector = component_collector("redis", address, timeout=2.0)
    families = list(collector.collect())

    assert {s.name for f in families for s in f.samples} == EXPECTED
    for family in families:
        for sample in family.samples:
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {**sample.labels, "layer": "component", "component": "redis"}
            assert CATALOG.problems(sample.name, {**labels, "instance": address}) == []
            # Only the exporter's own labels: the scheduler adds the target's.
            assert set(sample.labels) <= {"db", "cmd"}, sample


def test_values_follow_the_traffic(redis_port: int) -> None:
    client = redis.Redis(port=redis_port)
    client.flushall()
    collector = RedisCollector(f"127.0.0.1:{redis_port}", timeout=2.0, options={"db": 3})
    before = values(list(collector.collect()))

    for i in range(25):
        client.set(f"key:{i}", "x" * 10)
    for i in range(10):  # 6 hits, 4 misses
        client.get(f"key:{i}" if i < 6 else f"absent:{i}")
    db2 = redis.Redis(port=redis_port, db=2)
    for i in range(3):
        db2.set(f"ttl:{i}", "y", ex=600)
    after = values(list(collector.collect()))

    assert after[("redis_up", ())] == 1
    assert after[("redis_keyspace_hits_total", ())] - before[("redis_keyspace_hits_total", ())] == 6
    misses = (
        after[("redis_keyspace_misses_total", ())] - before[("redis_keyspace_misses_total", ())]
    )
    assert misses == 4
    assert after[("redis_db_keys", (("db", "db0"),))] == 25
    assert after[("redis_db_keys_expiring", (("db", "db0"),))] == 0
    assert after[("redis_db_keys", (("db", "db2"),))] == 3
    assert after[("redis_db_keys_expiring", (("db", "db2"),))] == 3
    # As redis_exporter does, every configured database has a series, 0 when empty.
    assert after[("redis_db_keys", (("db", "db19"),))] == 0
    assert ("redis_db_keys", (("db", "db20"),)) not in after
    assert after[("redis_commands_total", (("cmd", "set"),))] >= 28
    assert after[("redis_commands_total", (("cmd", "get"),))] >= 10
    assert after[("redis_commands_duration_seconds_total", (("cmd", "set"),))] > 0
    processed = ("redis_commands_processed_total", ())
    assert after[processed] - before[processed] >= 38
    received = ("redis_connections_received_total", ())
    assert after[received] > before[received]  # each collection connects once
    assert after[("redis_connected_clients", ())] >= 1
    assert after[("redis_memory_used_bytes", ())] > 0
    assert after[("redis_connected_slaves", ())] == 0
    client.close()
    db2.close()


def test_a_closed_port_raises_quickly() -> None:
    collector = RedisCollector(f"127.0.0.1:{free_port()}", timeout=1.0, options={})
    start = time.monotonic()
    with pytest.raises(CollectError, match="redis 127.0.0.1:"):
        list(collector.collect())
    assert time.monotonic() - start < 1.0


def test_a_silent_server_raises_within_the_timeout() -> None:
    with silent_port() as port:
        collector = RedisCollector(f"127.0.0.1:{port}", timeout=0.5, options={})
        start = time.monotonic()
        with pytest.raises(CollectError, match="Timeout"):
            list(collector.collect())
        assert time.monotonic() - start < 1.5


def test_a_stopped_server_raises(tmp_path: Path) -> None:
    with redis_server(tmp_path) as port:
        collector = RedisCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        assert list(collector.collect())
    with pytest.raises(CollectError):
        list(collector.collect())


def test_a_wrong_password_raises(redis_port: int) -> None:
    client = redis.Redis(port=redis_port)
    client.config_set("requirepass", "secret")
    try:
        address = f"127.0.0.1:{redis_port}"
        with pytest.raises(CollectError):
            list(RedisCollector(address, timeout=1.0, options={"password": "wrong"}).collect())
        ok = RedisCollector(address, timeout=1.0, options={"password": "secret"})
        assert values(list(ok.collect()))[("redis_up", ())] == 1
    finally:
        redis.Redis(port=redis_port, password="secret").config_set("requirepass", "")
        client.close()
