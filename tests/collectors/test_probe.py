"""HTTP(S) probes against a real nginx: blackbox_exporter's families, true phases, bounded time.

A user who moves from blackbox_exporter expects the same series with the
same meaning: ``probe_success`` 0 (not a down target) for a refused, silent,
untrusted or wrong answer; the certificate's real expiry; a TLS phase that
is the handshake. Every sample is checked against the catalog, and probes
run through config, discovery and the scheduler into a store.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Metric

from tests.servers import free_port
from tests.servers_cache import silent_port
from tests.servers_tls import STATIC_BODY, STATIC_MTIME, TlsNginx, tls_nginx
from tinct.catalog import CATALOG
from tinct.collectors.config import discover_targets, parse_collection_config
from tinct.collectors.probe import HttpProbe
from tinct.collectors.scheduler import Scheduler
from tinct.errors import CollectError, ConfigError
from tinct.metrics import Matcher
from tinct.storage import InMemoryMetricStore

GO_ZERO_TIME = -62135596800.0  # Go's time.Time{}.Unix()
INSECURE: dict[str, Any] = {"tls_config": {"insecure_skip_verify": True}}


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNginx]:
    with tls_nginx(tmp_path_factory.mktemp("nginx-tls")) as server:
        yield server


@dataclass
class Probed:
    values: dict[str, float]  # unlabelled samples by name
    phases: dict[str, float]
    tls_versions: dict[str, float]
    error: str
    seconds: float  # wall time of collect()


def probe(url: str, timeout: float = 3.0, **module: Any) -> Probed:
    """One probe; every sample checked against the catalog with the labels collection adds."""
    collector = HttpProbe(url, timeout=timeout, options=module)
    started = time.monotonic()
    families = collector.collect()
    seconds = time.monotonic() - started
    assert_conforms(families, url)
    values, phases, versions = {}, {}, {}
    for family in families:
        for sample in family.samples:
            if sample.name == "probe_http_duration_seconds":
                phases[sample.labels["phase"]] = sample.value
            elif sample.name == "probe_tls_version_info":
                versions[sample.labels["version"]] = sample.value
            else:
                assert not sample.labels, sample
                values[sample.name] = sample.value
    return Probed(values, phases, versions, collector.last_error, seconds)


def assert_conforms(families: list[Metric], url: str) -> None:
    problems = []
    for family in families:
        spec = CATALOG.get(family.name)
        assert spec is not None, family.name
        assert family.type == spec.type.value, (family.name, family.type)
        for sample in family.samples:
            labels = {**sample.labels, "layer": "user", "instance": url, "job": "probe"}
            problems += CATALOG.problems(sample.name, labels)
    assert problems == []


def fnv1a_32(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = (value ^ byte) * 0x01000193 % 2**32
    return value


# -- against nginx -------------------------------------------------------------------------


@pytest.mark.server
def test_https_probe_reports_tls_phases_and_the_certificate(nginx: TlsNginx) -> None:
    got = probe(nginx.https(), **INSECURE)
    v = got.values
    assert got.error == ""
    assert v["probe_success"] == 1
    assert v["probe_http_status_code"] == 200
    assert v["probe_http_ssl"] == 1
    assert v["probe_http_version"] == 1.1
    assert v["probe_http_content_length"] == 3  # "ok\n"
    assert v["probe_http_uncompressed_body_length"] == 3
    assert v["probe_http_redirects"] == 0
    assert v["probe_failed_due_to_regex"] == 0
    assert v["probe_ssl_earliest_cert_expiry"] == nginx.not_after
    # Nothing was verified: blackbox_exporter reports Go's zero time.
    assert v["probe_ssl_last_chain_expiry_timestamp_seconds"] == GO_ZERO_TIME
    assert got.tls_versions == {"TLS 1.3": 1.0}
    assert v["probe_ip_protocol"] == 4
    mapped = ipaddress.IPv6Address("::ffff:127.0.0.1").packed  # Go hashes this form
    assert v["probe_ip_addr_hash"] == fnv1a_32(mapped)
    assert set(got.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
    assert got.phases["connect"] > 0
    assert got.phases["tls"] > 0
    assert got.phases["processing"] > 0
    assert got.phases["transfer"] > 0
    assert sum(got.phases.values()) <= v["probe_duration_seconds"]
    assert v["probe_dns_lookup_time_seconds"] == got.phases["resolve"]


@pytest.mark.server
def test_an_untrusted_certificate_fails_the_probe_not_the_collection(nginx: TlsNginx) -> None:
    got = probe(nginx.https())
    assert got.values["probe_success"] == 0
    assert "certificate" in got.error
    assert got.values["probe_http_ssl"] == 0  # no response came
    assert got.values["probe_http_status_code"] == 0
    assert "probe_ssl_earliest_cert_expiry" not in got.values
    assert got.phases["connect"] > 0
    assert got.phases["tls"] == got.phases["processing"] == 0


@pytest.mark.server
def test_ca_file_trusts_the_certificate_for_its_ip_and_name(nginx: TlsNginx) -> None:
    for url in (nginx.https(), f"https://localhost:{nginx.https_port}/"):
        got = probe(url, tls_config={"ca_file": str(nginx.cert)})
        assert got.values["probe_success"] == 1, (url, got.error)
        assert got.values["probe_ssl_earliest_cert_expiry"] == nginx.not_after
        assert got.values["probe_ssl_last_chain_expiry_timestamp_seconds"] == nginx.not_after
        assert got.values["probe_ip_protocol"] == 4  # localhost: ip4 preferred over ::1


@pytest.mark.server
def test_body_regexes_fail_the_probe_and_say_so(nginx: TlsNginx) -> None:
    page = nginx.http("/static/page.html")
    matched = probe(page, fail_if_body_matches_regexp=["hello from"])
    assert matched.values["probe_success"] == 0
    assert matched.values["probe_failed_due_to_regex"] == 1
    missing = probe(page, fail_if_body_not_matches_regexp=["^nothing like this"])
    assert missing.values["probe_success"] == 0
    assert missing.values["probe_failed_due_to_regex"] == 1
    fine = probe(
        page,
        fail_if_body_matches_regexp=["error"],
        fail_if_body_not_matches_regexp=[r"(?i)HELLO\s+from"],
    )
    assert fine.values["probe_success"] == 1
    assert fine.values["probe_failed_due_to_regex"] == 0


@pytest.mark.server
def test_status_codes(nginx: TlsNginx) -> None:
    missing = probe(nginx.http("/missing/page"))
    assert missing.values["probe_success"] == 0
    assert missing.values["probe_http_status_code"] == 404
    assert missing.values["probe_failed_due_to_regex"] == 0
    accepted = probe(nginx.http("/missing/page"), valid_status_codes=[404])
    assert accepted.values["probe_success"] == 1


@pytest.mark.server
def test_plain_http_and_the_ssl_checks(nginx: TlsNginx) -> None:
    plain = probe(nginx.http())
    assert plain.values["probe_success"] == 1
    assert plain.values["probe_http_ssl"] == 0
    assert plain.phases["tls"] == 0
    assert plain.tls_versions == {}
    assert "probe_ssl_earliest_cert_expiry" not in plain.values
    assert probe(nginx.http(), fail_if_not_ssl=True).values["probe_success"] == 0
    assert probe(nginx.https(), fail_if_ssl=True, **INSECURE).values["probe_success"] == 0


@pytest.mark.server
def test_redirects_are_followed_and_counted(nginx: TlsNginx) -> None:
    followed = probe(nginx.https("/redirect"), **INSECURE)
    assert followed.values["probe_success"] == 1
    assert followed.values["probe_http_redirects"] == 1
    assert followed.values["probe_http_status_code"] == 200
    assert followed.values["probe_http_ssl"] == 1
    stopped = probe(nginx.https("/redirect"), no_follow_redirects=True, **INSECURE)
    assert stopped.values["probe_success"] == 0
    assert stopped.values["probe_http_redirects"] == 1  # CheckRedirect's len(via)
    assert stopped.values["probe_http_status_code"] == 302


@pytest.mark.server
def test_last_modified_and_body_size_limit(nginx: TlsNginx) -> None:
    page = nginx.http("/static/page.html")
    got = probe(page)
    assert got.values["probe_http_last_modified_timestamp_seconds"] == STATIC_MTIME
    assert got.values["probe_http_content_length"] == len(STATIC_BODY)
    limited = probe(page, body_size_limit=len(STATIC_BODY) - 1)
    assert limited.values["probe_success"] == 0
    assert limited.values["probe_http_status_code"] == 200
    assert "body_size_limit" in limited.error
    assert probe(page, body_size_limit=len(STATIC_BODY)).values["probe_success"] == 1


# -- ports that never answer -------------------------------------------------------------


def test_a_closed_port_fails_at_once() -> None:
    port = free_port()  # nothing listens there now
    for url in (f"http://127.0.0.1:{port}/", f"https://127.0.0.1:{port}/"):
        got = probe(url, timeout=3.0, **INSECURE)
        assert got.values["probe_success"] == 0
        assert "refused" in got.error.lower()
        assert got.seconds < 3.5
        assert got.phases["connect"] == 0


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_silent_port_fails_within_the_timeout(scheme: str) -> None:
    with silent_port() as port:
        got = probe(f"{scheme}://127.0.0.1:{port}/", timeout=1.0, **INSECURE)
    assert got.values["probe_success"] == 0
    assert "timed out" in got.error
    assert 0.9 <= got.seconds < 1.5
    assert got.values["probe_duration_seconds"] < 1.5


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://x/", {"methd": "GET"}, "module.methd: unknown field (known: body_size_limit,"),
        ("http://x/", {"tls_config": {"cert_file": "c"}}, "module.tls_config.cert_file: unknown"),
        ("http://x/", {"valid_status_codes": ["ok"]}, "valid_status_codes[0]: 'ok' is not a"),
        ("http://x/", {"fail_if_body_matches_regexp": ["(?=x)"]}, "matches_regexp[0]: '(?=x)'"),
        ("http://x/", {"preferred_ip_protocol": "ip5"}, "'ip5' is not ip4 or ip6"),
        ("http://x/", {"headers": {"X-A": "b\r\nc"}}, "module.headers.X-A: not a valid"),
        ("ftp://x/", {}, "is not an http or https URL"),
        ("http://x:99999/", {}, "is not a valid URL"),
    ],
)
def test_bad_settings_are_config_errors(url: str, options: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        HttpProbe(url, timeout=1.0, options=options)
    assert message in str(info.value)


def test_an_unreadable_ca_file_is_a_collect_error(tmp_path: Path) -> None:
    collector = HttpProbe(
        "https://127.0.0.1:1/", timeout=1.0, options={"tls_config": {"ca_file": "missing.pem"}}
    )
    with pytest.raises(CollectError, match="tls_config.ca_file"):
        collector.collect()


PROBES_YAML = """
collectors:
  host: {enabled: false}
  probes:
    - job_name: shop-https
      scrape_interval: 15s
      scrape_timeout: 5s
      module: {method: GET, valid_status_codes: [200], tls_config: {insecure_skip_verify: true}}
      static_configs:
        - targets: ["https://127.0.0.1:8443/health"]
          labels: {service: shop}
    - module: {body_size_limit: 1KB, tls_config: {ca_file: certs/ca.pem}}
      file_sd_configs: [{files: [probes/*.yml]}]
      relabel_configs:
        - {source_labels: [__address__], regex: ".*/skip", action: drop}
        - {source_labels: [__meta_filepath], regex: ".*/(.*)\\\\.yml", target_label: sd}
"""


def test_probes_config_to_targets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "web.yml").write_text(
        "- targets: [http://127.0.0.1:8080/, http://127.0.0.1:8080/skip, example.org, 'ftp://x']"
    )
    config = parse_collection_config(yaml.safe_load(PROBES_YAML), path=tmp_path / "tinct.yaml")
    shop, default = config.probes
    assert default.job_name == "probe"
    assert default.module.body_size_limit == 1024
    assert default.module.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert shop.module.valid_status_codes == (200,)
    with caplog.at_level(logging.WARNING):
        targets = {t.scrape_url: t for t in discover_targets(config)}
    assert "'ftp://x' is not an http or https URL" in caplog.text
    assert set(targets) == {
        "https://127.0.0.1:8443/health",
        "http://127.0.0.1:8080/",
        "http://example.org",
    }
    target = targets["https://127.0.0.1:8443/health"]
    assert target.labels == {
        "job": "shop-https",
        "instance": "https://127.0.0.1:8443/health",
        "layer": "user",
        "service": "shop",
    }
    assert (target.interval, target.timeout) == (15.0, 5.0)
    assert isinstance(target.collector, HttpProbe)
    assert target.collector.timeout == 4.5  # blackbox_exporter's 0.5 s offset
    assert target.collector.module.insecure_skip_verify
    assert targets["http://example.org"].labels["instance"] == "example.org"
    assert targets["http://127.0.0.1:8080/"].labels["sd"] == "web"


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        ([{"module": {"bogus": 1}}], "collectors.probes[0].module.bogus: unknown field"),
        ([{"metrics_path": "/x"}], "collectors.probes[0].metrics_path: not used by probes"),
        ([{"module": {"body_size_limit": "lots"}}], "module.body_size_limit: 'lots' is not a"),
        ([{}, {}], "collectors.probes[1].job_name: 'probe' is already used"),
        ({"job_name": "x"}, "collectors.probes: must be a list"),
    ],
)
def test_probe_config_errors_name_the_field(probes: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_collection_config({"collectors": {"probes": probes}})
    assert message in str(info.value)


# -- through the scheduler into a store ----------------------------------------------------------


@pytest.mark.server
def test_probes_through_the_scheduler(nginx: TlsNginx) -> None:
    with silent_port() as silent:
        doc = {
            "collectors": {
                "host": {"enabled": False},
                "probes": [
                    {
                        "job_name": "shop",
                        "scrape_interval": "15s",
                        "scrape_timeout": "3s",
                        "module": INSECURE,
                        "static_configs": [
                            {"targets": [nginx.https()], "labels": {"service": "shop"}}
                        ],
                    },
                    {
                        "job_name": "silent",
                        "scrape_interval": "15s",
                        "scrape_timeout": "2s",
                        "static_configs": [{"targets": [f"http://127.0.0.1:{silent}/"]}],
                    },
                ],
            }
        }
        targets = {t.job: t for t in discover_targets(parse_collection_config(doc))}
        store = InMemoryMetricStore()
        scheduler = Scheduler(store.write_samples, store.write_metadata, clock=lambda: 1.8e9)
        try:
            assert scheduler.scrape_once(targets["shop"]).health == "up"
            started = time.monotonic()
            health = scheduler.scrape_once(targets["silent"])
            took = time.monotonic() - started
        finally:
            scheduler.close()
    # The probe failed, the prober worked: up 1, probe_success 0, and on time.
    assert health.health == "up", health.last_error
    assert took < 2.0
    successes = {}
    for series in store.series([Matcher("__name__", "=", "probe_success")], 0, 10**13):
        (value,) = store.samples([series.fingerprint], 0, 10**13).column("value").to_pylist()
        successes[series.labels["job"]] = value
        assert series.labels["layer"] == "user"
        assert series.labels["instance"] == targets[series.labels["job"]].scrape_url
    assert successes == {"shop": 1.0, "silent": 0.0}
    problems = []
    for series in store.series([], 0, 10**13):
        problems += CATALOG.problems(series.name, series.labels)
    assert problems == []
    for meta in store.metadata():
        spec = CATALOG.get(meta.metric)
        assert spec is not None and meta.type == spec.type.value, meta
