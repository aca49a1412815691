"""A span processor that stamps ``tinct.dye`` on every recording span of a dyed request.

``DyeSampler`` adds the attribute to the spans it samples because of a dye,
but a span can be recorded for other reasons — a plain OpenTelemetry sampler,
or a parent sampled anyway — and DESIGN.md wants *every* span of a dyed
request to carry it. This processor reads the dye from the span's parent
context (baggage ``tinct.dye``), so it works whichever sampler decided.

``on_start`` runs on the thread starting the span, only for recording spans
(the SDK skips processors for unsampled ones): no I/O, no lock, never raises;
for an undyed span it is one context read.
"""

from __future__ import annotations

import logging

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tinct.tracing.dye import DYE_ATTRIBUTE
from tinct.tracing.dyeing import context_dye

__all__ = ["DyeSpanProcessor"]

logger = logging.getLogger(__name__)


class DyeSpanProcessor(SpanProcessor):
    """Adds ``tinct.dye`` at span start; exports nothing, so add it beside the exporting one."""

    def __init__(self) -> None:
        self._failed = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Stamp the dye of ``parent_context`` (the current context if None) on ``span``."""
        try:
            dye = context_dye(parent_context)
            if dye is None:
                return
            text = str(dye)
            attributes = span.attributes
            if attributes is None or attributes.get(DYE_ATTRIBUTE) != text:
                span.set_attribute(DYE_ATTRIBUTE, text)
        except Exception:  # a processor must never break the app's request
            if not self._failed:
                self._failed = True
                logger.exception("DyeSpanProcessor.on_start failed")

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing: the dye is stamped at start, while attributes are still writable."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered: always True."""
        return True
