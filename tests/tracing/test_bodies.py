"""Bounded body reading: limits hold whatever the compression ratio."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.asgi import AppClient
from tinct.errors import DecodeError, TooLargeError, UnsupportedMediaError
from tinct.tracing.bodies import BoundedDecoder, read_body

MiB = 1 << 20


def feed_all(decoder: BoundedDecoder, data: bytes, chunk: int = 65536) -> bytes:
    for i in range(0, len(data), chunk):
        decoder.feed(data[i : i + chunk])
    return decoder.finish()


@pytest.mark.parametrize("coding", [None, "", "identity", "gzip", "x-gzip", "deflate", "GZIP"])
def test_round_trip(coding: str | None) -> None:
    payload = b"span data " * 10_000
    if coding and coding.lower() in ("gzip", "x-gzip"):
        wire = gzip.compress(payload)
    elif coding == "deflate":
        wire = zlib.compress(payload)
    else:
        wire = payload
    decoder = BoundedDecoder(coding, limit=MiB)
    assert feed_all(decoder, wire, chunk=1000) == payload
    assert decoder.wire_bytes == len(wire)


def test_raw_deflate_and_multi_member_gzip() -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = raw.compress(b"abc" * 1000) + raw.flush()
    assert feed_all(BoundedDecoder("deflate"), wire) == b"abc" * 1000
    members = gzip.compress(b"one ") + gzip.compress(b"two")
    assert feed_all(BoundedDecoder("gzip"), members, chunk=7) == b"one two"


def test_gzip_bomb_is_refused_with_small_memory() -> None:
    # 1 GiB of zeros as a valid multi-member gzip of ~1 MiB (RFC 1952 2.2),
    # and a single-stream bomb: both must stop at the limit.
    bomb = gzip.compress(bytes(MiB)) * 1024
    assert len(bomb) < 2 * MiB
    single = zlib.compressobj(1, zlib.DEFLATED, 31)
    stream = single.compress(bytes(64 * MiB)) + single.flush()
    for wire in (bomb, stream):
        tracemalloc.start()
        try:
            with pytest.raises(TooLargeError, match="after decompression"):
                feed_all(BoundedDecoder("gzip", limit=20 * MiB), wire)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 24 * MiB


def test_wire_limit_applies_before_decompression() -> None:
    decoder = BoundedDecoder("identity", limit=100)
    with pytest.raises(TooLargeError):
        decoder.feed(b"x" * 101)
    decoder = BoundedDecoder("gzip", limit=100)
    with pytest.raises(TooLargeError):
        decoder.feed(bytes(101))


def test_corrupt_truncated_and_unknown() -> None:
    with pytest.raises(DecodeError, match="corrupt"):
        feed_all(BoundedDecoder("gzip"), b"definitely not gzip")
    with pytest.raises(DecodeError, match="truncated"):
        feed_all(BoundedDecoder("gzip"), gzip.compress(b"x" * 1000)[:-10])
    with pytest.raises(DecodeError, match="after its end"):
        feed_all(BoundedDecoder("deflate"), zlib.compress(b"x") + b"junk")
    with pytest.raises(UnsupportedMediaError, match="'br'"):
        BoundedDecoder("br")


def _app(limit: int) -> Starlette:
    async def echo(request: Request) -> Response:
        try:
            body = await read_body(request, limit)
        except TooLargeError as exc:
            return PlainTextResponse(str(exc), 413)
        return PlainTextResponse(f"{len(body.data)} {body.wire_bytes}")

    return Starlette(routes=[Route("/", echo, methods=["POST"])])


def test_read_body_over_http() -> None:
    client = AppClient(_app(1000))
    wire = gzip.compress(b"y" * 900)
    r = client.post("/", content=wire, headers={"Content-Encoding": "gzip"})
    assert r.text == f"900 {len(wire)}"
    # Content-Length over the limit is refused before reading.
    r = client.post("/", content=b"z" * 1001)
    assert r.status_code == 413
    r = client.post("/", content=gzip.compress(b"y" * 1001), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
