"""The one interface every collector implements, and what the scheduler runs.

A :class:`Collector` has one method, ``collect()``, in the style of
prometheus_client's custom collectors: it returns the metric families it
measured, as ``prometheus_client.Metric`` objects (the same objects
prometheus_client's exposition parsers return, so a scraped target and a
built-in collector look alike to everything downstream). It raises
:class:`CollectError` when it could not measure; the scheduler then sets the
target's ``up`` to 0 (and the collector's own ``<component>_up`` when it has
one, as the standard exporters do), counts the error and carries on.

A :class:`Target` is one thing the scheduler collects on a schedule: a
collector, the labels every series of it gets (``job``, ``instance``,
``layer``, the entity labels and any configured ones), its interval and
timeout, and the Prometheus scrape options that apply to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import Metric

from tinct.errors import CollectError

__all__ = ["Collector", "CollectError", "Target", "target_key"]


@runtime_checkable
class Collector(Protocol):
    """Measures something and returns metric families.

    ``collect`` blocks (network I/O bounded by the collector's own timeout)
    and runs in a worker thread; a collector is only ever called by one
    thread at a time. A collector may set the attribute ``up_metric`` (e.g.
    ``"redis_up"``) to the family the scheduler sets to 0 when it fails.
    """

    def collect(self) -> Iterable[Metric]:
        """This collection's families. Raises CollectError on failure."""
        ...


@dataclass
class Target:
    """One scheduled collection.

    Attributes:
        job: the scrape pool (Prometheus ``job_name``).
        labels: target labels added to every series: ``job``, ``instance``
            and the configured ones (``layer`` and entity labels for tinct's
            own collectors), already relabelled; no ``__`` labels.
        collector: what measures.
        interval: seconds between collections.
        timeout: seconds one collection may take.
        scrape_url: the URL scraped ("" for built-in collectors), for
            ``/api/v1/targets``.
        discovered_labels: the labels before relabelling, for the API.
        honor_labels: on a clash keep the scraped label (True) or rename it
            ``exported_<name>`` and keep the target's (False, the default).
        honor_timestamps: use timestamps the target exposes.
        metric_relabel_configs: ``tinct.collectors.relabel.RelabelConfig``
            applied to every scraped series.
        sample_limit: fail the scrape past this many samples; 0 for none.
    """

    job: str
    labels: dict[str, str]
    collector: Collector
    interval: float = 15.0
    timeout: float = 10.0
    scrape_url: str = ""
    discovered_labels: dict[str, str] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    metric_relabel_configs: tuple[Any, ...] = ()
    sample_limit: int = 0

    @property
    def instance(self) -> str:
        return self.labels.get("instance", "")


def target_key(job: str, labels: Mapping[str, str], scrape_url: str = "") -> tuple[Any, ...]:
    """Identity of a target across config reloads (job, labels and URL)."""
    return (job, scrape_url, tuple(sorted(labels.items())))
