"""Scrape targets and scrapers for tests: a local exposition server, Debian's
Prometheus and node_exporter, on free loopback ports, stopped by PID."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.servers import free_port, stop_pid, wait_for_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
E2E_FILE = "node_exporter-e2e-output.txt"  # in the peer suite "exposition"
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# What node_exporter's e2e output lacks: escapes, NaN and infinities, a
# histogram and a summary with samples, untyped families with and without
# TYPE or HELP, a repeated HELP, a counter named without _total, an empty
# label value and scraped labels clashing with the target's.
EDGE_TEXT = rb"""# HELP edge_escapes_info Escapes: a backslash \\ and a newline \n in HELP.
# TYPE edge_escapes_info gauge
edge_escapes_info{backslash="a\\b",quote="say \"hi\"",newline="one\ntwo",tab="x\ty"} 1
# TYPE edge_special gauge
edge_special{v="nan"} NaN
edge_special{v="inf"} +Inf
edge_special{v="-inf"} -Inf
edge_special{v="exp"} 1.5e-07
edge_special{v="big"} 18446744073709551615
edge_special{v="neg"} -0.5
# TYPE edge_requests counter
edge_requests{code="200"} 10
# TYPE edge_latency_seconds histogram
edge_latency_seconds_bucket{le="0.1"} 1
edge_latency_seconds_bucket{le="1"} 2
edge_latency_seconds_bucket{le="10"} 3
edge_latency_seconds_bucket{le="1e+06"} 3
edge_latency_seconds_bucket{le="+Inf"} 4
edge_latency_seconds_sum 12.5
edge_latency_seconds_count 4
# TYPE edge_rpc_seconds summary
edge_rpc_seconds{quantile="0"} 0.01
edge_rpc_seconds{quantile="0.5"} 0.05
edge_rpc_seconds{quantile="1"} 0.3
edge_rpc_seconds_sum 1.5
edge_rpc_seconds_count 20
# TYPE edge_untyped untyped
edge_untyped 3
edge_no_type_no_help{a="b"} 4
# HELP edge_help_only Only HELP, no TYPE.
edge_help_only 5
# HELP edge_dup_help First.
# HELP edge_dup_help Second.
# TYPE edge_dup_help gauge
edge_dup_help 6
edge_empty_label{a="",b="x"} 7
edge_job_clash{job="scraped",instance="other",exported_job="x"} 9
"""


def openmetrics_body(now_s: int) -> bytes:
    """An OpenMetrics exposition: counter with exemplar, timestamps and
    ``_created``, histogram with UNIT, info, stateset, gauge, summary.

    The timestamps are ``now_s - 3`` with whole milliseconds (Prometheus
    keeps exposed timestamps near the head of its TSDB only).
    """
    ts = f"{now_s - 3}.250"
    return f"""# TYPE om_requests counter
