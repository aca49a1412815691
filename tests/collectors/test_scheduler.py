"""The scheduler: what one scrape stores, staleness, failures kept to their target."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tinct.collectors.base import CollectError, Target
from tinct.collectors.scheduler import Scheduler
from tinct.metrics import Matcher, is_stale
from tinct.storage import InMemoryMetricStore


class FakeCollector:
    """Returns whatever families the test sets; raises when told to."""

    up_metric = "fake_up"

    def __init__(self) -> None:
        self.families: list[Metric] = []
        self.error: Exception | None = None
        self.delay = 0.0
        self.calls = 0

    def collect(self) -> Iterable[Metric]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return list(self.families)


def gauge(name: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, f"{name} help", labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


class Clock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> InMemoryMetricStore:
    return InMemoryMetricStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler(store: InMemoryMetricStore, clock: Clock) -> Iterator[Scheduler]:
    sched = Scheduler(store.write_samples, store.write_metadata, clock=clock)
    yield sched
    sched.close()


def target(collector: FakeCollector, job: str = "j", **kw: object) -> Target:
    labels = {"job": job, "instance": "i:1", "layer": "component", "component": "fake"}
    kw.setdefault("timeout", 1.0)
    return Target(job=job, labels=labels, collector=collector, **kw)  # type: ignore[arg-type]


def points(store: InMemoryMetricStore, name: str) -> dict[tuple, list[tuple[int, float]]]:
    found = {}
    for series in store.series([Matcher("__name__", "=", name)], 0, 10**13):
        rows = store.samples([series.fingerprint], 0, 10**13).to_pylist()
        key = tuple(sorted((k, v) for k, v in series.labels.items() if k != "__name__"))
        found[key] = [(r["timestamp_ms"], r["value"]) for r in rows]
    return found


def values(store: InMemoryMetricStore, name: str) -> list[float | str]:
    series = list(points(store, name).values())
    assert len(series) == 1, series
    return ["stale" if is_stale(v) else v for _, v in series[0]]


def test_scrape_labels_samples_and_adds_synthetic_series(scheduler, store, clock) -> None:
    fake = FakeCollector()
    counter = CounterMetricFamily("fake_requests", "Requests.", labels=["job", "code"])
    counter.add_metric(["inner", "200"], 7)
    fake.families = [gauge("fake_up", 1), counter]
    health = scheduler.scrape_once(target(fake))
    assert health.health == "up" and health.samples == 2
    # honor_labels false: the scraped job is kept as exported_job.
    ((labels, pts),) = points(store, "fake_requests_total").items()
    assert dict(labels) == {
        "job": "j",
        "exported_job": "inner",
        "instance": "i:1",
        "code": "200",
        "layer": "component",
        "component": "fake",
    }
    assert pts == [(1_000_000, 7.0)]
    assert values(store, "up") == [1.0]
    assert values(store, "scrape_samples_scraped") == [2.0]
    assert values(store, "scrape_samples_post_metric_relabeling") == [2.0]
    assert values(store, "scrape_series_added") == [2.0]
    assert [m.metric for m in store.metadata()] == ["fake_requests_total", "fake_up"]


def test_honor_labels_keeps_scraped_values(scheduler, store) -> None:
    fake = FakeCollector()
    fake.families = [gauge("g", 1, job="inner")]
    scheduler.scrape_once(target(fake, honor_labels=True))
    ((labels, _),) = points(store, "g").items()
    assert dict(labels)["job"] == "inner" and "exported_job" not in dict(labels)


def test_exposed_timestamps_are_honoured_or_not(scheduler, store) -> None:
    fake = FakeCollector()
    family = GaugeMetricFamily("ts", "t")
    family.add_sample("ts", {}, 5.0, timestamp=123.456)
    fake.families = [family]
    scheduler.scrape_once(target(fake, job="a"))
    scheduler.scrape_once(target(fake, job="b", honor_timestamps=False))
    by_job = {dict(k)["job"]: v for k, v in points(store, "ts").items()}
    assert by_job == {"a": [(123_456, 5.0)], "b": [(1_000_000, 5.0)]}


def test_vanished_series_get_a_staleness_marker(scheduler, store, clock) -> None:
    fake = FakeCollector()
    fake.families = [gauge("a", 1), gauge("b", 2)]
    t = target(fake)
    scheduler.scrape_once(t)
    clock.now += 15
    fake.families = [gauge("a", 3)]
    scheduler.scrape_once(t)
    assert values(store, "a") == [1.0, 3.0]
    assert values(store, "b") == [2.0, "stale"]
    assert values(store, "scrape_series_added") == [2.0, 0.0]


def test_failure_marks_down_and_stales_everything(scheduler, store, clock) -> None:
    fake = FakeCollector()
    fake.families = [gauge("fake_up", 1), gauge("a", 1)]
    t = target(fake)
    scheduler.scrape_once(t)
    clock.now += 15
    fake.error = CollectError("connection refused by 127.0.0.1:1")
    health = scheduler.scrape_once(t)
    assert health.health == "down" and "connection refused" in health.last_error
    assert values(store, "up") == [1.0, 0.0]
    assert values(store, "fake_up") == [1.0, 0.0]  # the exporter's own up goes to 0
    assert values(store, "a") == [1.0, "stale"]
    assert values(store, "scrape_samples_scraped") == [1.0 * 2, 0.0]
    assert scheduler.errors == {("j", "i:1"): 1}
    clock.now += 15
    fake.error = None
    assert scheduler.scrape_once(t).health == "up"
    assert values(store, "a") == [1.0, "stale", 1.0]


def test_unexpected_exception_is_a_failure_not_a_crash(scheduler, store) -> None:
    fake = FakeCollector()
    fake.error = ZeroDivisionError("oops")
    health = scheduler.scrape_once(target(fake))
    assert health.health == "down" and "ZeroDivisionError" in health.last_error


def test_timeout_marks_only_that_target_down(scheduler, store) -> None:
    slow, fine = FakeCollector(), FakeCollector()
    slow.delay = 0.5
    slow.families = fine.families = [gauge("g", 1)]
    started = time.monotonic()
    slow_health = scheduler.scrape_once(target(slow, job="slow", timeout=0.1))
    assert time.monotonic() - started < 0.4
    assert slow_health.health == "down" and "timed out after 0.1s" in slow_health.last_error
    assert scheduler.scrape_once(target(fine, job="fine")).health == "up"
    assert {dict(k)["job"]: v for k, v in points(store, "up").items()} == {
        "slow": [(1_000_000, 0.0)],
        "fine": [(1_000_000, 1.0)],
    }


def test_sample_limit_fails_the_scrape(scheduler, store) -> None:
    fake = FakeCollector()
    fake.families = [gauge("g", float(i), i=str(i)) for i in range(5)]
    health = scheduler.scrape_once(target(fake, sample_limit=3))
    assert health.health == "down" and "sample limit exceeded" in health.last_error
    assert points(store, "g") == {}
    assert values(store, "up") == [0.0]


def test_removed_targets_are_stale_marked(scheduler, store, clock) -> None:
    fake = FakeCollector()
    fake.families = [gauge("g", 1)]
    t = target(fake)
    scheduler.set_targets([t])
    scheduler.scrape_once(t)
    clock.now += 5
    scheduler.set_targets([])
    assert values(store, "g") == [1.0, "stale"]
    assert scheduler.targets() == []


def test_rediscovered_target_keeps_its_collector(scheduler) -> None:
    first, second = FakeCollector(), FakeCollector()
    scheduler.set_targets([target(first)])
    scheduler.set_targets([target(second)])
    ((kept, _),) = scheduler.targets()
    assert kept.collector is first


def test_run_scrapes_on_the_interval_and_follows_target_changes(store) -> None:
    sched = Scheduler(store.write_samples)
    a, b = FakeCollector(), FakeCollector()
    a.families = b.families = [gauge("g", 1)]

    async def main() -> None:
        task = asyncio.create_task(sched.run())
        sched.set_targets([target(a, job="a", interval=0.05)])
        await asyncio.sleep(0.4)
        sched.set_targets([target(b, job="b", interval=0.05)])
        calls_a = a.calls
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert calls_a >= 3
        assert a.calls <= calls_a + 1  # stopped within one interval
        assert b.calls >= 3

    try:
        asyncio.run(main())
    finally:
        sched.close()
    assert threading.active_count() < 50
