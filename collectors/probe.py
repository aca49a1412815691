"""Synthetic HTTP(S) probes: the user layer's view of a URL, under blackbox_exporter's names.

What a user gets from a page (does it answer, how fast, over which TLS, with
which certificate) is measured the way Prometheus users already measure it,
with blackbox_exporter's http prober (https://github.com/prometheus/blackbox_exporter:
``prober/http.go``, ``utils.go``, ``tls.go``, ``handler.go``). Its families,
types and meanings are kept, so dashboards and alert rules written for it
work unchanged on what tinct stores.

One :meth:`HttpProbe.collect` is one probe, made as blackbox_exporter's client
makes it: a new connection (keep-alives disabled), no compression asked for
(prometheus/common's transport sets ``DisableCompression``), up to 10
redirects followed, ``probe_http_duration_seconds{phase}`` summed over them.

The phases are timed on the socket, so each is what it says: ``resolve`` is
``socket.getaddrinfo`` (skipped for an IP literal, as Go's resolver does),
``connect`` the TCP ``connect``, ``tls`` ``SSLSocket.do_handshake``,
``processing`` from the connection being ready to the first response byte
(sending the request included, as Go's ``GotConn`` → ``GotFirstResponseByte``),
``transfer`` from that byte to the end of the body. ``http.client`` parses the
response from a reader that notes when the first byte arrives.

A probe that fails (refused, timed out, TLS refused, a bad status, a regex) is
not a :class:`CollectError`: as with blackbox_exporter it reports
``probe_success 0`` and the phases that completed, and the target's ``up``
stays 1. Every network step is bounded by what is left of ``timeout``. Only a
broken configuration raises: :class:`ConfigError` when the probe is built,
:class:`CollectError` when ``tls_config.ca_file`` cannot be loaded.

Where tinct differs from blackbox_exporter, and why:

* HTTP/1.1 only (blackbox_exporter negotiates HTTP/2 over TLS and then reports
  ``probe_http_version 2``): ``http.client`` speaks HTTP/1.x.
* ``preferred_ip_protocol`` defaults to ``ip4`` (there: ``ip6``): what tinct
  probes is mostly reached over IPv4 loopback or LAN.
* All five phases are always reported, 0 when not reached (there: only
  ``resolve`` when resolution fails), so the series set does not churn.
* ``connect`` counts once TCP is up even if the TLS handshake fails (there:
  only with a connection ready for HTTP): that time was spent connecting.
* The certificates the server sent are read with ``get_unverified_chain``
  (public from Python 3.13, a private ``_ssl`` method on 3.10–3.12); without
  it only the leaf counts for ``probe_ssl_earliest_cert_expiry``.
* A body over ``body_size_limit`` does not set ``probe_failed_due_to_regex``
  (there it does when regexes are configured: its regex reader hits the limit).
* Not measured: ``probe_tls_cipher_info`` (OpenSSL's cipher names are not
  Go's IANA names), ``probe_ssl_last_chain_info``, header regexes, cookies.
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import http.client
import io
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import SplitResult, urljoin, urlsplit

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily

from tinct import __version__
from tinct.collectors.probe_module import ProbeModule, parse_module
from tinct.errors import CollectError, ConfigError

__all__ = ["PHASES", "TIMEOUT_OFFSET", "HttpProbe"]

logger = logging.getLogger(__name__)

# blackbox_exporter's --timeout-offset default: a probe gets the scrape timeout
# less this, so it ends with probe_success 0 before the scrape times out (up 0).
TIMEOUT_OFFSET = 0.5
PHASES = ("resolve", "connect", "tls", "processing", "transfer")

_USER_AGENT = f"tinct/{__version__}"
_MAX_REDIRECTS = 10  # blackbox_exporter's CheckRedirect
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Dropped on a redirect to another host (net/http client.go, makeHeadersCopier).
_SENSITIVE = frozenset({"authorization", "www-authenticate", "cookie", "cookie2"})
# Go's time.Time{}.Unix(): the last chain expiry blackbox_exporter reports
# when no chain was verified (insecure_skip_verify).
_GO_ZERO_TIME = -62135596800.0
# ssl.SSLSocket.version() -> tls.go getTLSVersion's label.
_TLS_VERSIONS = {
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
_CHUNK = 64 * 1024
# Help texts as blackbox_exporter registers them.
_HELP = {
    "probe_success": "Displays whether or not the probe was a success",
    "probe_duration_seconds": "Returns how long the probe took to complete in seconds",
    "probe_dns_lookup_time_seconds": "Returns the time taken for probe dns lookup in seconds",
    "probe_ip_protocol": "Specifies whether probe ip protocol is IP4 or IP6",
    "probe_ip_addr_hash": "Specifies the hash of IP address. It's useful to detect if the "
    "IP address changes.",
    "probe_http_duration_seconds": "Duration of http request by phase, summed over all redirects",
    "probe_http_status_code": "Response HTTP status code",
    "probe_http_content_length": "Length of http content response",
    "probe_http_uncompressed_body_length": "Length of uncompressed response body",
    "probe_http_version": "Returns the version of HTTP of the probe response",
    "probe_http_ssl": "Indicates if SSL was used for the final redirect",
    "probe_http_redirects": "The number of redirects",
    "probe_failed_due_to_regex": "Indicates if probe failed due to regex",
    "probe_http_last_modified_timestamp_seconds": "Returns the Last-Modified HTTP response "
    "header in unixtime",
    "probe_ssl_earliest_cert_expiry": "Returns last SSL chain expiry in unixtime",
    "probe_ssl_last_chain_expiry_timestamp_seconds": "Returns last SSL chain expiry in timestamp",
    "probe_tls_version_info": "Returns the TLS version used or NaN when unknown",
}


@dataclass
class _Result:
    """What one probe found; each default is what blackbox_exporter reports when unset."""

    success: bool = False
    error: str = ""
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    dns_lookup: float = 0.0
    ip_protocol: float = 0.0
    ip_hash: float = 0.0
    status: int = 0
    content_length: float = 0.0
    body_length: int = 0
    http_version: float = 0.0
    redirects: int = 0
    failed_regex: bool = False
    tls: _TlsInfo | None = None  # the final response's, when it came over TLS
    last_modified: float | None = None


# (probe_tls_version_info's version, earliest certificate expiry, last chain expiry)
_TlsInfo = tuple[str, float, float]


@dataclass
class _Hop:
    """One request of a probe (the first, or one a redirect asked for)."""

    url: SplitResult
    method: str
    authority: str  # the Host header
    headers: dict[str, str]
    address: tuple[int, Any] | None = None  # (family, sockaddr) once resolved


class _ProbeFailed(Exception):
    """The probe failed for a reason no network exception names."""


class HttpProbe:
    """Probes one URL as blackbox_exporter's http prober does.

    Args:
        url: the URL; ``http://`` is assumed without a scheme (as blackbox_exporter).
        timeout: seconds the whole probe may take, every network step included
            (discovery passes the scrape timeout less :data:`TIMEOUT_OFFSET`).
        options: a :class:`ProbeModule`, or a mapping :func:`parse_module` reads.

    Raises:
        ConfigError: the URL or an option is invalid (named).

    Attributes:
        last_error: why the last probe failed; "" when it succeeded.

    ``collect`` blocks for at most about ``timeout`` seconds (a DNS lookup
    still running then finishes in a daemon thread). One thread at a time.
    """

    up_metric: str | None = None

    def __init__(
        self, url: str, *, timeout: float, options: ProbeModule | Mapping[str, Any] | None = None
    ) -> None:
        if not timeout > 0:
            raise ConfigError(f"probe timeout must be > 0 seconds, got {timeout!r}")
        self.module = options if isinstance(options, ProbeModule) else parse_module(options)
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ConfigError(f"probe target {url!r} is not an http or https URL")
        try:
            _authority(parts)  # a bad port or host name raises
        except (ValueError, UnicodeError) as exc:
            raise ConfigError(f"probe target {url!r} is not a valid URL: {exc}") from None
        if not parts.hostname:
            raise ConfigError(f"probe target {url!r} has no host")
        self.url = url
        self.timeout = float(timeout)
        self.last_error = ""
        self._parts = parts
        self._context: ssl.SSLContext | None = None

    def collect(self) -> list[Metric]:
        """Probe once; blackbox_exporter's families.

        Raises:
            CollectError: ``tls_config.ca_file`` cannot be loaded. A failed
                probe does not raise.
        """
        started = time.perf_counter()
        result = _Result()
        try:
            self._probe(result, started + self.timeout)
        except (OSError, http.client.HTTPException, ValueError, _ProbeFailed) as exc:
            result.success, result.error = False, _describe(exc)
        duration = time.perf_counter() - started
        self.last_error = result.error
        if result.error:
            logger.debug("probe of %s failed: %s", self.url, result.error)
        return _families(result, duration)

    def _probe(self, result: _Result, deadline: float) -> None:
        module = self.module
        headers = {k: v for k, v in module.headers.items() if k.lower() != "host"}
        host = next((v for k, v in module.headers.items() if k.lower() == "host"), "")
        hop = _Hop(self._parts, module.method, host or _authority(self._parts), headers)
        while True:
            response = self._round_trip(hop, result, deadline, first=hop.url is self._parts)
            location = response.getheader("Location")
            if response.status not in _REDIRECT_CODES or location is None:
                break
            # CheckRedirect counts len(via), then refuses the 11th redirect, or any
            # when not following; net/http then returns that response, body closed.
            result.redirects += 1
            response.close()
            if not module.follow_redirects or result.redirects > _MAX_REDIRECTS:
                result.phases["transfer"] += time.perf_counter() - response.first_byte
                self._judge(result, response, b"", "")
                return
            hop = _next_hop(hop, response.status, location)
        body, error = self._read_body(response, result)
        self._judge(result, response, body, error)

    def _round_trip(
        self, hop: _Hop, result: _Result, deadline: float, *, first: bool
    ) -> _TimedResponse:
        """Connect, send the request and read the response head, timing each phase."""
        url = hop.url
        if hop.address is None:
            begin = time.perf_counter()
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                hop.address = self._resolve(url.hostname or "", port, deadline, result, first)
            finally:
                # chooseProtocol's deferred lookupTime: counted when it fails too.
                result.phases["resolve"] += time.perf_counter() - begin
                if first:
                    result.dns_lookup = result.phases["resolve"]
        context = self._tls_context() if url.scheme == "https" else None  # not timed
        conn = socket.socket(hop.address[0], socket.SOCK_STREAM)
        try:
            begin = time.perf_counter()
            conn.settimeout(_remaining(deadline))
            conn.connect(hop.address[1])
            ready = time.perf_counter()
            result.phases["connect"] += ready - begin
            tls: _TlsInfo | None = None
            if context is not None:
                name = _host_of(hop.authority)  # blackbox_exporter's ServerName
                tls_conn = context.wrap_socket(
                    conn, server_hostname=name, do_handshake_on_connect=False
                )
                conn = tls_conn  # it owns the file descriptor now
                tls_conn.settimeout(_remaining(deadline))
                tls_conn.do_handshake()
                begin, ready = ready, time.perf_counter()
                result.phases["tls"] += ready - begin
                tls = _tls_info(tls_conn)
            conn.settimeout(_remaining(deadline))
            conn.sendall(_request(hop))
            response = _TimedResponse(_TimedReader(conn, deadline), hop.method, tls, ready)
            response.begin()
            result.phases["processing"] += response.first_byte - ready
            return response
        except BaseException:
            conn.close()
            raise

    def _read_body(self, response: _TimedResponse, result: _Result) -> tuple[bytes, str]:
        """(the body if a regex needs it, why reading it failed or "")."""
        module = self.module
        keep = module.fail_if_body_matches_regexp or module.fail_if_body_not_matches_regexp
        chunks: list[bytes] = []
        error = ""
        try:
            while chunk := response.read(_CHUNK):
                result.body_length += len(chunk)
                if module.body_size_limit and result.body_length > module.body_size_limit:
                    # Go's http.MaxBytesReader: more than the limit is an error.
                    error = f"body longer than body_size_limit {module.body_size_limit}"
                    break
                if keep:
                    chunks.append(chunk)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"reading the body: {_describe(exc)}"
        finally:
            result.phases["transfer"] += time.perf_counter() - response.first_byte
            response.close()
        return b"".join(chunks), error

    def _judge(self, result: _Result, response: _TimedResponse, body: bytes, error: str) -> None:
        """Decide success in ProbeHTTP's order and note what it reports."""
        module = self.module
        result.status = response.status
        result.http_version = response.version / 10
        result.content_length = float(_content_length(response))
        result.tls = response.tls
        codes = module.valid_status_codes
        ok = response.status in codes if codes else 200 <= response.status < 300
        error = error if ok else f"status {response.status} is not valid"
        regexes = module.fail_if_body_matches_regexp or module.fail_if_body_not_matches_regexp
        if ok and regexes and not error:
            text = body.decode("utf-8", "replace")  # Go's regexp: bad UTF-8 is U+FFFD
            matched = [p for p in module.fail_if_body_matches_regexp if p.search(text)]
            missed = [p for p in module.fail_if_body_not_matches_regexp if not p.search(text)]
            if matched:
                error = f"body matched {matched[0].pattern!r}"
            elif missed:
                error = f"body did not match {missed[0].pattern!r}"
            result.failed_regex = bool(error)
        if response.tls is not None and module.fail_if_ssl:
            error = "the final response came over TLS (fail_if_ssl)"
        elif response.tls is None and module.fail_if_not_ssl and not error:
            error = "the final response was not over TLS (fail_if_not_ssl)"
        result.success, result.error = not error, error
        if modified := response.getheader("Last-Modified"):
            try:
                result.last_modified = email.utils.parsedate_to_datetime(modified).timestamp()
            except (TypeError, ValueError):
                pass  # http.ParseTime fails: blackbox_exporter reports nothing

    def _resolve(
        self, host: str, port: int, deadline: float, result: _Result, first: bool
    ) -> tuple[int, Any]:
        """(family, sockaddr) for ``host`` by blackbox_exporter's ``chooseProtocol``.

        The first hop's choice is what ``probe_ip_protocol`` and
        ``probe_ip_addr_hash`` report.
        """
        try:
            ip = ipaddress.ip_address(host)
            family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            infos = [(family, (host, port) if ip.version == 4 else (host, port, 0, 0))]
        except ValueError:
            infos = [(info[0], info[4]) for info in _getaddrinfo(host, port, deadline)]
        module = self.module
        preferred = socket.AF_INET if module.preferred_ip_protocol == "ip4" else socket.AF_INET6
        chosen = next((i for i in infos if i[0] == preferred), None)
        if chosen is None and module.ip_protocol_fallback:
            chosen = next((i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)), None)
        if chosen is None:
            raise _ProbeFailed(f"{host}: no {module.preferred_ip_protocol} address")
        if first:
            ip = ipaddress.ip_address(str(chosen[1][0]).split("%", 1)[0])
            result.ip_protocol, result.ip_hash = float(ip.version), _ip_hash(ip)
        return chosen

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            module = self.module
            if module.insecure_skip_verify:  # Go: neither the chain nor the name is checked
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                try:
                    context = ssl.create_default_context(cafile=module.ca_file or None)
                except OSError as exc:  # ssl.SSLError included
                    raise CollectError(
                        f"tls_config.ca_file {module.ca_file}: cannot load: {_describe(exc)}"
                    ) from exc
            self._context = context
        return self._context