# HELP om_requests Requests served.
om_requests_total{{code="200"}} 5 {ts} # {{trace_id="abc"}} 1.0 {ts}
om_requests_created{{code="200"}} 1.7e+09 {ts}
# TYPE om_latency_seconds histogram
# UNIT om_latency_seconds seconds
om_latency_seconds_bucket{{le="0.1"}} 1 # {{trace_id="x"}} 0.05
om_latency_seconds_bucket{{le="1.0"}} 2
om_latency_seconds_bucket{{le="+Inf"}} 3
om_latency_seconds_sum 2.5
om_latency_seconds_count 3
om_latency_seconds_created 1.7e+09
# TYPE om_build info
om_build_info{{version="1.0"}} 1
# TYPE om_state stateset
om_state{{om_state="a"}} 1
om_state{{om_state="b"}} 0
# TYPE om_temperature_celsius gauge
# UNIT om_temperature_celsius celsius
om_temperature_celsius{{esc="a\\\\b\\"c\\nd"}} -1.5e-3
# TYPE om_rpc_seconds summary
om_rpc_seconds{{quantile="0.5"}} 1
om_rpc_seconds_sum 1
om_rpc_seconds_count 1
# EOF
""".encode()


@dataclass
class Route:
    """What the exposition server answers on one path.

    ``body`` may be a callable returning the body (built per request).
    ``gzip``: send it gzip-encoded (Content-Encoding: gzip). ``delay``:
    seconds to wait before answering. ``content_length``: False to send the
    body chunked, without a length.
    """

    body: bytes | Any = b""
    content_type: str | None = TEXT_CONTENT_TYPE
    status: int = 200
    gzip: bool = False
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = True


class ExpositionServer:
    """A threaded HTTP server on 127.0.0.1 serving :class:`Route` s.

    ``requests`` records ``(path, headers)`` of every request received.
    """

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404)
                    return
                if route.delay:
                    time.sleep(route.delay)
                body = route.body() if callable(route.body) else route.body
                if route.gzip:
                    body = gzip.compress(body)
                self.send_response(route.status)
                if route.content_type is not None:
                    self.send_header("Content-Type", route.content_type)
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.content_length:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 65536):
                    piece = body[i : i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def __enter__(self) -> ExpositionServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


@contextlib.contextmanager
def node_exporter(workdir: Path) -> Iterator[int]:
    """Debian's prometheus-node-exporter on a free loopback port; yield the port.

    systemd is not running in a test container, so its collector is off; the
    textfile collector reads an empty folder of the test's, not the host's.
    """
    textfiles = workdir / "textfile"
    textfiles.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(workdir / "node_exporter.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            NODE_EXPORTER,
            f"--web.listen-address=127.0.0.1:{port}",
            "--no-collector.systemd",
            f"--collector.textfile.directory={textfiles}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        wait_for_port(port, 30, proc)
        yield port
    finally:
        stop_pid(proc)
        log.close()


class Prometheus:
    """A running Prometheus: its base URL and HTTP API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._client = httpx.Client(base_url=base, timeout=30, trust_env=False)

    def api(self, path: str, **params: Any) -> Any:
        """``GET /api/v1/<path>``'s ``data``; raises on an error status."""
        response = self._client.get(f"/api/v1/{path}", params=params)
        response.raise_for_status()
        payload = response.json()
        assert payload["status"] == "success", payload
        return payload["data"]

    def wait_scraped(self, jobs: Mapping[str, int], timeout: float = 60) -> None:
        """Wait until each job has at least that many successful scrapes."""
        deadline = time.monotonic() + timeout
        while True:
            done = True
            for job, scrapes in jobs.items():
                found = self.query(f'count_over_time(up{{job="{job}"}}[1h])')
                ups = self.query(f'min_over_time(up{{job="{job}"}}[1h])')
                if not found or float(found[0]["value"][1]) < scrapes:
                    done = False
                elif not ups or float(ups[0]["value"][1]) != 1:
                    raise AssertionError(f"Prometheus could not scrape job {job}: {self.targets()}")
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus did not scrape {dict(jobs)}: {self.targets()}")
            time.sleep(0.2)

    def query(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """An instant query's result list."""
        result: list[dict[str, Any]] = self.api("query", query=query, **params)["result"]
        return result

    def targets(self) -> Any:
        return self.api("targets")

    def close(self) -> None:
        self._client.close()


@contextlib.contextmanager
def prometheus_server(
    workdir: Path, scrape_configs: list[dict[str, Any]], scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free loopback port, scraping ``scrape_configs``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
        "scrape_configs": scrape_configs,
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    with prometheus_process(workdir, config_file) as base:
        prometheus = Prometheus(base)
        try:
            yield prometheus
        finally:
            prometheus.close()


@contextlib.contextmanager
def prometheus_process(
    workdir: Path, config_file: Path, *flags: str, data: Path | None = None
) -> Iterator[str]:
    """Debian's Prometheus with ``config_file`` (and ``flags``) on a free
    loopback port, its TSDB in ``data`` (``workdir/data``); yields its base
    URL once ready and stops it by PID."""
    port = free_port()
    with open(workdir / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={data or workdir / 'data'}",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_port(port, 60, proc)
            _wait_ready(base, proc)
            yield base
        finally:
            stop_pid(proc)


def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/-/ready", timeout=2, trust_env=False).status_code == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Prometheus at {base} did not become ready")
        time.sleep(0.1)
