"""DDL per server capabilities, migrations, and retention."""

from __future__ import annotations

import time

import pytest

from tinct.errors import ConfigError, SchemaError
from tinct.spans import SPAN_COLUMNS
from tinct.storage import schema
from tinct.storage.migrations import MIGRATIONS, Migration
from tinct.storage.schema import Capabilities, SchemaTarget
from tinct.storage.sql import Sql

from .spanrows import BASE_NS, DAY_NS, batch, span

ALL_STEPS = list(range(1, len(MIGRATIONS) + 1))
OLD = Capabilities.from_version("18.16.1")
NEW = Capabilities.from_version("26.9.2.1")


def test_capabilities_from_version():
    assert OLD == Capabilities((18, 16), False, False, False, False)
    assert NEW == Capabilities((26, 9), True, True, True, True)
    assert Capabilities.from_version("19.16.3.6").ttl is True
    assert Capabilities.from_version("19.16.3.6").skip_indexes is False
    with pytest.raises(ValueError):
        Capabilities.from_version("unknown")


def test_span_columns_match_the_span_schema():
    assert tuple(schema.SPAN_COLUMN_TYPES) == SPAN_COLUMNS


def test_ddl_for_clickhouse_18_uses_no_newer_features():
    target = SchemaTarget("db", OLD, retention_days=7)
    ddl = "\n".join(
        [
            schema.spans_table(target),
            schema.trace_index_table(target),
            schema.operations_table(target),
            schema.schema_version_table(target),
        ]
    )
    for feature in ("LowCardinality", "CODEC", "TTL", "INDEX"):
        assert feature not in ddl
    assert schema.skip_indexes(target) == []
    assert "PARTITION BY toDate(toDateTime(least(intDiv(start_ns" in ddl
    assert "ORDER BY (service, name, start_ns)" in ddl


def test_ddl_for_current_clickhouse_uses_them():
    target = SchemaTarget("db", NEW, retention_days=7)
    spans = schema.spans_table(target)
    assert "service LowCardinality(String)" in spans
    assert "attr_keys Array(LowCardinality(String))" in spans
    assert "start_ns UInt64 CODEC(Delta, ZSTD(1))" in spans
    assert spans.rstrip().endswith("+ toIntervalDay(8)")
    assert len(schema.skip_indexes(target)) == 3
    assert "TTL" not in schema.spans_table(SchemaTarget("db", NEW, retention_days=0))


def test_reopening_applies_nothing(open_store):
    store = open_store()
    assert store.applied_migrations == ALL_STEPS
    store.close()
    store = open_store()
    assert store.applied_migrations == []


def _skip_index_names(store) -> set[str]:
    if not store.capabilities.skip_indexes:
        return set()
    rows = store._backend.select(
        Sql(
            "SELECT name FROM system.data_skipping_indices WHERE database = {d:String} "
            "AND table = {t:String}",
            {"d": store.target.database, "t": schema.SPANS},
        )
    )
    return {v.decode() for v in rows.column(0).to_pylist()} if rows.num_rows else set()


def test_store_at_an_older_version_is_migrated(open_store):
    store = open_store(migrations=MIGRATIONS[:1])
    assert store.applied_migrations == [1]
    row = span()
    store.write_spans(batch(row))
    assert _skip_index_names(store) == set()
    store.close()

    store = open_store()
    assert store.applied_migrations == ALL_STEPS[1:]
    assert store.get_trace(row["trace_id"]) == [row]
    if store.capabilities.skip_indexes:
        assert _skip_index_names(store) == {"idx_trace_id", "idx_tags", "idx_duration"}


def _add_table(target: SchemaTarget) -> list[str]:
    # 18.16 has no ADD COLUMN IF NOT EXISTS; a new table is idempotent everywhere.
    return [
        f"CREATE TABLE IF NOT EXISTS {target.table('tinct_notes')} (note String) "
        "ENGINE = MergeTree ORDER BY note"
    ]


def test_new_migration_runs_once_and_old_tinct_refuses_newer_store(open_store):
    steps = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "notes table", _add_table))
    assert open_store().applied_migrations == ALL_STEPS
    open_store.opened[-1].close()
    assert open_store(migrations=steps).applied_migrations == [len(MIGRATIONS) + 1]
    open_store.opened[-1].close()
    assert open_store(migrations=steps).applied_migrations == []
    open_store.opened[-1].close()
    with pytest.raises(SchemaError, match="newer"):
        open_store()


def test_migrations_must_be_numbered_without_gaps(open_store):
    with pytest.raises(SchemaError, match="without gaps"):
        open_store(migrations=(MIGRATIONS[0], Migration(3, "x", lambda t: [])))


def test_negative_retention_is_a_config_error(open_store):
    with pytest.raises(ConfigError, match="retention_days"):
        open_store(retention_days=-1)


def test_retention_zero_keeps_everything(open_store):
    store = open_store()
    rows = [span(start_ns=0), span(start_ns=1), span(start_ns=BASE_NS)]
    store.write_spans(batch(*rows))
    assert store.apply_retention(time.time_ns() + 3650 * DAY_NS) == []
    store.close()
    store = open_store()  # opening applies retention too
    for row in rows:
        assert store.get_trace(row["trace_id"]) == [row]


def test_retention_drops_whole_old_days(open_store):
    now = time.time_ns()
    store = open_store(retention_days=3)
    old, edge, recent = (span(start_ns=now - d * DAY_NS) for d in (10, 3, 0))
    store.write_spans(batch(old, edge, recent))

    dropped = store.apply_retention(now)

    assert store.get_trace(old["trace_id"]) == []
    assert store.get_trace(edge["trace_id"]) == [edge]
    assert store.get_trace(recent["trace_id"]) == [recent]
    if not store.capabilities.ttl:  # otherwise TTL may have been faster
        old_day = time.strftime("%Y%m%d", time.gmtime(old["start_ns"] // 10**9))
        assert dropped == [(schema.SPANS, old_day), (schema.TRACE_INDEX, old_day)]
    store.apply_retention(now + 30 * DAY_NS)
    assert store.get_trace(recent["trace_id"]) == []
    assert store.services() == ["svc"]  # operations are kept


def test_retention_by_partition_with_injected_now(open_store, monkeypatch):
    """The 18.16 path (no TTL, partition drops only, relative to the given now);
    chdb is told it is 18.16 too, which also checks that DDL on a new engine."""
    monkeypatch.setattr(Capabilities, "from_version", lambda version: OLD)
    store = open_store(retention_days=2)
    assert store.capabilities == OLD
    days = [span(start_ns=BASE_NS + d * DAY_NS) for d in range(6)]
    store.write_spans(batch(*days))
    store.apply_retention(BASE_NS + 5 * DAY_NS)
    kept = [bool(store.get_trace(row["trace_id"])) for row in days]
    assert kept == [False, False, False, True, True, True]


def test_ttl_follows_retention_setting(open_store):
    store = open_store(retention_days=3)
    if not store.capabilities.ttl:
        pytest.skip("server without TTL")

    def ttl() -> str:
        rows = store._backend.select(
            Sql(
                "SELECT engine_full FROM system.tables WHERE database = {d:String} "
                "AND name = {t:String}",
                {"d": store.target.database, "t": schema.SPANS},
            )
        )
        full = rows.column(0)[0].as_py().decode()
        return full.split(" TTL ", 1)[1] if " TTL " in full else ""

    assert "toIntervalDay(4)" in ttl()
    store.close()
    store = open_store(retention_days=7)
    assert "toIntervalDay(8)" in ttl()
    store.close()
    store = open_store()
    assert ttl() == ""
