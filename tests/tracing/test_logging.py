"""Dye-aware logging: dyed records are exported at every level, undyed as configured."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from tinct.tracing.dyeing import dye
from tinct.tracing.logging import (
    DyeLogHandler,
    instrument_logging,
    is_instrumented,
    uninstrument_logging,
)


@pytest.fixture
def exported() -> Iterator[InMemoryLogExporter]:
    exporter = InMemoryLogExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument_logging(provider)
    try:
        yield exporter
    finally:
        uninstrument_logging()
        provider.shutdown()


@pytest.fixture
def app_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger at WARNING with a console-like handler of its own."""
    console = io.StringIO()
    logger = logging.getLogger("tests.app")
    handler = logging.StreamHandler(console)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield logger, console
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def bodies(exporter: InMemoryLogExporter) -> list[object]:
    return [r.log_record.body for r in exporter.get_finished_logs()]


def test_dyed_debug_is_exported_with_ids_and_dye(exported, app_logger) -> None:
    logger, console = app_logger
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request") as span, dye("user:42"):
        logger.debug("cache miss for %s", 42)
    logger.debug("undyed debug")

    (item,) = exported.get_finished_logs()
    record = item.log_record
    context = span.get_span_context()
    assert record.body == "cache miss for 42"
    assert record.trace_id == context.trace_id and record.span_id == context.span_id
    assert record.attributes is not None
    assert record.attributes["tinct.dye"] == "user:42"
    assert record.attributes["code.function.name"] == "test_dyed_debug_is_exported_with_ids_and_dye"
    assert record.severity_text == "DEBUG" and record.severity_number is not None
    assert record.severity_number.value == 5
    assert item.instrumentation_scope.name == "tests.app"
    # The app's own handler saw neither DEBUG record.
    assert console.getvalue() == ""


def test_undyed_records_follow_the_configured_levels(exported, app_logger) -> None:
    logger, console = app_logger
    logger.info("dropped")
    logger.warning("kept %d", 1)
    assert bodies(exported) == ["kept 1"]
    assert console.getvalue() == "kept 1\n"
    with dye("user:42"):
        logger.error("dyed error")  # enabled anyway: every handler, as before
    assert console.getvalue() == "kept 1\ndyed error\n"
    assert exported.get_finished_logs()[-1].log_record.attributes["tinct.dye"] == "user:42"


def test_is_enabled_for_answers_true_inside_a_dye(exported, app_logger) -> None:
    logger, _ = app_logger
    assert not logger.isEnabledFor(logging.DEBUG)
    with dye("tenant:acme"):
        assert logger.isEnabledFor(logging.DEBUG)
        logging.disable(logging.CRITICAL)
        try:
            assert not logger.isEnabledFor(logging.DEBUG)  # logging.disable() wins
        finally:
            logging.disable(logging.NOTSET)


def test_filters_and_propagation_still_apply(exported, app_logger) -> None:
    logger, _ = app_logger
    logger.addFilter(lambda r: "secret" not in r.getMessage())
    child = logging.getLogger("tests.app.quiet")
    child.propagate = False
    try:
        with dye("user:42"):
            logger.debug("a secret")
            child.debug("not propagated to the root's handler")
            logger.debug("visible")
    finally:
        child.propagate = True
        logger.filters.clear()
    assert bodies(exported) == ["visible"]


def test_handler_level_applies_to_undyed_records_only(app_logger) -> None:
    logger, _ = app_logger
    logger.setLevel(logging.DEBUG)
    exporter = InMemoryLogExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = DyeLogHandler(provider, level="ERROR")
    logger.addHandler(handler)
    try:
        assert handler.level == logging.NOTSET and handler.undyed_level == logging.ERROR
        logger.warning("undyed warning")
        with dye("user:1"):
            logger.debug("dyed debug")
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    assert bodies(exporter) == ["dyed debug"]


def test_uninstrument_restores_logging(app_logger) -> None:
    original = (logging.Logger.isEnabledFor, logging.Logger.handle)
    provider = LoggerProvider()
    handler = instrument_logging(provider)
    assert is_instrumented() and handler in logging.getLogger().handlers
    uninstrument_logging()
    uninstrument_logging()  # idempotent
    assert not is_instrumented()
    assert (logging.Logger.isEnabledFor, logging.Logger.handle) == original
    assert handler not in logging.getLogger().handlers
    logger, _ = app_logger
    with dye("user:42"):
        assert not logger.isEnabledFor(logging.DEBUG)
    provider.shutdown()
