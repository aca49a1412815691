"""A real nginx serving HTTPS (and plain HTTP) with a self-signed certificate made for the test.

The probe tests need a server whose certificate they know: it is generated
here for 127.0.0.1 and ``localhost`` (with ``cryptography`` when installed,
otherwise the ``openssl`` command), and its notAfter is read back from the
certificate itself so a test can compare what a probe reports with it.
nginx (the Debian binary) runs in the foreground on free loopback ports with
every file it writes inside the test's directory, and is stopped by PID, as
in ``tests/servers_cache.py``. A test is skipped when nginx or both
certificate tools are missing.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, stop_pid, wait_for_port

__all__ = ["STATIC_BODY", "STATIC_MTIME", "TlsNginx", "self_signed_certificate", "tls_nginx"]

# /static/page.html: its body, and the mtime nginx sends as Last-Modified.
STATIC_BODY = b"<html><body>hello from the probe test</body></html>\n"
STATIC_MTIME = 1_700_000_000

_CONF = """\
daemon off;
# One process: no workers to switch to an unprivileged user when run as root.
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{https_port} ssl;
        listen 127.0.0.1:{http_port};
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /redirect {{ return 302 /; }}
        location /missing/ {{ return 404; }}
        location /static/ {{ root {dir}; }}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@dataclass(frozen=True)
class TlsNginx:
    """A running nginx.

    Attributes:
        https_port: HTTPS port on 127.0.0.1.
        http_port: plain HTTP port on 127.0.0.1 (same locations).
        cert: the self-signed certificate (PEM), usable as a CA file.
        not_after: the certificate's notAfter, Unix seconds.
    """

    https_port: int
    http_port: int
    cert: Path
    not_after: float

    def https(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.https_port}{path}"

    def http(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"


def self_signed_certificate(directory: Path, days: int = 30) -> tuple[Path, Path, float]:
    """Write ``cert.pem`` and ``key.pem`` for 127.0.0.1 and localhost into ``directory``.

    Returns:
        (certificate, key, notAfter in Unix seconds as the certificate says).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return cert, key, _with_openssl(cert, key, days)
    return cert, key, _with_cryptography(cert, key, days)


def _with_cryptography(cert_path: Path, key_path: Path, days: int) -> float:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    after = getattr(cert, "not_valid_after_utc", None)  # cryptography >= 42
    if after is None:
        after = cert.not_valid_after.replace(tzinfo=datetime.UTC)
    return float(after.timestamp())


def _with_openssl(cert: Path, key: Path, days: int) -> float:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither cryptography nor the openssl command is installed")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days)]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-enddate"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter=")))


@contextlib.contextmanager
def tls_nginx(workdir: Path) -> Iterator[TlsNginx]:
    """nginx on HTTPS and HTTP ports: 200 "ok" at ``/``, 404 under ``/missing/``,
    a 302 to ``/`` at ``/redirect``, and :data:`STATIC_BODY` at ``/static/page.html``."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(binary, os.X_OK):
        pytest.skip("nginx is not installed (Debian package: make debs)")
    workdir.mkdir(parents=True, exist_ok=True)
    cert, _, not_after = self_signed_certificate(workdir)
    page = workdir / "static" / "page.html"
    page.parent.mkdir(exist_ok=True)
    page.write_bytes(STATIC_BODY)
    os.utime(page, (STATIC_MTIME, STATIC_MTIME))
    https_port = http_port = free_port()
    while http_port == https_port:
        http_port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(_CONF.format(dir=workdir, https_port=https_port, http_port=http_port))
    command = [binary, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    with open(workdir / "stdout.log", "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(https_port, 15, proc)
            wait_for_port(http_port, 15, proc)
            yield TlsNginx(https_port, http_port, cert, not_after)
        finally:
            stop_pid(proc)
