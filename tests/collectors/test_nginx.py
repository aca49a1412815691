"""NginxCollector against a real nginx: nginx-prometheus-exporter's names, real values."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import Metric

from tests.servers import free_port
from tests.servers_cache import nginx_server, silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.components import component_collector
from tinct.collectors.nginx import NginxCollector, stub_status_url
from tinct.errors import ConfigError

pytestmark = pytest.mark.server

# Every sample name the collector emits: nginx-prometheus-exporter's (two
# counters without _total, as that exporter names them).
EXPECTED = {
    "nginx_up",
    "nginx_connections_accepted",
    "nginx_connections_handled",
    "nginx_connections_active",
    "nginx_connections_reading",
    "nginx_connections_writing",
    "nginx_connections_waiting",
    "nginx_http_requests_total",
}


@pytest.fixture(scope="module")
def nginx_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with nginx_server(tmp_path_factory.mktemp("nginx")) as port:
        yield port


def values(families: list[Metric]) -> dict[str, float]:
    return {s.name: s.value for f in families for s in f.samples}


def test_names_types_and_labels_follow_the_catalog(nginx_port: int) -> None:
    address = f"127.0.0.1:{nginx_port}"
    families = list(component_collector("nginx", address, timeout=2.0).collect())

    assert {s.name for f in families for s in f.samples} == EXPECTED
    for family in families:
        for sample in family.samples:
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {"layer": "component", "component": "nginx", "instance": address}
            assert CATALOG.problems(sample.name, labels) == []
            assert sample.labels == {}, sample


def test_values_follow_the_traffic(nginx_port: int) -> None:
    collector = NginxCollector(
        f"http://127.0.0.1:{nginx_port}/stub_status", timeout=2.0, options={}
    )
    before = values(list(collector.collect()))
    with httpx.Client(base_url=f"http://127.0.0.1:{nginx_port}") as client:  # one connection
        for i in range(20):
            assert client.get(f"/page/{i}").text == "ok\n"
    after = values(list(collector.collect()))

    assert after["nginx_up"] == 1
    # nginx counts a request when it starts reading it, so each page shows
    # itself: between two collections, the 20 requests and the second page.
    assert after["nginx_http_requests_total"] - before["nginx_http_requests_total"] == 21
    # The client's keep-alive connection and the second collection's own.
    accepted = after["nginx_connections_accepted"] - before["nginx_connections_accepted"]
    assert accepted == 2
    assert after["nginx_connections_handled"] == after["nginx_connections_accepted"]
    # The collection's own connection, writing this very page, is the only one open.
    assert after["nginx_connections_active"] == 1
    assert after["nginx_connections_writing"] == 1
    assert after["nginx_connections_reading"] == 0
    assert after["nginx_connections_waiting"] == 0


def test_host_port_and_path_option(nginx_port: int) -> None:
    address = f"127.0.0.1:{nginx_port}"
    collector = NginxCollector(address, timeout=2.0, options={"path": "stub_status"})
    assert collector.url == f"http://{address}/stub_status"
    assert values(list(collector.collect()))["nginx_up"] == 1
    with pytest.raises(ConfigError):
        stub_status_url("ftp://host/stub_status")


def test_not_a_stub_status_page_raises(nginx_port: int) -> None:
    address = f"127.0.0.1:{nginx_port}"
    with pytest.raises(CollectError, match="not a stub_status page"):
        list(NginxCollector(address, timeout=2.0, options={"path": "/other"}).collect())


def test_an_http_error_raises(nginx_port: int) -> None:
    url = f"http://127.0.0.1:{nginx_port}/missing/stub_status"
    with pytest.raises(CollectError, match="HTTP 404"):
        list(NginxCollector(url, timeout=2.0, options={}).collect())


def test_a_closed_port_raises_quickly() -> None:
    collector = NginxCollector(f"127.0.0.1:{free_port()}", timeout=1.0, options={})
    start = time.monotonic()
    with pytest.raises(CollectError, match="ConnectError"):
        list(collector.collect())
    assert time.monotonic() - start < 1.0


def test_a_silent_server_raises_within_the_timeout() -> None:
    with silent_port() as port:
        collector = NginxCollector(f"127.0.0.1:{port}", timeout=0.5, options={})
        start = time.monotonic()
        with pytest.raises(CollectError, match="Timeout"):
            list(collector.collect())
        assert time.monotonic() - start < 1.5


def test_a_stopped_server_raises(tmp_path: Path) -> None:
    with nginx_server(tmp_path) as port:
        collector = NginxCollector(f"127.0.0.1:{port}", timeout=1.0, options={})
        assert list(collector.collect())
    with pytest.raises(CollectError):
        list(collector.collect())
