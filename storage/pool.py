"""A small blocking pool of backend connections.

Neither backend connection may be used by two threads at once: a
clickhouse-driver ``Client`` is not thread-safe, and concurrent queries on one
chdb connection can corrupt results. Readers run in the web server's thread
pool while the batch writer inserts from its own thread, so each operation
checks a connection out of a :class:`Pool` for its duration. Connections are
created lazily up to ``max_size`` and kept until :meth:`Pool.close`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from tinct.errors import StorageError

__all__ = ["Pool"]

T = TypeVar("T")


class Pool(Generic[T]):
    """Up to ``max_size`` connections, each used by one thread at a time.

    Args:
        factory: opens a connection; may raise (the error propagates).
        closer: closes one; exceptions from it are ignored.
        max_size: most connections open at once; further callers wait.
        name: used in error messages.

    Thread-safe. :meth:`acquire` blocks while all connections are in use.
    """

    def __init__(
        self,
        factory: Callable[[], T],
        closer: Callable[[T], None],
        max_size: int,
        name: str = "store",
    ) -> None:
        if max_size < 1:
            raise ValueError(f"pool max_size must be >= 1, got {max_size}")
        self._factory = factory
        self._closer = closer
        self._max_size = max_size
        self._name = name
        self._cond = threading.Condition()
        self._idle: list[T] = []
        self._open = 0
        self._closed = False

    @contextmanager
    def acquire(self) -> Iterator[T]:
        """A connection for the ``with`` block; returned to the pool after it.

        Raises:
            StorageError: the pool is closed.
        """
        with self._cond:
            while not self._closed and not self._idle and self._open >= self._max_size:
                self._cond.wait()
            if self._closed:
                raise StorageError(f"{self._name} is closed")
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._open += 1
        if conn is None:
            try:
                conn = self._factory()
            except BaseException:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                raise
        try:
            yield conn
        finally:
            self._release(conn)

    def _release(self, conn: T) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(conn)
                self._cond.notify()
                return
            self._open -= 1
            self._cond.notify_all()
        self._close_quietly(conn)

    def _close_quietly(self, conn: T) -> None:
        try:
            self._closer(conn)
        except Exception:  # closing is best effort; the connection is gone either way
            pass

    def close(self, timeout: float | None = 10.0) -> None:
        """Close idle connections now and busy ones as they are released.

        Waits up to ``timeout`` seconds for busy connections to come back, so
        that a caller closing the store knows the files are released. Idempotent.
        """
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            self._close_quietly(conn)
        with self._cond:
            self._cond.wait_for(lambda: self._open == 0, timeout)
