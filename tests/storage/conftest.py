"""Store fixtures: every test runs against chdb and the real ClickHouse 18.16 server.

chdb serves one data folder per process, so a test must close a chdb store
before opening one in another folder; the fixtures close what they open.
Each server test gets a fresh database, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tinct.storage import ChdbSpanStore, ClickHouseSpanStore, InMemorySpanStore, SqlSpanStore

SQL_BACKENDS = ["chdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)]


class StoreFactory:
    """Opens stores of one backend at one location (data folder or database),
    any number of times, e.g. to test reopening."""

    def __init__(self, kind: str, location: Path | tuple[int, str]) -> None:
        self.kind = kind
        self.location = location
        self.opened: list[SqlSpanStore] = []

    def __call__(self, **kwargs: Any) -> SqlSpanStore:
        store: SqlSpanStore
        if isinstance(self.location, Path):
            store = ChdbSpanStore(str(self.location), **kwargs)
        else:
            port, database = self.location
            store = ClickHouseSpanStore("127.0.0.1", port, database, **kwargs)
        self.opened.append(store)
        return store

    @property
    def url(self) -> str:
        if isinstance(self.location, Path):
            return f"chdb://{self.location}"
        port, database = self.location
        return f"clickhouse://127.0.0.1:{port}/{database}"


def _drop_database(port: int, database: str) -> None:
    from clickhouse_driver import Client

    client = Client("127.0.0.1", port=port)
    try:
        client.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        client.disconnect()


@contextmanager
def _factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if kind == "chdb":
        factory = StoreFactory(kind, tmp_path / "data")
    else:
        port: int = request.getfixturevalue("clickhouse_port")
        factory = StoreFactory(kind, (port, f"t_{uuid.uuid4().hex[:12]}"))
    try:
        yield factory
    finally:
        for store in factory.opened:
            store.close()
        if isinstance(factory.location, tuple):
            _drop_database(*factory.location)


@pytest.fixture(params=SQL_BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A :class:`StoreFactory` per SQL backend; closes what it opened."""
    with _factory(request.param, request, tmp_path) as factory:
        yield factory


@pytest.fixture(params=[*SQL_BACKENDS, "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh, empty store of each backend, and the in-memory one."""
    if request.param == "memory":
        mem = InMemorySpanStore()
        yield mem
        mem.close()
        return
    with _factory(request.param, request, tmp_path) as factory:
        yield factory()


# Re-exported for type hints in tests.
__all__ = ["StoreFactory", "SQL_BACKENDS"]
