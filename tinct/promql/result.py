"""What a query returns, and how it fails, as the HTTP API reports it.

Prometheus's API (docs "HTTP API", "Expression query result formats"):
``resultType`` ``vector`` / ``matrix`` / ``scalar`` / ``string``, and error
types ``bad_data`` (400, e.g. a parse error), ``execution`` (422, e.g.
many-to-many matching, too many samples), ``timeout`` (503), ``canceled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinct.errors import TinctError

__all__ = [
    "QueryResult",
    "PromQLError",
    "BadQueryError",
    "ExecutionError",
    "QueryTimeoutError",
    "TooManySamplesError",
]


@dataclass
class QueryResult:
    """A query's answer.

    Attributes:
        result_type: ``vector``, ``matrix``, ``scalar`` or ``string``.
        result: for ``vector``, ``[(labels, (t_ms, value))]``; for ``matrix``,
            ``[(labels, [(t_ms, value), ...])]`` (series sorted by labels);
            for ``scalar``, ``(t_ms, value)``; for ``string``, ``(t_ms, text)``.
            ``labels`` is a dict. Values are floats (NaN and ±Inf included).
        warnings, infos: annotations, as Prometheus returns them.
        samples: samples the query read (for the limit and stats).
    """

    result_type: str
    result: Any
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    samples: int = 0


class PromQLError(TinctError):
    """A query failed; ``error_type`` and ``status`` are the API's."""

    error_type = "execution"
    status = 422


class BadQueryError(PromQLError):
    """The query (or a parameter) is invalid: a parse error, a bad duration."""

    error_type = "bad_data"
    status = 400


class ExecutionError(PromQLError):
    """The query is valid but cannot be evaluated (e.g. many-to-many matching)."""


class TooManySamplesError(ExecutionError):
    """The query would load more samples than ``--query.max-samples``."""


class QueryTimeoutError(PromQLError):
    """The query ran past ``--query.timeout``."""

    error_type = "timeout"
    status = 503
