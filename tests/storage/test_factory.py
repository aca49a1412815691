"""Store URLs, as given to --store."""

from __future__ import annotations

import pytest

from tinct.errors import ConfigError, StorageError
from tinct.storage import ChdbSpanStore, ClickHouseSpanStore, open_store, parse_store_url
from tinct.storage.factory import StoreLocation

from .spanrows import batch, span


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("chdb:///abs/path", "/abs/path"),
        ("chdb://relative/path", "relative/path"),
        ("chdb://", "./tinct-data"),
        ("", "./tinct-data"),
        ("some/folder", "some/folder"),
        ("/abs/folder", "/abs/folder"),
        ("./x:y", "./x:y"),
        ("chdb:///with%20space", "/with space"),
    ],
)
def test_chdb_urls(url, path):
    assert parse_store_url(url) == StoreLocation("chdb", path=path)


def test_clickhouse_urls():
    assert parse_store_url("clickhouse://h:9123/db1") == StoreLocation(
        "clickhouse", host="h", port=9123, database="db1"
    )
    assert parse_store_url("clickhouse://h") == StoreLocation("clickhouse", host="h")
    assert parse_store_url("clickhouse://u:p%40ss@h/") == StoreLocation(
        "clickhouse", host="h", user="u", password="p@ss"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://h:8123/db",
        "clickhouse://",
        "clickhouse://h:notaport/db",
        "clickhouse://h:9000/bad-name",
        "clickhouse://h:9000/db?secure=1",
        "chdb:///x?y=1",
        "postgres:foo",
    ],
)
def test_bad_urls_name_the_url_and_the_accepted_forms(url):
    with pytest.raises(ConfigError) as info:
        parse_store_url(url)
    assert "accepted: chdb:///abs/path" in str(info.value)


def test_password_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        parse_store_url("clickhouse://u:secret@h:9000/bad-name")
    assert "secret" not in str(info.value)


def test_open_chdb_url(tmp_path):
    store = open_store(f"chdb://{tmp_path}/d")
    try:
        assert isinstance(store, ChdbSpanStore)
        row = span()
        store.write_spans(batch(row))
        assert store.get_trace(row["trace_id"]) == [row]
    finally:
        store.close()
    assert (tmp_path / "d").is_dir()


@pytest.mark.clickhouse
def test_open_clickhouse_url_creates_the_database(clickhouse_port):
    url = f"clickhouse://127.0.0.1:{clickhouse_port}/factory_test"
    store = open_store(url, retention_days=5)
    try:
        assert isinstance(store, ClickHouseSpanStore)
        assert store.target.retention_days == 5
        row = span()
        store.write_spans(batch(row))
        assert store.get_trace(row["trace_id"]) == [row]
    finally:
        store.close()


def test_unreachable_server_is_a_storage_error():
    from tests.servers import free_port

    with pytest.raises(StorageError, match="127.0.0.1"):
        open_store(f"clickhouse://127.0.0.1:{free_port()}/db")


def test_second_chdb_folder_in_one_process_is_refused(tmp_path):
    first = open_store(str(tmp_path / "one"))
    try:
        with pytest.raises(StorageError, match="one data folder per process"):
            open_store(str(tmp_path / "two"))
        row = span()
        first.write_spans(batch(row))  # the open store is unaffected
        assert first.get_trace(row["trace_id"]) == [row]
    finally:
        first.close()
    open_store(str(tmp_path / "two")).close()  # fine once the first is closed
