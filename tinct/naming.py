"""OpenTelemetry metric names to Prometheus names, by OpenTelemetry's rules.

The rules are the specification's "Prometheus and OpenMetrics
Compatibility" (metrics data model, "Metric Metadata"), as the Collector's
``pkg/translator/prometheus`` applies them:

* characters outside ``[a-zA-Z0-9_:]`` become ``_``, runs of ``_`` collapse;
* the UCUM unit becomes a word suffix (``s`` → ``seconds``, ``By`` →
  ``bytes``, ``By/s`` → ``bytes_per_second``); units in braces
  (``{packet}``) are annotations and add nothing; the suffix is not
  repeated when the name already has it;
* the unit ``1`` of a gauge becomes ``ratio``;
* a monotonic sum (a counter) ends in ``_total``.

So ``http.server.request.duration`` in ``s`` becomes
``http_server_request_duration_seconds`` and ``system.cpu.time`` (a
counter in ``s``) ``system_cpu_time_seconds_total``.
"""

from __future__ import annotations

import re

__all__ = ["prometheus_name", "prometheus_unit"]

_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def _clean(text: str) -> str:
    return _UNDERSCORES.sub("_", _INVALID.sub("_", text)).strip("_")


def prometheus_unit(unit: str, *, gauge: bool = False) -> str:
    """The Prometheus word for a UCUM ``unit``; "" when it adds no suffix."""
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if gauge else ""
    main, _, per = unit.partition("/")
    words = _UNITS.get(main, main) if main else ""
    if per:
        per_word = _PER_UNITS.get(per, per)
        words = f"{words}_per_{per_word}" if words else f"per_{per_word}"
    return _clean(words)


def prometheus_name(
    name: str, unit: str = "", *, counter: bool = False, gauge: bool = False
) -> str:
    """The Prometheus name of an OpenTelemetry metric.

    Args:
        name: the OpenTelemetry name (``system.cpu.time``).
        unit: its UCUM unit (``s``, ``By``, ``1``, ``{packet}``).
        counter: a monotonic sum (gets ``_total``).
        gauge: a gauge (the unit ``1`` becomes ``ratio``).
    """
    base = _clean(name)
    suffix = prometheus_unit(unit, gauge=gauge)
    words = base.split("_")
    if counter and words[-1] == "total":
        base, words = "_".join(words[:-1]), words[:-1]
    if suffix and not base.endswith("_" + suffix) and suffix not in words:
        base = f"{base}_{suffix}"
    if counter:
        base += "_total"
    return base
