"""PromQL over tinct's metric store, with Prometheus 3.x semantics.

``values`` (what expressions evaluate to), ``engine`` (parsing with
promql-parser and evaluation), ``functions`` (the function table), ``api``
(the Prometheus HTTP API on the main port), ``result`` (answers and errors).
"""

from tinct.promql.engine import Engine
from tinct.promql.result import (
    BadQueryError,
    ExecutionError,
    PromQLError,
    QueryResult,
    QueryTimeoutError,
    TooManySamplesError,
)

__all__ = [
    "Engine",
    "QueryResult",
    "PromQLError",
    "BadQueryError",
    "ExecutionError",
    "QueryTimeoutError",
    "TooManySamplesError",
]
