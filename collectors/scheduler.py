"""Runs every target's collector on its interval, the way Prometheus scrapes.

One scrape (:meth:`Scheduler.scrape_once`) is what Prometheus's scrape loop
does with a target's response (``scrape/scrape.go``): every sample gets the
target's labels (a clash renames the scraped label ``exported_<name>``
unless ``honor_labels``), ``metric_relabel_configs`` run, the exposed
timestamp is kept when ``honor_timestamps`` (otherwise the scrape's start
time is used), and the synthetic series ``up``, ``scrape_duration_seconds``,
``scrape_samples_scraped``, ``scrape_samples_post_metric_relabeling`` and
``scrape_series_added`` are appended. A series present in the previous
scrape and missing from this one, every series of a target that failed, and
every series of a target that was removed, gets a staleness marker, so
PromQL stops returning it at once rather than after the 5-minute lookback.

A collector that fails or times out marks only its own target down: ``up``
(and the collector's ``<component>_up``) become 0, the error is kept for
``/api/v1/targets`` and counted, and every other target carries on.
Collectors run in a thread pool; :meth:`Scheduler.run` drives the loops from
asyncio, spreading targets over their interval as Prometheus does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from prometheus_client import Metric

from tinct.collectors.base import CollectError, Target, target_key
from tinct.metrics import NAME_LABEL, STALE_NAN, Labels, MetricMetadata, SampleBuilder, SeriesRef

__all__ = ["Scheduler", "TargetHealth", "SampleSink", "MetadataSink"]

logger = logging.getLogger(__name__)

SampleSink = Callable[[pa.Table], None]
MetadataSink = Callable[[list[MetricMetadata]], None]


@dataclass
class TargetHealth:
    """The last scrape of a target, as ``/api/v1/targets`` reports it.

    Attributes:
        health: ``up``, ``down`` or ``unknown`` (not scraped yet).
        last_error: "" after a successful scrape.
        last_scrape: start of the last scrape, Unix seconds (0 before any).
        last_duration: seconds the last scrape took.
        samples: samples stored by the last scrape (after relabelling).
    """

    health: str = "unknown"
    last_error: str = ""
    last_scrape: float = 0.0
    last_duration: float = 0.0
    samples: int = 0


@dataclass
class _TargetState:
    target: Target
    health: TargetHealth = field(default_factory=TargetHealth)
    previous: dict[int, SeriesRef] = field(default_factory=dict)  # to stale-mark later
    exposed: set[int] = field(default_factory=set)  # every series of the last scrape
    series_cache: dict[tuple[Any, ...], SeriesRef | None] = field(default_factory=dict)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    builder: SampleBuilder = field(default_factory=lambda: SampleBuilder(max_cached=200_000))
    lock: threading.Lock = field(default_factory=threading.Lock)


class Scheduler:
    """Scrapes targets and hands their samples to a sink.

    Args:
        sink: takes each scrape's SAMPLE_SCHEMA table (a ``BatchWriter``'s
            ``submit`` or a store's ``write_samples``). A failing sink is
            logged and counted; the scrape's data is lost then, as
            Prometheus loses a scrape its TSDB refuses.
        metadata_sink: takes HELP/TYPE/UNIT of families when they change.
        clock: Unix seconds; injectable so tests control sample timestamps.
        max_workers: collectors running at once.

    Attributes:
        errors: failed collections per ``(job, instance)`` since start.

    Threading: ``scrape_once`` may be called from any thread; one target is
    scraped by one thread at a time.
    """

    def __init__(
        self,
        sink: SampleSink,
        metadata_sink: MetadataSink | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_workers: int = 8,
    ) -> None:
        self._sink = sink
        self._metadata_sink = metadata_sink
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers, "tinct-collect")
        self._lock = threading.Lock()
        self._states: dict[tuple[Any, ...], _TargetState] = {}
        self._version = 0  # bumped by set_targets; run() polls it
        self.errors: dict[tuple[str, str], int] = {}
        self.sink_failures = 0

    # -- targets -----------------------------------------------------------------

    def set_targets(self, targets: Sequence[Target]) -> None:
        """Replace the target list. Unchanged targets keep their state; the
        series of removed ones are marked stale now."""
        wanted = {target_key(t.job, t.labels, t.scrape_url): t for t in targets}
        with self._lock:
            removed = [s for k, s in self._states.items() if k not in wanted]
            replaced: list[Any] = []
            for key, target in wanted.items():
                state = self._states.get(key)
                if state is None:
                    self._states[key] = _TargetState(target)
                elif _same_settings(state.target, target):
                    # Discovery builds collectors afresh; keep the one in use.
                    if target.collector is not state.target.collector:
                        replaced.append(target.collector)
                else:
                    replaced.append(state.target.collector)
                    state.target = target
                    state.series_cache = {}
            for key in [k for k in self._states if k not in wanted]:
                del self._states[key]
        now_ms = int(self._clock() * 1000)
        for state in removed:
            with state.lock:
                for ref in state.previous.values():
                    state.builder.add_ref(ref, now_ms, STALE_NAN)
                state.previous = {}
                self._emit(state.builder.take())
            _close(state.target.collector)
        for collector in replaced:
            _close(collector)
        self._version += 1

    def targets(self) -> list[tuple[Target, TargetHealth]]:
        """Every target with a copy of its last scrape's health, by job then labels."""
        with self._lock:
            states = list(self._states.values())
        found = [(s.target, TargetHealth(**vars(s.health))) for s in states]
        return sorted(found, key=lambda p: (p[0].job, sorted(p[0].labels.items())))

    # -- one scrape ----------------------------------------------------------------

    def scrape_once(self, target: Target) -> TargetHealth:
        """Collect ``target`` now, store the result, and return its health.

        Blocks up to the target's timeout (plus the sink's time).
        """
        key = target_key(target.job, target.labels, target.scrape_url)
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = _TargetState(target)
        with state.lock:
            return self._scrape(state)

    def _scrape(self, state: _TargetState) -> TargetHealth:
        target = state.target
        start = self._clock()
        started = time.monotonic()
        ts_ms = int(start * 1000)
        error = ""
        families: list[Metric] = []
        try:
            future = self._pool.submit(lambda: list(target.collector.collect()))
            families = future.result(timeout=target.timeout)
        except concurrent.futures.TimeoutError:
            error = f"collection timed out after {target.timeout:g}s"
        except CollectError as exc:
            error = str(exc)
        except Exception as exc:
            logger.exception("collector of %s %s failed", target.job, target.instance)
            error = f"{type(exc).__name__}: {exc}"
        builder = state.builder
        scraped = post = 0
        seen: dict[int, SeriesRef] = {}  # series to stale-mark when they go away
        explicit: set[int] = set()  # series with exposed timestamps (never stale-marked)
        if not error:
            scraped, post, error = self._add_samples(state, families, ts_ms, seen, explicit)
        if error:
            builder.take()  # Prometheus stores nothing of a failed scrape
            seen = {}
            explicit = set()
            scraped = post = 0
        # Prometheus counts every series new to its cache, timestamped ones too.
        current = set(seen) | explicit
        added = len(current - state.exposed)
        state.exposed = current
        base = target.labels
        up_metric = getattr(target.collector, "up_metric", None)
        down_up = builder.series(_with_name(base, up_metric)) if error and up_metric else None
        for fp, ref in state.previous.items():
            if fp not in seen and ref is not down_up:  # that one gets its 0 below
                builder.add_ref(ref, ts_ms, STALE_NAN)
        state.previous = seen
        duration = time.monotonic() - started
        synthetic = (
            ("up", 0.0 if error else 1.0),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", float(scraped)),
            ("scrape_samples_post_metric_relabeling", float(post)),
            ("scrape_series_added", float(added)),
        )
        for name, value in synthetic:
            builder.add(_with_name(base, name), ts_ms, value)
        if down_up is not None:
            builder.add_ref(down_up, ts_ms, 0.0)
        if error:
            self.errors[(target.job, target.instance)] = (
                self.errors.get((target.job, target.instance), 0) + 1
            )
            logger.debug("target %s %s down: %s", target.job, target.instance, error)
        else:
            self._send_metadata(state, families)
        self._emit(builder.take())
        state.health = TargetHealth(
            health="down" if error else "up",
            last_error=error,
            last_scrape=start,
            last_duration=duration,
            samples=post,
        )
        return TargetHealth(**vars(state.health))

    def _add_samples(
        self,
        state: _TargetState,
        families: Iterable[Metric],
        ts_ms: int,
        seen: dict[int, SeriesRef],
        explicit: set[int],
    ) -> tuple[int, int, str]:
        """Label, relabel and queue the samples.

        Returns (samples scraped, samples kept, error). A target exposes the
        same series scrape after scrape, so the labelled, relabelled and
        fingerprinted series is cached per raw (name, labels) and the loop
        does one dict lookup per sample.
        """
        target = state.target
        builder = state.builder
        add = builder.add_ref
        cache = state.series_cache
        relabel = _relabeller(target.metric_relabel_configs)
        honor_timestamps = target.honor_timestamps
        scraped = 0
        for family in families:
            for sample in family.samples:
                scraped += 1
                raw = (sample.name, tuple(sample.labels.items()))
                ref = cache.get(raw)
                if ref is None:
                    if raw in cache:
                        continue  # dropped by metric_relabel_configs
                    labels = _target_labelled(sample.name, sample.labels, target)
                    if relabel is not None:
                        relabelled = relabel(labels)
                        if relabelled is None:
                            cache[raw] = None
                            continue
                        labels = relabelled
                    ref = builder.series(tuple(sorted((k, v) for k, v in labels.items() if v)))
                    cache[raw] = ref
                fp = ref[0]
                if fp in seen or fp in explicit:
                    continue  # Prometheus: "duplicate sample for timestamp"
                if honor_timestamps and sample.timestamp is not None:
                    explicit.add(fp)  # Prometheus does not stale-mark these
                    add(ref, _timestamp_ms(sample.timestamp), sample.value)
                else:
                    seen[fp] = ref
                    add(ref, ts_ms, sample.value)
        if len(cache) > 2 * (len(seen) + len(explicit)) + 1000:
            cache.clear()  # series churn: don't keep what the target no longer exposes
        kept = len(seen) + len(explicit)
        if target.sample_limit and kept > target.sample_limit:
            return scraped, kept, f"sample limit exceeded: {kept} > {target.sample_limit}"
        return scraped, kept, ""

    def _send_metadata(self, state: _TargetState, families: Iterable[Metric]) -> None:
        if self._metadata_sink is None:
            return
        changed = []
        as_exposed = getattr(state.target.collector, "exposes_family_names", False)
        for family in families:
            name = family.name if as_exposed else _metadata_name(family)
            meta = MetricMetadata(name, family.type, family.documentation, family.unit)
            if state.metadata.get(meta.metric) != meta:
                state.metadata[meta.metric] = meta
                changed.append(meta)
        if changed:
            try:
                self._metadata_sink(changed)
            except Exception:
                logger.exception("storing metric metadata failed")

    def _emit(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        try:
            self._sink(table)
        except Exception:
            self.sink_failures += 1
            logger.exception("storing %d samples failed", table.num_rows)

    # -- the loops --------------------------------------------------------------------

    async def run(self) -> None:
        """Scrape every target on its interval until cancelled.

        Each target starts at an offset within its interval derived from its
        identity (Prometheus's spreading), so a restart keeps the phase and
        many targets don't all fire at once. Target list changes
        (:meth:`set_targets`) start and stop loops within a second.
        """
        loop = asyncio.get_running_loop()
        running: dict[tuple[Any, ...], asyncio.Task[None]] = {}
        try:
            while True:
                version = self._version
                with self._lock:
                    current = set(self._states)
                for key in [k for k in running if k not in current]:
                    running.pop(key).cancel()
                for key in current:
                    if key not in running:
                        running[key] = loop.create_task(self._loop(key))
                while self._version == version:
                    await asyncio.sleep(0.2)
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _loop(self, key: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        state = self._states.get(key)
        if state is None:
            return
        interval = max(state.target.interval, 0.001)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
        offset = int.from_bytes(digest, "little") % max(int(interval * 1000), 1) / 1000
        now = self._clock()
        next_at = math.floor(now / interval) * interval + offset
        if next_at < now:
            next_at += interval
        while True:
            await asyncio.sleep(max(0.0, next_at - self._clock()))
            state = self._states.get(key)
            if state is None:
                return
            target = state.target
            try:
                await loop.run_in_executor(None, self.scrape_once, target)
            except Exception:
                logger.exception("scrape of %s %s failed", target.job, target.instance)
            interval = max(target.interval, 0.001)
            next_at += interval
            behind = self._clock() - next_at
            if behind > 0:  # skip missed slots rather than scrape in a burst
                next_at += math.ceil(behind / interval) * interval

    def close(self) -> None:
        """Stop the worker threads and close collectors that hold connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            states = list(self._states.values())
        for state in states:
            _close(state.target.collector)


def _same_settings(a: Target, b: Target) -> bool:
    """Everything but the collector object is the same."""
    return (
        a.interval,
        a.timeout,
        a.honor_labels,
        a.honor_timestamps,
        a.sample_limit,
        repr(a.metric_relabel_configs),
        a.discovered_labels,
        type(a.collector),
    ) == (
        b.interval,
        b.timeout,
        b.honor_labels,
        b.honor_timestamps,
        b.sample_limit,
        repr(b.metric_relabel_configs),
        b.discovered_labels,
        type(b.collector),
    )


def _with_name(labels: dict[str, str], name: str) -> Labels:
    return tuple(sorted([(NAME_LABEL, name), *((k, v) for k, v in labels.items() if v)]))


def _target_labelled(name: str, scraped: dict[str, str], target: Target) -> dict[str, str]:
    """Scraped labels merged with the target's (Prometheus ``mutateSampleLabels``)."""
    labels = dict(scraped)
    labels[NAME_LABEL] = name
    for key, value in target.labels.items():
        if key in labels and labels[key] != "":
            if target.honor_labels:
                continue
            exported = "exported_" + key
            while exported in labels and labels[exported] != "":
                exported = "exported_" + exported
            labels[exported] = labels[key]
        labels[key] = value
    return labels


def _relabeller(configs: Sequence[Any]) -> Callable[[dict[str, str]], dict[str, str] | None] | None:
    if not configs:
        return None
    from tinct.collectors.relabel import relabel

    return lambda labels: relabel(labels, configs)


def _timestamp_ms(ts: Any) -> int:
    """Milliseconds as Prometheus computes them: ``int64(float64(ts) * 1000)``
    (openmetricsparse.go), truncating. prometheus_client gives float seconds
    or, for OpenMetrics, a Timestamp (sec, nsec)."""
    if hasattr(ts, "sec"):
        # The decimal as written, parsed to the nearest float64 as Go does.
        return int(float(f"{int(ts.sec)}.{int(ts.nsec):09d}") * 1000)
    return int(float(ts) * 1000)


def _metadata_name(family: Metric) -> str:
    """The family name Prometheus's metadata API would report for a built-in
    collector's family, were it exposed in the text format.

    prometheus_client drops ``_total`` from a counter family's name; the text
    format's ``# TYPE`` line (which Prometheus reports) carries it.
    """
    if family.type == "counter" and any(s.name == family.name + "_total" for s in family.samples):
        return family.name + "_total"
    return family.name


def _close(collector: Any) -> None:
    close = getattr(collector, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            logger.exception("closing a collector failed")
