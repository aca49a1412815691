"""The data a panel draws, between the query layer and the figures.

Queries (PromQL through tinct's Prometheus API) come back as
:class:`SeriesData`, one per series, already named by the target's
``legendFormat``; a panel's display settings from Grafana's dashboard JSON
(``fieldConfig.defaults``: unit, min, max, decimals, thresholds) are a
:class:`FieldConfig`. Figures (``tinct.dashboards.figures``) are pure
functions of the two, so they are unit-tested without a browser or a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["SeriesData", "Threshold", "FieldConfig", "DEFAULT_THRESHOLDS"]


@dataclass(frozen=True)
class SeriesData:
    """One series of a query result.

    Attributes:
        name: the legend (``legendFormat`` applied, or the series' labels).
        labels: the series' labels (``__name__`` included when present).
        times: sample times, Unix seconds, ascending.
        values: sample values (NaN where the series has no value).
        ref_id: the target it came from (``A``, ``B``...).
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    times: Sequence[float] = ()
    values: Sequence[float] = ()
    ref_id: str = "A"

    @property
    def last(self) -> float | None:
        """The last non-NaN value, None when there is none."""
        for v in reversed(self.values):
            if v == v:
                return v
        return None


@dataclass(frozen=True)
class Threshold:
    """A step of Grafana's thresholds: from ``value`` up (None: the base step)."""

    value: float | None
    color: str


# Grafana's default: green, red from 80.
DEFAULT_THRESHOLDS = (Threshold(None, "green"), Threshold(80.0, "red"))


@dataclass(frozen=True)
class FieldConfig:
    """Grafana's ``fieldConfig.defaults``, the part tinct draws.

    Attributes:
        unit: Grafana's unit id (``bytes``, ``percent``, ``percentunit``,
            ``s``, ``ms``, ``reqps``, ``short``...); "" for none.
        min, max: axis or gauge bounds; None for automatic.
        decimals: digits after the point; None for automatic.
        thresholds: ascending steps; the first has value None.
        thresholds_mode: ``absolute`` or ``percentage`` (of min..max).
        color_mode: ``fieldConfig.defaults.color.mode`` (``thresholds``,
            ``palette-classic``, ``fixed``...).
        fixed_color: the color of ``fixed`` mode.
        no_value: text shown when there is no data.
    """

    unit: str = ""
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    thresholds_mode: str = "absolute"
    color_mode: str = "palette-classic"
    fixed_color: str = ""
    no_value: str = "No data"
