"""Shared fixtures: the real ClickHouse server, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import clickhouse_server


@pytest.fixture(scope="session")
def clickhouse_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """TCP (native protocol) port of a clickhouse-server 18.16 for this test session."""
    workdir: Path = tmp_path_factory.mktemp("clickhouse")
    with clickhouse_server(workdir) as port:
        yield port
