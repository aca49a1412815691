"""Storage: the only package that speaks SQL (ClickHouse, embedded or server).

Start with :func:`open_store`, which turns a ``--store`` URL into a
:class:`SpanStore`, and put a :class:`BatchWriter` in front of it on the
ingest path (a second one, :func:`log_batch_writer`, for logs). Everything
SQL is below this package: ``schema`` (the DDL, per server capabilities),
``migrations``, ``queries`` (the reads, written once), ``sql`` (parameter
rendering per backend), ``dye_rules`` (the dye rules' queries), ``logs``
(the log records') and the two backends.
"""

from tinct.storage.base import (
    DyeRuleStore,
    LogReader,
    LogStore,
    LogWriter,
    MetricReader,
    MetricStore,
    MetricWriter,
    SpanReader,
    SpanRow,
    SpanStore,
    SpanWriter,
    StoredDyeRule,
)
from tinct.storage.batches import InvalidBatchError
from tinct.storage.chdb_store import ChdbSpanStore
from tinct.storage.clickhouse_store import ClickHouseSpanStore
from tinct.storage.factory import (
    DEFAULT_DATA_DIR,
    StoreLocation,
    open_store,
    parse_store_url,
    redact_store_url,
)
from tinct.storage.logs import log_batch_writer
from tinct.storage.memory import InMemorySpanStore
from tinct.storage.memory_metrics import InMemoryMetricStore
from tinct.storage.memory_rum import InMemoryRumEventStore
from tinct.storage.memory_topology import InMemoryTopologyStore
from tinct.storage.metric_batches import sample_batch_writer
from tinct.storage.rum import RumEventStore
from tinct.storage.schema import Capabilities
from tinct.storage.sqlstore import SqlSpanStore
from tinct.storage.topology import EdgeQuery, EdgeRow, TopologyStore
from tinct.storage.writer import BatchWriter, QueueFullError

__all__ = [
    "open_store",
    "parse_store_url",
    "redact_store_url",
    "StoreLocation",
    "DEFAULT_DATA_DIR",
    "SpanStore",
    "SpanReader",
    "SpanWriter",
    "SpanRow",
    "DyeRuleStore",
    "StoredDyeRule",
    "LogStore",
    "LogReader",
    "LogWriter",
    "log_batch_writer",
    "MetricStore",
    "MetricReader",
    "MetricWriter",
    "InMemoryMetricStore",
    "sample_batch_writer",
    "RumEventStore",
    "InMemoryRumEventStore",
    "TopologyStore",
    "InMemoryTopologyStore",
    "EdgeQuery",
    "EdgeRow",
    "SqlSpanStore",
    "ChdbSpanStore",
    "ClickHouseSpanStore",
    "InMemorySpanStore",
    "Capabilities",
    "BatchWriter",
    "QueueFullError",
    "InvalidBatchError",
]
