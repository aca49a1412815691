"""DyeSpanProcessor: every recording span of a dyed request carries ``tinct.dye``."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind

from tinct.tracing.dye import DYE_ATTRIBUTE
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher, dye
from tinct.tracing.processors import DyeSpanProcessor
from tinct.tracing.sampler import DyeSampler


def _setup(sampler: Sampler) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(DyeSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _dye_of(span: Any) -> Any:
    return (span.attributes or {}).get(DYE_ATTRIBUTE)


def test_stamps_the_dye_when_a_plain_otel_sampler_decided() -> None:
    tracer, exporter = _setup(ALWAYS_ON)
    with dye("tenant:acme"):
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("child"):
                pass
    with tracer.start_as_current_span("plain"):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert _dye_of(spans["root"]) == "tenant:acme"
    assert _dye_of(spans["child"]) == "tenant:acme"
    assert _dye_of(spans["plain"]) is None


def test_children_of_a_rule_dyed_entry_span_inherit_its_dye() -> None:
    # The rule dyed the SERVER span, but nobody put the dye in the context yet:
    # the child is sampled through its parent and takes the dye from it.
    matcher = StaticDyeMatcher([DyeRule("r", "route", "", "GET /orders/{id}")])
    tracer, exporter = _setup(DyeSampler(0.0, rules=matcher))
    attributes = {"http.route": "/orders/{id}", "http.request.method": "GET"}
    with tracer.start_as_current_span("GET", kind=SpanKind.SERVER, attributes=attributes):
        with tracer.start_as_current_span("db"):
            pass
    with tracer.start_as_current_span(
        "POST", kind=SpanKind.SERVER, attributes={**attributes, "http.request.method": "POST"}
    ):
        pass
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["GET", "db"]
    assert all(_dye_of(s) == "route:GET /orders/{id}" for s in spans)


def test_is_a_no_op_for_undyed_spans_and_never_raises() -> None:
    processor = DyeSpanProcessor()
    tracer, exporter = _setup(ALWAYS_ON)
    with tracer.start_as_current_span("x"):
        pass
    (span,) = exporter.get_finished_spans()
    assert _dye_of(span) is None
    processor.on_start(object(), None)  # type: ignore[arg-type]  # not a span at all
    processor.on_end(span)
    assert processor.force_flush()
    processor.shutdown()
