"""MysqlCollector against a real MariaDB: mysqld_exporter's names, real values."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from prometheus_client import Metric

from tests.servers import free_port
from tests.servers_sql import MARIADB_PASSWORD, MARIADB_USER, mariadb_server, silent_port
from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.components import component_collector
from tinct.collectors.mysql import MysqlCollector
from tinct.errors import ConfigError

OPTIONS = {"user": MARIADB_USER, "password": MARIADB_PASSWORD}
LABELS = {
    "command",
    "handler",
    "error",
    "state",
    "operation",
    "instrumentation",
    "version",
    "version_comment",
    "innodb_version",
}


@pytest.fixture(scope="module")
def mariadb_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as port:
        with connect(port) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE shop")
            cursor.execute("CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, n INT)")
            cursor.execute("INSERT INTO shop.items (n) VALUES (0)")
        yield port


def connect(port: int, **kwargs: Any) -> pymysql.connections.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=port, user=MARIADB_USER, password=MARIADB_PASSWORD, **kwargs
    )


def value(families: list[Metric], name: str, **labels: str) -> float:
    """The one sample ``name`` whose labels include ``labels``."""
    found = [
        s.value
        for f in families
        for s in f.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_names_types_and_labels_follow_the_catalog(mariadb_port: int) -> None:
    address = f"127.0.0.1:{mariadb_port}"
    collector = component_collector("mysql", address, timeout=2.0, options=OPTIONS)
    families = list(collector.collect())

    names = {s.name for f in families for s in f.samples}
    for core in (
        "mysql_up",
        "mysql_version_info",
        "mysql_global_status_uptime",
        "mysql_global_status_threads_connected",
        "mysql_global_status_queries",
        "mysql_global_status_commands_total",
        "mysql_global_status_handlers_total",
        "mysql_global_status_connection_errors_total",
        "mysql_global_status_buffer_pool_page_changes_total",
        "mysql_global_status_buffer_pool_pages",
        "mysql_global_status_buffer_pool_dirty_pages",
        "mysql_global_variables_max_connections",
    ):
        assert core in names
    assert len({f.name for f in families}) == len(families)  # one family per name
    for family in families:
        for sample in family.samples:
            assert re.fullmatch(r"mysql_[a-z0-9_]+", sample.name), sample.name
            spec = CATALOG.for_sample(sample.name)
            assert spec is not None, sample.name
            assert spec.type.value == family.type, sample.name
            labels = {**sample.labels, "layer": "component", "component": "mysql"}
            assert CATALOG.problems(sample.name, {**labels, "instance": address}) == []
            # Only the exporter's own labels: the scheduler adds the target's.
            assert set(sample.labels) <= LABELS, sample
    # mysqld_exporter's types: generic status untyped, variables gauges.
    types = {f.name: f.type for f in families}
    assert types["mysql_global_status_uptime"] == "unknown"
    assert types["mysql_global_status_commands"] == "counter"
    assert types["mysql_global_variables_max_connections"] == "gauge"
    assert getattr(collector, "up_metric", None) == "mysql_up"


def test_values_follow_the_traffic(mariadb_port: int) -> None:
    collector = MysqlCollector(f"127.0.0.1:{mariadb_port}", timeout=2.0, options=OPTIONS)
    before = list(collector.collect())

    held = connect(mariadb_port, database="shop")
    try:
        with connect(mariadb_port, database="shop") as work, work.cursor() as cursor:
            for i in range(30):
                cursor.execute("INSERT INTO items (n) VALUES (%s)", [i])
                work.commit()
            for _ in range(3):
                cursor.execute("UPDATE items SET n = n + 1")
                work.rollback()
        after = list(collector.collect())
        with held.cursor() as cursor:
            cursor.execute("SELECT VERSION(), @@version_comment, @@max_connections")
            version, comment, max_connections = cursor.fetchone()
    finally:
        held.close()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mysql_global_status_commands_total", command="insert") == 30
    assert delta("mysql_global_status_commands_total", command="commit") >= 30
    assert delta("mysql_global_status_commands_total", command="rollback") >= 3
    # MariaDB 10.11 has no Innodb_rows_*; the handler layer counts the writes.
    assert delta("mysql_global_status_handlers_total", handler="write") >= 30
    # The collector's own session and the held one.
    assert value(after, "mysql_global_status_threads_connected") >= 2
    assert value(after, "mysql_global_status_uptime") >= 0
    assert value(after, "mysql_global_variables_max_connections") == max_connections
    assert value(after, "mysql_version_info", version=version, version_comment=comment) == 1
    assert "MariaDB" in version
    assert value(after, "mysql_up") == 1


def test_reconnects_after_its_session_is_killed(mariadb_port: int) -> None:
    collector = MysqlCollector(f"127.0.0.1:{mariadb_port}", timeout=2.0, options=OPTIONS)
    collector.collect()
    with connect(mariadb_port) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT id FROM information_schema.processlist WHERE id != CONNECTION_ID()")
        for (session,) in cursor.fetchall():
            cursor.execute(f"KILL {int(session)}")
    with pytest.raises(CollectError, match=f"mysql 127.0.0.1:{mariadb_port}"):
        collector.collect()
    assert value(list(collector.collect()), "mysql_up") == 1


def test_a_wrong_password_raises(mariadb_port: int) -> None:
    address = f"127.0.0.1:{mariadb_port}"
    collector = MysqlCollector(
        address, timeout=1.0, options={"user": MARIADB_USER, "password": "wrong"}
    )
    with pytest.raises(CollectError, match=rf"mysql {address}: .*Access denied"):
        collector.collect()


def test_a_closed_port_raises_quickly() -> None:
    address = f"127.0.0.1:{free_port()}"
    collector = MysqlCollector(address, timeout=1.0, options=OPTIONS)
    start = time.monotonic()
    with pytest.raises(CollectError, match=address):
        collector.collect()
    assert time.monotonic() - start < 2.0


def test_a_silent_server_raises_at_the_timeout() -> None:
    with silent_port() as port:
        collector = MysqlCollector(f"127.0.0.1:{port}", timeout=1.0, options=OPTIONS)
        start = time.monotonic()
        with pytest.raises(CollectError, match=f"127.0.0.1:{port}"):
            collector.collect()
    assert time.monotonic() - start < 2.0


def test_a_stopped_server_raises_quickly(tmp_path: Path) -> None:
    with mariadb_server(tmp_path) as port:
        collector = MysqlCollector(f"127.0.0.1:{port}", timeout=1.0, options=OPTIONS)
        assert value(list(collector.collect()), "mysql_up") == 1
    start = time.monotonic()
    with pytest.raises(CollectError, match=f"127.0.0.1:{port}"):
        collector.collect()
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("address", "options", "message"),
    [
        ("127.0.0.1:notaport", {}, "notaport"),
        ("", {}, "host:port"),
        ("127.0.0.1:3306", {"db": "x"}, "unknown option"),
    ],
)
def test_bad_settings_are_refused(address: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MysqlCollector(address, timeout=1.0, options=options)
