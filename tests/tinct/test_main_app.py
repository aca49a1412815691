"""The main port's app: health, readiness, /metrics, the index page and the UI hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tests.asgi import AppClient
from tests.fakes import ListWriter
from tinct.main_app import create_main_app, wsgi_ui
from tinct.selfmetrics import SelfMetrics
from tinct.storage import InMemorySpanStore


def test_health_ready_and_index() -> None:
    client = AppClient(create_main_app(InMemorySpanStore(), about=[("Zipkin", "http://x:9411/")]))
    r = client.get("/-/healthy")
    assert (r.status_code, r.text) == (200, "tinct is Healthy.\n")
    assert client.get("/-/ready").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/api/traces" in page.text and "http://x:9411/" in page.text


def test_metrics_exposition() -> None:
    metrics = SelfMetrics()
    writer = ListWriter()
    metrics.watch_writer(writer)
    metrics.accepted_spans.labels("zipkin").inc(7)
    client = AppClient(create_main_app(InMemorySpanStore(), metrics=metrics))
    client.get("/api/services")
    client.get("/api/traces/123")
    client.get("/no/such/page")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    text = r.text
    assert 'tinct_receiver_accepted_spans_total{protocol="zipkin"} 7.0' in text
    assert 'tinct_receiver_refused_spans_total{protocol="otlp_grpc"} 0.0' in text
    assert 'tinct_http_requests_total{code="200",handler="/api/services",server="main"} 1.0' in text
    assert (
        'tinct_http_requests_total{code="404",handler="/api/traces/{trace_id}",server="main"} 1.0'
        in text
    )
    assert 'handler="other"' in text  # unmatched paths don't become labels
    assert 'tinct_writer_pending_rows{signal="spans"} 0.0' in text
    assert 'tinct_build_info{pythonversion="' in text
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text


def test_wsgi_ui_is_mounted_after_the_apis() -> None:
    def dash_like(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        start("200 OK", [("Content-Type", "text/html")])
        return [f"ui at {environ['PATH_INFO']}".encode()]

    client = AppClient(create_main_app(InMemorySpanStore(), ui=wsgi_ui(dash_like)))
    assert client.get("/").text == "ui at /"
    assert client.get("/traces/abc").text == "ui at /traces/abc"
    assert client.get("/api/services").json()["data"] == []
    assert client.get("/-/healthy").text == "tinct is Healthy.\n"
