"""Pure figure functions for the dashboards: panel data in, plotly figures out.

Each panel kind of Grafana's dashboard JSON has a module here, a pure
function of the query results (:class:`~tinct.dashboards.frames.SeriesData`)
and the panel's field config (:class:`~tinct.dashboards.frames.FieldConfig`):
no Dash callbacks, no I/O, deterministic, so they are unit-tested without a
browser. ``units`` formats values exactly as Grafana does, ``colors`` resolves
Grafana's color names and thresholds, ``reduce`` holds Grafana's reducers.
Safe to call from any thread.
"""

from .bargauge import bargauge_figure
from .colors import (
    CLASSIC_PALETTE,
    FALLBACK_COLOR,
    grafana_color,
    series_color,
    threshold_color,
    threshold_steps,
    with_alpha,
)
from .gauge import gauge_figure
from .heatmap import bucket_counts, heatmap_figure
from .reduce import REDUCERS, reduce_value
from .stat import stat_figure
from .table import NUMERIC_SUFFIX, table_data
from .theme import empty_figure
from .timeseries import Annotation, timeseries_figure
from .units import FormattedValue, axis_ticks, format_parts, format_value, value_scale

__all__ = [
    "Annotation",
    "CLASSIC_PALETTE",
    "FALLBACK_COLOR",
    "FormattedValue",
    "NUMERIC_SUFFIX",
    "REDUCERS",
    "axis_ticks",
    "bargauge_figure",
    "bucket_counts",
    "empty_figure",
    "format_parts",
    "format_value",
    "gauge_figure",
    "grafana_color",
    "heatmap_figure",
    "reduce_value",
    "series_color",
    "stat_figure",
    "table_data",
    "threshold_color",
    "threshold_steps",
    "timeseries_figure",
    "value_scale",
    "with_alpha",
]
