"""Batching between receivers and the store.

Receivers decode small requests (tens to thousands of spans); ClickHouse
wants few, large inserts. :class:`BatchWriter` accepts tables without doing
I/O, and one worker thread concatenates them and calls
:meth:`SpanWriter.write_spans` when enough rows are pending or the oldest has
waited ``max_delay`` seconds (OpenTelemetry's ``BatchSpanProcessor`` shape).

Memory is bounded by ``max_queued_rows``: past it :meth:`BatchWriter.submit`
raises :class:`QueueFullError`, which receivers answer with HTTP 503 /
gRPC UNAVAILABLE so the client retries later. A failed write is logged,
counted and retried with backoff, never dropped. The interface is kept to
submit/flush/close so that a durable on-disk queue can later sit in front of
``write_spans`` without changing callers.

The same class batches log records: give it a writer whose ``write_spans``
writes logs, the logs' ``normalize`` and ``rows_name="log"``
(``tinct.storage.logs.log_batch_writer``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import pyarrow as pa

from tinct.errors import StorageError
from tinct.storage.base import SpanWriter
from tinct.storage.batches import normalize_batch

__all__ = ["BatchWriter", "QueueFullError"]

logger = logging.getLogger(__name__)


class QueueFullError(StorageError):
    """Too many rows are waiting to be written; retry later (HTTP 503)."""


class BatchWriter:
    """Accumulates span batches and writes them from a worker thread.

    Args:
        writer: the store (anything with ``write_spans``).
        max_rows: write as soon as this many rows are pending.
        max_delay: write when the oldest pending batch is this many seconds old.
        max_queued_rows: reject submissions beyond this many unwritten rows.
        clock: monotonic seconds; injectable for tests.
        retry_initial: first backoff after a failed write, seconds.
        retry_max: longest backoff, seconds.
        normalize: checks and conforms a submitted table (raises
            InvalidBatchError); SPAN_SCHEMA's by default.
        rows_name: what a row is, for messages and the worker thread's name.

    Attributes (for self-metrics; plain ints, read without locking):
        written_rows: rows written so far.
        written_batches: successful ``write_spans`` calls.
        failed_writes: failed ``write_spans`` calls (each retried).
        rejected_rows: rows refused with QueueFullError.

    Threading: ``submit`` and ``flush`` may be called from any thread; the
    worker is the only caller of ``write_spans``.
    """

    def __init__(
        self,
        writer: SpanWriter,
        *,
        max_rows: int = 50_000,
        max_delay: float = 0.5,
        max_queued_rows: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        normalize: Callable[[pa.Table], pa.Table] = normalize_batch,
        rows_name: str = "span",
    ) -> None:
        if max_rows < 1 or max_queued_rows < 1 or max_delay <= 0:
            raise ValueError("max_rows and max_queued_rows must be >= 1 and max_delay > 0")
        self._writer = writer
        self._normalize = normalize
        self._what = rows_name
        self._max_rows = max_rows
        self._max_delay = max_delay
        self._max_queued = max_queued_rows
        self._clock = clock
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._cond = threading.Condition()
        self._queue: deque[tuple[pa.Table, float]] = deque()
        self._queued_rows = 0
        self._pending = 0  # queued + being written
        self._submitted = 0  # rows ever accepted
        self._done = 0  # rows ever written
        self._flush_target = 0  # write regardless of age up to this submitted count
        self._stopping = False
        self._abandoned = False  # closed before everything was written
        self.written_rows = 0
        self.written_batches = 0
        self.failed_writes = 0
        self.rejected_rows = 0
        name = "tinct-batch-writer" if rows_name == "span" else f"tinct-{rows_name}-writer"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows accepted but not yet written (queued or being written)."""
        return self._pending

    def submit(self, batch: pa.Table) -> None:
        """Queue ``batch`` for writing. Never waits for I/O.

        Raises:
            InvalidBatchError: the batch does not fit SPAN_SCHEMA.
            QueueFullError: accepting it would exceed ``max_queued_rows``.
            StorageError: the writer is closed.
        """
        table = self._normalize(batch)
        rows = table.num_rows
        if rows == 0:
            return
        with self._cond:
            if self._stopping:
                raise StorageError("batch writer is closed")
            if self._pending + rows > self._max_queued:
                self.rejected_rows += rows
                raise QueueFullError(
                    f"{self._what} write queue full: {self._pending} rows pending, "
                    f"limit {self._max_queued}; retry later"
                )
            wake = not self._queue or self._queued_rows + rows >= self._max_rows
            self._queue.append((table, self._clock()))
            self._queued_rows += rows
            self._pending += rows
            self._submitted += rows
            if wake:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything submitted so far now; wait up to ``timeout`` seconds.

        Returns:
            True when all of it is written, False on timeout.
        """
        with self._cond:
            target = self._submitted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker. Further submits raise StorageError.

        With ``timeout=None`` this waits as long as writes keep failing.

        Returns:
            True when everything was written; False if ``timeout`` passed
            first (the rows still pending are logged and abandoned).
        """
        flushed = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._abandoned = not flushed
            self._cond.notify_all()
        self._thread.join(timeout)
        if not flushed:
            logger.error("batch writer closed with %d %s rows unwritten", self._pending, self._what)
        return flushed

    def _due(self) -> bool:
        # Called only between writes, so every unwritten row is in the queue.
        if not self._queue:
            return False
        if self._queued_rows >= self._max_rows or self._stopping:
            return True
        if self._flush_target > self._done:
            return True
        return self._clock() - self._queue[0][1] >= self._max_delay

    def _take(self) -> pa.Table | None:
        """Next batch to write, waiting until one is due; None once stopping and empty."""
        with self._cond:
            while True:
                if self._abandoned or (self._stopping and not self._queue):
                    return None
                if self._due():
                    break
                if self._queue:
                    left = self._max_delay - (self._clock() - self._queue[0][1])
                    self._cond.wait(max(0.001, min(left, self._max_delay)))
                else:
                    self._cond.wait()
            tables, rows = [], 0
            while self._queue and rows < self._max_rows:
                table, _ = self._queue.popleft()
                tables.append(table)
                rows += table.num_rows
            self._queued_rows -= rows
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._write(batch)
            except Exception:  # the worker must outlive any bug below it
                logger.exception(
                    "batch writer: unexpected error; %d %ss lost", batch.num_rows, self._what
                )
                self._finish(batch.num_rows, written=False)

    def _write(self, batch: pa.Table) -> None:
        delay = self._retry_initial
        while True:
            try:
                self._writer.write_spans(batch)
            except Exception:
                self.failed_writes += 1
                logger.exception(
                    "writing %d %ss failed; retrying in %.1fs", batch.num_rows, self._what, delay
                )
                with self._cond:
                    if self._cond.wait_for(lambda: self._abandoned, delay):
                        self._finish(batch.num_rows, written=False)
                        return
                delay = min(delay * 2, self._retry_max)
                continue
            self._finish(batch.num_rows, written=True)
            return

    def _finish(self, rows: int, *, written: bool) -> None:
        with self._cond:
            self._pending -= rows
            self._done += rows
            if written:
                self.written_rows += rows
                self.written_batches += 1
            self._cond.notify_all()
