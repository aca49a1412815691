"""Scrapes one Prometheus target over HTTP, the way Prometheus's scraper does.

The request is Prometheus's (``scrape/scrape.go``, ``targetScraper``): a GET
with the ``Accept`` header preferring OpenMetrics over the text format,
``Accept-Encoding: gzip`` and ``X-Prometheus-Scrape-Timeout-Seconds``;
redirects are followed. The response must be ``200``; a gzip body is
decompressed here (like Prometheus, no other content coding is decoded), in
bounded steps so that ``body_size_limit`` caps memory even for a body that
inflates enormously. The body is parsed by
:func:`tinct.collectors.exposition.parse_exposition`.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from decimal import Decimal

import httpx
from prometheus_client import Metric

from tinct import __version__
from tinct.collectors.base import CollectError
from tinct.collectors.exposition import parse_exposition

__all__ = ["ACCEPT_HEADER", "USER_AGENT", "HttpCollector"]

# Prometheus 2.49+'s default scrape protocols (OpenMetrics 1.0.0, OpenMetrics
# 0.0.1, text 0.0.4) as its scrape loop writes them: weights from 0.5 down,
# anything else last (scrape.go acceptHeader).
ACCEPT_HEADER = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,"
    "*/*;q=0.2"
)
USER_AGENT = f"tinct/{__version__}"

_CHUNK = 64 * 1024
# Most bytes one decompression step makes (a gzip body can inflate ~1000x).
_INFLATE_STEP = 1024 * 1024


class HttpCollector:
    """Collects a Prometheus target by GETting its metrics URL.

    Args:
        url: the target's metrics URL (``http://host:port/metrics``).
        timeout: seconds the whole scrape may take; also sent to the target
            as ``X-Prometheus-Scrape-Timeout-Seconds``.
        headers: extra request headers (they override the defaults).
        body_size_limit: fail the scrape when the uncompressed body reaches
            this many bytes, as Prometheus's ``body_size_limit`` does (its
            scraper reads at most that many and fails when it got them all,
            so a body of exactly the limit fails too); 0 for no limit.

    Raises:
        ValueError: ``timeout`` is not positive or ``body_size_limit`` is negative.

    ``collect`` blocks for at most about ``timeout`` seconds. The HTTP
    connection is kept between scrapes; ``close`` releases it. One thread at
    a time (the scheduler's contract).
    """

    up_metric: str | None = None

    # The scheduler records metadata under the family names as parsed (the
    # ``# TYPE`` line's), which is what Prometheus's metadata API reports.
    exposes_family_names = True

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        body_size_limit: int = 0,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if body_size_limit < 0:
            raise ValueError(f"body_size_limit must be >= 0 bytes, got {body_size_limit!r}")
        self.url = url
        self.timeout = float(timeout)
        self.body_size_limit = body_size_limit
        self._headers = {
            "Accept": ACCEPT_HEADER,
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": _seconds(self.timeout),
            **(headers or {}),
        }
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=True,
            headers=self._headers,
            # Prometheus ignores HTTP_PROXY and friends unless configured to use them.
            trust_env=False,
        )

    def collect(self) -> list[Metric]:
        """GET the URL and parse the body. Raises CollectError on any failure."""
        body, content_type = self.fetch()
        return parse_exposition(body, content_type)

    def fetch(self) -> tuple[bytes, str]:
        """The uncompressed body and its ``Content-Type`` ("" when absent).

        Raises:
            CollectError: connection failure, timeout, a status other than
                200, a body over the size limit or a broken gzip stream.
        """
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("GET", self.url) as response:
                if response.status_code != 200:
                    raise CollectError(
                        f"server returned HTTP status {response.status_code} "
                        f"{response.reason_phrase}".rstrip()
                    )
                body = self._read(response, deadline)
                return body, response.headers.get("content-type", "")
        except httpx.TimeoutException as exc:
            raise CollectError(self._timed_out()) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise CollectError(f'Get "{self.url}": {exc or type(exc).__name__}') from exc

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        limit = self.body_size_limit
        gzipped = response.headers.get("content-encoding", "").strip().lower() == "gzip"
        if limit and not gzipped:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) >= limit:
                raise CollectError(self._too_large())
        inflater = _Gunzip() if gzipped else None
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_raw(_CHUNK):
            pieces = (
                [chunk] if inflater is None else inflater.feed(chunk, limit - size if limit else 0)
            )
            for piece in pieces:
                size += len(piece)
                parts.append(piece)
            if limit and size >= limit:
                raise CollectError(self._too_large())
            if time.monotonic() > deadline:
                raise CollectError(self._timed_out())
        if inflater is not None:
            inflater.finish()
        return b"".join(parts)

    def _too_large(self) -> str:
        return (
            f"body size limit exceeded: the body reached the limit of {self.body_size_limit} bytes"
        )

    def _timed_out(self) -> str:
        return f'Get "{self.url}": scrape timed out after {self.timeout:g}s'

    def close(self) -> None:
        """Close the kept connection. Idempotent."""
        self._client.close()

    def __repr__(self) -> str:
        return f"HttpCollector({self.url!r})"


class _Gunzip:
    """Incremental gzip decoding with bounded output per step.

    Concatenated gzip members are one stream, as Go's ``gzip.Reader`` reads
    them (Prometheus decodes with it).
    """

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes, budget: int) -> list[bytes]:
        """Decompress ``chunk``; stop after ``budget`` bytes out when > 0 (the
        caller then fails the scrape: the limit is reached)."""
        out: list[bytes] = []
        produced = 0
        data = chunk
        try:
            while data:
                step = _INFLATE_STEP
                if budget:
                    step = min(step, budget - produced)
                    if step <= 0:
                        break
                piece = self._inflater.decompress(data, step)
                out.append(piece)
                produced += len(piece)
                data = self._inflater.unconsumed_tail
                if self._inflater.eof:
                    data = self._inflater.unused_data
                    if data:  # the next member
                        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error as exc:
            raise CollectError(f"invalid gzip body: {exc}") from exc
        return out

    def finish(self) -> None:
        if not self._inflater.eof:
            raise CollectError("invalid gzip body: unexpected end of the stream")


def _seconds(timeout: float) -> str:
    """Seconds as Go's ``strconv.FormatFloat(s, 'f', -1, 64)``: ``10``, ``0.5``."""
    return format(Decimal(repr(timeout)).normalize(), "f")
