"""Dye rules in the store: the same answers on chdb, ClickHouse 18.16 and in memory."""

from __future__ import annotations

import pytest

from tinct.storage import StoredDyeRule, queries, schema
from tinct.storage.migrations import MIGRATIONS
from tinct.storage.schema import Capabilities, SchemaTarget

NOW = 1_700_000_000.25


def rule(rule_id: str, *, service: str = "", created: float = NOW, ttl: float = 1800, **kw):
    fields = {"kind": "user", "key": "", "value": "42", "ratio": 1.0, **kw}
    return StoredDyeRule(
        id=rule_id, service=service, created_at=created, expires_at=created + ttl, **fields
    )


def test_added_rules_are_listed_oldest_first_with_every_field(store) -> None:
    header = rule("b2", kind="header", key="x-canary", value="on é\t'\"", ratio=0.125)
    tenant = rule("a1", kind="tenant", value="acme", service="checkout", created=NOW + 1)
    store.add_dye_rule(tenant)
    store.add_dye_rule(header)
    assert store.dye_rules(NOW + 2) == [header, tenant]


def test_expired_rules_are_not_live(store) -> None:
    store.add_dye_rule(rule("r1", ttl=60))
    assert [r.id for r in store.dye_rules(NOW + 59.999)] == ["r1"]
    assert store.dye_rules(NOW + 60) == []
    assert store.end_dye_rule("r1", NOW + 61) is False  # nothing live to end


def test_service_filter_keeps_that_service_and_service_less_rules(store) -> None:
    store.add_dye_rule(rule("all"))
    store.add_dye_rule(rule("co", service="checkout", created=NOW + 1))
    store.add_dye_rule(rule("pay", service="payments", created=NOW + 2))
    assert [r.id for r in store.dye_rules(NOW, "checkout")] == ["all", "co"]
    assert [r.id for r in store.dye_rules(NOW, "nobody")] == ["all"]
    assert [r.id for r in store.dye_rules(NOW)] == ["all", "co", "pay"]


def test_ending_a_rule_removes_it_once(store) -> None:
    store.add_dye_rule(rule("r1"))
    store.add_dye_rule(rule("r2", created=NOW + 1))
    assert store.end_dye_rule("r1", NOW + 5) is True
    assert [r.id for r in store.dye_rules(NOW + 6)] == ["r2"]
    assert store.end_dye_rule("r1", NOW + 7) is False
    assert store.end_dye_rule("nope", NOW + 7) is False
    assert store.end_dye_rule("r2", NOW + 8) is True
    assert store.dye_rules(NOW + 9) == []


def test_rule_ids_and_values_are_parameters_not_sql(store) -> None:
    sneaky = "x' OR 1=1 --"
    store.add_dye_rule(rule(sneaky, value=sneaky, service=sneaky))
    assert store.end_dye_rule("x", NOW) is False
    assert [r.value for r in store.dye_rules(NOW, sneaky)] == [sneaky]
    assert store.end_dye_rule(sneaky, NOW) is True


@pytest.mark.parametrize("merge", [False, True])
def test_answers_are_the_same_before_and_after_merges(open_store, merge: bool) -> None:
    store = open_store()
    store.add_dye_rule(rule("r1"))
    store.add_dye_rule(rule("r2", created=NOW + 1))
    assert store.end_dye_rule("r1", NOW + 2)
    if merge:
        store._backend.execute(queries.optimize_final(store.target, schema.DYE_RULES))
    assert [r.id for r in store.dye_rules(NOW + 3)] == ["r2"]
    assert store.end_dye_rule("r1", NOW + 4) is False
    store.close()
    assert [r.id for r in open_store().dye_rules(NOW + 3)] == ["r2"]  # persisted


def test_dye_rules_table_ddl_fits_clickhouse_18() -> None:
    ddl = schema.dye_rules_table(SchemaTarget("db", Capabilities.from_version("18.16.1")))
    assert "ReplacingMergeTree(version)" in ddl and "ORDER BY id" in ddl
    for feature in ("LowCardinality", "CODEC", "TTL"):
        assert feature not in ddl
    assert MIGRATIONS[2].statements(SchemaTarget("db", Capabilities.from_version("26.1"))) == [
        schema.dye_rules_table(SchemaTarget("db", Capabilities.from_version("26.1")))
    ]
