"""The dye rules API on the main port: what ``tinct dye`` and entry services use.

An operator dyes a user's (tenant's, route's, header's) requests for a while;
entry services poll the live rules (``tinct.tracing.rules``) and dye the
matching requests they receive. Routes::

    POST   /api/tinct/dye-rules              create a rule        201 + rule
    GET    /api/tinct/dye-rules[?service=S]  live rules           200 {"rules": [rule, ...]}
    DELETE /api/tinct/dye-rules/{id}         end a live rule      204 (404 if none)

A rule in requests and answers (times are RFC 3339 UTC strings, milliseconds)::

    {"id": "9f86d081884c7d65",
     "match": {"kind": "user", "key": "", "value": "42"},
     "service": "",                      # "" = every service
     "ratio": 1.0,                       # share of matching requests dyed, (0, 1]
     "ttl_seconds": 1800,                # 1..604800 (7 days)
     "created_at": "2024-05-01T12:00:00.000Z",
     "expires_at": "2024-05-01T12:30:00.000Z"}

POST takes ``match`` (required; ``kind`` one of user/header/route/tenant,
``value`` a non-empty string of at most 512 characters, ``key`` the header
name for ``header`` rules (lower-cased), optional otherwise; the dye it gives,
``kind:value`` or ``header:key=value``, must fit in 512 characters too), ``service``, ``ratio``
(default 1.0) and ``ttl_seconds`` (default 1800); unknown fields are errors.
``?service=S`` lists S's rules and the service-less ones. A rule is live
until it is deleted or ``expires_at`` passes.

Every error answers ``{"error": "<field>: <what is wrong>"}``: 400 for a body
that is not JSON (413 past 64 KiB), 422 for a value out of its limits, 401/403 for a missing or
wrong admin token, 404 for an unknown rule, 503 while the store opens, 500
when it fails. Writes need ``Authorization: Bearer <admin token>`` when
``--admin-token`` is set (DESIGN.md, "Write APIs"); reads never do.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.api_errors import ApiProblem, guard
from tinct.selfmetrics import SelfMetrics
from tinct.storage.base import DyeRuleStore, StoredDyeRule
from tinct.tracing.dye import MAX_DYE_LENGTH

__all__ = [
    "DyeRulesAPI",
    "DYE_RULES_PATH",
    "MATCH_KINDS",
    "MAX_VALUE_LENGTH",
    "MAX_TTL_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "rule_json",
    "rfc3339",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DYE_RULES_PATH = "/api/tinct/dye-rules"
MATCH_KINDS = ("user", "header", "route", "tenant")
MAX_VALUE_LENGTH = MAX_DYE_LENGTH
MAX_KEY_LENGTH = 256
MAX_SERVICE_LENGTH = 256
MAX_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_TTL_SECONDS = 1800
MAX_BODY_BYTES = 64 * 1024
# RFC 9110 section 5.6.2: a header name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_FIELDS = ("match", "service", "ratio", "ttl_seconds")
_MATCH_FIELDS = ("kind", "key", "value")


def rfc3339(unix_s: float) -> str:
    """``2024-05-01T12:00:00.000Z``: Unix seconds as RFC 3339 UTC, milliseconds."""
    moment = dt.datetime.fromtimestamp(unix_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rule_json(rule: StoredDyeRule) -> dict[str, Any]:
    """A stored rule in the API's shape (module docstring)."""
    return {
        "id": rule.id,
        "match": {"kind": rule.kind, "key": rule.key, "value": rule.value},
        "service": rule.service,
        "ratio": rule.ratio,
        "ttl_seconds": max(0, round(rule.expires_at - rule.created_at)),
        "created_at": rfc3339(rule.created_at),
        "expires_at": rfc3339(rule.expires_at),
    }


def _invalid(field: str, message: str) -> ApiProblem:
    return ApiProblem(422, f"{field}: {message}")


def _string(
    body: dict[str, Any], name: str, field: str, *, limit: int, required: bool = False
) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(field, "is required")
        return ""
    if not isinstance(value, str):
        raise _invalid(field, f"must be a string, got {json.dumps(value)}")
    if required and not value:
        raise _invalid(field, "must not be empty")
    if len(value) > limit:
        raise _invalid(field, f"must be at most {limit} characters, got {len(value)}")
    return value


