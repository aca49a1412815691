"""DyePropagator against W3C Trace Context and Baggage, and OpenTelemetry's own.

The SDK's composite (TraceContextTextMapPropagator + W3CBaggagePropagator) is
the reference for interoperability: tinct replaces it, so whatever either
writes the other must read the same way, and a plain-OpenTelemetry service in
the middle of a call chain must pass the dye on.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tinct.tracing.dye import DYE_KEY, Dye, get_dye, set_dye
from tinct.tracing.propagator import DyePropagator

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"

tinct = DyePropagator()
otel = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
otel_trace = TraceContextTextMapPropagator()


def span_context(ctx: Context) -> SpanContext:
    return trace.get_current_span(ctx).get_span_context()


def dyed(dye: Dye, **entries: str) -> Context:
    """A context with a local span, the dye and other baggage entries."""
    ctx = trace.set_span_in_context(
        trace.NonRecordingSpan(
            SpanContext(
                int(TRACE_ID, 16),
                int(SPAN_ID, 16),
                is_remote=False,
                trace_flags=TraceFlags(3),
                trace_state=TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]),
            )
        )
    )
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return set_dye(dye, ctx)


def injected(propagator: Any, ctx: Context) -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagator.inject(carrier, ctx)
    return carrier


def test_fields() -> None:
    assert tinct.fields == {"traceparent", "tracestate", "baggage"}
    assert tinct.fields == otel.fields


# --- traceparent (W3C Trace Context section 3.2) -----------------------------


@pytest.mark.parametrize(
    ("flags", "sampled"), [("00", False), ("01", True), ("03", True), ("ff", True), ("02", False)]
)
def test_traceparent_flags_are_kept_whole(flags: str, sampled: bool) -> None:
    ctx = tinct.extract({"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-{flags}"})
    sc = span_context(ctx)
    assert sc.is_valid and sc.is_remote
    assert (sc.trace_id, sc.span_id) == (int(TRACE_ID, 16), int(SPAN_ID, 16))
    assert sc.trace_flags == int(flags, 16)
    assert sc.trace_flags.sampled is sampled
    # ... and written back as they came (the SDK writes 03: sampled + random).
    assert injected(tinct, ctx)["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-{flags}"


VALID_TRACEPARENTS = [
    TRACEPARENT,
    f"  {TRACEPARENT}\t",  # optional whitespace around a field value (RFC 9110 5.5)
    f"01-{TRACE_ID}-{SPAN_ID}-01",  # a later version...
    f"01-{TRACE_ID}-{SPAN_ID}-01-what-the-future-holds",  # ...with more fields
    f"cc-{TRACE_ID}-{SPAN_ID}-01-",
    f"fe-{TRACE_ID}-{SPAN_ID}-09",
]

INVALID_TRACEPARENTS = [
    "",
    " ",
    "garbage",
    f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is invalid (3.2.2.1)
    f"00-{TRACE_ID}-{SPAN_ID}-01-extra",  # version 00 is exactly 55 characters
    f"00-{TRACE_ID}-{SPAN_ID}-01x",
    f"01-{TRACE_ID}-{SPAN_ID}-01x",  # later versions: a dash must follow the flags
    f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",  # lowercase hex only
    f"00-{TRACE_ID}-{SPAN_ID.upper()}-01",
    f"00-{TRACE_ID}-{SPAN_ID}-0A",
    f"0A-{TRACE_ID}-{SPAN_ID}-01",
    f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero ids are invalid (3.2.2.3, 3.2.2.4)
    f"00-{TRACE_ID}-{'0' * 16}-01",
    f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",  # wrong lengths
    f"00-{TRACE_ID}0-{SPAN_ID}-01",
    f"00-{TRACE_ID}-{SPAN_ID[:-1]}-01",
    f"00-{TRACE_ID}-{SPAN_ID}-1",
    f"0-{TRACE_ID}-{SPAN_ID}-01",
    f"00-{TRACE_ID}-{SPAN_ID}",  # missing parts
    f"00-{TRACE_ID}",
    f"00{TRACE_ID}{SPAN_ID}01",
    f"00_{TRACE_ID}_{SPAN_ID}_01",
    f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01",  # not hex
    f"00-0x{TRACE_ID[2:]}-{SPAN_ID}-01",  # int(x, 16) would take these
    f"00-{TRACE_ID[:-2]}_1-{SPAN_ID}-01",
    f"00- {TRACE_ID[1:]}-{SPAN_ID}-01",
    f"01-{TRACE_ID}-{SPAN_ID}-01-" + "x" * 500,  # past the SDK's 512-character bound
]


@pytest.mark.parametrize("header", VALID_TRACEPARENTS)
def test_valid_traceparent(header: str) -> None:
    sc = span_context(tinct.extract({"traceparent": header}))
    assert sc.is_valid
    assert sc == span_context(otel_trace.extract({"traceparent": header}))


@pytest.mark.parametrize("header", INVALID_TRACEPARENTS)
def test_invalid_traceparent_starts_a_new_trace_and_ignores_tracestate(header: str) -> None:
    ctx = tinct.extract({"traceparent": header, "tracestate": "rojo=1", "baggage": "k=v"})
    assert not span_context(ctx).is_valid  # no parent: the next span starts a trace
    assert trace.get_current_span(ctx) is trace.INVALID_SPAN
    assert baggage.get_all(ctx) == {"k": "v"}  # baggage does not depend on it
    # the SDK agrees
    assert not span_context(otel_trace.extract({"traceparent": header})).is_valid


def test_a_trailing_newline_is_not_whitespace() -> None:
    # The SDK's regex ends in "$", which also matches before a final "\n"; an
    # HTTP field value cannot hold one (RFC 9110 section 5.5), so tinct refuses.
    assert not span_context(tinct.extract({"traceparent": TRACEPARENT + "\n"})).is_valid


def test_first_of_several_traceparent_headers_wins() -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-00"
    sc = span_context(tinct.extract({"traceparent": [TRACEPARENT, other]}))
    assert f"{sc.trace_id:032x}" == TRACE_ID
    assert not span_context(tinct.extract({"traceparent": ["bad", TRACEPARENT]})).is_valid


def test_invalid_traceparent_keeps_the_span_of_the_given_context() -> None:
    parent = trace.NonRecordingSpan(SpanContext(1, 2, is_remote=False))
    given = trace.set_span_in_context(parent)
    assert trace.get_current_span(tinct.extract({"traceparent": "bad"}, given)) is parent
    assert trace.get_current_span(otel.extract({"traceparent": "bad"}, given)) is parent


def test_no_headers_give_an_empty_context() -> None:
    assert tinct.extract({}) == Context()


# --- tracestate (section 3.3) ------------------------------------------------


def tracestate_of(*headers: str) -> TraceState:
    carrier = {"traceparent": TRACEPARENT, "tracestate": list(headers)}
    return span_context(tinct.extract(carrier)).trace_state


def sdk_tracestate_of(*headers: str) -> TraceState:
    carrier = {"traceparent": TRACEPARENT, "tracestate": list(headers)}
    return span_context(otel_trace.extract(carrier)).trace_state


TRACESTATES = [
    ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",),
    ("rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"),  # several headers combine
    (" rojo=1 ,\t, congo=2 ,",),  # OWS and empty members
    ("tenant@vendor=x,a1@b=y",),  # multi-tenant keys
    ("v=with spaces inside",),
    (",".join(f"k{i}=v" for i in range(32)),),  # at the limit
    (",".join(f"k{i}=v" for i in range(33)),),  # 33 members: all dropped
    ("rojo=1,rojo=2",),  # duplicate keys: all dropped
    ("rojo=1", "rojo=2"),
    ("Rojo=1,congo=2",),  # invalid key: all dropped
    ("1rojo=1",),
    ("rojo=",),
    ("rojo=a=b",),
    ("rojo=trailing ",),
    ("rojo",),
    ("rojo=" + "x" * 257,),
    ("rojo=caf\u00e9",),
    ("a=" + "x" * 200 + "," + ",".join(f"k{i}=" + "y" * 250 for i in range(32)),),  # > 8192
]


@pytest.mark.parametrize("headers", TRACESTATES)
def test_tracestate_as_the_sdk_reads_it(headers: tuple[str, ...]) -> None:
    ours = tracestate_of(*headers)
    assert isinstance(ours, TraceState)
    assert dict(ours) == dict(sdk_tracestate_of(*headers))
    assert list(ours) == list(sdk_tracestate_of(*headers))  # order matters (3.3.1.1)


def test_tracestate_members_and_limits() -> None:
    assert dict(tracestate_of("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")) == {
        "rojo": "00f067aa0ba902b7",
        "congo": "t61rcWkgMzE",
    }
    assert len(tracestate_of(",".join(f"k{i}=v" for i in range(32)))) == 32
    assert len(tracestate_of(",".join(f"k{i}=v" for i in range(33)))) == 0
    assert len(tracestate_of("rojo=1,rojo=2")) == 0
    assert len(tracestate_of("rojo=1,BAD=2")) == 0
    # A bad tracestate never costs the trace (section 4.3).
    ctx = tinct.extract({"traceparent": TRACEPARENT, "tracestate": "=,,=="})
    assert span_context(ctx).is_valid


def test_tracestate_round_trip_and_sdk_methods() -> None:
    ctx = tinct.extract({"traceparent": TRACEPARENT, "tracestate": "rojo=1,congo=2"})
    state = span_context(ctx).trace_state
    assert injected(tinct, ctx)["tracestate"] == "rojo=1,congo=2"
    assert state.add("new", "3").to_header() == "new=3,rojo=1,congo=2"
    assert state.update("rojo", "9").to_header() == "rojo=9,congo=2"
    assert state.delete("rojo").to_header() == "congo=2"
    assert state == TraceState([("rojo", "1"), ("congo", "2")])


def test_inject_writes_nothing_for_an_invalid_span_context() -> None:
    assert injected(tinct, Context()) == {}
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(5, 0, False)))
    assert "traceparent" not in injected(tinct, ctx)
    assert injected(tinct, baggage.set_baggage("k", "v")) == {"baggage": "k=v"}


def test_inject_writes_no_empty_tracestate() -> None:
    ctx = tinct.extract({"traceparent": TRACEPARENT})
    assert injected(tinct, ctx) == {"traceparent": TRACEPARENT}


# --- baggage (W3C Baggage section 3) -----------------------------------------


def baggage_of(*headers: str, context: Context | None = None) -> dict[str, object]:
    return dict(baggage.get_all(tinct.extract({"baggage": list(headers)}, context)))


def test_baggage_members() -> None:
    assert baggage_of("k1=v1,k2=v2") == {"k1": "v1", "k2": "v2"}
    assert baggage_of("k1 = v1 ,\tk2\t=\tv2\t") == {"k1": "v1", "k2": "v2"}
    assert baggage_of("k1=v1", "k2=v2") == {"k1": "v1", "k2": "v2"}  # several headers
    assert baggage_of("k1=v1,,k2=v2,") == {"k1": "v1", "k2": "v2"}  # empty members
    assert baggage_of("k=") == {"k": ""}
    assert baggage_of("k=v=w") == {"k": "v=w"}  # "=" is a baggage-octet
    assert baggage_of("k=1,k=2") == {"k": "2"}  # the last one wins, as in the SDK


@pytest.mark.parametrize(
    "member",
    ["=v", "k", "k v=x", "k=v w", 'k="v"', "k=v\\", "k=caf\u00e9", "k(1)=v", "k=v;", "k=v;=p", " "],
)
def test_malformed_members_are_dropped_and_the_others_kept(member: str) -> None:
    assert baggage_of(f"a=1,{member},b=2") == {"a": "1", "b": "2"}


def test_percent_encoded_values() -> None:
    assert baggage_of("k=caf%C3%A9%20%E2%82%AC")["k"] == "caf\u00e9 \u20ac"
    assert baggage_of("k=a%2Cb%3Bc%3Dd%25")["k"] == "a,b;c=d%"
    assert baggage_of("k=%zz%4")["k"] == "%zz%4"  # not an escape: kept as is
    assert baggage_of("k=%FF")["k"] == "\ufffd"  # not UTF-8
    # "+" is a space, as OpenTelemetry Python writes one (quote_plus)
    assert baggage_of("k=a+b")["k"] == "a b"
    assert baggage_of("my%20key=v") == {"my key": "v"}


def test_properties_are_kept_apart_from_the_value_and_written_back() -> None:
    ctx = tinct.extract({"baggage": "k=v;p1;p2=x, other=o ; flag"})
    assert dict(baggage.get_all(ctx)) == {"k": "v", "other": "o"}
    assert injected(tinct, ctx)["baggage"] == "k=v;p1;p2=x,other=o; flag"
    # A new value drops the properties of the old one.
    changed = baggage.set_baggage("k", "new", ctx)
    assert injected(tinct, changed)["baggage"] == "k=new,other=o; flag"


def test_extract_adds_to_the_baggage_of_the_given_context() -> None:
    given = baggage.set_baggage("mine", "1", baggage.set_baggage("k", "old"))
    assert baggage_of("k=new,b=2", context=given) == {"mine": "1", "k": "new", "b": "2"}


def test_extract_limit_of_180_members() -> None:
    header = ",".join(f"k{i}=v" for i in range(181))
    got = baggage_of(header)
    assert len(got) == 180 and "k179" in got and "k180" not in got


def test_extract_limit_of_8192_bytes_drops_whole_members() -> None:
    member = "k{:03d}=" + "x" * 95  # 100 bytes
    header = ",".join(member.format(i) for i in range(90))  # 9089 bytes
    got = baggage_of(header)
    assert len(got) == 81  # 81 members and their commas: 8180 bytes
    assert all(value == "x" * 95 for value in got.values())  # none cut short


def test_extract_of_a_huge_header_is_bounded() -> None:
    got = baggage_of("k=v," + "x" * 1_000_000)
    assert got == {"k": "v"}
    assert baggage_of("x" * 1_000_000) == {}


# --- the dye -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "dye"),
    [
        ("tinct.dye=user:42", Dye("user", "42")),
        ("tinct.dye=route:GET%20%2Forders%2F%7Bid%7D", Dye("route", "GET /orders/{id}")),
        ("tinct.dye=user%3A42", Dye("user", "42")),  # the colon encoded too
        ("tinct.dye=route%3AGET+%2Forders", Dye("route", "GET /orders")),  # as OTel writes
        ("tinct.dye=tenant:caf%C3%A9", Dye("tenant", "caf\u00e9")),
        ("tinct.dye = user:42 ;prop", Dye("user", "42")),
    ],
)
def test_extract_dye(member: str, dye: Dye) -> None:
    ctx = tinct.extract({"traceparent": TRACEPARENT, "baggage": f"a=1,{member},b=2"})
    assert get_dye(ctx) == dye
    assert baggage.get_baggage(DYE_KEY, ctx) == str(dye)  # the decoded text
    assert baggage.get_baggage("a", ctx) == "1" and baggage.get_baggage("b", ctx) == "2"


@pytest.mark.parametrize(
    "value", ["", "user", "user:", ":42", "User:42", "9user:42", "user%3A", "u:" + "x" * 600]
)
def test_malformed_dye_is_dropped_silently(value: str) -> None:
    ctx = tinct.extract({"baggage": f"a=1,tinct.dye={value},b=2"})
    assert get_dye(ctx) is None
    assert dict(baggage.get_all(ctx)) == {"a": "1", "b": "2"}


def test_dye_after_180_members_still_counts() -> None:
    header = ",".join(f"k{i}=v" for i in range(200)) + ",tinct.dye=user:42"
    got = baggage_of(header)
    assert len(got) == 180 and got[DYE_KEY] == "user:42"


@pytest.mark.parametrize(
    ("dye", "wire"),
    [
        (Dye("user", "42"), "tinct.dye=user:42"),
        (Dye("route", "GET /orders/{id}"), "tinct.dye=route:GET%20%2Forders%2F%7Bid%7D"),
        (Dye("tag", "a+b,c;d=e%"), "tinct.dye=tag:a%2Bb%2Cc%3Bd%3De%25"),
        (Dye("tenant", "caf\u00e9"), "tinct.dye=tenant:caf%C3%A9"),
    ],
)
def test_inject_dye_first_with_the_value_percent_encoded(dye: Dye, wire: str) -> None:
    carrier = injected(tinct, dyed(dye, region="eu-west-1", note="a b"))
    assert carrier["baggage"] == f"{wire},region=eu-west-1,note=a%20b"
    assert carrier["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-03"
    assert carrier["tracestate"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def test_inject_leaves_out_a_malformed_dye() -> None:
    ctx = baggage.set_baggage(DYE_KEY, "not a dye", baggage.set_baggage("k", "v"))
    assert injected(tinct, ctx) == {"baggage": "k=v"}


def test_inject_keeps_to_the_limits_and_the_dye_survives() -> None:
    ctx = dyed(Dye("user", "42"), **{f"k{i:03d}": "v" * 40 for i in range(300)})
    header = injected(tinct, ctx)["baggage"]
    members = header.split(",")
    assert members[0] == "tinct.dye=user:42"
    assert len(header.encode()) <= 8192 and len(members) <= 180
    ctx = dyed(Dye("user", "42"), **{f"k{i:03d}": "v" for i in range(300)})
    members = injected(tinct, ctx)["baggage"].split(",")
    assert len(members) == 180 and members[0] == "tinct.dye=user:42"


def test_inject_skips_a_member_too_big_and_keeps_the_next() -> None:
    ctx = dyed(Dye("user", "42"), big="x" * 5000, small="y")
    assert injected(tinct, ctx)["baggage"] == "tinct.dye=user:42,small=y"


ODD_BAGGAGE = {
    "plain": "v",
    "spaces": " a b ",
    "punct": 'a+b,c;d=e%f"g\\h/i{j}',
    "unicode": "caf\u00e9 \u20ac \U0001f600",
    "my key": "x",
    "k%+": "y",
    "empty": "",
}


def test_round_trip_through_tinct() -> None:
    ctx = dyed(Dye("route", "GET /a+b/{id} 100%"), **ODD_BAGGAGE)
    back = tinct.extract(injected(tinct, ctx))
    assert dict(baggage.get_all(back)) == dict(baggage.get_all(ctx))
    assert span_context(back).trace_id == int(TRACE_ID, 16)
    assert span_context(back).trace_flags == 3
    assert dict(span_context(back).trace_state) == {
        "rojo": "00f067aa0ba902b7",
        "congo": "t61rcWkgMzE",
    }


def test_non_string_baggage_values_are_written_as_text() -> None:
    ctx = baggage.set_baggage("n", 42)
    assert injected(tinct, ctx) == {"baggage": "n=42"}


# --- interoperability with OpenTelemetry's composite -------------------------

DYES = [
    Dye("user", "42"),
    Dye("route", "GET /orders/{id}"),
    Dye("tag", "a+b,c;d=e%"),
    Dye("tenant", "caf\u00e9"),
    Dye("x.y-z_1", "a:b:c"),
]


@pytest.mark.parametrize("dye", DYES, ids=str)
def test_otel_reads_what_tinct_writes(dye: Dye) -> None:
    ctx = dyed(dye, region="eu-west-1", note="a b", sym="x/y+z")
    carrier = injected(tinct, ctx)
    theirs = otel.extract(carrier)
    ours = tinct.extract(carrier)
    assert span_context(theirs) == span_context(ours)
    assert dict(baggage.get_all(theirs)) == dict(baggage.get_all(ours))
    assert baggage.get_baggage(DYE_KEY, theirs) == str(dye)
    assert get_dye(theirs) == dye


@pytest.mark.parametrize("dye", DYES, ids=str)
def test_tinct_reads_what_otel_writes(dye: Dye) -> None:
    ctx = dyed(dye, region="eu-west-1", note="a b", sym="x/y+z")
    carrier = injected(otel, ctx)
    ours = tinct.extract(carrier)
    theirs = otel.extract(carrier)
    assert span_context(ours) == span_context(theirs)
    assert dict(baggage.get_all(ours)) == dict(baggage.get_all(theirs))
    assert get_dye(ours) == dye


@pytest.mark.parametrize("dye", DYES, ids=str)
def test_a_plain_otel_service_in_the_middle_passes_the_dye_on(dye: Dye) -> None:
    upstream = injected(tinct, dyed(dye, region="eu-west-1"))
    middle = otel.extract(upstream)  # a service with OpenTelemetry's defaults
    with trace.use_span(trace.NonRecordingSpan(SpanContext(7, 8, False, TraceFlags(1)))):
        pass  # its own span would not touch the baggage
    downstream = tinct.extract(injected(otel, middle))
    assert get_dye(downstream) == dye
    assert baggage.get_baggage(DYE_KEY, downstream) == str(dye)
    assert baggage.get_baggage("region", downstream) == "eu-west-1"
    assert span_context(downstream) == span_context(tinct.extract(upstream))


# --- never raises ------------------------------------------------------------


class RaisingGetter(Getter[Any]):
    def get(self, carrier: Any, key: str) -> list[str] | None:
        raise RuntimeError("broken getter")

    def keys(self, carrier: Any) -> list[str]:
        return []


class RaisingSetter(Setter[Any]):
    def set(self, carrier: Any, key: str, value: str) -> None:
        raise RuntimeError("broken setter")


class BareGetter(Getter[Any]):
    """A getter that returns whatever the carrier holds, unwrapped."""

    def get(self, carrier: Any, key: str) -> Any:
        return carrier.get(key)

    def keys(self, carrier: Any) -> list[str]:
        return list(carrier)


@pytest.mark.parametrize(
    "carrier",
    [
        None,
        [],
        "traceparent",
        42,
        {"traceparent": None, "baggage": None},
        {"traceparent": 42, "tracestate": 42, "baggage": 42},
        {"traceparent": [None], "tracestate": [None, 1], "baggage": [1, None]},
        {"traceparent": [], "baggage": []},
        {"traceparent": TRACEPARENT.encode(), "baggage": b"k=v"},
        {"traceparent": TRACEPARENT, "tracestate": b"\xff\xfe", "baggage": "\udc80=\udc80"},
        {"traceparent": TRACEPARENT, "tracestate": [object()], "baggage": [object()]},
    ],
)
def test_extract_never_raises(carrier: Any) -> None:
    for getter in (None, BareGetter(), RaisingGetter()):
        ctx = tinct.extract(carrier) if getter is None else tinct.extract(carrier, getter=getter)
        assert isinstance(ctx, Context)


def test_bytes_header_values_are_read() -> None:
    ctx = tinct.extract({"traceparent": [TRACEPARENT.encode()], "baggage": [b"k=v"]})
    assert span_context(ctx).is_valid and baggage.get_baggage("k", ctx) == "v"
    ctx = tinct.extract(
        {"traceparent": TRACEPARENT.encode(), "baggage": b"k=v"}, getter=BareGetter()
    )
    assert span_context(ctx).is_valid and baggage.get_baggage("k", ctx) == "v"


def test_inject_never_raises() -> None:
    ctx = dyed(Dye("user", "42"), k="v\udc80")
    tinct.inject(None, ctx)
    tinct.inject([], ctx)
    tinct.inject({}, ctx, setter=RaisingSetter())
    carrier = injected(tinct, ctx)  # a lone surrogate is written as "?"
    assert carrier["baggage"] == "tinct.dye=user:42,k=v%3F"


def test_inject_with_a_broken_baggage_value_still_writes_the_trace() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no")

    ctx = baggage.set_baggage("k", Unprintable(), dyed(Dye("user", "42")))
    carrier = injected(tinct, ctx)
    assert carrier["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-03"


def mutate(rng: random.Random, text: str) -> str:
    """``text`` with a few random edits: flips, inserts, deletions, cuts, repeats."""
    alphabet = '0123456789abcdefABCDEF-=,;% \t:+\x00\u00e9\udc80"\\' + "xyz"
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 and chars and pos < len(chars):
            chars[pos] = rng.choice(alphabet)
        elif op == 1:
            chars.insert(pos, rng.choice(alphabet))
        elif op == 2 and chars and pos < len(chars):
            del chars[pos]
        elif op == 3:
            chars = chars[:pos]
        else:
            chars = chars + chars[pos:] * rng.randint(1, 3)
    return "".join(chars)


def test_fuzzed_headers_never_raise_and_traceparent_agrees_with_the_sdk() -> None:
    rng = random.Random(20240611)
    seeds = {
        "traceparent": [TRACEPARENT, f"01-{TRACE_ID}-{SPAN_ID}-03-ext", *VALID_TRACEPARENTS],
        "tracestate": ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "a@b=c, d=e f"],
        "baggage": [
            "tinct.dye=route:GET%20%2Forders%2F%7Bid%7D,tenant=acme;p=1,region=eu-west-1",
            "k = v ; p1 ; p2 = x , tinct.dye=user%3A42",
        ],
    }
    for _ in range(3000):
        carrier = {name: mutate(rng, rng.choice(texts)) for name, texts in seeds.items()}
        ours = tinct.extract(carrier)
        sdk = otel_trace.extract(carrier)
        # The SDK's trace context is the reference for every mutated traceparent.
        ours_sc, sdk_sc = span_context(ours), span_context(sdk)
        assert (ours_sc.trace_id, ours_sc.span_id, ours_sc.trace_flags) == (
            sdk_sc.trace_id,
            sdk_sc.span_id,
            sdk_sc.trace_flags,
        ), carrier["traceparent"]
        if sdk_sc.is_valid:
            assert dict(ours_sc.trace_state) == dict(sdk_sc.trace_state), carrier["tracestate"]
        dye = get_dye(ours)
        if dye is not None:
            assert baggage.get_baggage(DYE_KEY, ours) == str(dye)
        # and what it extracted it can write again, and read back the same
        again = tinct.extract(injected(tinct, ours))
        assert dict(baggage.get_all(again)) == dict(baggage.get_all(ours))
