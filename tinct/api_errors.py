"""The error answers of tinct's own APIs under ``/api/tinct/``.

Dye rules, logs, browser beacons and the topology answer errors the same way:
``{"error": "<field>: <what is wrong>"}`` with the status the protocol
expects (400 malformed, 401/403 auth, 404, 413 too large, 422 out of limits,
503 while the store opens). A handler raises :class:`ApiProblem`;
:func:`guard` turns it into that answer, and a store failure into a logged
500, so no handler writes its own try/except.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tinct.errors import StorageError

__all__ = ["ApiProblem", "Endpoint", "error_response", "guard"]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class ApiProblem(Exception):
    """An answer other than success: ``status`` and the error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, message: str) -> JSONResponse:
    """``{"error": message}``; a 401 also says which scheme to use."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status, headers=headers)


def guard(endpoint: Endpoint, what: str) -> Endpoint:
    """``endpoint`` answering :class:`ApiProblem` and store failures (``what``
    names the store call in the log) as JSON errors."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiProblem as exc:
            return error_response(exc.status, str(exc))
        except StorageError as exc:
            logger.exception("%s store call failed for %s", what, request.url.path)
            return error_response(500, f"store failed: {exc}")

    return guarded
