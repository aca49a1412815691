"""Client spans for psycopg (v3) statements, without OpenTelemetry's psycopg package.

``opentelemetry-instrumentation-psycopg`` has no release matching the SDK tinct
pins, so :func:`instrument_clients` (tracing.instrument) falls back on
:class:`PsycopgInstrumentor`: it wraps ``execute`` and ``executemany`` of
``psycopg.Cursor`` and ``psycopg.AsyncCursor`` (and so of ``Connection.execute``
and of the client-side and raw cursors, which inherit them) process-wide.

Each statement runs in a CLIENT span named per the semantic conventions for
database spans: ``{db.operation.name} {target}`` (``SELECT orders``), else
the operation alone, with ``db.system.name`` (and the older ``db.system``) =
``postgresql``, ``db.namespace`` (the database), ``db.operation.name``,
``db.collection.name`` when the statement names one table, ``db.query.text``
(the statement as the application wrote it, with its placeholders: parameter
values are never recorded), ``server.address``, ``server.port`` and
``peer.service``. A failing statement ends its span in error with
``error.type`` and, for server errors, ``db.response.status_code`` (the
SQLSTATE).

Cost when not sampled: a statement inside an unsampled span (and without
baggage, which may carry a dye, tracing.sampler) costs one context read and
goes straight to psycopg; otherwise the sampler decides, and a span it drops
computes no attributes.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.context import get_current
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

__all__ = ["PsycopgInstrumentor", "operation_and_target", "span_name"]

logger = logging.getLogger(__name__)

PeerServiceLookup = Callable[[str | None, int | None], str | None]

_BAGGAGE_KEY: str | None = getattr(baggage, "_BAGGAGE_KEY", None)
_MARK = "_tinct_traced"  # set on a wrapped method: what it wraps

_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)
_IDENT = r'("(?:[^"]|"")+"|[A-Za-z_][\w$]*)(?:\s*\.\s*("(?:[^"]|"")+"|[A-Za-z_][\w$]*))?'
_TARGETS = {
    "SELECT": re.compile(r"\bFROM\s+" + _IDENT, re.I),
    "INSERT": re.compile(r"\AINSERT\s+INTO\s+" + _IDENT, re.I),
    "UPDATE": re.compile(r"\AUPDATE\s+(?:ONLY\s+)?" + _IDENT, re.I),
    "DELETE": re.compile(r"\ADELETE\s+FROM\s+(?:ONLY\s+)?" + _IDENT, re.I),
}
_JOIN = re.compile(r"\bJOIN\b", re.I)
_NOT_TABLES = frozenset(("SELECT", "LATERAL", "UNNEST", "GENERATE_SERIES"))


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def operation_and_target(statement: str) -> tuple[str | None, str | None]:
    """The statement's operation (first keyword, upper case) and its one table.

    ``("SELECT", "orders")`` for ``SELECT ... FROM orders WHERE ...``; the
    table is None for statements naming several (joins, sub-selects), or none.
    """
    text = statement[_COMMENTS.match(statement).end() :]  # type: ignore[union-attr]
    first = text.split(None, 1)
    if not first:
        return None, None
    operation = first[0].rstrip(";(").upper() or None
    pattern = _TARGETS.get(operation or "")
    if pattern is None:
        return operation, None
    text = text.lstrip()
    found = pattern.search(text)
    if found is None:
        return operation, None
    if operation == "SELECT" and (
        len(pattern.findall(text)) > 1
        or _JOIN.search(text)
        or text[found.end() :].lstrip().startswith(",")
    ):
        return operation, None  # several tables
    schema_or_table, table = found.group(1), found.group(2)
    name = _unquote(table) if table else _unquote(schema_or_table)
    if name.upper() in _NOT_TABLES:
        return operation, None
    return operation, name


def span_name(operation: str | None, target: str | None) -> str:
    """``{operation} {target}``, the operation alone, or ``postgresql``."""
    if operation and target:
        return f"{operation} {target}"
    return operation or "postgresql"


def _query_text(query: Any, cursor: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode(errors="replace")
    try:  # psycopg.sql.Composable
        return str(query.as_string(cursor.connection))
    except Exception:
        return str(query)


class PsycopgInstrumentor:
    """Client spans for psycopg's cursors; :meth:`instrument` / :meth:`uninstrument`.

    Args:
        tracer_provider: the provider of the spans; default the global one.
        peer_service: ``(host, port) -> peer.service``; None from it (or no
            function) gives ``default_peer_service``.
        default_peer_service: the ``peer.service`` of databases the function
            does not name; None: no attribute then.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        peer_service: PeerServiceLookup | None = None,
        default_peer_service: str | None = "postgresql",
    ) -> None:
        self._tracer: Tracer = trace.get_tracer(
            "tinct.tracing.dbapi", tracer_provider=tracer_provider
        )
        self._peer_service = peer_service
        self._default_peer_service = default_peer_service
        self._patched: list[tuple[type, str, Any]] = []

    @staticmethod
    def is_instrumented() -> bool:
        """Whether psycopg's cursors are wrapped already (by tinct)."""
        try:
            import psycopg
        except ImportError:
            return False
        return hasattr(psycopg.Cursor.execute, _MARK)

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:  # BaseInstrumentor's spelling
        return self.is_instrumented()

    def instrument(self) -> None:
        """Wrap the cursors' methods. Raises ImportError without psycopg."""
        import psycopg

        if self._patched or self.is_instrumented():
            return
        for cls in (psycopg.Cursor, psycopg.AsyncCursor):
            is_async = cls is psycopg.AsyncCursor
            for method in ("execute", "executemany"):
                original = cls.__dict__[method]
                wrapped = self._wrap_async(original) if is_async else self._wrap(original)
                setattr(wrapped, _MARK, original)
                setattr(cls, method, wrapped)
                self._patched.append((cls, method, original))

    def uninstrument(self) -> None:
        """Put the original methods back (idempotent)."""
        while self._patched:
            cls, method, original = self._patched.pop()
            setattr(cls, method, original)

    # --- spans -------------------------------------------------------------------

    def _start(self, cursor: Any, query: Any) -> Any:
        """The span for this statement, or None when it is certainly not sampled."""
        ctx = get_current()
        parent = trace.get_current_span(ctx).get_span_context()
        if (
            parent.is_valid
            and not parent.trace_flags.sampled
            and (_BAGGAGE_KEY is not None and not ctx.get(_BAGGAGE_KEY))
        ):
            return None
        statement = _query_text(query, cursor)
        operation, target = operation_and_target(statement)
        span = self._tracer.start_span(span_name(operation, target), ctx, kind=SpanKind.CLIENT)
        if not span.is_recording():
            span.end()
            return None
        try:
            self._describe(span, cursor, statement, operation, target)
        except Exception:  # attributes must never break the statement
            logger.debug("describing a psycopg span failed", exc_info=True)
        return span

    def _describe(
        self, span: Any, cursor: Any, statement: str, operation: str | None, target: str | None
    ) -> None:
        attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.system": "postgresql",
            "db.query.text": statement,
        }
        if operation:
            attributes["db.operation.name"] = operation
        if target:
            attributes["db.collection.name"] = target
        info = cursor.connection.info
        host, port = info.host, info.port
        if info.dbname:
            attributes["db.namespace"] = info.dbname
        if host:
            attributes["server.address"] = host
        if port:
            attributes["server.port"] = int(port)
        service = None
        if self._peer_service is not None:
            try:
                service = self._peer_service(host, int(port) if port else None)
            except Exception:
                logger.debug("peer.service lookup failed for %s:%s", host, port, exc_info=True)
        service = service or self._default_peer_service
        if service:
            attributes["peer.service"] = service
        span.set_attributes(attributes)

    @staticmethod
    def _fail(span: Any, exc: BaseException) -> None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}".strip()))
        span.set_attribute("error.type", type(exc).__qualname__)
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate:
            span.set_attribute("db.response.status_code", str(sqlstate))

    def _wrap(self, original: Any) -> Any:
        start, fail = self._start, self._fail

        @functools.wraps(original)
        def traced(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            span = start(cursor, query)
            if span is None:
                return original(cursor, query, *args, **kwargs)
            try:
                return original(cursor, query, *args, **kwargs)
            except BaseException as exc:
                fail(span, exc)
                raise
            finally:
                span.end()

        return traced

    def _wrap_async(self, original: Any) -> Any:
        start, fail = self._start, self._fail

        @functools.wraps(original)
        async def traced(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            span = start(cursor, query)
            if span is None:
                return await original(cursor, query, *args, **kwargs)
            try:
                return await original(cursor, query, *args, **kwargs)
            except BaseException as exc:
                fail(span, exc)
                raise
            finally:
                span.end()

        return traced
