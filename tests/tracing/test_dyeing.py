"""dye(), carry_dye() and StaticDyeMatcher's rules."""

from __future__ import annotations

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from tinct.tracing.dye import Dye, get_dye
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher, carry_dye, context_dye, dye
from tinct.tracing.sampler import DyeSampler


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_dye_sets_and_restores_the_context() -> None:
    assert get_dye() is None
    with dye("user:42") as outer:
        assert outer == Dye("user", "42") and get_dye() == outer
        with dye(Dye("tenant", "acme")):
            assert get_dye() == Dye("tenant", "acme")
        assert get_dye() == outer
    assert get_dye() is None


@pytest.mark.parametrize("text", ["", "user", "user:", "User:42", ":42", "x" * 600 + ":1"])
def test_bad_dye_text_names_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="kind:value"):
        with dye(text):
            pass
    assert get_dye() is None


def test_carry_dye_puts_a_rule_dye_in_the_context() -> None:
    matcher = StaticDyeMatcher([DyeRule("r", "user", "", "42")])
    tracer = TracerProvider(sampler=DyeSampler(0.0, rules=matcher)).get_tracer("t")
    attributes = {"enduser.id": "42"}
    with tracer.start_as_current_span("in", kind=SpanKind.SERVER, attributes=attributes) as span:
        with carry_dye(span) as carried:
            assert carried == Dye("user", "42") and get_dye() == carried
        assert get_dye() is None
    with tracer.start_as_current_span("plain") as span, carry_dye(span) as carried:
        assert carried is None and get_dye() is None


def test_rule_kinds_match_their_attributes() -> None:
    matcher = StaticDyeMatcher(
        [
            DyeRule("u", "user", "", "42"),
            DyeRule("t", "tenant", "", "acme"),
            DyeRule("r1", "route", "", "GET /orders/{id}"),
            DyeRule("r2", "route", "", "/health"),
            DyeRule("h", "header", "X-Debug", "on"),
        ]
    )

    def match(**attributes: object) -> str | None:
        attrs = {k.replace("_", "."): v for k, v in attributes.items()}
        found = matcher.match(1, "op", SpanKind.SERVER, attrs)  # type: ignore[arg-type]
        return str(found) if found else None

    assert match(enduser_id="42") == "user:42"
    assert match(enduser_id=42) == "user:42"
    assert match(enduser_id="43") is None
    assert match(tenant_id="acme") == "tenant:acme"
    assert matcher.match(1, "op", SpanKind.SERVER, {"http.route": "/orders/{id}"}) is None
    both = {"http.route": "/orders/{id}", "http.request.method": "GET"}
    assert str(matcher.match(1, "op", SpanKind.SERVER, both)) == "route:GET /orders/{id}"
    old = {"http.route": "/health", "http.method": "POST"}
    assert str(matcher.match(1, "op", SpanKind.SERVER, old)) == "route:/health"
    header = {"http.request.header.x-debug": ("off", "on")}
    assert str(matcher.match(1, "op", SpanKind.SERVER, header)) == "header:x-debug=on"
    assert matcher.match(1, "op", SpanKind.SERVER, None) is None
    assert matcher.match(1, "op", SpanKind.SERVER, {}) is None


def test_expiry_ratio_and_replacement() -> None:
    clock = Clock(1_700_000_000.0)
    matcher = StaticDyeMatcher(
        [DyeRule("u", "user", "", "42", expires_at=clock.now + 10)], clock=clock
    )
    attrs = {"enduser.id": "42"}
    assert matcher.match(1, "op", SpanKind.SERVER, attrs) == Dye("user", "42")
    clock.now += 10
    assert matcher.match(1, "op", SpanKind.SERVER, attrs) is None

    matcher.replace_rules([DyeRule("u2", "user", "", "42", ratio=0.5)])
    assert [r.id for r in matcher.rules] == ["u2"]
    # Decided by the 56 random bits of the trace id: below half the range is dyed.
    assert matcher.match(1, "op", SpanKind.SERVER, attrs) == Dye("user", "42")
    assert matcher.match((1 << 55) + 1, "op", SpanKind.SERVER, attrs) is None
    matcher.replace_rules([])
    assert matcher.match(1, "op", SpanKind.SERVER, attrs) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "ip", "value": "1"}, "kind"),
        ({"kind": "user", "value": ""}, "value"),
        ({"kind": "header", "value": "1"}, "key"),
        ({"kind": "user", "value": "1", "ratio": 1.5}, "ratio"),
        ({"kind": "user", "value": "x" * 600}, "value"),
    ],
)
def test_bad_rules_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args = {"id": "r", "key": "", **kwargs}
    with pytest.raises(ValueError, match=field):
        DyeRule(**args)  # type: ignore[arg-type]


def test_context_dye_reads_what_get_dye_reads() -> None:
    for ctx in (
        Context(),
        baggage.set_baggage("other", "1"),
        baggage.set_baggage("tinct.dye", "user:1"),
        baggage.set_baggage("tinct.dye", "bad"),
    ):
        assert context_dye(ctx) == get_dye(ctx)
    with dye("tenant:t"):
        assert context_dye() == get_dye() == Dye("tenant", "t")
