"""End to end: a dyed request's DEBUG log, from ``logging`` through OTLP/HTTP to the logs API."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests.servers import TinctProcess
from tests.tracing.test_otlp_logs import TRACE, logs_request
from tinct.tracing.dyeing import dye
from tinct.tracing.logging import instrument_logging, uninstrument_logging

pytestmark = pytest.mark.server


def _logs(main: str, trace_id: str, timeout: float = 5.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{main}/api/tinct/logs", params={"trace_id": trace_id})
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()["logs"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_dyed_debug_record_reaches_the_logs_api(tmp_path: Path) -> None:
    tinct = TinctProcess(tmp_path / "data")
    try:
        tinct.wait_ready()
        endpoint = tinct.urls["OTLP/HTTP"].replace("/v1/traces", "/v1/logs")
        logger = logging.getLogger("tests.e2e.shop")
        logger.setLevel(logging.WARNING)
        instrument_logging(endpoint=endpoint, resource_attributes={"service.name": "shop"})
        tracer = TracerProvider().get_tracer("shop")
        try:
            with tracer.start_as_current_span("GET /cart") as span, dye("user:42"):
                logger.debug("cart of %s has %d items", "user 42", 3)
            with tracer.start_as_current_span("GET /cart") as undyed:
                logger.debug("not exported: undyed and below WARNING")
        finally:
            logger.setLevel(logging.NOTSET)
            uninstrument_logging()  # shuts the provider down: exports what it holds

        trace_id = format(span.get_span_context().trace_id, "032x")
        (record,) = _logs(tinct.main, trace_id)
        assert record["body"] == "cart of user 42 has 3 items"
        assert record["severity_text"] == "DEBUG" and record["severity_number"] == 5
        assert record["span_id"] == format(span.get_span_context().span_id, "016x")
        assert record["dye"] == "user:42" and record["service"] == "shop"
        assert record["scope"] == {"name": "tests.e2e.shop", "version": ""}
        undyed_id = format(undyed.get_span_context().trace_id, "032x")
        assert _logs(tinct.main, undyed_id, timeout=0.5) == []
    finally:
        assert tinct.stop() == 0


def test_log_records_accepted_before_sigterm_are_written(tmp_path: Path) -> None:
    tinct = TinctProcess(tmp_path / "data")
    try:
        tinct.wait_ready()
        endpoint = tinct.urls["OTLP/HTTP"].replace("/v1/traces", "/v1/logs")
        body = logs_request(1).SerializeToString()
        headers = {"content-type": "application/x-protobuf"}
        assert httpx.post(endpoint, content=body, headers=headers).status_code == 200
    finally:
        assert tinct.stop() == 0  # at once: the log writer still holds the record
    again = TinctProcess(tmp_path / "data")
    try:
        again.wait_ready()
        assert [r["body"] for r in _logs(again.main, TRACE.hex(), timeout=0)] == ["record 0"]
    finally:
        assert again.stop() == 0