class _TimedReader(io.RawIOBase):
    """A socket's bytes, each read bounded by the deadline, the first byte's time noted.

    Closing it closes the socket (``http.client`` closes its reader once the
    body is read, or on ``HTTPResponse.close``).
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self.first_byte = 0.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        count = self._sock.recv_into(buffer)
        if count and not self.first_byte:
            self.first_byte = time.perf_counter()
        return count

    def close(self) -> None:
        self._sock.close()
        super().close()

    def makefile(self, mode: str) -> io.BufferedReader:
        """What ``http.client.HTTPResponse`` asks of the socket it is given."""
        return io.BufferedReader(self, _CHUNK)


class _TimedResponse(http.client.HTTPResponse):
    """An HTTP/1.x response read through a :class:`_TimedReader`.

    Attributes:
        tls: what the handshake gave; None for plain HTTP.
        ready: when the connection was ready for the request (Go's ``GotConn``).
    """

    def __init__(self, reader: _TimedReader, method: str, tls: _TlsInfo | None, ready: float):
        super().__init__(cast(socket.socket, reader), method=method)
        self._reader = reader
        self.tls = tls
        self.ready = ready

    @property
    def first_byte(self) -> float:
        return self._reader.first_byte or self.ready


def _next_hop(hop: _Hop, status: int, location: str) -> _Hop:
    """The request a redirect asks for, made as Go's net/http client makes it."""
    url = urlsplit(urljoin(hop.url.geturl(), location))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise _ProbeFailed(f"redirect to {location!r} is not an http(s) URL")
    method = hop.method
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method = "GET"
    if not urlsplit(location).netloc:
        # Relative: same connection target, and the Host header is kept (Go issue 22233).
        return _Hop(url, method, hop.authority, hop.headers, hop.address)
    headers = hop.headers
    if url.hostname != hop.url.hostname:
        headers = {k: v for k, v in headers.items() if k.lower() not in _SENSITIVE}
    return _Hop(url, method, _authority(url), headers)


def _request(hop: _Hop) -> bytes:
    url = hop.url
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    lines = [f"{hop.method} {target} HTTP/1.1", f"Host: {hop.authority}"]
    names = {name.lower() for name in hop.headers}
    if "user-agent" not in names:
        lines.append(f"User-Agent: {_USER_AGENT}")
    if url.username is not None and "authorization" not in names:
        userinfo = f"{url.username}:{url.password or ''}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(userinfo).decode()}")
    lines.extend(f"{name}: {value}" for name, value in hop.headers.items())
    if hop.method in ("POST", "PUT", "PATCH") and "content-length" not in names:
        lines.append("Content-Length: 0")  # what net/http sends for these without a body
    lines.append("Connection: close")  # keep-alives disabled
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _authority(url: SplitResult) -> str:
    """``host[:port]`` of a URL: IDNA host, no user info. Raises ValueError when invalid."""
    host = (url.hostname or "").encode("idna").decode("ascii")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{url.port}" if url.port is not None else host


