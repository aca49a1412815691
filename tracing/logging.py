"""Dye-aware logging: a dyed request logs at every level, an undyed one as configured.

``instrument_logging()`` attaches a :class:`DyeLogHandler` (OTLP logs through
the OpenTelemetry SDK: ``LoggerProvider`` + ``BatchLogRecordProcessor`` +
``OTLPLogExporter`` over HTTP) to the root logger and makes records emitted
while the current context carries a dye (``tinct.tracing.dye``) reach it at
every level, DEBUG included, even when the app's loggers are at WARNING.
Each exported record carries the trace and span ids of the current span and
the ``tinct.dye`` attribute. ``uninstrument_logging()`` undoes all of it.

How. Python's ``logging`` drops a record below a logger's level before any
handler or filter exists for it: ``Logger.debug`` asks ``isEnabledFor`` and
returns. So tinct wraps two methods of ``logging.Logger`` itself (the class
attribute, so loggers created before instrumentation, the usual case for
libraries, are covered too; ``setLoggerClass`` would only reach later ones):

* ``isEnabledFor(level)``: the original answer first (its per-logger cache,
  nothing added for enabled levels); only when that says no, one read of the
  current context for a dye. ``logging.disable()`` still wins.
* ``handle(record)``: a record the logger's level would have dropped, let
  through only because of the dye, goes to the :class:`DyeLogHandler`\\ s on
  the logger's way up the hierarchy (honouring ``propagate`` and the
  loggers' and handlers' filters) and to no other handler. The app's console
  and file handlers therefore see exactly what they saw before; only the
  OTLP export gains the dyed records. Records the configured levels let
  through are handled as before, by every handler.

A :class:`DyeLogHandler`'s own threshold (``level=`` / ``setLevel``) applies to
undyed records only; its ``Handler.level`` stays NOTSET so a dyed record is
never stopped at the handler either. Loggers of classes that override
``isEnabledFor``/``handle`` themselves are left as they are.

Costs: an enabled record pays one extra cached level lookup in ``handle``; a
disabled undyed one, one context read. Records the handler emits from inside
an export (the exporter's own HTTP client logging in a dyed context with a
synchronous processor) are dropped rather than exported in a loop.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry._logs import LoggerProvider as APILoggerProvider
from opentelemetry._logs import LogRecord, SeverityNumber, get_logger_provider
from opentelemetry.context import get_current

from tinct.tracing.dye import DYE_ATTRIBUTE
from tinct.tracing.dyeing import context_dye

__all__ = [
    "DyeLogHandler",
    "instrument_logging",
    "uninstrument_logging",
    "is_instrumented",
]

# OpenTelemetry logs data model, "Mapping of SeverityNumber" / the SDK's std_to_otel:
# Python levels 10/20/30/40/50 are DEBUG, INFO, WARN, ERROR, FATAL; levels in
# between take the next ones of the range (DEBUG2, INFO3, ...).
_RANGES = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5))
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# LogRecord attributes that are not user extras (logging's own fields).
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_SCALARS = (bool, str, int, float)


def _severity(levelno: int) -> SeverityNumber:
    if levelno < 1:
        return SeverityNumber.UNSPECIFIED
    if levelno < 10:
        return SeverityNumber.TRACE
    for base, number in _RANGES:
        if levelno >= base:
            return SeverityNumber(number + min(levelno - base, 3))
    return SeverityNumber.UNSPECIFIED  # pragma: no cover - levelno >= 10 matched above


def _attribute_value(value: Any) -> Any:
    """``value`` if OpenTelemetry takes it as an attribute, else its ``str``."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    return str(value)


class _Emitting(threading.local):
    active = False


