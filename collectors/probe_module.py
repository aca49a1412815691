"""What a probe does: blackbox_exporter's ``http`` module settings, read and checked once.

A user's blackbox.yml module carries over as the ``module`` of a
``collectors.probes`` entry: the keys below mean what they mean in
blackbox_exporter's configuration
(https://github.com/prometheus/blackbox_exporter/blob/master/CONFIGURATION.md,
``<http_probe>``), with its defaults except ``preferred_ip_protocol`` (``ip4``
here). Keys tinct does not implement are refused by name rather than ignored,
since ignoring one would change what the probe checks.
:class:`tinct.collectors.probe.HttpProbe` runs a :class:`ProbeModule`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinct.errors import ConfigError
from tinct.goregex import compile_go_regex

__all__ = ["ProbeModule", "parse_module"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 section 5.6.2
_MODULE_KEYS = (
    "method headers valid_status_codes fail_if_ssl fail_if_not_ssl fail_if_body_matches_regexp "
    "fail_if_body_not_matches_regexp tls_config preferred_ip_protocol ip_protocol_fallback "
    "no_follow_redirects follow_redirects body_size_limit"
).split()
_TLS_KEYS = ["insecure_skip_verify", "ca_file"]


@dataclass(frozen=True)
class ProbeModule:
    """How to probe: the part of blackbox_exporter's ``http`` module tinct reads.

    Attributes:
        method: request method.
        headers: request headers; ``Host`` replaces the URL's authority (and the TLS name).
        valid_status_codes: statuses that pass; empty for any 2xx.
        fail_if_ssl: fail when the final response came over TLS.
        fail_if_not_ssl: fail when it did not.
        fail_if_body_matches_regexp: fail when one matches the body (RE2, unanchored).
        fail_if_body_not_matches_regexp: fail when one does not.
        insecure_skip_verify: accept any certificate for any name.
        ca_file: PEM file of the CAs to trust instead of the system's; "" for those.
        preferred_ip_protocol: ``ip4`` or ``ip6``.
        ip_protocol_fallback: use the other protocol when the preferred has no address.
        follow_redirects: follow up to 10 redirects.
        body_size_limit: fail when the body is longer than this many bytes; 0 for no limit.
    """

    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    valid_status_codes: tuple[int, ...] = ()
    fail_if_ssl: bool = False
    fail_if_not_ssl: bool = False
    fail_if_body_matches_regexp: tuple[re.Pattern[str], ...] = ()
    fail_if_body_not_matches_regexp: tuple[re.Pattern[str], ...] = ()
    insecure_skip_verify: bool = False
    ca_file: str = ""
    preferred_ip_protocol: str = "ip4"
    ip_protocol_fallback: bool = True
    follow_redirects: bool = True
    body_size_limit: int = 0


def parse_module(
    raw: Mapping[str, Any] | None, where: str = "module", *, directory: Path | None = None
) -> ProbeModule:
    """Read a probe module in blackbox_exporter's ``http`` layout.

    Args:
        raw: the mapping (None for the defaults); ``body_size_limit`` in bytes.
        where: its place in the config, for messages.
        directory: the config file's folder; a relative ``tls_config.ca_file``
            is read from there, as blackbox_exporter does.

    Raises:
        ConfigError: an unknown key or a bad value, named, e.g.
            ``module.valid_status_codes[0]: 'ok' is not a status code``.
    """
    body = _mapping(raw, where, _MODULE_KEYS)
    tls = _mapping(body.get("tls_config"), f"{where}.tls_config", _TLS_KEYS)
    method = _text(body.get("method", "GET"), f"{where}.method")
    if not _TOKEN.fullmatch(method):
        raise ConfigError(f"{where}.method: {method!r} is not an HTTP method")
    headers = {}
    for name, value in _mapping(body.get("headers"), f"{where}.headers").items():
        text = _text(value, f"{where}.headers.{name}")
        if not _TOKEN.fullmatch(str(name)) or "\r" in text or "\n" in text:
            raise ConfigError(f"{where}.headers.{name}: not a valid header name and value")
        headers[str(name)] = text
    codes = _list(body.get("valid_status_codes"), f"{where}.valid_status_codes")
    for i, code in enumerate(codes):
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
            raise ConfigError(f"{where}.valid_status_codes[{i}]: {code!r} is not a status code")
    protocol = _text(body.get("preferred_ip_protocol", "ip4"), f"{where}.preferred_ip_protocol")
    if protocol not in ("ip4", "ip6"):
        raise ConfigError(f"{where}.preferred_ip_protocol: {protocol!r} is not ip4 or ip6")
    # Current blackbox_exporter configs say follow_redirects, older ones no_follow_redirects.
    follow = _bool(body, "follow_redirects", where, True)
    if _bool(body, "no_follow_redirects", where, False):
        if body.get("follow_redirects") is True:
            raise ConfigError(f"{where}: set one of follow_redirects and no_follow_redirects")
        follow = False
    limit = body.get("body_size_limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"{where}.body_size_limit: {limit!r} is not a size in bytes >= 0")
    ca_file = ""
    if tls.get("ca_file") is not None:
        path = Path(_text(tls["ca_file"], f"{where}.tls_config.ca_file")).expanduser()
        ca_file = str(directory / path if directory and not path.is_absolute() else path)
    return ProbeModule(
        method=method,
        headers=headers,
        valid_status_codes=tuple(codes),
        fail_if_ssl=_bool(body, "fail_if_ssl", where, False),
        fail_if_not_ssl=_bool(body, "fail_if_not_ssl", where, False),
        fail_if_body_matches_regexp=_regexes(body, "fail_if_body_matches_regexp", where),
        fail_if_body_not_matches_regexp=_regexes(body, "fail_if_body_not_matches_regexp", where),
        insecure_skip_verify=_bool(tls, "insecure_skip_verify", f"{where}.tls_config", False),
        ca_file=ca_file,
        preferred_ip_protocol=protocol,
        ip_protocol_fallback=_bool(body, "ip_protocol_fallback", where, True),
        follow_redirects=follow,
        body_size_limit=limit,
    )


def _mapping(raw: Any, where: str, known: list[str] | None = None) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = [key for key in raw if known is not None and key not in known]
    if unknown:
        names = ", ".join(sorted(known or ()))
        raise ConfigError(f"{where}.{unknown[0]}: unknown field (known: {names})")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if raw is not None and not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list")
    return raw or []


def _text(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f"{where}: {raw!r} is not a string")
    return str(raw)


def _bool(body: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    raw = body.get(key)
    if raw is not None and not isinstance(raw, bool):
        raise ConfigError(f"{where}.{key}: {raw!r} is not true or false")
    return default if raw is None else raw


def _regexes(body: Mapping[str, Any], key: str, where: str) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for i, raw in enumerate(_list(body.get(key), f"{where}.{key}")):
        text = _text(raw, f"{where}.{key}[{i}]")
        try:
            patterns.append(compile_go_regex(text))
        except ValueError as exc:
            raise ConfigError(
                f"{where}.{key}[{i}]: {text!r} is not a valid regexp: {exc}"
            ) from None
    return tuple(patterns)
