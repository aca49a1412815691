"""The ``alerting.layer_rules`` switch and the ``slos`` section, parsed.

Split from :mod:`tinct.alerting.layer_rules` (which generates the rules) so
each reads on its own; errors name the field first, as the rest of tinct's
config does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tinct.collectors.layers import BUCKETS
from tinct.durations import format_duration, parse_duration
from tinct.errors import ConfigError
from tinct.standard import Layer

from .layer_rules import _RATIOS, DEFAULT_FOR, DEFAULT_THRESHOLDS, LayerRuleOptions, Slo

__all__ = ["parse_layer_rules_config"]


def parse_layer_rules_config(doc: Mapping[str, Any]) -> LayerRuleOptions | None:
    """The options the config file's ``alerting.layer_rules`` and ``slos`` ask for.

    Args:
        doc: the whole config file, as loaded from YAML.

    Returns:
        None when ``alerting.layer_rules`` is absent, null or false.

    Raises:
        ConfigError: a value is invalid; the message names its field
            (``alerting.layer_rules.thresholds.host_cpu``, ``slos[0].objective``).
    """
    alerting = doc.get("alerting")
    if alerting is None:
        return None
    if not isinstance(alerting, Mapping):
        raise ConfigError("alerting: must be a mapping")
    raw = alerting.get("layer_rules")
    where = "alerting.layer_rules"
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be true, false or a mapping, got {raw!r}")
    known = ("layers", "window", "thresholds", "for")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    options = LayerRuleOptions(
        layers=_layers(raw.get("layers"), f"{where}.layers"),
        window=_duration(raw.get("window", "5m"), f"{where}.window", positive=True),
        thresholds=_thresholds(raw.get("thresholds"), f"{where}.thresholds"),
        for_s=_fors(raw.get("for"), f"{where}.for"),
        slos=_slos(doc.get("slos")),
    )
    return options


def _layers(raw: Any, where: str) -> frozenset[Layer]:
    if raw is None:
        return frozenset(Layer)
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of layers")
    names = ", ".join(layer.value for layer in Layer)
    found = set()
    for i, item in enumerate(raw):
        try:
            found.add(Layer(item))
        except ValueError:
            raise ConfigError(f"{where}[{i}]: {item!r} is not a layer ({names})") from None
    return frozenset(found)


def _mapping(raw: Any, where: str, known: Mapping[str, float]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    return dict(raw)


def _thresholds(raw: Any, where: str) -> dict[str, float]:
    values = dict(DEFAULT_THRESHOLDS)
    for key, value in _mapping(raw, where, DEFAULT_THRESHOLDS).items():
        number = _float(value, f"{where}.{key}")
        if key in _RATIOS and not 0 < number <= 1:
            raise ConfigError(f"{where}.{key}: {value!r} is not a ratio in (0, 1], e.g. 0.9")
        if number <= 0:
            raise ConfigError(f"{where}.{key}: {value!r} must be > 0")
        values[key] = number
    return values


def _fors(raw: Any, where: str) -> dict[str, float]:
    values = dict(DEFAULT_FOR)
    for key, value in _mapping(raw, where, DEFAULT_FOR).items():
        values[key] = _duration(value, f"{where}.{key}")
    return values


def _float(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigError(f"{where}: {raw!r} is not a number")
    try:
        number = float(raw)
    except ValueError:
        raise ConfigError(f"{where}: {raw!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {raw!r} is not a finite number")
    return number


def _duration(raw: Any, where: str, positive: bool = False) -> float:
    """A Prometheus duration (``5m``); a bare number of seconds is accepted too."""
    if isinstance(raw, bool):
        raise ConfigError(f"{where}: {raw!r} is not a duration (e.g. 30s, 5m)")
    try:
        seconds = float(raw) if isinstance(raw, int | float) else parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise ConfigError(f"{where}: {raw!r} must be a duration {'>' if positive else '>='} 0")
    if round(seconds * 1000) != seconds * 1000:
        raise ConfigError(f"{where}: {raw!r} is finer than a millisecond")
    return seconds


def _slos(raw: Any) -> tuple[Slo, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("slos: must be a list of objectives")
    slos = [_slo(item, f"slos[{i}]") for i, item in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, slo in enumerate(slos):
        if slo.name in seen:
            raise ConfigError(
                f"slos[{i}].name: {slo.name!r} is also slos[{seen[slo.name]}]'s; "
                "give one of them another name"
            )
        seen[slo.name] = i
    return tuple(slos)


def _slo(raw: Any, where: str) -> Slo:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with service and objective")
    known = ("name", "service", "interface", "objective", "latency_threshold_seconds")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    service = _label_value(raw.get("service"), f"{where}.service")
    if service is None:
        raise ConfigError(f"{where}.service: missing (the service the objective is for)")
    interface = _label_value(raw.get("interface"), f"{where}.interface")
    if "objective" not in raw:
        raise ConfigError(f"{where}.objective: missing (the good share, e.g. 0.999)")
    objective = _float(raw["objective"], f"{where}.objective")
    if not 0 < objective < 1:
        hint = f" (did you mean {objective / 100:g}?)" if 1 < objective < 100 else ""
        raise ConfigError(
            f"{where}.objective: {raw['objective']!r} is not a ratio in (0, 1), e.g. 0.999{hint}"
        )
    threshold: float | None = None
    if raw.get("latency_threshold_seconds") is not None:
        field_ = f"{where}.latency_threshold_seconds"
        threshold = _float(raw["latency_threshold_seconds"], field_)
        if threshold not in BUCKETS:
            bounds = ", ".join(f"{b:g}" for b in BUCKETS)
            raise ConfigError(
                f"{field_}: {threshold:g} is not a bucket bound of the request "
                f"histograms ({bounds})"
            )
    name = _label_value(raw.get("name"), f"{where}.name")
    if name is None:
        parts = [service, *([interface] if interface else [])]
        kind = "availability" if threshold is None else f"latency {format_duration(threshold)}"
        name = " ".join((*parts, kind))
    return Slo(service, objective, interface, threshold, name)


def _label_value(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{where}: {raw!r} is not a non-empty string")
    return raw
