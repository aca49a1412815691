"""BatchWriter: batching, timing, backpressure and retries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pyarrow as pa
import pytest

from tinct.errors import StorageError
from tinct.storage import BatchWriter, InvalidBatchError, QueueFullError

from .spanrows import batch, span


class FakeWriter:
    """Records batches; can fail the first N writes or block until released."""

    def __init__(self, fail_first: int = 0, fail_always: bool = False) -> None:
        self.batches: list[pa.Table] = []
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.release = threading.Event()
        self.release.set()
        self.calls = 0

    def write_spans(self, table: pa.Table) -> None:
        self.calls += 1
        self.release.wait()
        if self.fail_always or self.calls <= self.fail_first:
            raise StorageError("store is down")
        self.batches.append(table)

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spans(n: int) -> pa.Table:
    return batch(*(span() for _ in range(n)))


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


@pytest.fixture
def make():
    writers: list[BatchWriter] = []

    def factory(target, **kw) -> BatchWriter:
        w = BatchWriter(target, **kw)
        writers.append(w)
        return w

    yield factory
    for w in writers:
        w.close(timeout=2)


def test_writes_when_enough_rows_are_pending(make):
    target = FakeWriter()
    w = make(target, max_rows=10, max_delay=3600)
    for _ in range(3):
        w.submit(spans(4))
    assert wait_until(lambda: target.rows == 12)
    assert [b.num_rows for b in target.batches] == [12]  # concatenated into one insert
    assert w.pending_rows == 0
    assert (w.written_rows, w.written_batches) == (12, 1)


def test_writes_when_the_oldest_batch_is_old_enough(make):
    clock = FakeClock()
    target = FakeWriter()
    w = make(target, max_rows=1000, max_delay=0.05, clock=clock)
    w.submit(spans(3))
    time.sleep(0.2)  # real time passes, the writer's clock does not
    assert target.rows == 0 and w.pending_rows == 3
    clock.now += 0.06
    assert wait_until(lambda: target.rows == 3)
    assert w.pending_rows == 0


def test_flush_writes_everything_submitted(make):
    target = FakeWriter()
    w = make(target, max_rows=1000, max_delay=3600)
    w.submit(spans(2))
    w.submit(spans(5))
    assert w.flush(timeout=3) is True
    assert target.rows == 7


def test_flush_times_out_while_the_store_is_stuck(make):
    target = FakeWriter()
    target.release.clear()
    w = make(target, max_delay=3600)
    w.submit(spans(2))
    assert w.flush(timeout=0.1) is False
    target.release.set()
    assert w.flush(timeout=3) is True


def test_close_flushes_and_refuses_more(make):
    target = FakeWriter()
    w = make(target, max_rows=1000, max_delay=3600)
    w.submit(spans(4))
    assert w.close() is True
    assert target.rows == 4
    with pytest.raises(StorageError):
        w.submit(spans(1))


def test_failed_writes_are_logged_and_retried(make, caplog):
    target = FakeWriter(fail_first=2)
    w = make(target, max_delay=0.01, retry_initial=0.01)
    with caplog.at_level(logging.ERROR, logger="tinct.storage.writer"):
        w.submit(spans(5))
        assert w.flush(timeout=3) is True
    assert target.rows == 5 and target.calls == 3
    assert w.failed_writes == 2 and w.written_rows == 5
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2
    assert caplog.records[0].exc_info is not None


def test_close_gives_up_after_timeout_when_writes_keep_failing(make):
    target = FakeWriter(fail_always=True)
    w = make(target, max_delay=0.01, retry_initial=0.01, retry_max=0.02)
    w.submit(spans(3))
    start = time.monotonic()
    assert w.close(timeout=0.2) is False
    assert time.monotonic() - start < 1.5
    assert wait_until(lambda: not w._thread.is_alive())
    assert w.failed_writes >= 1 and target.rows == 0


def test_full_queue_is_refused_until_rows_are_written(make):
    target = FakeWriter()
    target.release.clear()
    w = make(target, max_rows=1000, max_delay=0.01, max_queued_rows=10)
    w.submit(spans(6))
    with pytest.raises(QueueFullError, match="limit 10"):
        w.submit(spans(6))
    w.submit(spans(4))  # exactly at the limit is fine
    assert w.rejected_rows == 6 and w.pending_rows == 10
    target.release.set()
    assert w.flush(timeout=3)
    w.submit(spans(6))
    assert w.flush(timeout=3)
    assert target.rows == 16


def test_invalid_batches_are_refused_at_submit(make):
    w = make(FakeWriter())
    with pytest.raises(InvalidBatchError):
        w.submit(batch(span(trace_id=b"short")))
    w.submit(spans(0))  # empty: nothing to do
    assert w.pending_rows == 0


def test_concurrent_submitters_lose_nothing(make):
    target = FakeWriter()
    w = make(target, max_rows=50, max_delay=0.01)

    def produce() -> None:
        for _ in range(20):
            w.submit(spans(7))

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.flush(timeout=5)
    assert target.rows == 4 * 20 * 7 == w.written_rows


def test_spans_are_readable_within_two_seconds_with_defaults(open_store):
    store = open_store()
    w = BatchWriter(store)
    try:
        row = span()
        start = time.monotonic()
        w.submit(batch(row))
        assert wait_until(lambda: store.get_trace(row["trace_id"]) == [row], timeout=2.0)
        assert time.monotonic() - start < 2.0
    finally:
        assert w.close(timeout=5)