def _host_of(authority: str) -> str:
    if authority.startswith("["):
        return authority[1 : authority.find("]")]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _getaddrinfo(host: str, port: int, deadline: float) -> list[Any]:
    """``socket.getaddrinfo``, bounded by the deadline.

    The C resolver cannot be interrupted, so it runs in a daemon thread left to
    finish on its own when the deadline passes first.
    """
    box: list[Any] = []

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            box.append(exc)

    thread = threading.Thread(target=lookup, name="tinct-probe-dns", daemon=True)
    thread.start()
    thread.join(_remaining(deadline))
    if not box:
        raise TimeoutError(f"resolving {host} timed out")
    if isinstance(box[0], OSError):
        raise box[0]
    return cast(list[Any], box[0])


def _remaining(deadline: float) -> float:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("probe timed out")
    return left


def _content_length(response: http.client.HTTPResponse) -> int:
    """Go's ``Response.ContentLength``: -1 when unknown (chunked, or read to close)."""
    if "chunked" in (response.getheader("Transfer-Encoding") or "").lower():
        return -1
    value = (response.getheader("Content-Length") or "").strip()
    if value.isdigit():
        return int(value)
    return 0 if response.status in (204, 304) or response.status < 200 else -1


def _ip_hash(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> float:
    """utils.go's ``ipHash``: 32-bit FNV-1a of the address bytes.

    Go's resolver and ``net.ParseIP`` hold an IPv4 address in its 16-byte
    IPv4-mapped form (``::ffff:a.b.c.d``), and that is what gets hashed.
    """
    data = ip.packed if ip.version == 6 else b"\0" * 10 + b"\xff\xff" + ip.packed
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return float(value)


def _tls_info(sock: ssl.SSLSocket) -> _TlsInfo:
    """The TLS families' values, read right after the handshake.

    tls.go: ``getTLSVersion``; ``getEarliestCertExpiry`` over the certificates
    the peer sent; ``getLastChainExpiry`` over the verified chains (OpenSSL
    builds one), Go's zero time when nothing was verified.
    """
    version = _TLS_VERSIONS.get(sock.version() or "", "unknown")
    sent = _chain(sock, "get_unverified_chain")
    if not sent and (leaf := sock.getpeercert(binary_form=True)):
        sent = [leaf]
    expiries = [t for t in map(_not_after, sent) if t is not None]
    earliest = float(min(expiries)) if expiries else _GO_ZERO_TIME
    verified = _chain(sock, "get_verified_chain") if sock.context.verify_mode else []
    chain = [t for t in map(_not_after, verified) if t is not None]
    return version, earliest, float(min(chain)) if chain else _GO_ZERO_TIME


def _chain(sock: ssl.SSLSocket, method: str) -> list[bytes]:
    """DER certificates from ``SSLSocket.<method>`` (3.13+) or the private ``_ssl`` one."""
    public = getattr(sock, method, None)
    if public is not None:
        return list(public() or [])
    private = getattr(getattr(sock, "_sslobj", None), method, None)
    if private is None:
        return []
    der = ssl._ssl.ENCODING_DER  # type: ignore[attr-defined]
    return [cert.public_bytes(der) for cert in private() or []]


def _not_after(der: bytes) -> int | None:
    """A DER certificate's notAfter in Unix seconds; None when unreadable.

    RFC 5280 section 4.1: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
    [0] version OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE {
    notBefore, notAfter }, ...}, ...}; the time forms are section 4.1.2.5's.
    """
    try:
        _, (start, _end) = _tlv(der, 0)  # Certificate
        _, (pos, _end) = _tlv(der, start)  # tbsCertificate
        tag, span = _tlv(der, pos)
        skip = 4 if tag == 0xA0 else 3  # [version,] serialNumber, signature, issuer
        for _ in range(skip):
            pos = span[1]
            tag, span = _tlv(der, pos)
        _, (first, _end) = _tlv(der, pos)  # validity
        _, before = _tlv(der, first)
        tag, (start, end) = _tlv(der, before[1])
        text = der[start:end].decode("ascii")
    except (IndexError, UnicodeDecodeError, ValueError):
        return None
    if tag == 0x17 and len(text) == 13:  # UTCTime YYMMDDHHMMSSZ, YY >= 50 meaning 19YY
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif tag != 0x18 or len(text) != 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        return None
    try:
        return calendar.timegm(time.strptime(text, "%Y%m%d%H%M%SZ"))
    except ValueError:
        return None


def _tlv(der: bytes, pos: int) -> tuple[int, tuple[int, int]]:
    """(tag, (content start, content end)) of the DER element at ``pos`` (X.690 section 8.1)."""
    tag, length, start = der[pos], der[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[start : start + count], "big"), start + count
    if start + length > len(der):
        raise ValueError("truncated DER")
    return tag, (start, start + length)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or exc.reason}"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _families(result: _Result, duration: float) -> list[Metric]:
    """The gauges blackbox_exporter's handler and http prober register."""
    values = {
        "probe_success": result.success,
        "probe_duration_seconds": duration,
        "probe_dns_lookup_time_seconds": result.dns_lookup,
        "probe_ip_protocol": result.ip_protocol,
        "probe_ip_addr_hash": result.ip_hash,
        "probe_http_status_code": result.status,
        "probe_http_content_length": result.content_length,
        "probe_http_uncompressed_body_length": result.body_length,
        "probe_http_version": result.http_version,
        "probe_http_ssl": result.tls is not None,
        "probe_http_redirects": result.redirects,
        "probe_failed_due_to_regex": result.failed_regex,
    }
    if result.last_modified is not None:
        values["probe_http_last_modified_timestamp_seconds"] = result.last_modified
    if result.tls is not None:
        values["probe_ssl_earliest_cert_expiry"] = result.tls[1]
        values["probe_ssl_last_chain_expiry_timestamp_seconds"] = result.tls[2]
    families: list[Metric] = [
        GaugeMetricFamily(name, _HELP[name], value=float(value)) for name, value in values.items()
    ]
    phases = GaugeMetricFamily(
        "probe_http_duration_seconds", _HELP["probe_http_duration_seconds"], labels=["phase"]
    )
    for phase in PHASES:
        phases.add_metric([phase], result.phases[phase])
    families.append(phases)
    if result.tls is not None:
        name = "probe_tls_version_info"
        version = GaugeMetricFamily(name, _HELP[name], labels=["version"])
        version.add_metric([result.tls[0]], 1.0)
        families.append(version)
    return families
