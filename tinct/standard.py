"""The data standard: five layers, and what a metric of each must carry.

Every series tinct's own collectors and instrumentation produce carries a
``layer`` label naming one of the :class:`Layer` values and the labels that
name its entity in that layer (:data:`ENTITY_LABELS`): ``host`` for the
infrastructure, ``component`` (its type, e.g. ``redis``) and ``instance``
for components, ``service`` for services, ``service`` and ``interface`` for
interfaces. Because the labels are the same for every application,
dashboards and alert rules are written once per layer, not once per app.

A :class:`MetricSpec` describes one metric family the way Prometheus
exposes it (name, type, unit, help) plus its layer and required labels; the
catalog of them is data, in :mod:`tinct.catalog`. Names follow Prometheus
naming (DESIGN.md, "Metric names"): OpenTelemetry semantic-convention names
translated by OpenTelemetry's Prometheus compatibility rules
(:func:`tinct.naming.prometheus_name`), and the standard exporters' names for
components so existing dashboards and alerts keep working.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "Layer",
    "MetricType",
    "MetricSpec",
    "Catalog",
    "ENTITY_LABELS",
    "LAYER_LABEL",
]

LAYER_LABEL = "layer"


class Layer(enum.StrEnum):
    """Where in an application a metric is observed, from the bottom up."""

    INFRASTRUCTURE = "infrastructure"
    COMPONENT = "component"
    SERVICE = "service"
    INTERFACE = "interface"
    USER = "user"


class MetricType(enum.StrEnum):
    """Prometheus / OpenMetrics metric family types."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    INFO = "info"
    STATESET = "stateset"
    UNKNOWN = "unknown"


# Labels naming the entity a series is about, per layer.
ENTITY_LABELS: dict[Layer, tuple[str, ...]] = {
    Layer.INFRASTRUCTURE: ("host",),
    Layer.COMPONENT: ("component", "instance"),
    Layer.SERVICE: ("service",),
    Layer.INTERFACE: ("service", "interface"),
    Layer.USER: (),
}

# Sample-name suffixes a family of each type exposes (Prometheus text format).
_SUFFIXES: dict[MetricType, tuple[str, ...]] = {
    MetricType.COUNTER: ("_total", "_created", ""),
    MetricType.HISTOGRAM: ("_bucket", "_sum", "_count", "_created"),
    MetricType.SUMMARY: ("_sum", "_count", "_created", ""),
    MetricType.INFO: ("_info",),
}


@dataclass(frozen=True)
class MetricSpec:
    """One metric family of the standard.

    Attributes:
        name: the family name as Prometheus exposes it: a counter's without
            ``_total`` (prometheus_client's convention), a histogram's without
            ``_bucket``/``_sum``/``_count``.
        type: the family type.
        unit: the Prometheus unit the name carries (``seconds``, ``bytes``,
            ``ratio``...), "" for none.
        help: the HELP text.
        layer: the layer every series of it is in; None for families any
            layer has (``up``, the scrape series), which carry their target's.
        labels: labels every series must have besides ``layer`` and the
            layer's entity labels (e.g. ``state`` for CPU time).

    A name ending in ``*`` is a prefix standing for a family of families
    whose members depend on the server (ClickHouse exposes one
    ``ClickHouseMetrics_<name>`` per row of ``system.metrics``).
    """

    name: str
    type: MetricType
    unit: str
    help: str
    layer: Layer | None
    labels: tuple[str, ...] = ()

    @property
    def is_prefix(self) -> bool:
        return self.name.endswith("*")

    def sample_names(self) -> tuple[str, ...]:
        """Every sample name a family of this spec may expose."""
        suffixes = _SUFFIXES.get(self.type, ("",))
        return tuple(self.name + suffix for suffix in suffixes)

    def required_labels(self, layer: Layer | None = None) -> tuple[str, ...]:
        """``layer``, the entity labels and this family's own, in that order.

        ``layer`` is the series' layer, used when the spec has none.
        """
        where = self.layer or layer
        entity = ENTITY_LABELS[where] if where is not None else ()
        return (LAYER_LABEL, *entity, *self.labels)


class Catalog:
    """Metric specs by family and by sample name.

    Args:
        specs: the families; names must be distinct.

    Raises:
        ValueError: two specs share a name, or a name does not carry its unit.
    """

    def __init__(self, specs: Iterable[MetricSpec]) -> None:
        self._specs: dict[str, MetricSpec] = {}
        self._by_sample: dict[str, MetricSpec] = {}
        self._prefixes: list[MetricSpec] = []
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"metric {spec.name!r} is in the catalog twice")
            if spec.unit and f"_{spec.unit}" not in spec.name:
                raise ValueError(f"metric {spec.name!r} does not carry its unit {spec.unit!r}")
            self._specs[spec.name] = spec
            if spec.is_prefix:
                self._prefixes.append(spec)
                continue
            for sample in spec.sample_names():
                self._by_sample.setdefault(sample, spec)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> MetricSpec | None:
        """The family ``name`` (family name, not sample name)."""
        return self._specs.get(name)

    def for_sample(self, sample_name: str) -> MetricSpec | None:
        """The family a sample name (``x_total``, ``x_bucket``...) belongs to."""
        spec = self._by_sample.get(sample_name)
        if spec is None:
            for prefix in self._prefixes:
                if sample_name.startswith(prefix.name[:-1]):
                    return prefix
        return spec

    def by_layer(self, layer: Layer) -> list[MetricSpec]:
        """Families of ``layer`` (not the any-layer ones), in catalog order."""
        return [spec for spec in self._specs.values() if spec.layer is layer]

    def problems(self, sample_name: str, labels: Mapping[str, str]) -> list[str]:
        """What is wrong with one series against the standard; [] when it conforms.

        Checks the family is known, ``layer`` names a layer (the spec's, when
        it has one) and every required label is present and non-empty.
        """
        spec = self.for_sample(sample_name)
        if spec is None:
            return [f"{sample_name}: not in the catalog"]
        found: list[str] = []
        raw_layer = labels.get(LAYER_LABEL, "")
        try:
            layer: Layer | None = Layer(raw_layer)
        except ValueError:
            layer = None
            found.append(f"{sample_name}: layer={raw_layer!r} is not a layer")
        if spec.layer is not None and layer is not None and layer is not spec.layer:
            found.append(f"{sample_name}: layer={raw_layer!r}, the catalog says {spec.layer.value}")
        for label in spec.required_labels(layer):
            if not labels.get(label):
                found.append(f"{sample_name}: missing label {label!r}")
        return found
