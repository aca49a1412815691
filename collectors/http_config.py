"""How a scrape authenticates: ``basic_auth``, ``authorization`` and ``bearer_token``.

These are the authentication parts of Prometheus's HTTP client config
(prometheus/common ``config/http_config.go``, documented under
``<scrape_config>`` at
https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config),
checked as its ``HTTPClientConfig.Validate`` checks them: one way to
authenticate per job, ``bearer_token`` read as an ``authorization`` of type
Bearer, no ``authorization`` of type Basic. Secrets given as ``*_file`` are
paths relative to the config file, read (and trimmed, as Prometheus does)
each time the headers are built, so a rotated token is picked up at the
next discovery. Secrets are kept out of ``repr``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinct.errors import ConfigError

__all__ = ["AUTH_KEYS", "Authorization", "BasicAuth", "auth_headers", "parse_auth"]

logger = logging.getLogger(__name__)

AUTH_KEYS = ("basic_auth", "authorization", "bearer_token", "bearer_token_file")
_BASIC_KEYS = ("username", "password", "username_file", "password_file")
_AUTHORIZATION_KEYS = ("type", "credentials", "credentials_file")


@dataclass(frozen=True)
class BasicAuth:
    """``basic_auth``: inline values or files (paths already resolved)."""

    username: str = ""
    password: str = field(default="", repr=False)
    username_file: str = ""
    password_file: str = ""


@dataclass(frozen=True)
class Authorization:
    """``authorization``: ``<type> <credentials>`` in the Authorization header."""

    type: str = "Bearer"
    credentials: str = field(default="", repr=False)
    credentials_file: str = ""


def parse_auth(
    body: Mapping[str, Any], where: str, directory: Path | None
) -> tuple[BasicAuth | None, Authorization | None]:
    """The authentication settings of one scrape config.

    Args:
        body: the scrape config mapping (other keys are ignored here).
        where: its place in the config file, for messages.
        directory: the config file's folder, for relative ``*_file`` paths.

    Raises:
        ConfigError: naming the setting.
    """
    basic: BasicAuth | None = None
    authorization: Authorization | None = None
    if body.get("basic_auth") is not None:
        values = _strings(body["basic_auth"], f"{where}.basic_auth", _BASIC_KEYS)
        for name in ("username", "password"):
            if name in values and f"{name}_file" in values:
                raise ConfigError(f"{where}.basic_auth: set {name} or {name}_file, not both")
        for name in ("username_file", "password_file"):
            if name in values:
                values[name] = _resolve(values[name], directory)
        basic = BasicAuth(**values)
    bearer = _strings(
        {k: body[k] for k in ("bearer_token", "bearer_token_file") if body.get(k)}, where, ()
    )
    if len(bearer) == 2:
        raise ConfigError(f"{where}: set bearer_token or bearer_token_file, not both")
    if body.get("authorization") is not None:
        here = f"{where}.authorization"
        values = _strings(body["authorization"], here, _AUTHORIZATION_KEYS)
        kind = values.get("type", "").strip() or "Bearer"
        if kind.lower() == "basic":
            raise ConfigError(f'{here}.type: cannot be "Basic", use basic_auth instead')
        if "credentials" in values and "credentials_file" in values:
            raise ConfigError(f"{here}: set credentials or credentials_file, not both")
        if bearer:
            raise ConfigError(f"{here}: cannot be used with bearer_token or bearer_token_file")
        credentials_file = values.get("credentials_file", "")
        authorization = Authorization(
            kind,
            values.get("credentials", ""),
            _resolve(credentials_file, directory) if credentials_file else "",
        )
    elif bearer:
        token_file = bearer.get("bearer_token_file", "")
        authorization = Authorization(
            "Bearer",
            bearer.get("bearer_token", ""),
            _resolve(token_file, directory) if token_file else "",
        )
    if basic is not None and authorization is not None:
        raise ConfigError(f"{where}: set one of basic_auth, authorization or bearer_token")
    return basic, authorization


def auth_headers(
    basic: BasicAuth | None, authorization: Authorization | None, job: str
) -> dict[str, str]:
    """The ``Authorization`` header to send, reading secret files now.

    A file that can't be read is logged and the header left out (the scrape
    then fails with the target's 401, as Prometheus's would fail). Blocks on
    file I/O.
    """
    if basic is not None:
        username = _secret(basic.username, basic.username_file, job)
        password = _secret(basic.password, basic.password_file, job)
        if username is None or password is None:
            return {}
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    if authorization is not None:
        credentials = _secret(authorization.credentials, authorization.credentials_file, job)
        if credentials is None:
            return {}
        return {"Authorization": f"{authorization.type} {credentials}"}
    return {}


def _secret(value: str, file: str, job: str) -> str | None:
    if not file:
        return value
    try:
        return Path(file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        logger.warning("job %s: cannot read %s, scraping without credentials: %s", job, file, exc)
        return None


def _strings(raw: Any, where: str, known: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping ({', '.join(known)})")
    values = {}
    for key, value in raw.items():
        if known and key not in known:
            raise ConfigError(f"{where}.{key}: unknown field (known: {', '.join(known)})")
        if value is None or value == "":
            continue
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: {value!r} is not a string")
        values[str(key)] = str(value)
    return values


def _resolve(name: str, directory: Path | None) -> str:
    path = Path(name).expanduser()
    return str(directory / path if directory is not None and not path.is_absolute() else path)
