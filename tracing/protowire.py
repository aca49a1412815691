"""Protobuf wire-format primitives for tinct's hand-written OTLP encoders.

Both the OTLP/JSON transcoder (tracing.otlp_json) and the span exporter's
encoder (tracing.otlp_encode_spans) write protobuf bytes directly, because
building message objects through the Python protobuf API is what made them
slow (see their module docstrings). Encoding rules: protobuf's "Encoding"
guide, sections "Base 128 Varints" and "Length-Delimited Records".
"""

from __future__ import annotations

__all__ = ["ONE_BYTE", "varint"]

# The varint of every value below 128 is that one byte.
ONE_BYTE = [bytes((i,)) for i in range(128)]


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative ``n`` (callers mask negatives to 64 bits)."""
    if n < 0x80:
        return ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
