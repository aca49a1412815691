"""One-call setup of the OpenTelemetry SDK for an app that tinct traces.

``tinct.tracing.setup(service_name="orders")`` builds what an app would
otherwise wire by hand — resource, tracer provider with tinct's dye sampler
and processors, OTLP/HTTP protobuf exporters, the dye propagator, the dye
rules poller — and returns a :class:`Tracing` handle to flush and shut it all
down. The app keeps using the plain OpenTelemetry API
(``trace.get_tracer(__name__)``); tinct's pieces sit behind the SDK's
``Sampler``, ``SpanProcessor`` and ``SpanExporter`` interfaces.

Settings come from the arguments, else the environment, else the defaults
(STYLE.md, 9); each environment variable is read once, through
:func:`_setting`, and a bad value raises :class:`~tinct.errors.ConfigError`
naming the argument or variable and the limit. The standard variables follow
the OpenTelemetry SDK environment variable specification
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):

========================================  =========================================
``OTEL_SERVICE_NAME``                     ``service.name`` (``service_name`` wins)
``OTEL_RESOURCE_ATTRIBUTES``              more resource attributes
                                          (``resource_attributes`` wins per key)
``OTEL_EXPORTER_OTLP_ENDPOINT``           base URL; ``/v1/traces``, ``/v1/metrics``
                                          appended (``endpoint`` wins)
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``    the full traces URL, used as is
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``   the full metrics URL, used as is
``OTEL_EXPORTER_OTLP_HEADERS`` etc.       read by the OTLP exporters themselves
``TINCT_SAMPLING_PROBABILITY``            share of roots sampled, 0..1 (1/1024)
``TINCT_SAMPLING_ADAPTIVE_PER_SECOND``    sampled roots per second per span name
``TINCT_SERVER``                          tinct's main port, polled for dye rules
``TINCT_DYE_RULES_INTERVAL``              seconds between rule polls (10)
``OTEL_METRIC_EXPORT_INTERVAL``           milliseconds between metric exports
========================================  =========================================

``OTEL_TRACES_SAMPLER`` is not read: tinct's dye sampler is the point of this
setup (pass ``sampling_probability=1`` to record everything).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry import metrics as otel_metrics
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.util.types import AttributeValue

from tinct.errors import ConfigError
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher
from tinct.tracing.exporter import OtlpHttpSpanExporter, TinctSpanProcessor
from tinct.tracing.logging import instrument_logging, uninstrument_logging
from tinct.tracing.processors import DyeSpanProcessor
from tinct.tracing.propagator import DyePropagator
from tinct.tracing.rules import DEFAULT_POLL_INTERVAL_SECONDS, DyeRulesPoller
from tinct.tracing.sampler import DEFAULT_PROBABILITY, DyeSampler

__all__ = ["DEFAULT_ENDPOINT", "Tracing", "setup"]

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://127.0.0.1:4318"  # tinct's OTLP/HTTP port on this host
_DEFAULT_METRIC_INTERVAL_SECONDS = 60.0  # OTEL_METRIC_EXPORT_INTERVAL's default

_T = TypeVar("_T")


def _setting(
    explicit: _T | None,
    arg: str,
    env: str,
    parse: Callable[[str], _T],
    default: _T,
) -> _T:
    """``explicit`` when given, else the parsed environment variable ``env``, else ``default``.

    An explicit value is checked with the same parser as the variable. An
    empty variable counts as unset (as in tinct.config). ``parse`` raises
    ValueError with the reason; the error names the argument or the variable.
    """
    if explicit is not None:
        try:
            parse(str(explicit))
        except ValueError as exc:
            raise ConfigError(f"{arg}={explicit!r}: {exc}") from None
        return explicit
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{env}={raw!r}: {exc}") from None


def _probability(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number (a probability within 0..1, e.g. 0.001)") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("not within 0..1")
    return value


def _positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number (must be > 0)") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("must be a finite number > 0")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("not an http:// or https:// URL")
    return raw


@dataclass
class Tracing:
    """What :func:`setup` built; keep it to flush and shut down at exit.

    Attributes:
        tracer_provider: the SDK tracer provider (global when ``set_global``).
        meter_provider: the SDK meter provider; it exports only with ``metrics=True``.
        sampler: the dye sampler deciding every span.
        matcher: the dye rules in force; ``matcher.replace_rules`` changes them.
        poller: polls tinct for dye rules, when a rules server is configured.
        log_handler: the dye-aware ``logging`` handler, with ``logs=True``.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    sampler: DyeSampler
    matcher: StaticDyeMatcher
    poller: DyeRulesPoller | None = None
    log_handler: logging.Handler | None = None
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _closed: bool = field(default=False, init=False, repr=False, compare=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span (and metrics, when exported) now; blocks.

        Returns:
            True when everything was exported within ``timeout_millis``.
        """
        spans = self.tracer_provider.force_flush(timeout_millis)
        measures = self.meter_provider.force_flush(timeout_millis)
        return bool(spans) and bool(measures)

    def shutdown(self) -> None:
        """Stop polling, flush and shut the providers down; blocks. Idempotent.

        Spans ended before this call are exported; spans started afterwards are
        not recorded.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.poller is not None:
            self.poller.stop()
        if self.log_handler is not None:
            uninstrument_logging()  # flushes the log exporter
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    sampling_probability: float | None = None,
    adaptive_per_second: float | None = None,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    rules_server: str | None = None,
    rules_interval: float | None = None,
    dye_rules: Iterable[DyeRule] = (),
    set_global: bool = True,
    span_exporter: SpanExporter | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    metrics: bool = True,
    metric_export_interval: float | None = None,
    logs: bool = False,
) -> Tracing:
    """Configure the OpenTelemetry SDK for tinct and return the handle.

    Args:
        service_name: ``service.name``; else ``OTEL_SERVICE_NAME``, else the
            one in ``OTEL_RESOURCE_ATTRIBUTES``, else ``unknown_service``.
        endpoint: the OTLP/HTTP base URL (``/v1/traces`` is appended); else
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is) or
            ``OTEL_EXPORTER_OTLP_ENDPOINT``; default ``http://127.0.0.1:4318``.
        sampling_probability: share of roots sampled, 0..1; else
            ``TINCT_SAMPLING_PROBABILITY``; default 1/1024. Dyed requests are
            recorded whatever it is.
        adaptive_per_second: aim at this many sampled roots per second per
            span name instead; else ``TINCT_SAMPLING_ADAPTIVE_PER_SECOND``.
        resource_attributes: more resource attributes; they win over
            ``OTEL_RESOURCE_ATTRIBUTES`` key by key.
        rules_server: tinct's main port (``http://host:3000``) to poll for dye
            rules; else ``TINCT_SERVER``; none: only ``dye_rules`` apply.
        rules_interval: seconds between rule polls; else
            ``TINCT_DYE_RULES_INTERVAL``; default 10.
        dye_rules: rules in force from the start (replaced by the first poll).
        set_global: make the providers and ``DyePropagator`` OpenTelemetry's
            globals, as instrumentation libraries expect. The global tracer
            provider can be set once per process: if one is already set a
            warning is logged and the handle's providers stay local. With
            ``set_global=False``, pass ``tracer_provider`` and
            ``meter_provider`` from the handle to the middleware and
            :func:`instrument_clients`.
        span_exporter: export spans through this one instead of tinct's
            OTLP/HTTP protobuf exporter, e.g. an in-memory exporter in tests;
            either way tinct's batching processor feeds it.
        span_processors: more processors, after tinct's.
        metrics: export metrics by OTLP/HTTP to ``<endpoint>/v1/metrics``
            (else ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``), where tinct turns
            the RED histograms ``http.server.request.duration`` and
            ``http.client.request.duration`` (tinct.tracing.red) into the
            service and interface layers. ``False`` keeps them in the process.
        logs: export ``logging`` records by OTLP/HTTP to ``<endpoint>/v1/logs``
            (else ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``): records of dyed requests
            at every level, others as the app's loggers are configured
            (tinct.tracing.logging). Off unless asked, since it patches
            ``logging.Logger`` for the whole process.
        metric_export_interval: seconds between metric exports; else
            ``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds); default 60 s.

    Raises:
        ConfigError: a bad argument or environment variable; the message
            names it and the limit.

    Threading: call once, at start-up, before the app serves; it starts the
    exporter's worker thread and, with a rules server, the poller's.
    """
    probability = _setting(
        sampling_probability,
        "sampling_probability",
        "TINCT_SAMPLING_PROBABILITY",
        _probability,
        DEFAULT_PROBABILITY,
    )
    per_second = _setting(
        adaptive_per_second,
        "adaptive_per_second",
        "TINCT_SAMPLING_ADAPTIVE_PER_SECOND",
        _positive,
        None,
    )
    server = _setting(rules_server, "rules_server", "TINCT_SERVER", _url, None)
    interval = _setting(
        rules_interval,
        "rules_interval",
        "TINCT_DYE_RULES_INTERVAL",
        _positive,
        DEFAULT_POLL_INTERVAL_SECONDS,
    )
    base = _setting(endpoint, "endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", _url, DEFAULT_ENDPOINT)
    base = base.rstrip("/")
    # The signal-specific variables are full URLs (spec: "used as-is"), but an
    # explicit endpoint argument still wins over them.
    traces_url = base + "/v1/traces"
    metrics_url = base + "/v1/metrics"
    logs_url = base + "/v1/logs"
    if endpoint is None:
        traces_url = _setting(
            None, "endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", _url, traces_url
        )
        metrics_url = _setting(
            None, "endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", _url, metrics_url
        )
        logs_url = _setting(None, "endpoint", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", _url, logs_url)

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME and
    # lets the attributes given here win.
    attributes: dict[str, AttributeValue] = dict(resource_attributes or {})
    if service_name is not None:
        if not service_name.strip():
            raise ConfigError("service_name must not be empty")
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)

    matcher = StaticDyeMatcher(dye_rules)
    sampler = DyeSampler(probability, adaptive_per_second=per_second, rules=matcher)
    tracer_provider = TracerProvider(resource=resource, sampler=sampler)
    tracer_provider.add_span_processor(DyeSpanProcessor())
    if span_exporter is None:
        # tinct's own exporter encodes OTLP protobuf about ten times cheaper
        # than the SDK's (bench/spans.py), behind the same SpanExporter interface.
        span_exporter = OtlpHttpSpanExporter(traces_url, url_as_is=True)
    tracer_provider.add_span_processor(TinctSpanProcessor(span_exporter))
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)

    # OTEL_METRIC_EXPORT_INTERVAL is in milliseconds, the argument in seconds.
    export_seconds = _setting(
        metric_export_interval,
        "metric_export_interval",
        "OTEL_METRIC_EXPORT_INTERVAL",
        lambda raw: _positive(raw) / 1000,
        _DEFAULT_METRIC_INTERVAL_SECONDS,
    )
    readers = []
    if metrics:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=metrics_url),
                export_interval_millis=export_seconds * 1000,
            )
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    poller = None
    if server is not None:
        service = resource.attributes.get(SERVICE_NAME)
        poller = DyeRulesPoller(
            server,
            matcher.replace_rules,
            service=str(service) if service and service != "unknown_service" else None,
            interval=interval,
        )

    log_handler = None
    if logs:
        log_handler = instrument_logging(
            endpoint=logs_url, resource_attributes=dict(resource.attributes)
        )
    if set_global:
        _set_globals(tracer_provider, meter_provider)
    if poller is not None:
        poller.start()
    return Tracing(tracer_provider, meter_provider, sampler, matcher, poller, log_handler)


def _set_globals(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    propagate.set_global_textmap(DyePropagator())
    # OpenTelemetry sets each global provider once per process and ignores
    # later calls (after its own warning): say what that means here.
    trace.set_tracer_provider(tracer_provider)
    if trace.get_tracer_provider() is not tracer_provider:
        logger.warning(
            "a global OpenTelemetry tracer provider was already set in this process; "
            "tinct's is not global, so instrumentation using the global one is not "
            "sampled or exported by it (pass the handle's tracer_provider explicitly)"
        )
    otel_metrics.set_meter_provider(meter_provider)
    if otel_metrics.get_meter_provider() is not meter_provider:
        logger.warning(
            "a global OpenTelemetry meter provider was already set in this process; "
            "tinct's meter provider is not global"
        )
