"""The dye: a mark a request carries through every hop.

A dye is ``<kind>:<value>`` — ``user:42``, ``tenant:acme``,
``route:GET /orders/{id}``. It lives in the OpenTelemetry context as the W3C
baggage entry ``tinct.dye`` (decoded text), so a service instrumented with
plain OpenTelemetry, whose default propagators carry baggage, passes it on.
On the wire tinct writes ``tinct.dye=<kind>:<percent-encoded value>``
(tracing.propagator); any percent-encoding of the whole member value is
accepted on extract, since other implementations encode the colon too.

Every span of a dyed request carries the attribute ``tinct.dye`` with the
decoded text, and sampling roots carry ``tinct.sampling.probability``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opentelemetry import baggage
from opentelemetry.context import Context

__all__ = [
    "DYE_KEY",
    "DYE_ATTRIBUTE",
    "SAMPLING_PROBABILITY_ATTRIBUTE",
    "MAX_DYE_LENGTH",
    "Dye",
    "parse_dye",
    "get_dye",
    "set_dye",
]

DYE_KEY = "tinct.dye"  # the baggage member name
DYE_ATTRIBUTE = "tinct.dye"  # the span attribute
SAMPLING_PROBABILITY_ATTRIBUTE = "tinct.sampling.probability"

# A dye rides in every request of a dyed user: keep it far below the W3C
# baggage limit of 8192 bytes so the app's own baggage still fits.
MAX_DYE_LENGTH = 512

_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,31}\Z")


@dataclass(frozen=True)
class Dye:
    """One dye. ``str(dye)`` is its text form, ``kind:value``."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse_dye(text: str) -> Dye | None:
    """The dye in ``text`` (decoded ``kind:value``), or None when it is not one.

    Never raises: a malformed dye from the wire is ignored, not an error.
    """
    if not text or len(text) > MAX_DYE_LENGTH:
        return None
    kind, sep, value = text.partition(":")
    if not sep or not value or not _KIND.match(kind):
        return None
    return Dye(kind, value)


def get_dye(context: Context | None = None) -> Dye | None:
    """The dye of ``context`` (the current context by default), if any."""
    value = baggage.get_baggage(DYE_KEY, context)
    return parse_dye(value) if isinstance(value, str) else None


def set_dye(dye: Dye | None, context: Context | None = None) -> Context:
    """A context like ``context`` dyed with ``dye`` (``None`` removes the dye)."""
    if dye is None:
        return baggage.remove_baggage(DYE_KEY, context)
    return baggage.set_baggage(DYE_KEY, str(dye), context)
