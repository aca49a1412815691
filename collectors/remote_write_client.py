"""Shipping samples to a tinct server by remote_write, through a disk buffer.

``tinct agent`` collects on a machine of its own and sends what it collected
to ``POST /api/v1/write`` of a tinct server. Every batch is first written to
the buffer folder as one file holding a ready remote_write body (snappy
protobuf, :func:`~tinct.collectors.remote_write_proto.encode_write_request`),
named by a sequence number; one sender thread posts the files in that order
and deletes each once the server has answered 2xx. While the server is down
(connection refused, 5xx, 429) the sender retries the oldest file with
backoff and collection goes on filling the folder, so after an outage
everything arrives, in order, and a restart of the agent resumes from the
folder. A 4xx other than 429 means the server will never take that body: it
is moved aside to ``rejected/`` and counted, not retried forever.

The folder is bounded (``max_bytes``): past it the oldest files are dropped
and their samples counted as lost, which beats filling the machine's disk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pyarrow as pa

from tinct import __version__
from tinct.collectors.remote_write_proto import encode_metadata, encode_write_request
from tinct.metrics import NAME_LABEL, MetricMetadata

__all__ = ["DiskBuffer", "RemoteWriteSender", "table_to_request"]

logger = logging.getLogger(__name__)

_SUFFIX = ".rw"
_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": f"tinct-agent/{__version__}",
}


def table_to_request(table: pa.Table) -> bytes:
    """A SAMPLE_SCHEMA table as one remote_write body (series in first-seen order)."""
    series: dict[int, tuple[list[tuple[str, str]], list[tuple[int, float]]]] = {}
    columns = table.select(
        ["fingerprint", "metric_name", "label_keys", "label_values", "timestamp_ms", "value"]
    ).to_pydict()
    for fp, name, keys, values, ts, value in zip(*columns.values(), strict=True):
        entry = series.get(fp)
        if entry is None:
            labels = sorted([(NAME_LABEL, name), *zip(keys, values, strict=True)])
            entry = series[fp] = (labels, [])
        entry[1].append((ts, value))
    for _, samples in series.values():
        samples.sort()  # remote_write wants each series' samples in time order
    return encode_write_request(series.values())


class DiskBuffer:
    """Remote_write bodies in a folder, oldest first.

    Args:
        folder: created if missing; files left by an earlier run are kept.
        max_bytes: the folder's bound; the oldest files go past it.

    Attributes:
        dropped_files: files dropped over the bound since start.

    Threading: ``append`` from any thread, ``oldest``/``remove`` from the sender.
    """

    def __init__(self, folder: Path, *, max_bytes: int = 1 << 30) -> None:
        self.folder = folder
        (folder / "rejected").mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        files = self._files()
        self._next = int(files[-1].stem) + 1 if files else 0
        self._bytes = sum(f.stat().st_size for f in files)
        self.dropped_files = 0
        self.appended = threading.Condition(self._lock)

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("*" + _SUFFIX))

    def append(self, body: bytes) -> None:
        """Keep ``body`` (written to a temporary name, then renamed: never half a file)."""
        with self._lock:
            path = self.folder / f"{self._next:020d}{_SUFFIX}"
            self._next += 1
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            os.replace(tmp, path)
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                files = self._files()
                if len(files) <= 1:
                    break
                self._bytes -= files[0].stat().st_size
                files[0].unlink()
                self.dropped_files += 1
                logger.warning("buffer over %d bytes: dropped %s", self._max_bytes, files[0].name)
            self.appended.notify_all()

    def oldest(self) -> Path | None:
        with self._lock:
            files = self._files()
            return files[0] if files else None

    def remove(self, path: Path, *, rejected: bool = False) -> None:
        with self._lock:
            size = path.stat().st_size if path.exists() else 0
            if rejected:
                path.replace(self.folder / "rejected" / path.name)
            else:
                path.unlink(missing_ok=True)
            self._bytes -= size

    def __len__(self) -> int:
        with self._lock:
            return len(self._files())


class RemoteWriteSender:
    """Posts a :class:`DiskBuffer`'s files to ``url`` in order, from one thread.

    Args:
        buffer: where bodies wait.
        url: the server's ``/api/v1/write``.
        timeout: seconds per request.
        retry_initial, retry_max: backoff bounds while the server is down.
        sleep: injectable for tests.

    Attributes:
        sent_files, rejected_files, failed_attempts: counters since start.
    """

    def __init__(
        self,
        buffer: DiskBuffer,
        url: str,
        *,
        timeout: float = 30.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.buffer = buffer
        self.url = url
        self._client = httpx.Client(timeout=timeout, headers={**_HEADERS, **(headers or {})})
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_files = 0
        self.rejected_files = 0
        self.failed_attempts = 0

    # -- what collection calls ----------------------------------------------------

    def submit(self, table: pa.Table) -> None:
        """Buffer a SAMPLE_SCHEMA table (the scheduler's sink)."""
        if table.num_rows:
            self.buffer.append(table_to_request(table))

    def submit_metadata(self, rows: Sequence[MetricMetadata]) -> None:
        """Buffer family metadata (sent as a remote_write request of its own)."""
        if rows:
            messages = [
                encode_metadata(r.metric, r.type if r.type else "unknown", r.help, r.unit)
                for r in rows
            ]
            self.buffer.append(encode_write_request((), messages))

    # -- the sending thread ---------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tinct-remote-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = self._retry_initial
        while not self._stop.is_set():
            path = self.buffer.oldest()
            if path is None:
                with self.buffer.appended:
                    self.buffer.appended.wait(0.5)
                continue
            if self.send_one(path):
                delay = self._retry_initial
            else:
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max)

    def send_one(self, path: Path) -> bool:
        """Post one file; False when it must be retried later."""
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return True
        try:
            response = self._client.post(self.url, content=body)
        except httpx.HTTPError as exc:
            self.failed_attempts += 1
            logger.debug("remote_write to %s failed: %s", self.url, exc)
            return False
        if response.is_success:
            self.buffer.remove(path)
            self.sent_files += 1
            return True
        if response.status_code == 429 or response.status_code >= 500:
            self.failed_attempts += 1
            return False
        self.rejected_files += 1
        logger.error(
            "server refused %s (HTTP %d: %s); moved to rejected/",
            path.name,
            response.status_code,
            response.text[:200],
        )
        self.buffer.remove(path, rejected=True)
        return True

    def drain(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> bool:
        """Wait until the buffer is empty or ``timeout`` passes; True when empty."""
        deadline = clock() + timeout
        while len(self.buffer) and clock() < deadline:
            time.sleep(0.05)
        return len(self.buffer) == 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._client.close()
