"""PostgresCollector against a real PostgreSQL: postgres_exporter's names, real values."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import Metric

from tests.servers import free_port, postgres_server
from tests.servers_sql import silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.components import component_collector
from tinct.collectors.postgres import PostgresCollector
from tinct.errors import ConfigError

STATES = {
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
}

# Every sample name the collector emits: postgres_exporter's, for these families.
EXPECTED = {
    "pg_up",
    "pg_stat_database_numbackends",
    "pg_stat_database_xact_commit",
    "pg_stat_database_xact_rollback",
    "pg_stat_database_blks_read",
    "pg_stat_database_blks_hit",
    "pg_stat_database_tup_returned",
    "pg_stat_database_tup_fetched",
    "pg_stat_database_tup_inserted",
    "pg_stat_database_tup_updated",
    "pg_stat_database_tup_deleted",
    "pg_stat_database_conflicts",
    "pg_stat_database_temp_files",
    "pg_stat_database_temp_bytes",
    "pg_stat_database_deadlocks",
    "pg_stat_activity_count",
    "pg_stat_activity_max_tx_duration",
    "pg_database_size_bytes",
    "pg_settings_max_connections",
    "pg_locks_count",
    "pg_postmaster_start_time_seconds",
}


@pytest.fixture(scope="module")
def pg_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as port:
        admin = psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True)
        with admin:
            admin.execute("CREATE DATABASE shop")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/shop") as conn:
            conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        yield port


def url(port: int, db: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{db}"


def values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def value(families: list[Metric], name: str, **labels: str) -> float:
    """The one sample ``name`` whose labels include ``labels``."""
    found = [
        s.value
        for f in families
        for s in f.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_names_types_and_labels_follow_the_catalog(pg_port: int) -> None:
    address = f"127.0.0.1:{pg_port}"
    collector = component_collector("postgresql", address, timeout=2.0)
    families = list(collector.collect())

    assert {s.name for f in families for s in f.samples} == EXPECTED
    for family in families:
        for sample in family.samples:
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {**sample.labels, "layer": "component", "component": "postgresql"}
            assert CATALOG.problems(sample.name, {**labels, "instance": address}) == []
            # Only the exporter's own labels: the scheduler adds the target's.
            assert set(sample.labels) <= {"datid", "datname", "state", "mode"}, sample
    assert getattr(collector, "up_metric", None) == "pg_up"


def test_values_follow_the_activity(pg_port: int) -> None:
    collector = PostgresCollector(f"127.0.0.1:{pg_port}", timeout=2.0, options={})
    before = list(collector.collect())

    # 30 committed transactions and 3 rolled back, on a session that then
    # ends: a backend flushes its statistics when it exits.
    with psycopg.connect(url(pg_port, "shop"), autocommit=True) as work:
        for i in range(30):
            with work.transaction():
                work.execute("INSERT INTO items (name) VALUES (%s)", [f"item {i}"])
        for _ in range(3):
            with work.transaction():
                work.execute("INSERT INTO items (name) VALUES ('gone')")
                raise psycopg.Rollback()
    # A session left idle in an open transaction, holding a table lock.
    held = psycopg.connect(url(pg_port, "shop"))
    try:
        held.execute("SELECT count(*) FROM items").fetchone()
        time.sleep(0.2)  # so the open transaction has a measurable age

        deadline = time.monotonic() + 15
        while True:
            after = list(collector.collect())
            commits = value(after, "pg_stat_database_xact_commit", datname="shop") - value(
                before, "pg_stat_database_xact_commit", datname="shop"
            )
            rollbacks = value(after, "pg_stat_database_xact_rollback", datname="shop") - value(
                before, "pg_stat_database_xact_rollback", datname="shop"
            )
            if (commits >= 30 and rollbacks >= 3) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert commits >= 30
        assert rollbacks >= 3
        inserted = value(after, "pg_stat_database_tup_inserted", datname="shop") - value(
            before, "pg_stat_database_tup_inserted", datname="shop"
        )
        assert inserted >= 33  # rolled-back rows were inserted too

        idle = {"datname": "shop", "state": "idle in transaction"}
        assert value(after, "pg_stat_activity_count", **idle) >= 1
        assert value(after, "pg_stat_activity_max_tx_duration", **idle) >= 0.2
        assert value(after, "pg_stat_database_numbackends", datname="shop") >= 1
        assert value(after, "pg_locks_count", datname="shop", mode="accesssharelock") >= 1
        # A row for every known state, zeros included, as postgres_exporter's query.
        states = {
            s.labels["state"]
            for f in after
            for s in f.samples
            if s.name == "pg_stat_activity_count" and s.labels["datname"] == "shop"
        }
        assert states == STATES
        assert value(after, "pg_stat_activity_count", datname="shop", state="disabled") == 0
    finally:
        held.close()

    with psycopg.connect(url(pg_port)) as conn:
        size, max_connections, started = conn.execute(
            "SELECT pg_database_size('shop'), current_setting('max_connections')::int,"
            " EXTRACT(EPOCH FROM pg_postmaster_start_time())::float8"
        ).fetchone()  # type: ignore[misc]
        datid = conn.execute("SELECT oid::text FROM pg_database WHERE datname = 'shop'").fetchone()
    assert value(after, "pg_database_size_bytes", datname="shop") == pytest.approx(size, rel=0.5)
    assert size > 0
    assert value(after, "pg_settings_max_connections") == max_connections
    assert value(after, "pg_postmaster_start_time_seconds") == pytest.approx(started)
    assert datid is not None
    assert value(after, "pg_stat_database_xact_commit", datname="shop", datid=datid[0]) > 0
    assert value(after, "pg_up") == 1


def test_reconnects_after_its_session_is_killed(pg_port: int) -> None:
    collector = PostgresCollector(f"127.0.0.1:{pg_port}", timeout=2.0, options={})
    collector.collect()
    with psycopg.connect(url(pg_port), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'tinct'"
        )
    with pytest.raises(CollectError, match=f"postgresql 127.0.0.1:{pg_port}"):
        collector.collect()
    assert value(list(collector.collect()), "pg_up") == 1


def test_a_frozen_server_is_given_up_on_at_the_timeout(pg_port: int) -> None:
    collector = PostgresCollector(f"127.0.0.1:{pg_port}", timeout=1.0, options={})
    collector.collect()
    with psycopg.connect(url(pg_port), autocommit=True) as admin:
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'tinct'"
        ).fetchone()
    assert row is not None
    # The collector's backend stops answering (statement_timeout can't fire).
    os.kill(row[0], signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(CollectError, match="no answer within 1s"):
            collector.collect()
        assert time.monotonic() - start < 2.0
    finally:
        os.kill(row[0], signal.SIGCONT)


def test_a_closed_port_raises_quickly() -> None:
    address = f"127.0.0.1:{free_port()}"
    collector = PostgresCollector(address, timeout=1.0, options={})
    start = time.monotonic()
    with pytest.raises(CollectError, match=address):
        collector.collect()
    assert time.monotonic() - start < 2.0


def test_a_silent_server_raises_within_the_connect_timeout() -> None:
    with silent_port() as port:
        collector = PostgresCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        start = time.monotonic()
        with pytest.raises(CollectError, match="timeout"):
            collector.collect()
    # libpq (and psycopg) wait at least 2 s for a connection.
    assert time.monotonic() - start < 3.0


def test_a_stopped_server_raises_quickly(tmp_path: Path) -> None:
    with postgres_server(tmp_path) as port:
        collector = PostgresCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        assert value(list(collector.collect()), "pg_up") == 1
    start = time.monotonic()
    with pytest.raises(CollectError, match=f"127.0.0.1:{port}"):
        collector.collect()
    assert time.monotonic() - start < 2.0


def test_an_unknown_database_raises(pg_port: int) -> None:
    collector = PostgresCollector(
        f"127.0.0.1:{pg_port}", timeout=1.0, options={"dbname": "nowhere"}
    )
    with pytest.raises(CollectError, match="nowhere"):
        collector.collect()


@pytest.mark.parametrize(
    ("address", "options", "message"),
    [
        ("127.0.0.1:notaport", {}, "notaport"),
        ("", {}, "host:port"),
        ("127.0.0.1:5432", {"db": "x"}, "unknown option"),
    ],
)
def test_bad_settings_are_refused(address: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PostgresCollector(address, timeout=1.0, options=options)