class DyeLogHandler(logging.Handler):
    """Sends ``logging`` records as OTLP log records through an SDK ``LoggerProvider``.

    Dyed records (the current context carries a dye) are sent whatever their
    level, with the ``tinct.dye`` attribute; undyed ones from ``level`` up.
    Trace and span ids come from the current span (the record is emitted in
    the logging call's context). The instrumentation scope is the logger's
    name.

    Args:
        logger_provider: the SDK provider to emit through; the global one
            when omitted.
        level: threshold for undyed records (``setLevel`` changes it).

    Threading: like any handler, called on the logging thread; ``emit`` only
    hands the record to the provider's processors (a batch processor exports
    from its own thread).
    """

    def __init__(
        self,
        logger_provider: APILoggerProvider | None = None,
        *,
        level: int | str = logging.NOTSET,
    ) -> None:
        super().__init__(logging.NOTSET)
        self.undyed_level = logging.NOTSET
        self.setLevel(level)
        self.logger_provider = logger_provider or get_logger_provider()
        self._emitting = _Emitting()

    def setLevel(self, level: int | str) -> None:  # noqa: N802 - logging's name
        """Set the threshold for undyed records; dyed ones pass at every level."""
        if isinstance(level, str):
            number = logging.getLevelNamesMapping().get(level.upper())
            if number is None:
                raise ValueError(f"unknown logging level {level!r}")
            level = number
        self.undyed_level = int(level)
        self.level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        """Hand ``record`` to the provider when dyed or at/above ``undyed_level``."""
        if self._emitting.active:
            return
        dye = context_dye()
        if dye is None and record.levelno < self.undyed_level:
            return
        self._emitting.active = True
        try:
            otel_logger = self.logger_provider.get_logger(record.name)
            otel_logger.emit(self._translate(record, None if dye is None else str(dye)))
        except Exception:
            self.handleError(record)
        finally:
            self._emitting.active = False

    def _translate(self, record: logging.LogRecord, dye: str | None) -> LogRecord:
        attributes: dict[str, Any] = {
            k: _attribute_value(v) for k, v in vars(record).items() if k not in _RESERVED
        }
        # OpenTelemetry semantic conventions: code.* and exception.* attributes.
        attributes["code.file.path"] = record.pathname
        attributes["code.function.name"] = record.funcName
        attributes["code.line.number"] = record.lineno
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, tb = record.exc_info
            attributes["exception.type"] = exc_type.__name__
            if exc is not None and exc.args:
                attributes["exception.message"] = str(exc.args[0])
            attributes["exception.stacktrace"] = "".join(
                traceback.format_exception(exc_type, exc, tb)
            )
        if dye is not None:
            attributes[DYE_ATTRIBUTE] = dye
        body: Any = self.format(record) if self.formatter else record.getMessage()
        return LogRecord(
            timestamp=int(record.created * 1e9),
            context=get_current(),
            severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
            severity_number=_severity(record.levelno),
            body=body,
            attributes=attributes,
        )

    def flush(self) -> None:
        """Ask the provider to export what it holds (SDK providers only)."""
        force_flush = getattr(self.logger_provider, "force_flush", None)
        if callable(force_flush):
            force_flush()


# --- the logging.Logger patch ----------------------------------------------------


