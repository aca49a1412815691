"""Reading request bodies with a hard memory bound, compressed or not.

A receiver must never let a client decide how much memory it allocates: a
1 MiB gzip body can inflate to 1 GiB. :class:`BoundedDecoder` decompresses
incrementally with ``zlib.decompressobj(...).decompress(data, max_length)`` so
no single step produces more than the bytes still allowed, and refuses both a
wire body and a decompressed body over the limit (OTLP/HTTP answers 413,
https://opentelemetry.io/docs/specs/otlp/#failures-1). Content codings follow
RFC 9110 section 8.4.1: ``gzip`` (and its alias ``x-gzip``) may hold several
members (RFC 1952 section 2.2), ``deflate`` is the zlib format (RFC 1950),
though some clients send raw deflate, which is accepted too; an unknown
coding is a 415 (RFC 9110 section 15.5.16).
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

from starlette.requests import Request

from tinct.errors import DecodeError, TooLargeError, UnsupportedMediaError

__all__ = ["MAX_BODY_BYTES", "Body", "BoundedDecoder", "read_body"]

# OTLP receivers commonly cap requests at 20 MiB (the Collector's confighttp
# max_request_body_size default); gRPC gets the same max receive size.
MAX_BODY_BYTES = 20 * 1024 * 1024

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS
_STEP_BYTES = 1 << 20


class Body(NamedTuple):
    """A decoded request body and how many bytes came over the wire."""

    data: bytes
    wire_bytes: int


class BoundedDecoder:
    """Incremental content decoding with a limit on wire and decoded size.

    Feed chunks as they arrive, then call :meth:`finish`. Memory stays below
    about ``limit`` plus one chunk whatever the compression ratio.

    Raises (from :meth:`feed` / :meth:`finish`):
        TooLargeError: more than ``limit`` bytes on the wire or decoded.
        DecodeError: a corrupt or truncated compressed stream.
        UnsupportedMediaError: (from the constructor) an unknown coding.
    """

    def __init__(self, content_encoding: str | None, limit: int = MAX_BODY_BYTES) -> None:
        coding = (content_encoding or "").strip().lower()
        if coding in ("", "identity"):
            self.coding = "identity"
        elif coding in ("gzip", "x-gzip"):
            self.coding = "gzip"
        elif coding == "deflate":
            self.coding = "deflate"
        else:
            raise UnsupportedMediaError(
                f"Content-Encoding {content_encoding!r} is not supported (use gzip, deflate "
                "or identity)"
            )
        self.limit = limit
        self.wire_bytes = 0
        self._size = 0
        self._parts: list[bytes] = []
        self._inflater: zlib._Decompress | None = None
        self._wbits = _GZIP_WBITS

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body as sent."""
        if not chunk:
            return
        self.wire_bytes += len(chunk)
        if self.wire_bytes > self.limit:
            raise TooLargeError(f"request body is larger than {self.limit} bytes")
        if self.coding == "identity":
            self._size += len(chunk)
            self._parts.append(chunk)
            return
        if self._inflater is None:
            self._inflater = zlib.decompressobj(self._start_wbits(chunk))
        self._inflate(chunk)

    def finish(self) -> bytes:
        """The whole decoded body; checks a compressed stream was complete."""
        if self._inflater is not None and not self._inflater.eof:
            raise DecodeError(f"{self.coding} request body is truncated")
        return b"".join(self._parts)

    def _start_wbits(self, first: bytes) -> int:
        if self.coding == "gzip":
            return _GZIP_WBITS
        # RFC 1950 header: CM = 8 in the low nibble and (CMF*256 + FLG) % 31 == 0;
        # anything else is taken as a raw RFC 1951 stream.
        if len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] * 256 + first[1]) % 31 == 0:
            self._wbits = _ZLIB_WBITS
        else:
            self._wbits = _RAW_WBITS
        return self._wbits

    def _inflate(self, data: bytes) -> None:
        inflater = self._inflater
        assert inflater is not None
        while data:
            if inflater.eof:
                # Bytes after a complete stream: the next gzip member, or junk.
                if self.coding != "gzip":
                    raise DecodeError("deflate request body has data after its end")
                inflater = self._inflater = zlib.decompressobj(_GZIP_WBITS)
            # Small steps: zlib builds each output in blocks and joins them, so
            # one step briefly needs twice its size.
            allowed = min(self.limit - self._size + 1, _STEP_BYTES)
            try:
                out = inflater.decompress(data, allowed)
            except zlib.error as exc:
                raise DecodeError(f"{self.coding} request body is corrupt: {exc}") from exc
            self._size += len(out)
            if self._size > self.limit:
                raise TooLargeError(
                    f"request body is larger than {self.limit} bytes after decompression"
                )
            if out:
                self._parts.append(out)
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> Body:
    """Read and decode ``request``'s body, never holding more than ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before reading anything.
    Runs on the event loop; each step decompresses at most ``limit`` bytes.
    """
    decoder = BoundedDecoder(request.headers.get("content-encoding"), limit)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLargeError(f"request body is larger than {limit} bytes")
    async for chunk in request.stream():
        decoder.feed(chunk)
    return Body(decoder.finish(), decoder.wire_bytes)
