"""Every collector at once, through config, discovery and the scheduler, on real servers.

This is the data standard's test: each series the host and component
collectors store, with the labels collection gives them, conforms to the
catalog (name, type, unit, layer, entity labels); and stopping one component
mid-run marks only that target down while the others keep collecting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import postgres_server
from tests.servers_cache import memcached_server, nginx_server, redis_server
from tests.servers_sql import MARIADB_PASSWORD, MARIADB_USER, mariadb_server
from tinct.catalog import CATALOG
from tinct.collectors.config import discover_targets, parse_collection_config
from tinct.collectors.scheduler import Scheduler
from tinct.metrics import Matcher, is_stale
from tinct.standard import MetricType
from tinct.storage import InMemoryMetricStore

pytestmark = [pytest.mark.clickhouse, pytest.mark.server]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, clickhouse_port: int) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("layers")
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp / "redis"))
        ports = {
            "redis": redis,
            "memcached": stack.enter_context(memcached_server(tmp / "memcached")),
            "nginx": stack.enter_context(nginx_server(tmp / "nginx")),
            "postgresql": stack.enter_context(postgres_server(tmp / "pg")),
            "mysql": stack.enter_context(mariadb_server(tmp / "mariadb")),
            "clickhouse": clickhouse_port,
        }
        yield stack, ports


def _config(ports: dict[str, int]) -> dict[str, Any]:
    options: dict[str, dict[str, Any]] = {
        "postgresql": {"user": "postgres"},
        "mysql": {"user": MARIADB_USER, "password": MARIADB_PASSWORD},
        "nginx": {"path": "/stub_status"},
    }
    return {
        "collectors": {
            "host": {"scrape_interval": "15s"},
            "components": [
                {
                    "type": kind,
                    "scrape_timeout": "3s",
                    "options": options.get(kind, {}),
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}"], "labels": {"app": "shop"}}
                    ],
                }
                for kind, port in ports.items()
            ],
        }
    }


def test_every_series_conforms_and_one_down_leaves_the_rest(servers: Any) -> None:
    _, ports = servers
    store = InMemoryMetricStore()
    now = [1_800_000_000.0]
    scheduler = Scheduler(store.write_samples, store.write_metadata, clock=lambda: now[0])
    try:
        targets = discover_targets(parse_collection_config(_config(ports)))
        assert sorted(t.job for t in targets) == sorted([*ports, "host"])
        for target in targets:
            health = scheduler.scrape_once(target)
            assert health.health == "up", (target.job, health.last_error)

        problems = []
        series = store.series([], 0, 10**13)
        for s in series:
            problems += CATALOG.problems(s.name, s.labels)
        assert problems == []
        assert len(series) > 500, len(series)
        layers = {s.labels["layer"] for s in series}
        assert layers == {"infrastructure", "component"}
        components = {s.labels.get("component") for s in series} - {None}
        assert components == set(ports)
        # Types as the catalog says (families from metadata, prefix families included).
        for meta in store.metadata():
            spec = CATALOG.get(meta.metric.removesuffix("_total")) or CATALOG.for_sample(
                meta.metric
            )
            assert spec is not None, meta
            if spec.type is not MetricType.UNKNOWN:
                assert meta.type == spec.type.value, (meta, spec)

        # Stop redis mid-run: its target goes down, every other keeps collecting.
        now[0] += 15
        redis_target = next(t for t in targets if t.job == "redis")
        _stop_redis(ports["redis"])
        for target in targets:
            health = scheduler.scrape_once(target)
            expected = "down" if target is redis_target else "up"
            assert health.health == expected, (target.job, health.last_error)
        ups = {}
        for s in store.series([Matcher("__name__", "=", "up")], 0, 10**13):
            values = store.samples([s.fingerprint], 0, 10**13).column("value").to_pylist()
            ups[s.labels["job"]] = values
        assert ups.pop("redis") == [1.0, 0.0]
        assert all(v == [1.0, 1.0] for v in ups.values()), ups
        (redis_up,) = store.series([Matcher("__name__", "=", "redis_up")], 0, 10**13)
        values = store.samples([redis_up.fingerprint], 0, 10**13).column("value").to_pylist()
        assert values == [1.0, 0.0]
        (clients,) = store.series([Matcher("__name__", "=", "redis_connected_clients")], 0, 10**13)
        last = store.samples([clients.fingerprint], 0, 10**13).column("value").to_pylist()[-1]
        assert is_stale(last)
        assert scheduler.errors == {("redis", f"127.0.0.1:{ports['redis']}"): 1}
    finally:
        scheduler.close()


def _stop_redis(port: int) -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(host="127.0.0.1", port=port).shutdown(nosave=True)


def test_config_paths_are_the_demo_shape(tmp_path: Path) -> None:
    # A component entry without a target is fine (a file_sd file filled later).
    listing = tmp_path / "redis.json"
    listing.write_text("[]")
    config = parse_collection_config(
        {
            "collectors": {
                "components": [{"type": "redis", "file_sd_configs": [{"files": [str(listing)]}]}]
            }
        }
    )
    assert [t.job for t in discover_targets(config)] == ["host"]
    listing.write_text('[{"targets": ["127.0.0.1:6379"]}]')
    found = {t.job: t for t in discover_targets(config)}
    assert found["redis"].labels["component"] == "redis"
    assert found["redis"].labels["layer"] == "component"
