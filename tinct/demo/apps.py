"""The six demo services' routes: a small shop behind a gateway.

::

    gateway   GET /catalog            -> inventory GET /items
              GET /orders/{id}        -> users GET /users/{id}, orders GET /orders/{id}
              POST /orders            -> users GET /users/{id}, orders POST /orders
    users     GET /users/{id}         Redis (profile cache) + PostgreSQL
    orders    GET /orders/{id}        PostgreSQL
              POST /orders            -> inventory POST /reserve, payments POST /charge,
                                         notifications POST /notify; PostgreSQL
    inventory GET /items, POST /reserve   Redis (catalog cache) + PostgreSQL
    payments  POST /charge            PostgreSQL
    notifications POST /notify

The user is the ``x-user-id`` header, passed on to every hop so each server
span carries ``enduser.id``. A failed notification does not fail the order
(logged as a warning, the client span shows the error); a failed charge does.
Records of each request are logged at DEBUG (exported only for dyed requests,
tinct.tracing.logging), failures at WARNING/ERROR.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from tinct.demo.stores import Cache, Database

__all__ = ["AppContext", "HTTPError", "Route", "SKUS", "routes_for"]

SKUS = tuple(f"sku-{n:03d}" for n in range(1, 25))
_TIMEOUT_SECONDS = 10.0


class HTTPError(Exception):
    """Answer the request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    user: str | None
    body: dict[str, Any]


