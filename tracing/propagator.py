"""One propagator for trace context, baggage and the dye.

OpenTelemetry's default propagator is a composite of
``TraceContextTextMapPropagator`` and ``W3CBaggagePropagator``. ``DyePropagator``
replaces both with one pass over the three headers they use, writes the dye
(tracing.dye) in the form tinct documents, and costs under half of the
composite on every request (``python -m bench.propagation``). It stays
interoperable both ways: what it writes the composite reads to the same span
context and baggage, and the reverse, so a plain-OpenTelemetry service in the
middle of a call chain passes the dye along as ordinary baggage.

Wire formats:

* ``traceparent`` and ``tracestate``: W3C Trace Context Level 2,
  https://www.w3.org/TR/trace-context-2/ (cited below by section anchor, #...).
* ``baggage``: W3C Baggage, https://www.w3.org/TR/baggage/ (cited as Baggage #...).
  The dye is the
  member ``tinct.dye=<kind>:<value>`` with the value percent-encoded
  (``route:GET%20%2Forders%2F%7Bid%7D``).

Both ``inject`` and ``extract`` run on the request path: they do no I/O and
never raise. A malformed header is dropped silently (no log line an attacker
could multiply): a bad ``traceparent`` starts a new trace, a bad baggage member
is skipped and the others are kept.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.propagators import textmap
from opentelemetry.trace import TraceState

from tinct.tracing.dye import DYE_KEY, MAX_DYE_LENGTH, parse_dye

__all__ = ["DyePropagator"]

_logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
_FIELDS = frozenset((TRACEPARENT, TRACESTATE, BAGGAGE))

# --- Trace Context (#traceparent-header, #tracestate-header) -----------------

# #traceparent-header-field-values: lowercase hex fields; optional whitespace around the value
# (RFC 9110 section 5.6.3) as the SDK allows; after the flags, either the end
# or "-" and fields of a later version.
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*|[ \t]*)", re.DOTALL
)
_ZERO_TRACE_ID = "0" * 32  # #trace-id: all zeroes is invalid
_ZERO_SPAN_ID = "0" * 16  # #parent-id: all zeroes is invalid
_MAX_TRACEPARENT_LENGTH = 512  # the SDK's bound on what it parses at all
_MAX_TRACESTATE_LENGTH = 8192  # the SDK's bound; the spec asks for at least 512
_OWS = " \t"  # RFC 9110 section 5.6.3, trimmed around header values and members
_MAX_TRACESTATE_MEMBERS = 32  # #list
# #key (simple or multi-tenant "tenant@system") and #value
# (value: up to 256 printable ASCII characters but "," and "=", no trailing space).
_TRACESTATE_MEMBER = re.compile(
    r"([a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)

# --- Baggage (Baggage #definition, #limits) ----------------------------------

_MAX_MEMBERS = 180  # OpenTelemetry's limit; the spec requires at least 64
_MAX_BYTES = 8192  # Baggage #limits: the whole baggage-string
_MAX_MEMBER_BYTES = 4096  # OpenTelemetry's per-member limit (Python and JS)

# list-member = key OWS "=" OWS value *( OWS ";" OWS property ), where
# key = token (RFC 9110 section 5.6.2), value = *baggage-octet and
# property = key OWS "=" OWS value / key OWS.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_VALUE = r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_MEMBER = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*=[ \t]*({_VALUE})[ \t]*"
    rf"((?:;[ \t]*{_TOKEN}[ \t]*(?:=[ \t]*{_VALUE}[ \t]*)?)*)"
)
# What a key may hold unencoded on the way out: token characters except "%"
# and "+", which readers decode.
_KEY_SAFE = "!#$&'*^`|"
_PLAIN_KEY = re.compile(r"[!#$&'*\-.^_`|~0-9A-Za-z]+")
_UNRESERVED = re.compile(r"[0-9A-Za-z\-._~]*")
# quote(safe="") for ASCII: unreserved characters (RFC 3986 section 2.3) stay.
_QUOTE_ASCII = {
    code: chr(code) if chr(code).isalnum() or chr(code) in "-._~" else f"%{code:02X}"
    for code in range(128)
}
# "%XX" -> the character of byte 0xXX, either case of hex digit.
_PERCENT = {
    f"{a}{b}": chr(int(a + b, 16))
    for a in "0123456789abcdefABCDEF"
    for b in "0123456789abcdefABCDEF"
}

# The context key under which opentelemetry.baggage keeps its dict (private, but
# stable since the API's first release): one set_value for the whole baggage
# instead of one Context per member through set_baggage.
_BAGGAGE_KEY: str = getattr(otel_baggage, "_BAGGAGE_KEY", "")
if not _BAGGAGE_KEY:  # pragma: no cover - an API that moved it: ask it where
    _BAGGAGE_KEY = next(iter(otel_baggage.set_baggage("k", "v", Context())))

# The dye texts a process sees are few (its rules dye a handful of users,
# routes, tenants), so their wire forms are cached both ways; bounded, so a
# caller sending a new dye per request only costs the cache misses.
_DYE_CACHE_SIZE = 256

# Properties (the ";p1;p2=x" after a value) have no place in OpenTelemetry
# Python's baggage, which maps a name to a value. They ride beside it in the
# context, keyed by member, with the value they came with; inject writes them
# back while that value is unchanged, so they survive a tinct hop.
_PROPERTIES_KEY = create_key("tinct-baggage-properties")


def _first(values: object) -> str | None:
    """The first header value a getter returned, as text; None if unusable."""
    if isinstance(values, str):  # a bare value: a getter or a dict carrier's own
        return values
    if isinstance(values, (bytes, bytearray)):
        return values.decode("latin-1")
    if isinstance(values, (list, tuple)):
        value = values[0] if values else None
    elif isinstance(values, Iterable):
        value = next(iter(values), None)
    else:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1")
    return None


def _all(values: object) -> list[str]:
    """Every header value a getter returned, as text (RFC 9110 section 5.3)."""
    if isinstance(values, str):
        return [values]
    if isinstance(values, (bytes, bytearray)):
        return [values.decode("latin-1")]
    if not isinstance(values, Iterable):
        return []
    out = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, (bytes, bytearray)):
            out.append(value.decode("latin-1"))
    return out


def _parse_traceparent(header: str) -> tuple[int, int, int] | None:
    """Trace id, parent id and flags of ``header``, or None when it is not valid.

    #traceparent-header: ``version-traceid-
    parentid-flags`` in lowercase hex. A version above ``00`` may append fields
    after a dash, which are ignored (#versioning-of-traceparent); ``00`` may not. Version
    ``ff`` and all-zero ids are invalid. Flags are taken whole: the SDK writes
    ``03`` (sampled + random trace id, #trace-flags), and unknown bits are
    kept, as the SDK keeps them. One compiled fullmatch is faster here than
    slicing and checking by hand.
    """
    if len(header) > _MAX_TRACEPARENT_LENGTH:
        return None
    match = _TRACEPARENT.fullmatch(header)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest[:1] == "-"):
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return int(trace_id, 16), int(span_id, 16), int(flags, 16)


def _parse_tracestate(headers: list[str]) -> TraceState | None:
    """The tracestate of ``headers`` (combined), as the SDK's propagator reads it.

    #tracestate-header: a malformed member, a duplicate key or more than 32 members
    give an empty tracestate (``TraceState.from_header``'s rules), a header past
    the length bound gives none. The span context is kept either way
    (tracestate never invalidates traceparent). Validating here spares the
    SDK's warning per bad member, and is three times as fast as ``from_header``.
    """
    # Several header fields combine with "," (RFC 9110 section 5.3).
    header = ",".join(headers) if len(headers) > 1 else headers[0]
    if len(header) > _MAX_TRACESTATE_LENGTH:
        return None
    pairs: dict[str, str] = {}
    for member in header.split(","):
        member = member.strip(_OWS)
        if not member:  # #list: empty members are allowed
            continue
        match = _TRACESTATE_MEMBER.fullmatch(member)
        if match is None:
            return TraceState()
        key, value = match.groups()
        if key in pairs:  # #list: keys are unique
            return TraceState()
        pairs[key] = value
    state = TraceState()
    if len(pairs) <= _MAX_TRACESTATE_MEMBERS:
        # The members are valid by the SDK's own patterns (above): hand them
        # over without TraceState() checking each again, which alone costs
        # more than the rest of this function. tests/tracing/test_propagator.py
        # compares the result with the SDK's, so a change there shows.
        state._dict = pairs
    return state


def _decode(text: str) -> str:
    """Percent-decoded ``text`` (ASCII, as validated); ``+`` is a space.

    W3C Baggage (#value) percent-encodes values and leaves ``+`` as is,
    but OpenTelemetry Python's ``W3CBaggagePropagator`` writes a space as ``+``
    (``quote_plus``), so a plain-OpenTelemetry hop turns ``route:GET /orders``
    into ``route%3AGET+%2Forders``. Reading ``+`` as a space keeps such a dye
    intact; tinct never writes a bare ``+``, so its own output is unambiguous.
    A ``%`` not followed by two hex digits stays as it is, and bytes that are
    not UTF-8 become U+FFFD, as with ``urllib.parse.unquote``.
    """
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    # Twice as fast as unquote: the text is ASCII, so each %XX maps to one
    # latin-1 character, and only a result beyond ASCII needs a UTF-8 pass.
    parts = text.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        char = _PERCENT.get(part[:2])
        if char is None:
            out.append("%")
            out.append(part)
        else:
            out.append(char)
            out.append(part[2:])
    decoded = "".join(out)
    if decoded.isascii():
        return decoded
    return decoded.encode("latin-1").decode("utf-8", "replace")


def _quote(text: str) -> str:
    """``quote(text, safe="")``, three times faster for ASCII text."""
    if _UNRESERVED.fullmatch(text):
        return text
    if text.isascii():
        return text.translate(_QUOTE_ASCII)
    return quote(text, safe="", errors="replace")  # a lone surrogate: "?"


def _quote_key(key: str) -> str:
    """``key`` as a baggage token: as it is when it is one already."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    return quote(key, safe=_KEY_SAFE, errors="replace")


@functools.lru_cache(maxsize=_DYE_CACHE_SIZE)
def _read_dye(raw: str) -> str | None:
    """The decoded dye text of the wire value ``raw``, None when not a dye."""
    text = _decode(raw)
    return text if parse_dye(text) is not None else None


@functools.lru_cache(maxsize=_DYE_CACHE_SIZE)
def _write_dye(text: str) -> str | None:
    """The ``tinct.dye`` member for dye ``text``, None when not a dye."""
    dye = parse_dye(text)
    if dye is None:
        return None
    return f"{DYE_KEY}={dye.kind}:{_quote(dye.value)}"


def _parse_baggage(
    headers: list[str],
) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Baggage members of ``headers``, and the properties of those that had some.

    Baggage #limits: members past the 8192nd byte of the combined
    header or past the 180th member are ignored, whole members only, so that a
    truncated member is never read as a shorter value. The dye does not count
    against the member limit, so a crowded baggage cannot push it out.
    """
    header = ",".join(headers) if len(headers) > 1 else headers[0]
    if len(header) > _MAX_BYTES:
        header = header[: max(header.rfind(",", 0, _MAX_BYTES + 1), 0)]
    entries: dict[str, str] = {}
    properties: dict[str, tuple[str, str]] = {}
    others = 0
    for member in header.split(","):
        if not member or len(member) > _MAX_MEMBER_BYTES:
            continue
        match = _MEMBER.fullmatch(member)
        if match is None:  # also rejects non-ASCII: values must be encoded
            continue
        key, raw, props = match.groups()
        key = _decode(key)
        if key == DYE_KEY:
            # Longer than any dye even fully percent-encoded: not worth a cache slot.
            dye = _read_dye(raw) if len(raw) <= 3 * MAX_DYE_LENGTH else None
            if dye is None:
                continue
            value = dye
        elif key not in entries:
            if others >= _MAX_MEMBERS:
                continue
            others += 1
            value = _decode(raw)
        else:
            value = _decode(raw)
        entries[key] = value  # a repeated key: the last one wins, as in the SDK
        if props:
            properties[key] = (value, props)
        else:
            properties.pop(key, None)
    if len(entries) > _MAX_MEMBERS:
        # The dye and a full list of others: the dye takes the last place.
        last = next(k for k in reversed(entries) if k != DYE_KEY)
        del entries[last]
        properties.pop(last, None)
    return entries, properties


def _encode_baggage(entries: Mapping[str, object], properties: object) -> str:
    """The ``baggage`` header for ``entries``, within the Baggage #limits.

    The dye goes first and other members follow in order; a member that would
    push the header past 8192 bytes is left out, and members past the 180th
    are dropped. Keys and values are percent-encoded (quote's output is ASCII,
    so its length is its size in bytes).
    """
    props = properties if isinstance(properties, dict) else None
    parts: list[str] = []
    size = -1  # no comma before the first member
    dye_text = entries.get(DYE_KEY)
    if isinstance(dye_text, str) and len(dye_text) <= MAX_DYE_LENGTH:
        member = _write_dye(dye_text)
        if member is not None:
            if props and DYE_KEY in props and props[DYE_KEY][0] == dye_text:
                member += props[DYE_KEY][1]
            parts.append(member)
            size += 1 + len(member)
    for key, value in entries.items():
        if key == DYE_KEY or not key or not isinstance(key, str):
            continue
        if len(parts) >= _MAX_MEMBERS:
            break
        text = value if isinstance(value, str) else str(value)
        member = f"{_quote_key(key)}={_quote(text)}"
        if props and key in props and props[key][0] == text:
            member += props[key][1]
        if len(member) > _MAX_MEMBER_BYTES or size + 1 + len(member) > _MAX_BYTES:
            continue
        parts.append(member)
        size += 1 + len(member)
    return ",".join(parts)


class DyePropagator(textmap.TextMapPropagator):
    """W3C ``traceparent``, ``tracestate`` and ``baggage`` (with the dye) in one pass.

    Use it in place of OpenTelemetry's default composite::

        from opentelemetry.propagate import set_global_textmap
        set_global_textmap(DyePropagator())

    Stateless and thread-safe; ``inject`` and ``extract`` do no I/O, take no
    lock and never raise, whatever the carrier, getter or setter do.
    """

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        """``context`` (a new one by default) with the remote span and baggage of ``carrier``.

        Like the SDK's composite: an invalid ``traceparent`` leaves the span of
        ``context`` as it was (none, for a new context: a new trace starts) and
        its ``tracestate`` is ignored; extracted baggage members are added to
        those ``context`` already holds. A dye that ``parse_dye`` rejects is
        dropped, the rest of the baggage kept.
        """
        if context is None:
            context = Context()
        try:
            return self._extract(carrier, context, getter)
        except Exception:  # a getter or carrier that misbehaves: nothing to extract
            _logger.debug("propagation: extract failed", exc_info=True)
            return context

    def _extract(
        self,
        carrier: textmap.CarrierT,
        context: Context,
        getter: textmap.Getter[textmap.CarrierT],
    ) -> Context:
        if getter is textmap.default_getter and isinstance(carrier, dict):
            # DefaultGetter's own lookup (carrier.get), without its per-call
            # isinstance(Iterable) and list: _first and _all take bare values.
            get: Callable[[str], object] = carrier.get
        else:
            get = functools.partial(getter.get, carrier)
        header = _first(get(TRACEPARENT))
        if header is not None:
            ids = _parse_traceparent(header)
            if ids is not None:
                states = _all(get(TRACESTATE))
                span_context = trace.SpanContext(
                    trace_id=ids[0],
                    span_id=ids[1],
                    is_remote=True,
                    trace_flags=trace.TraceFlags(ids[2]),
                    trace_state=_parse_tracestate(states) if states else None,
                )
                span = trace.NonRecordingSpan(span_context)
                context = trace.set_span_in_context(span, context)
        headers = _all(get(BAGGAGE))
        if not headers:
            return context
        entries, properties = _parse_baggage(headers)
        if not entries:
            return context
        current = get_value(_BAGGAGE_KEY, context)
        if isinstance(current, dict) and current:
            entries = {**current, **entries}
        context = set_value(_BAGGAGE_KEY, entries, context)
        if properties:
            previous = get_value(_PROPERTIES_KEY, context)
            merged = dict(previous) if isinstance(previous, dict) else {}
            merged.update(properties)
            context = set_value(_PROPERTIES_KEY, merged, context)
        return context

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        """Write the span context and baggage of ``context`` (current by default).

        ``traceparent`` is written as version ``00`` with the span's flags as
        they are, none for an invalid span context; ``tracestate`` only when it
        has members; ``baggage`` only when a member fits.
        """
        try:
            if setter is textmap.default_setter and isinstance(carrier, dict):
                put: Callable[[str, str], None] = carrier.__setitem__
            else:
                put = functools.partial(setter.set, carrier)
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.is_valid:
                put(
                    TRACEPARENT,
                    f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
                    f"-{span_context.trace_flags:02x}",
                )
                if span_context.trace_state:
                    put(TRACESTATE, span_context.trace_state.to_header())
            entries = get_value(_BAGGAGE_KEY, context)
            if entries and isinstance(entries, dict):
                header = _encode_baggage(entries, get_value(_PROPERTIES_KEY, context))
                if header:
                    put(BAGGAGE, header)
        except Exception:  # a setter or carrier that misbehaves: propagate nothing more
            _logger.debug("propagation: inject failed", exc_info=True)

    @property
    def fields(self) -> set[str]:
        """The headers ``inject`` may write: traceparent, tracestate, baggage."""
        return set(_FIELDS)
