"""nginx, measured under nginx-prometheus-exporter's metric names.

Dashboards and alert rules written for nginx/nginx-prometheus-exporter
(https://github.com/nginx/nginx-prometheus-exporter, ``collector/nginx.go``
and ``client/nginx.go``) work unchanged on what this collector emits: the
same families, read from the same page, ngx_http_stub_status_module's
(https://nginx.org/en/docs/http/ngx_http_stub_status_module.html). The
exporter exposes ``nginx_connections_accepted`` and
``nginx_connections_handled`` as counters *without* a ``_total`` suffix, and
``nginx_http_requests_total``; the same sample names are produced here. The
target labels are the scheduler's to add.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tinct.collectors.base import CollectError
from tinct.errors import ConfigError

__all__ = ["NginxCollector"]

DEFAULT_PATH = "/stub_status"

# The page, as the module writes it (ngx_http_stub_status_module.c):
#   Active connections: 1
#   server accepts handled requests
#    16 16 31
#   Reading: 0 Writing: 1 Waiting: 0
_STUB_STATUS = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s+"
    r"server accepts handled requests\s+"
    r"(?P<accepted>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s+"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)"
)

_GAUGES = (
    ("active", "nginx_connections_active", "Active client connections."),
    ("reading", "nginx_connections_reading", "Connections reading the request header."),
    ("writing", "nginx_connections_writing", "Connections writing the response."),
    ("waiting", "nginx_connections_waiting", "Idle keep-alive connections."),
)


def stub_status_url(address: str, path: str = DEFAULT_PATH) -> str:
    """The stub_status URL: ``address`` itself when it is a URL, else ``http://address/path``.

    Raises:
        ConfigError: ``address`` is empty or not an http(s) URL.
    """
    if "://" in address:
        if not address.startswith(("http://", "https://")):
            raise ConfigError(f"nginx address {address!r} is not an http(s) URL or host:port")
        return address
    if not address or "/" in address:
        raise ConfigError(f"nginx address {address!r} is not an http(s) URL or host:port")
    return f"http://{address}/{path.lstrip('/')}"


class NginxCollector:
    """Measures one nginx through its stub_status page.

    Args:
        address: the page's URL (``http://127.0.0.1:8080/stub_status``), or
            ``host:port`` with the path in ``options``.
        timeout: seconds each phase of the request (connect, read...) may take.
        options: ``path``, the page's path when ``address`` is ``host:port``
            (default ``/stub_status``).

    Raises:
        ConfigError: ``address`` is neither a URL nor ``host:port``.

    ``collect`` blocks on the network, one connection per collection (so the
    collector does not hold a keep-alive connection that stub_status counts).
    """

    up_metric = "nginx_up"

    def __init__(
        self, address: str, *, timeout: float, options: Mapping[str, Any] | None = None
    ) -> None:
        options = options or {}
        self.address = address
        self.url = stub_status_url(address, str(options.get("path") or DEFAULT_PATH))
        self._timeout = timeout

    def collect(self) -> Iterator[Metric]:
        """The nginx-prometheus-exporter families. Raises CollectError when nginx fails."""
        try:
            with httpx.Client(timeout=self._timeout) as client:
                response = client.get(self.url)
        except httpx.HTTPError as exc:
            raise CollectError(f"nginx {self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CollectError(f"nginx {self.url}: HTTP {response.status_code}, expected 200")
        match = _STUB_STATUS.search(response.text)
        if match is None:
            raise CollectError(f"nginx {self.url}: not a stub_status page: {response.text[:200]!r}")
        values = {name: float(value) for name, value in match.groupdict().items()}
        return iter(_families(values))


def _counter_as_is(name: str, help_: str, value: float) -> Metric:
    """A counter whose sample is ``name`` itself (CounterMetricFamily appends _total)."""
    family = Metric(name, help_, "counter")
    family.add_sample(name, {}, value)
    return family


def _families(values: Mapping[str, float]) -> list[Metric]:
    """stub_status numbers to families, as the exporter's Collect sends them."""
    families: list[Metric] = [GaugeMetricFamily("nginx_up", "1 if stub_status answered.", value=1)]
    families += [GaugeMetricFamily(name, help_, value=values[key]) for key, name, help_ in _GAUGES]
    families += [
        _counter_as_is(
            "nginx_connections_accepted", "Accepted client connections.", values["accepted"]
        ),
        _counter_as_is(
            "nginx_connections_handled", "Handled client connections.", values["handled"]
        ),
        CounterMetricFamily(
            "nginx_http_requests", "Total http requests.", value=values["requests"]
        ),
    ]
    return families
