"""Forward-only schema migrations, numbered and recorded in the store.

A store's schema version is the highest version recorded in the
``tinct_schema_version`` table. Opening a store applies, in order, every
migration above it and records each one as it completes; an up-to-date store
applies nothing. There are no down-migrations: an older tinct refuses a store
whose schema is newer than it knows (:class:`~tinct.errors.SchemaError`).

Every statement must be idempotent (``IF NOT EXISTS``), because a step may
have run without being recorded (a crash between the two) and because, once
several tinct processes share a server, two of them may migrate at once.
ClickHouse 18.16 lacks ``ADD COLUMN IF NOT EXISTS``, so a step adding a
column there must first look the column up in ``system.columns``.
The DDL itself comes from ``tinct.storage.schema``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tinct.errors import SchemaError, StorageError
from tinct.storage import schema
from tinct.storage.schema import SchemaTarget
from tinct.storage.sql import Sql, SqlBuilder, SqlRunner

__all__ = ["Migration", "MIGRATIONS", "current_version", "migrate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One numbered step: the statements it runs, rendered for a target."""

    version: int
    description: str
    statements: Callable[[SchemaTarget], list[str]]


def _base_tables(target: SchemaTarget) -> list[str]:
    return [
        schema.spans_table(target),
        schema.trace_index_table(target),
        schema.operations_table(target),
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "spans, trace index and operations tables", _base_tables),
    # No-op on servers without non-experimental skip indexes (18.16).
    Migration(2, "skip indexes on spans (trace_id, tags, duration)", schema.skip_indexes),
    Migration(3, "dye rules table", lambda target: [schema.dye_rules_table(target)]),
    Migration(4, "logs table", lambda target: [schema.logs_table(target)]),
    Migration(
        5,
        "metric series, samples and metadata tables",
        lambda target: [
            schema.series_table(target),
            schema.samples_table(target),
            schema.metric_metadata_table(target),
        ],
    ),
    Migration(6, "browser error events table", lambda target: [schema.rum_events_table(target)]),
    Migration(7, "alert history table", lambda target: [schema.alert_history_table(target)]),
    Migration(
        8,
        "topology edges and pending spans tables",
        lambda target: [schema.topology_edges_table(target), schema.topology_pending_table(target)],
    ),
)


def current_version(db: SqlRunner, target: SchemaTarget) -> int:
    """Highest recorded migration; 0 for a new store. Creates the version table."""
    db.execute(Sql(schema.schema_version_table(target)))
    result = db.select(Sql(f"SELECT max(version) AS v FROM {target.table(schema.SCHEMA_VERSION)}"))
    if result.num_rows == 0:
        return 0
    return int(result.column(0)[0].as_py() or 0)


def migrate(
    db: SqlRunner,
    target: SchemaTarget,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    clock: Callable[[], int] = time.time_ns,
) -> list[int]:
    """Apply the missing migrations in order and record each.

    Args:
        db: runs the statements (a backend of the store being opened).
        target: database and capabilities the DDL is rendered for.
        migrations: the steps, numbered 1, 2, ... without gaps.
        clock: Unix nanoseconds, recorded as ``applied_ns``.

    Returns:
        Versions applied now, in order ([] when the store was up to date).

    Raises:
        SchemaError: a statement failed, or the store is newer than ``migrations``.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise SchemaError(f"migrations must be numbered 1..N without gaps, got {versions}")
    try:
        current = current_version(db, target)
    except StorageError as exc:
        raise SchemaError(f"cannot read the schema version of {target.database}: {exc}") from exc
    if current > len(migrations):
        raise SchemaError(
            f"database {target.database} has schema version {current}, newer than the "
            f"{len(migrations)} this tinct knows; upgrade tinct"
        )
    applied = []
    for step in migrations[current:]:
        try:
            for statement in step.statements(target):
                db.execute(Sql(statement))
            b = SqlBuilder()
            db.execute(
                b.build(
                    f"INSERT INTO {target.table(schema.SCHEMA_VERSION)} "
                    "(version, description, applied_ns) "
                    f"SELECT {b.param(step.version, 'UInt32')}, "
                    f"{b.param(step.description, 'String')}, {b.param(clock(), 'UInt64')}"
                )
            )
        except StorageError as exc:
            raise SchemaError(
                f"migration {step.version} ({step.description}) failed on {target.database}: {exc}"
            ) from exc
        logger.info("applied schema migration %d: %s", step.version, step.description)
        applied.append(step.version)
    return applied