def _check_fields(body: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for name in body:
        if name not in known:
            raise _invalid(f"{prefix}{name}", f"unknown field (known: {', '.join(known)})")


def _ratio(body: dict[str, Any]) -> float:
    value = body.get("ratio")
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid("ratio", f"must be a number, got {json.dumps(value)}")
    if not (math.isfinite(value) and 0 < value <= 1):
        raise _invalid("ratio", f"must be > 0 and <= 1, got {value}")
    return float(value)


def _ttl(body: dict[str, Any]) -> int:
    value = body.get("ttl_seconds")
    if value is None:
        return DEFAULT_TTL_SECONDS
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("ttl_seconds", f"must be an integer, got {json.dumps(value)}")
    if not 1 <= value <= MAX_TTL_SECONDS:
        raise _invalid("ttl_seconds", f"must be between 1 and {MAX_TTL_SECONDS}, got {value}")
    return value


def parse_rule_request(body: Any, rule_id: str, now_s: float) -> StoredDyeRule:
    """The rule a POST body asks for; raises ApiProblem(422) naming the field."""
    if not isinstance(body, dict):
        raise _invalid("body", "must be a JSON object")
    _check_fields(body, _FIELDS, "")
    match = body.get("match")
    if not isinstance(match, dict):
        given = "is required" if match is None else f"must be an object, got {json.dumps(match)}"
        raise _invalid("match", given)
    _check_fields(match, _MATCH_FIELDS, "match.")
    kind = match.get("kind")
    if kind not in MATCH_KINDS:
        raise _invalid(
            "match.kind", f"must be one of {', '.join(MATCH_KINDS)}, got {json.dumps(kind)}"
        )
    key = _string(match, "key", "match.key", limit=MAX_KEY_LENGTH, required=kind == "header")
    if kind == "header":
        if not _TOKEN.match(key):
            raise _invalid("match.key", f"must be an HTTP header name, got {json.dumps(key)}")
        key = key.lower()  # header names are case-insensitive
    value = _string(match, "value", "match.value", limit=MAX_VALUE_LENGTH, required=True)
    # The dye a match gives must fit in baggage (tracing.dyeing.DyeRule).
    dye = f"header:{key}={value}" if kind == "header" else f"{kind}:{value}"
    if len(dye) > MAX_DYE_LENGTH:
        raise _invalid(
            "match.value",
            f"the dye {dye[:20]}... would be {len(dye)} characters, at most {MAX_DYE_LENGTH}",
        )
    service = _string(body, "service", "service", limit=MAX_SERVICE_LENGTH)
    ratio = _ratio(body)
    ttl = _ttl(body)
    return StoredDyeRule(
        id=rule_id,
        kind=kind,
        key=key,
        value=value,
        service=service,
        ratio=ratio,
        created_at=now_s,
        expires_at=now_s + ttl,
    )


class DyeRulesAPI:
    """The dye rules routes over a :class:`~tinct.storage.base.DyeRuleStore`.

    Args:
        store: returns the store, or ``None`` while it is opening (503).
        metrics: where store call durations are observed.
        admin_token: required as a bearer token by writes; ``None`` or ""
            leaves writes open.
        clock: Unix time in nanoseconds (tests pin it).
        new_id: makes rule ids (16 random hex digits by default).
    """

    def __init__(
        self,
        store: Callable[[], object | None],
        metrics: SelfMetrics,
        *,
        admin_token: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._token = admin_token.encode() if admin_token else None
        self._clock = clock
        self._new_id = new_id

    def routes(self) -> list[BaseRoute]:
        """The routes, to include in the main app."""
        return [
            Route(DYE_RULES_PATH, guard(self._list, "dye rules"), methods=["GET"]),
            Route(DYE_RULES_PATH, guard(self._create, "dye rules"), methods=["POST"]),
            Route(
                DYE_RULES_PATH + "/{rule_id}", guard(self._delete, "dye rules"), methods=["DELETE"]
            ),
        ]

    def _now_s(self) -> float:
        return self._clock() / 1e9

    def _authorize(self, request: Request) -> None:
        if self._token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise ApiProblem(
                401, "authorization: this write needs 'Authorization: Bearer <admin token>'"
            )
        if not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise ApiProblem(403, "authorization: wrong admin token")

    async def _call(self, operation: str, call: Callable[[DyeRuleStore], T]) -> T:
        store = self._store()
        if store is None:
            raise ApiProblem(503, "store: tinct is starting, the store is not open yet")
        if not isinstance(store, DyeRuleStore):
            raise ApiProblem(501, "store: this store does not keep dye rules")
        histogram = self._metrics.store_query_duration.labels(operation)

        def timed() -> T:
            with histogram.time():
                return call(store)

        return await run_in_threadpool(timed)

    async def _list(self, request: Request) -> Response:
        service = request.query_params.get("service") or None
        now_s = self._now_s()
        rules = await self._call("dye_rules", lambda s: s.dye_rules(now_s, service))
        return JSONResponse({"rules": [rule_json(r) for r in rules]})

    async def _create(self, request: Request) -> Response:
        self._authorize(request)
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiProblem(413, f"body: must be at most {MAX_BODY_BYTES} bytes, got {len(raw)}")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiProblem(400, f"body: not valid JSON: {exc}") from None
        rule = parse_rule_request(body, self._new_id(), self._now_s())
        await self._call("add_dye_rule", lambda s: s.add_dye_rule(rule))
        logger.info(
            "dye rule %s added: %s:%s service=%r ratio=%g until %s",
            rule.id,
            rule.kind,
            rule.value,
            rule.service,
            rule.ratio,
            rfc3339(rule.expires_at),
        )
        return JSONResponse(rule_json(rule), 201)

    async def _delete(self, request: Request) -> Response:
        self._authorize(request)
        rule_id = request.path_params["rule_id"]
        now_s = self._now_s()
        ended = await self._call("end_dye_rule", lambda s: s.end_dye_rule(rule_id, now_s))
        if not ended:
            raise ApiProblem(404, f"id: no live dye rule {rule_id!r}")
        logger.info("dye rule %s ended", rule_id)
        return Response(status_code=204)