Handler = Callable[[Request], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. /orders/{id}
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class AppContext:
    """What a service's handlers use: its peers, database, cache and logger."""

    name: str
    urls: dict[str, str]  # service -> base URL
    db: Database | None
    cache: Cache
    session: requests.Session
    logger: logging.Logger
    rng: random.Random

    def call(self, service: str, method: str, path: str, user: str | None, body: Any = None) -> Any:
        """Call a peer; its JSON answer. Raises HTTPError(502, ...) when it fails."""
        headers = {"x-user-id": user} if user else {}
        try:
            response = self.session.request(
                method,
                self.urls[service] + path,
                json=body,
                headers=headers,
                timeout=_TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            raise HTTPError(502, f"{service} unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            try:
                reason = response.json().get("error", response.reason)
            except ValueError:
                reason = response.reason
            status = 404 if response.status_code == 404 else 502
            raise HTTPError(status, f"{service} answered {response.status_code}: {reason}")
        return response.json()


def _route(method: str, template: str, handler: Handler) -> Route:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(method, template, re.compile(regex + r"\Z"), handler)


def _user(request: Request) -> str:
    if not request.user:
        raise HTTPError(400, "x-user-id: missing")
    return request.user


# --- gateway -----------------------------------------------------------------------


def _gateway(ctx: AppContext) -> list[Route]:
    def catalog(request: Request) -> tuple[int, Any]:
        ctx.logger.debug("catalog for user %s", request.user)
        return 200, ctx.call("inventory", "GET", "/items", request.user)

    def view_order(request: Request) -> tuple[int, Any]:
        user = _user(request)
        profile = ctx.call("users", "GET", f"/users/{user}", user)
        order = ctx.call("orders", "GET", f"/orders/{request.params['id']}", user)
        return 200, {"user": profile, "order": order}

    def place_order(request: Request) -> tuple[int, Any]:
        user = _user(request)
        ctx.call("users", "GET", f"/users/{user}", user)
        body = {"user": user, "sku": request.body.get("sku"), "qty": request.body.get("qty", 1)}
        order = ctx.call("orders", "POST", "/orders", user, body)
        ctx.logger.debug("user %s placed order %s", user, order["id"])
        return 201, order

    return [
        _route("GET", "/catalog", catalog),
        _route("GET", "/orders/{id}", view_order),
        _route("POST", "/orders", place_order),
    ]


# --- users -------------------------------------------------------------------------

_USERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT, created DOUBLE PRECISION);
"""


def _users(ctx: AppContext) -> list[Route]:
    db = ctx.db
    assert db is not None

    def get_user(request: Request) -> tuple[int, Any]:
        user = request.params["id"]
        cached = ctx.cache.get(f"user:{user}")
        if cached is not None:
            return 200, json.loads(cached)
        rows = db.query("SELECT id, name FROM users WHERE id = ?", (user,))
        if not rows:
            db.query(
                "INSERT INTO users (id, name, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (user, f"customer {user}", time.time()),
            )
            ctx.logger.info("new user %s", user)
            rows = [{"id": user, "name": f"customer {user}"}]
        ctx.cache.set(f"user:{user}", json.dumps(rows[0]), 30)
        return 200, rows[0]

    return [_route("GET", "/users/{id}", get_user)]


# --- orders ------------------------------------------------------------------------

_ORDERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id {id}, "user" TEXT, sku TEXT, qty INTEGER,
    amount DOUBLE PRECISION, status TEXT, created DOUBLE PRECISION);
"""


def _orders(ctx: AppContext) -> list[Route]:
    db = ctx.db
    assert db is not None

    def get_order(request: Request) -> tuple[int, Any]:
        order_id = request.params["id"]
        if not order_id.isdigit() or len(order_id) > 18:  # an id fits a BIGINT
            raise HTTPError(404, f"order {order_id} not found")
        rows = db.query(
            'SELECT id, "user", sku, qty, amount, status FROM orders WHERE id = ?',
            (int(order_id),),
        )
        if not rows:
            raise HTTPError(404, f"order {request.params['id']} not found")
        return 200, rows[0]

    def place(request: Request) -> tuple[int, Any]:
        user, sku, qty = request.body.get("user"), request.body.get("sku"), request.body.get("qty")
        if not isinstance(sku, str) or not isinstance(qty, int) or not 1 <= qty <= 10:
            raise HTTPError(422, "sku and qty (1..10) are required")
        item = ctx.call("inventory", "POST", "/reserve", request.user, {"sku": sku, "qty": qty})
        amount = round(item["price"] * qty, 2)
        try:
            ctx.call("payments", "POST", "/charge", request.user, {"user": user, "amount": amount})
        except HTTPError as exc:
            ctx.logger.warning("order of %s x%d for user %s failed: %s", sku, qty, user, exc)
            db.query(
                'INSERT INTO orders ("user", sku, qty, amount, status, created) '
                "VALUES (?, ?, ?, ?, 'payment_failed', ?)",
                (user, sku, qty, amount, time.time()),
            )
            raise HTTPError(502, f"payment failed: {exc}") from exc
        rows = db.query(
            'INSERT INTO orders ("user", sku, qty, amount, status, created) '
            "VALUES (?, ?, ?, ?, 'placed', ?) RETURNING id",
            (user, sku, qty, amount, time.time()),
        )
        order_id = rows[0]["id"]
        try:
            ctx.call("notifications", "POST", "/notify", request.user, {"order": order_id})
        except HTTPError as exc:
            ctx.logger.warning("order %s placed, but no confirmation sent: %s", order_id, exc)
        ctx.logger.info("order %s placed: %s x%d for user %s", order_id, sku, qty, user)
        return 201, {"id": order_id, "amount": amount, "status": "placed"}

    return [_route("GET", "/orders/{id}", get_order), _route("POST", "/orders", place)]


# --- inventory ---------------------------------------------------------------------

_INVENTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (sku TEXT PRIMARY KEY, price DOUBLE PRECISION, stock INTEGER);
"""


def _seed_inventory(db: Database, rng: random.Random) -> None:
    for sku in SKUS:
        db.query(
            "INSERT INTO items (sku, price, stock) VALUES (?, ?, 1000) ON CONFLICT DO NOTHING",
            (sku, rng.randint(200, 9999) / 100),
        )


def _inventory(ctx: AppContext) -> list[Route]:
    db = ctx.db
    assert db is not None

    def items(request: Request) -> tuple[int, Any]:
        cached = ctx.cache.get("catalog")
        if cached is not None:
            return 200, json.loads(cached)
        rows = db.query("SELECT sku, price, stock FROM items ORDER BY sku")
        ctx.cache.set("catalog", json.dumps(rows), 5)
        return 200, rows

    def reserve(request: Request) -> tuple[int, Any]:
        sku, qty = request.body.get("sku"), request.body.get("qty")
        if not isinstance(qty, int):
            raise HTTPError(422, "qty must be an integer")
        # Restock instead of running out: the demo runs for hours.
        rows = db.query(
            "UPDATE items SET stock = CASE WHEN stock >= ? THEN stock - ? ELSE stock + 1000 END "
            "WHERE sku = ? RETURNING sku, price, stock",
            (qty, qty, sku),
        )
        if not rows:
            raise HTTPError(404, f"no item {sku}")
        ctx.cache.delete("catalog")
        return 200, rows[0]

    return [_route("GET", "/items", items), _route("POST", "/reserve", reserve)]


# --- payments ----------------------------------------------------------------------

_PAYMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id {id}, "user" TEXT, amount DOUBLE PRECISION, created DOUBLE PRECISION);
"""


def _payments(ctx: AppContext) -> list[Route]:
    db = ctx.db
    assert db is not None

    def charge(request: Request) -> tuple[int, Any]:
        amount = request.body.get("amount")
        if not isinstance(amount, int | float) or amount <= 0:
            raise HTTPError(422, "amount must be a positive number")
        time.sleep(ctx.rng.uniform(0.005, 0.03))  # the card processor
        rows = db.query(
            'INSERT INTO payments ("user", amount, created) VALUES (?, ?, ?) RETURNING id',
            (request.body.get("user"), amount, time.time()),
        )
        return 200, {"payment": rows[0]["id"], "amount": amount}

    return [_route("POST", "/charge", charge)]


# --- notifications -----------------------------------------------------------------


def _notifications(ctx: AppContext) -> list[Route]:
    def notify(request: Request) -> tuple[int, Any]:
        time.sleep(ctx.rng.uniform(0.002, 0.01))  # the mail relay
        ctx.logger.debug("confirmation of order %s sent", request.body.get("order"))
        return 202, {"sent": True}

    return [_route("POST", "/notify", notify)]


# The DDL that differs: an auto-numbered primary key.
_ID_COLUMN = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
}

_APPS: dict[str, tuple[Callable[[AppContext], list[Route]], str | None]] = {
    "gateway": (_gateway, None),
    "users": (_users, _USERS_SCHEMA),
    "orders": (_orders, _ORDERS_SCHEMA),
    "inventory": (_inventory, _INVENTORY_SCHEMA),
    "payments": (_payments, _PAYMENTS_SCHEMA),
    "notifications": (_notifications, None),
}


def routes_for(ctx: AppContext, seed: int) -> list[Route]:
    """Create ``ctx.name``'s tables (when it has a database) and return its routes."""
    build, schema = _APPS[ctx.name]
    if schema is not None and ctx.db is not None:
        ctx.db.script(schema.replace("{id}", _ID_COLUMN[ctx.db.dialect]))
        if ctx.name == "inventory":
            _seed_inventory(ctx.db, random.Random(seed))  # prices follow --seed
    return build(ctx)
