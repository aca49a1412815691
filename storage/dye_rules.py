"""Dye rules in ClickHouse: the SQL behind :class:`~tinct.storage.base.DyeRuleStore`.

The table (``schema.dye_rules_table``) is a ReplacingMergeTree keyed by rule
id: a rule is inserted with version 1 and ended by inserting it again with
``ended_at`` set and the next version. Reads group by id and take each
column's ``argMax(..., version)``, never ``FINAL``, so they answer the same
before and after merges, on ClickHouse 18.16 and current versions alike.
Aggregates get ``r_`` aliases: an alias equal to a column name would be
substituted into the aggregate's own argument on older servers.

Rows are written through the backend's Arrow insert (no SQL text at all) and
read with parameterized queries; times are Unix seconds as ``Float64``.
"""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa

from tinct.storage import schema
from tinct.storage.base import StoredDyeRule
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner

__all__ = [
    "DYE_RULE_SCHEMA",
    "add_rule",
    "live_rules",
    "end_rule",
    "live_rules_query",
    "rule_query",
]

# Columns of schema.dye_rules_table, as inserted.
DYE_RULE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("match_kind", pa.string()),
        ("match_key", pa.string()),
        ("match_value", pa.string()),
        ("service", pa.string()),
        ("ratio", pa.float64()),
        ("created_at", pa.float64()),
        ("expires_at", pa.float64()),
        ("ended_at", pa.float64()),
        ("version", pa.uint64()),
    ]
)

_LATEST = ", ".join(
    f"argMax({column}, version) AS r_{column}"
    for column in DYE_RULE_SCHEMA.names
    if column not in ("id", "version")
)


class _Inserter(SqlRunner, Protocol):
    """The part of ``sqlstore.Backend`` these functions use."""

    def insert(self, table: str, data: pa.Table) -> None: ...


def _row(rule: StoredDyeRule, ended_at: float, version: int) -> dict[str, Any]:
    return {
        "id": rule.id,
        "match_kind": rule.kind,
        "match_key": rule.key,
        "match_value": rule.value,
        "service": rule.service,
        "ratio": float(rule.ratio),
        "created_at": float(rule.created_at),
        "expires_at": float(rule.expires_at),
        "ended_at": ended_at,
        "version": version,
    }


def _rule(row: dict[str, Any]) -> StoredDyeRule:
    return StoredDyeRule(
        id=_text(row["id"]),
        kind=_text(row["r_match_kind"]),
        key=_text(row["r_match_key"]),
        value=_text(row["r_match_value"]),
        service=_text(row["r_service"]),
        ratio=float(row["r_ratio"]),
        created_at=float(row["r_created_at"]),
        expires_at=float(row["r_expires_at"]),
    )


def _seconds(b: SqlBuilder, value: float) -> str:
    # tinct.storage.sql has no Float64 parameters; repr() round-trips exactly.
    return f"toFloat64({b.param(repr(float(value)), 'String')})"


def live_rules_query(target: SchemaTarget, now_s: float, service: str | None) -> Sql:
    """Current version of every rule, kept when not ended and not yet expired."""
    b = SqlBuilder()
    where = [f"r_ended_at = 0 AND r_expires_at > {_seconds(b, now_s)}"]
    if service is not None:
        where.append(f"(r_service = '' OR r_service = {b.param(service, 'String')})")
    return b.build(
        f"SELECT * FROM (SELECT id, {_LATEST}, max(version) AS r_version "
        f"FROM {target.table(schema.DYE_RULES)} GROUP BY id) "
        f"WHERE {' AND '.join(where)} ORDER BY r_created_at, id"
    )


def rule_query(target: SchemaTarget, rule_id: str) -> Sql:
    """Current version of one rule (no row when unknown)."""
    b = SqlBuilder()
    return b.build(
        f"SELECT id, {_LATEST}, max(version) AS r_version "
        f"FROM {target.table(schema.DYE_RULES)} "
        f"WHERE id = {b.param(rule_id, 'String')} GROUP BY id"
    )


def add_rule(db: _Inserter, target: SchemaTarget, rule: StoredDyeRule) -> None:
    """Insert ``rule`` as version 1. Raises StorageError."""
    data = pa.Table.from_pylist([_row(rule, 0.0, 1)], schema=DYE_RULE_SCHEMA)
    db.insert(target.table(schema.DYE_RULES), data)


def live_rules(
    db: SqlRunner, target: SchemaTarget, now_s: float, service: str | None
) -> list[StoredDyeRule]:
    """Rules not ended with ``expires_at > now_s``, oldest first. Raises StorageError."""
    result = db.select(live_rules_query(target, now_s, service))
    return [_rule(row) for row in result.to_pylist()]


def end_rule(db: _Inserter, target: SchemaTarget, rule_id: str, now_s: float) -> bool:
    """Mark a live rule ended at ``now_s``; False when unknown, ended or expired.

    Two concurrent ends of one rule may both return True; either row wins
    and the rule is ended either way.
    """
    rows = db.select(rule_query(target, rule_id)).to_pylist()
    if not rows:
        return False
    row = rows[0]
    if float(row["r_ended_at"]) != 0 or float(row["r_expires_at"]) <= now_s:
        return False
    # An end time of exactly 0 would read as "not ended".
    ended_at = float(now_s) if now_s > 0 else 1e-9
    data = pa.Table.from_pylist(
        [_row(_rule(row), ended_at, int(row["r_version"]) + 1)], schema=DYE_RULE_SCHEMA
    )
    db.insert(target.table(schema.DYE_RULES), data)
    return True


def _text(value: object) -> str:
    """Backends return String as bytes; text columns are UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