class _State:
    """What instrument_logging installed, to undo it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.original_is_enabled_for: Any = None
        self.original_handle: Any = None
        # (logger, handler, provider owned by us or None)
        self.installed: list[tuple[logging.Logger, DyeLogHandler, Any]] = []


_state = _State()


def _is_enabled_for(self: logging.Logger, level: int) -> bool:
    original = _state.original_is_enabled_for
    if original is None:  # uninstrumented while another patch kept ours in place
        return bool(_plain_is_enabled_for(self, level))
    if original(self, level):
        return True
    if self.disabled or self.manager.disable >= level:
        return False
    return context_dye() is not None


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    original_handle = _state.original_handle
    original_enabled = _state.original_is_enabled_for
    if original_handle is None or original_enabled is None:
        _plain_handle(self, record)
        return
    if original_enabled(self, record.levelno) or context_dye() is None:
        original_handle(self, record)
        return
    # Let through only by the dye: the OTLP handlers, nobody else (module doc).
    if self.disabled:
        return
    kept = self.filter(record)
    if not kept:
        return
    if isinstance(kept, logging.LogRecord):  # Python 3.12+: a filter may replace it
        record = kept
    logger: logging.Logger | None = self
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, DyeLogHandler):
                handler.handle(record)
        logger = logger.parent if logger.propagate else None


_plain_is_enabled_for = logging.Logger.isEnabledFor
_plain_handle = logging.Logger.handle


def _patch() -> None:
    if _state.original_is_enabled_for is not None:
        return
    _state.original_is_enabled_for = logging.Logger.isEnabledFor
    _state.original_handle = logging.Logger.handle
    logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
    logging.Logger.handle = _handle  # type: ignore[method-assign]


def _unpatch() -> None:
    if _state.original_is_enabled_for is None:
        return
    # Restore only what is still ours; a later patch on top keeps working, and
    # ours, left under it, passes straight through once the originals are gone.
    if logging.Logger.isEnabledFor is _is_enabled_for:
        logging.Logger.isEnabledFor = _state.original_is_enabled_for  # type: ignore[method-assign]
    if logging.Logger.handle is _handle:
        logging.Logger.handle = _state.original_handle  # type: ignore[method-assign]
    global _plain_is_enabled_for, _plain_handle
    _plain_is_enabled_for = _state.original_is_enabled_for
    _plain_handle = _state.original_handle
    _state.original_is_enabled_for = None
    _state.original_handle = None


def is_instrumented() -> bool:
    """True between :func:`instrument_logging` and :func:`uninstrument_logging`."""
    return _state.original_is_enabled_for is not None


def instrument_logging(
    logger_provider: APILoggerProvider | None = None,
    *,
    endpoint: str | None = None,
    level: int | str = logging.NOTSET,
    logger: logging.Logger | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
) -> DyeLogHandler:
    """Export ``logging`` records over OTLP, every level for dyed requests.

    Attaches a :class:`DyeLogHandler` to ``logger`` (the root logger by
    default) and patches ``logging.Logger`` as the module docstring explains.
    May be called more than once (one handler each); the patch is installed
    once.

    Args:
        logger_provider: an SDK ``LoggerProvider`` to emit through (tests pass
            one with an in-memory exporter). Omitted: a provider of our own
            with a ``BatchLogRecordProcessor`` and the OTLP/HTTP log exporter,
            shut down (flushed) by :func:`uninstrument_logging`.
        endpoint: the OTLP/HTTP logs URL for that exporter, e.g.
            ``http://localhost:4318/v1/logs``; omitted, the exporter reads
            ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        level: threshold for undyed records.
        logger: where to attach the handler.
        resource_attributes: for our own provider's resource (e.g.
            ``{"service.name": "shop"}``), merged over ``OTEL_*`` settings.

    Returns:
        The handler (its ``logger_provider`` is the one records go through).
    """
    owned = None
    if logger_provider is None:
        owned = _otlp_provider(endpoint, resource_attributes)
        logger_provider = owned
    handler = DyeLogHandler(logger_provider, level=level)
    target = logger if logger is not None else logging.getLogger()
    with _state.lock:
        target.addHandler(handler)
        _state.installed.append((target, handler, owned))
        _patch()
    return handler


def uninstrument_logging() -> None:
    """Undo every :func:`instrument_logging`: handlers removed, ``logging.Logger``
    restored, providers it created flushed and shut down. Idempotent."""
    with _state.lock:
        installed, _state.installed = _state.installed, []
        _unpatch()
    for target, handler, owned in installed:
        target.removeHandler(handler)
        handler.close()
        if owned is not None:
            owned.shutdown()


def _otlp_provider(endpoint: str | None, resource_attributes: Mapping[str, Any] | None) -> Any:
    # Imported here: the exporter pulls in requests, which a caller passing
    # its own provider does not need.
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create(dict(resource_attributes or {})))
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint)))
    return provider
