"""OpenTelemetry attributes and resources as Prometheus labels.

OTLP metric points carry attributes with any key and typed values; a
Prometheus series has label names matching ``[a-zA-Z_][a-zA-Z0-9_]*`` and
string values. The rules are the specification's "Prometheus and OpenMetrics
Compatibility" ("OTLP Metric points to Prometheus": "Metric Attributes" and
"Resource Attributes"), applied the way Prometheus's OTLP receiver and the
Collector's ``pkg/translator/prometheus`` (``NormalizeLabel``) apply them:

* each character outside ``[a-zA-Z0-9_]`` becomes ``_`` (one per character;
  runs are not collapsed, so ``a..b`` stays ``a__b`` as Prometheus stores it);
* a name starting with a digit gets ``key_`` in front, one starting with a
  single ``_`` gets ``key``; names starting with ``__`` are Prometheus's
  reserved ones and are kept (labels tinct sets itself, ``__name__`` among
  them, always win over them); a key that is empty or only underscores has
  no label name at all;
* keys that end up the same are one label whose values are joined with
  ``;`` in the lexicographic order of the original keys;
* values: strings as they are, others in the attribute specification's
  string form ("AnyValue representation for non-OTLP protocols");
* the resource becomes ``job`` (``service.namespace/service.name``, or
  ``service.name``) and ``instance`` (``service.instance.id``) on every
  series, and its other attributes the labels of one ``target_info`` series.

Float label values (``le``, ``quantile``) are written as Go's
``strconv.FormatFloat(v, 'f', -1, 64)``, which is what both translators
write: ``0.005``, ``1``, ``+Inf``.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = [
    "JOB",
    "INSTANCE",
    "attribute_labels",
    "any_value_string",
    "format_float",
    "label_name",
    "resource_labels",
]

JOB = "job"
INSTANCE = "instance"
_SERVICE_NAME = "service.name"
_SERVICE_NAMESPACE = "service.namespace"
_SERVICE_INSTANCE = "service.instance.id"
_TARGET_EXCLUDED = frozenset((_SERVICE_NAME, _SERVICE_NAMESPACE, _SERVICE_INSTANCE))
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


@functools.lru_cache(maxsize=8192)
def label_name(key: str) -> str:
    """The Prometheus label name of attribute ``key``; "" when it has none.

    ``http.request.method`` → ``http_request_method``, ``2xx`` → ``key_2xx``,
    ``_private`` → ``key_private``, ``__meta`` stays ``__meta``.
    """
    name = _INVALID.sub("_", key)
    if not name.strip("_"):
        return ""  # Prometheus refuses names that are empty or only underscores
    if name[0].isdigit():
        return "key_" + name
    if name[0] == "_" and not name.startswith("__"):
        return "key" + name
    return name


def format_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(value, 'f', -1, 64)`` writes it,
    with Prometheus's ``+Inf``/``-Inf``/``NaN``: the shortest digits that
    round-trip, never an exponent (``1e-05`` → ``0.00001``, ``1.0`` → ``1``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _number(value: float) -> str:
    """A double as JSON numbers are written by Go (ECMAScript's number to
    string): fixed notation, an exponent only below 1e-6 or from 1e21 on
    (``1.0`` → ``1``, ``1e-07`` → ``1e-7``); the non-finite ones as their
    names (``NaN``, ``Infinity``, ``-Infinity``)."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    size = abs(value)
    if size and (size < 1e-6 or size >= 1e21):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value))
    return format_float(value)


def _json(value: AnyValue) -> str:
    """``value`` as compact JSON (map keys sorted), for arrays and maps."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return json.dumps(value.string_value, ensure_ascii=False)
    if which == "double_value":
        text = _number(value.double_value)
        return text if math.isfinite(value.double_value) else f'"{text}"'
    if which == "array_value":
        return "[" + ",".join(_json(v) for v in value.array_value.values) + "]"
    if which == "kvlist_value":
        items = {kv.key: kv.value for kv in value.kvlist_value.values}
        parts = (f"{json.dumps(k, ensure_ascii=False)}:{_json(items[k])}" for k in sorted(items))
        return "{" + ",".join(parts) + "}"
    if which == "bytes_value":
        return json.dumps(any_value_string(value))
    if which in ("bool_value", "int_value"):
        return any_value_string(value)
    return "null"


def any_value_string(value: AnyValue) -> str:
    """An attribute value as a label value, as the Collector's ``AsString``
    writes it.

    Strings as they are; booleans ``true``/``false``; integers in decimal;
    doubles as JSON numbers (``1``, ``0.25``, ``1e+21``; ``NaN``,
    ``Infinity``, ``-Infinity``); bytes in base64; arrays and maps as
    compact JSON; an empty value as "" (which Prometheus treats as no label).
    """
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return _number(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which in ("array_value", "kvlist_value"):
        return _json(value)
    return ""


def attribute_labels(attributes: Iterable[KeyValue]) -> tuple[dict[str, str], str]:
    """``(labels, problem)``: the labels of an attribute list.

    ``problem`` names the first key that has no label name ("" when none);
    the caller decides whether that refuses the point.
    """
    pairs = sorted((kv.key, any_value_string(kv.value)) for kv in attributes)
    labels: dict[str, str] = {}
    problem = ""
    for key, value in pairs:
        name = label_name(key)
        if not name:
            problem = problem or f"attribute key {key!r} has no Prometheus label name"
            continue
        if name in labels:
            # Spec, "Metric Attributes": join in the order of the original keys.
            labels[name] = f"{labels[name]};{value}"
        else:
            labels[name] = value
    return labels, problem


def resource_labels(
    attributes: Iterable[KeyValue],
) -> tuple[dict[str, str], dict[str, str]]:
    """``(target, info)`` of a resource.

    ``target`` holds ``job`` and ``instance`` (only those the resource
    defines), put on every series of the resource; ``info`` the labels of its
    ``target_info`` series (the other attributes, plus ``job`` and
    ``instance``), empty when the resource has no other attributes (the
    Collector then sends no ``target_info``). Attributes whose key has no
    label name are left out of ``info``.
    """
    attrs = list(attributes)
    values: Mapping[str, str] = {kv.key: any_value_string(kv.value) for kv in attrs}
    target: dict[str, str] = {}
    if _SERVICE_NAME in values:
        namespace = values.get(_SERVICE_NAMESPACE, "")
        name = values[_SERVICE_NAME]
        target[JOB] = f"{namespace}/{name}" if namespace else name
    if _SERVICE_INSTANCE in values:
        target[INSTANCE] = values[_SERVICE_INSTANCE]
    rest = [kv for kv in attrs if kv.key not in _TARGET_EXCLUDED]
    if not rest:
        return target, {}
    info, _ = attribute_labels(rest)
    info.update(target)
    return target, info
