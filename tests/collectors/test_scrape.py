"""HttpCollector against a real HTTP server on loopback: formats, gzip,
failures, the size limit and the timeout."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import pytest
from prometheus_client import Metric
from prometheus_client.samples import Timestamp

from tests.peer_suites import require_peer_suite
from tests.prometheus_server import (
    E2E_FILE,
    OPENMETRICS_CONTENT_TYPE,
    ExpositionServer,
    Route,
    openmetrics_body,
)
from tests.servers import free_port
from tinct.collectors.base import CollectError, Collector
from tinct.collectors.exposition import parse_exposition
from tinct.collectors.scrape import ACCEPT_HEADER, HttpCollector

E2E = (require_peer_suite("exposition") / E2E_FILE).read_bytes()


@pytest.fixture
def server() -> Iterator[ExpositionServer]:
    with ExpositionServer(
        {
            "/metrics": Route(E2E),
            "/gzip": Route(E2E, gzip=True),
            "/chunked": Route(E2E, content_length=False),
            "/gzip-chunked": Route(E2E, gzip=True, content_length=False),
            "/om": Route(openmetrics_body(1_700_000_000), content_type=OPENMETRICS_CONTENT_TYPE),
            "/no-type": Route(b"a 1\n", content_type=None),
            "/html": Route(b"a 1\n", content_type="text/html"),
            "/500": Route(b"oops", status=500),
            "/slow": Route(E2E, delay=3.0),
            "/moved": Route(b"", status=302, headers={"Location": "/metrics"}),
            "/bad-gzip": Route(b"not gzip", headers={"Content-Encoding": "gzip"}),
            "/bad-body": Route(b"a 1\nthis is not a sample\n"),
        }
    ) as srv:
        yield srv


def collect(
    server: ExpositionServer,
    path: str,
    *,
    timeout: float = 5,
    headers: dict[str, str] | None = None,
    body_size_limit: int = 0,
) -> list[Metric]:
    collector = HttpCollector(
        server.url(path), timeout=timeout, headers=headers, body_size_limit=body_size_limit
    )
    try:
        return collector.collect()
    finally:
        collector.close()


def test_collects_the_e2e_output(server: ExpositionServer) -> None:
    collector = HttpCollector(server.url("/metrics"), timeout=5)
    assert isinstance(collector, Collector)
    assert collector.up_metric is None
    families = collector.collect()
    assert len(families) == 1228
    assert sum(len(f.samples) for f in families) == 3027
    assert families == parse_exposition(E2E, "text/plain")
    collector.close()
    collector.close()  # idempotent


def test_sends_prometheus_scrape_headers(server: ExpositionServer) -> None:
    collect(server, "/metrics", timeout=2.5, headers={"Authorization": "Bearer t"})
    _, headers = server.requests[-1]
    assert headers["Accept"] == ACCEPT_HEADER
    assert ACCEPT_HEADER == (
        "application/openmetrics-text;version=1.0.0;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,"
        "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    assert headers["Accept-Encoding"] == "gzip"
    assert headers["X-Prometheus-Scrape-Timeout-Seconds"] == "2.5"
    assert headers["User-Agent"].startswith("tinct/")
    assert headers["Authorization"] == "Bearer t"


def test_timeout_header_as_go_writes_seconds(server: ExpositionServer) -> None:
    collect(server, "/metrics", timeout=10)
    assert server.requests[-1][1]["X-Prometheus-Scrape-Timeout-Seconds"] == "10"


@pytest.mark.parametrize("path", ["/gzip", "/chunked", "/gzip-chunked"])
def test_gzip_and_chunked_bodies(server: ExpositionServer, path: str) -> None:
    assert collect(server, path) == parse_exposition(E2E, "text/plain")


def test_concatenated_gzip_members_are_one_body() -> None:
    half = len(E2E) // 2
    split = E2E.rfind(b"\n", 0, half) + 1
    body = gzip.compress(E2E[:split]) + gzip.compress(E2E[split:])
    route = Route(body, headers={"Content-Encoding": "gzip"})
    with ExpositionServer({"/m": route}) as srv:
        assert collect(srv, "/m") == parse_exposition(E2E, "text/plain")


def test_openmetrics_by_content_type(server: ExpositionServer) -> None:
    families = {f.name: f for f in collect(server, "/om")}
    total = families["om_requests"].samples[0]
    assert total.timestamp == Timestamp(1_699_999_997, 250_000_000)
    assert total.exemplar is not None


@pytest.mark.parametrize("path", ["/no-type", "/html"])
def test_missing_or_unknown_content_type_read_as_text(server: ExpositionServer, path: str) -> None:
    families = collect(server, path)
    assert [(s.name, s.value) for f in families for s in f.samples] == [("a", 1.0)]


def test_redirects_followed(server: ExpositionServer) -> None:
    assert len(collect(server, "/moved")) == 1228
    assert [path for path, _ in server.requests] == ["/moved", "/metrics"]


def test_http_error_status(server: ExpositionServer) -> None:
    with pytest.raises(
        CollectError, match=r"^server returned HTTP status 500 Internal Server Error$"
    ):
        collect(server, "/500")
    with pytest.raises(CollectError, match=r"^server returned HTTP status 404 Not Found$"):
        collect(server, "/nowhere")


def test_timeout(server: ExpositionServer) -> None:
    started = time.monotonic()
    with pytest.raises(CollectError, match=r"timed out after 0\.5s"):
        collect(server, "/slow", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_connection_refused() -> None:
    collector = HttpCollector(f"http://127.0.0.1:{free_port()}/metrics", timeout=2)
    with pytest.raises(CollectError, match=r'^Get "http://127\.0\.0\.1:\d+/metrics": '):
        collector.collect()
    collector.close()


@pytest.mark.parametrize("path", ["/metrics", "/chunked", "/gzip", "/gzip-chunked"])
def test_body_size_limit(server: ExpositionServer, path: str) -> None:
    # Prometheus reads at most body_size_limit bytes and fails when it got
    # them all: a body of exactly the limit fails, one byte more of limit passes.
    with pytest.raises(CollectError, match=rf"body size limit exceeded.*\b{len(E2E)} bytes"):
        collect(server, path, body_size_limit=len(E2E))
    with pytest.raises(CollectError, match=r"body size limit exceeded.*\b1000 bytes"):
        collect(server, path, body_size_limit=1000)
    assert len(collect(server, path, body_size_limit=len(E2E) + 1)) == 1228


def test_body_size_limit_caps_an_inflating_gzip_body() -> None:
    # 50 MB of zeros, 50 kB compressed: refused after about the limit.
    bomb = gzip.compress(b"0" * 50_000_000, compresslevel=9)
    with ExpositionServer({"/bomb": Route(bomb, headers={"Content-Encoding": "gzip"})}) as srv:
        started = time.monotonic()
        with pytest.raises(CollectError, match="body size limit exceeded"):
            collect(srv, "/bomb", body_size_limit=10_000_000)
        assert time.monotonic() - started < 5


def test_invalid_gzip_body(server: ExpositionServer) -> None:
    with pytest.raises(CollectError, match="invalid gzip body"):
        collect(server, "/bad-gzip")


def test_invalid_exposition_names_the_line(server: ExpositionServer) -> None:
    with pytest.raises(CollectError, match=r"line 2: .*this is not a sample"):
        collect(server, "/bad-body")


def test_connection_kept_between_scrapes(server: ExpositionServer) -> None:
    collector = HttpCollector(server.url("/metrics"), timeout=5)
    try:
        for _ in range(3):
            assert len(collector.collect()) == 1228
    finally:
        collector.close()
    assert len(server.requests) == 3


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout"):
        HttpCollector("http://127.0.0.1:1/metrics", timeout=0)
    with pytest.raises(ValueError, match="body_size_limit"):
        HttpCollector("http://127.0.0.1:1/metrics", timeout=1, body_size_limit=-1)
