"""HostCollector on the machine running the tests: catalog names, real values."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

import psutil
import pytest
from prometheus_client import Metric

from tinct.catalog import CATALOG
from tinct.collectors.base import CollectError
from tinct.collectors.host import HostCollector
from tinct.errors import ConfigError
from tinct.standard import Layer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def values(families: list[Metric]) -> Values:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def samples(families: list[Metric], family: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in families if f.name == family for s in f.samples]


def busy(seconds: float) -> None:
    """Spend CPU so every state's share has clock ticks to be measured against."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def loopback_bytes(count: int) -> None:
    """Send ``count`` bytes to ourselves over 127.0.0.1 (through ``lo``)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        received = bytearray()

        def drain() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(b"x" * count)
        reader.join(5)
        assert len(received) == count


@pytest.fixture(scope="module")
def two_collects() -> tuple[list[Metric], list[Metric]]:
    collector = HostCollector()
    first = list(collector.collect())
    busy(0.3)
    loopback_bytes(1 << 20)
    return first, list(collector.collect())


def test_every_series_conforms_to_the_catalog(
    two_collects: tuple[list[Metric], list[Metric]],
) -> None:
    for families in two_collects:
        for family in families:
            spec = CATALOG.get(family.name)
            assert spec is not None, family.name
            assert spec.layer is Layer.INFRASTRUCTURE
            assert family.type == spec.type.value, family.name
            for sample in family.samples:
                labels = {**sample.labels, "layer": "infrastructure", "host": "h"}
                assert CATALOG.problems(sample.name, labels) == [], sample
                # Target labels are the scheduler's to add.
                assert not {"layer", "host", "job", "instance"} & set(sample.labels)


@linux_only
def test_every_host_family_is_emitted(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    expected = {spec.name for spec in CATALOG.by_layer(Layer.INFRASTRUCTURE)}
    if not psutil.swap_memory().total:  # no share of no swap
        expected.discard("system_paging_utilization_ratio")
    assert {f.name for f in two_collects[1] if f.samples} == expected
    # Utilization is a share since the previous collect: the first has none.
    assert samples(two_collects[0], "system_cpu_utilization_ratio") == []


def test_cpu(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    first, second = two_collects
    assert values(second)[("system_cpu_logical_count", ())] == os.cpu_count()
    before, after = values(first), values(second)
    times = [key for key in after if key[0] == "system_cpu_time_seconds_total"]
    states = {dict(labels)["state"] for _, labels in times}
    assert {"user", "system", "idle"} <= states
    assert {dict(labels)["cpu"] for _, labels in times} == {
        f"cpu{i}" for i in range(psutil.cpu_count() or 0)
    }
    for key in times:
        assert after[key] >= before[key], key
    shares: dict[str, float] = {}
    for labels, value in samples(second, "system_cpu_utilization_ratio"):
        assert 0.0 <= value <= 1.0, labels
        shares[labels["cpu"]] = shares.get(labels["cpu"], 0.0) + value
    assert shares, "no utilization on the second collect"
    for cpu, total in shares.items():
        assert total == pytest.approx(1.0), cpu


def test_memory_and_paging(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    now = values(two_collects[1])
    total = psutil.virtual_memory().total
    assert now[("system_memory_limit_bytes", ())] == total
    usage = dict(
        (labels["state"], v) for labels, v in samples(two_collects[1], "system_memory_usage_bytes")
    )
    assert {"used", "free"} <= set(usage)
    if {"buffered", "cached"} <= set(usage):  # Linux: the states split the total
        assert sum(usage.values()) == pytest.approx(total, rel=0.01)
    for labels, value in samples(two_collects[1], "system_memory_utilization_ratio"):
        assert 0.0 <= value <= 1.0, labels
    for labels, value in samples(two_collects[1], "system_paging_utilization_ratio"):
        assert 0.0 <= value <= 1.0, labels
    directions = {
        labels["direction"] for labels, _ in samples(two_collects[1], "system_paging_operations")
    }
    assert directions == {"page_in", "page_out"}


def test_root_filesystem_splits_its_size(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    usage = samples(two_collects[1], "system_filesystem_usage_bytes")
    mounts = {labels["mountpoint"] for labels, _ in usage}
    root = "/" if "/" in mounts else min(mounts, key=len)
    states = {labels["state"]: v for labels, v in usage if labels["mountpoint"] == root}
    assert set(states) == {"used", "free", "reserved"}
    stat = os.statvfs(root)
    assert states["used"] + states["free"] + states["reserved"] == stat.f_blocks * stat.f_frsize
    share = [
        v
        for labels, v in samples(two_collects[1], "system_filesystem_utilization_ratio")
        if labels["mountpoint"] == root
    ]
    assert len(share) == 1 and 0.0 < share[0] <= 1.0
    # No pseudo filesystems (no storage) among them.
    assert not {"proc", "sysfs", "cgroup", "devpts"} & {labels["type"] for labels, _ in usage}


def test_loopback_traffic_is_counted(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    before, after = values(two_collects[0]), values(two_collects[1])
    for direction in ("receive", "transmit"):
        key = ("system_network_io_bytes_total", (("device", "lo"), ("direction", direction)))
        assert after[key] - before[key] >= 1 << 20, direction
    packets = ("system_network_packets_total", (("device", "lo"), ("direction", "transmit")))
    assert after[packets] > before[packets]


@linux_only
def test_connections_and_processes(two_collects: tuple[list[Metric], list[Metric]]) -> None:
    families = two_collects[1]
    connections = {
        labels["state"]: v for labels, v in samples(families, "system_network_connections")
    }
    assert {
        labels["protocol"] for labels, _ in samples(families, "system_network_connections")
    } == {"tcp"}
    assert {"ESTABLISHED", "LISTEN", "TIME_WAIT"} <= set(connections)
    with socket.create_server(("127.0.0.1", 0)):
        listening = {
            labels["state"]: v
            for labels, v in samples(list(HostCollector().collect()), "system_network_connections")
        }
    assert listening["LISTEN"] >= 1
    processes = dict(
        (labels["status"], v) for labels, v in samples(families, "system_process_count")
    )
    assert processes["running"] >= 1  # this one
    assert sum(processes.values()) == pytest.approx(len(psutil.pids()), rel=0.2)
    now, before = values(families), values(two_collects[0])
    assert now[("system_process_created_total", ())] >= before[("system_process_created_total", ())]
    uptime = now[("system_uptime_seconds", ())]
    assert 0 < uptime == pytest.approx(time.time() - psutil.boot_time(), abs=5)


def test_a_failing_optional_family_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_io_counters", fail)
    collector = HostCollector()
    with caplog.at_level(logging.DEBUG, logger="tinct.collectors.host"):
        collector.collect()
        families = {f.name for f in collector.collect()}
    assert "system_network_io_bytes" not in families
    # Logged once, not on every collect.
    assert [r.getMessage() for r in caplog.records] == ["host network metrics skipped"]
    assert {
        "system_cpu_time_seconds",
        "system_memory_usage_bytes",
        "system_disk_io_bytes",
    } <= families


def test_one_unreadable_mount_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = [p.mountpoint for p in psutil.disk_partitions(all=True)]
    real = psutil.disk_usage
    blocked = "/" if "/" in mounts else mounts[0]

    def usage(path: str) -> object:
        if path == blocked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(psutil, "disk_usage", usage)
    families = list(HostCollector().collect())
    found = {
        labels["mountpoint"] for labels, _ in samples(families, "system_filesystem_usage_bytes")
    }
    assert blocked not in found
    assert found, "the other mounts are still measured"


def test_a_failing_core_raises_collect_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("no /proc/stat")

    monkeypatch.setattr(psutil, "cpu_times", fail)
    with pytest.raises(CollectError, match="no /proc/stat"):
        HostCollector().collect()


def test_exclusions() -> None:
    options = {"exclude_devices": ["^lo$"], "exclude_mountpoints": ["^/$"]}
    families = list(HostCollector(options=options).collect())
    assert "lo" not in {
        labels["device"] for labels, _ in samples(families, "system_network_io_bytes")
    }
    mounts = {
        labels["mountpoint"] for labels, _ in samples(families, "system_filesystem_usage_bytes")
    }
    assert "/" not in mounts


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exclude_disks": ["sda"]}, "'exclude_disks' is not known"),
        ({"exclude_devices": "lo"}, "'exclude_devices' must be a list"),
        ({"exclude_mountpoints": ["("]}, "'exclude_mountpoints': bad regular expression"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HostCollector(options=options)
