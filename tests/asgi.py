"""A synchronous client for ASGI apps in tests, over httpx's ASGITransport.

Starlette's TestClient warns when used with httpx (it wants httpx2), and the
suite turns warnings into errors; this is the few lines we need instead.
Each request runs in its own event loop, which is what a sync test wants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.types import ASGIApp

__all__ = ["AppClient"]


class AppClient:
    """``client.get("/x")`` / ``client.post(...)`` against an ASGI app, no sockets."""

    def __init__(self, app: ASGIApp, base_url: str = "http://testserver") -> None:
        self.app = app
        self.base_url = base_url

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)
