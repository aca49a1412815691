"""Exposition parsing: node_exporter's whole e2e output, OpenMetrics, errors,
and tinct's text parser held to prometheus_client's as the reference."""

from __future__ import annotations

import collections
import math
import random
from typing import Any

import pytest
from prometheus_client import Metric
from prometheus_client.samples import Exemplar, Timestamp

from tests.peer_suites import require_peer_suite
from tests.prometheus_server import E2E_FILE, EDGE_TEXT, openmetrics_body
from tinct.collectors.base import CollectError
from tinct.collectors.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    exposition_format,
    format_openmetrics_float,
    parse_exposition,
    parse_with_prometheus_client,
)

E2E = (require_peer_suite("exposition") / E2E_FILE).read_bytes()


def canonical(families: list[Metric]) -> list[Any]:
    """Families as comparable data (NaN equal to NaN, int and float apart)."""
    return [
        (
            f.name,
            f.documentation,
            f.type,
            f.unit,
            [
                (s.name, s.labels, repr(s.value), type(s.value), s.timestamp, s.exemplar)
                for s in f.samples
            ],
        )
        for f in families
    ]


def by_series(families: list[Metric]) -> dict[tuple[Any, ...], float]:
    return {(s.name, *sorted(s.labels.items())): s.value for f in families for s in f.samples}


def test_node_exporter_e2e_output_parses_completely() -> None:
    families = parse_exposition(E2E, TEXT_CONTENT_TYPE)
    samples = [s for f in families for s in f.samples]
    # The file: 1,228 families (HELP and TYPE each), 3,027 sample lines.
    assert len(families) == 1228
    assert len(samples) == 3027
    assert len(samples) == sum(1 for line in E2E.splitlines() if not line.startswith(b"#"))
    assert collections.Counter(f.type for f in families) == {
        "counter": 475,
        "gauge": 418,
        "unknown": 334,
        "summary": 1,
    }
    # 47 families are declared without samples (the e2e test drops go_/process_ lines).
    assert sum(1 for f in families if not f.samples) == 47
    assert all(type(s.value) is float and s.timestamp is None for s in samples)
    assert len({(s.name, *sorted(s.labels.items())) for s in samples}) == 3027


def value_of(families: list[Metric], name: str, **labels: str) -> float:
    return by_series(families)[(name, *sorted(labels.items()))]


def test_e2e_spot_checks() -> None:
    parsed = parse_exposition(E2E, TEXT_CONTENT_TYPE)
    families = {f.name: f for f in parsed}
    # Commas, colons and blanks inside a quoted value; an empty value kept.
    mitigation = (
        "Retpolines, IBPB: conditional, STIBP: always-on, RSB filling, PBRSB-eIBRS: Not affected"
    )
    spectre = {"codename": "spectre_v2", "mitigation": mitigation, "state": "mitigation"}
    assert value_of(parsed, "node_cpu_vulnerabilities_info", **spectre) == 1.0
    uuid = "7f07c59f-6136-449c-ab87-e1cf2328731b"
    assert value_of(parsed, "node_btrfs_info", label="", uuid=uuid) == 1.0
    # Go's exponent forms and negative values.
    bcache = "deaddd54-c735-46d5-868e-f331c5fd7c74"
    rate = value_of(parsed, "node_bcache_writeback_rate", backing_device="bdev0", uuid=bcache)
    assert rate == 1.150976e06
    read = value_of(parsed, "node_bcache_btree_read_average_duration_seconds", uuid=bcache)
    assert read == 1.305e-06
    wifi = {"device": "wlan0", "mac_address": "01:02:03:04:05:06"}
    assert value_of(parsed, "node_wifi_station_signal_dbm", **wifi) == -26.0
    # Counters keep the names their TYPE lines give, samples or not, so the
    # gauge go_memstats_alloc_bytes and the counter ..._total stay apart.
    assert families["go_memstats_alloc_bytes"].type == "gauge"
    assert families["go_memstats_alloc_bytes_total"].type == "counter"
    assert families["go_memstats_alloc_bytes_total"].samples == []
    # HELP text as written, parentheses and colons included; untyped is "unknown".
    infiniband = families["node_infiniband_state_id"]
    assert infiniband.documentation == (
        "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, "
        "4: active, 5: act defer)"
    )
    assert families["node_netstat_Icmp6_InErrors"].type == "unknown"
    summary = families["go_gc_duration_seconds"]
    assert (summary.type, summary.samples) == ("summary", [])


def test_e2e_output_same_as_prometheus_client() -> None:
    assert canonical(parse_exposition(E2E, TEXT_CONTENT_TYPE)) == canonical(
        parse_with_prometheus_client(E2E, TEXT_CONTENT_TYPE)
    )


def test_escapes_special_values_and_untyped_families() -> None:
    families = parse_exposition(EDGE_TEXT, TEXT_CONTENT_TYPE)
    named = {f.name: f for f in families}
    escapes = named["edge_escapes_info"]
    assert escapes.documentation == "Escapes: a backslash \\ and a newline \n in HELP."
    assert escapes.samples[0].labels == {
        "backslash": "a\\b",
        "quote": 'say "hi"',
        "newline": "one\ntwo",
        "tab": "x\\ty",  # only \\, \" and \n are escapes; \t stays as written
    }
    values = by_series(families)
    assert math.isnan(values[("edge_special", ("v", "nan"))])
    assert values[("edge_special", ("v", "inf"))] == math.inf
    assert values[("edge_special", ("v", "-inf"))] == -math.inf
    assert values[("edge_special", ("v", "big"))] == 18446744073709551615.0
    # A counter declared without _total keeps its name (prometheus_client would
    # store edge_requests_total).
    assert named["edge_requests"].samples[0].name == "edge_requests"
    # Untyped: declared so, without TYPE, without TYPE and HELP; a second HELP wins.
    assert named["edge_untyped"].type == "unknown"
    assert (named["edge_help_only"].type, named["edge_help_only"].documentation) == (
        "unknown",
        "Only HELP, no TYPE.",
    )
    assert (named["edge_no_type_no_help"].type, named["edge_no_type_no_help"].documentation) == (
        "unknown",
        "",
    )
    assert named["edge_dup_help"].documentation == "Second."
    assert named["edge_empty_label"].samples[0].labels == {"a": "", "b": "x"}


def test_le_and_quantile_normalized_as_prometheus_3_does() -> None:
    named = {f.name: f for f in parse_exposition(EDGE_TEXT, TEXT_CONTENT_TYPE)}
    buckets = [s.labels["le"] for s in named["edge_latency_seconds"].samples if "le" in s.labels]
    assert buckets == ["0.1", "1.0", "10.0", "1e+06", "+Inf"]
    quantiles = [s.labels["quantile"] for s in named["edge_rpc_seconds"].samples if s.labels]
    assert quantiles == ["0.0", "0.5", "1.0"]
    # Labels of other names, and of other types, are left as written.
    other = parse_exposition(b'# TYPE g gauge\ng{le="1",quantile="0"} 1\n', TEXT_CONTENT_TYPE)
    assert other[0].samples[0].labels == {"le": "1", "quantile": "0"}


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (-1.0, "-1.0"),
        (0.25, "0.25"),
        (10.0, "10.0"),
        (123456.0, "123456.0"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (2.5e-07, "2.5e-07"),
        (1e21, "1e+21"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_openmetrics_float_form(number: float, text: str) -> None:
    # Go: strconv.FormatFloat(f, 'g', -1, 64), ".0" added to integers.
    assert format_openmetrics_float(number) == text


def test_text_counter_names_as_written() -> None:
    body = b"""# TYPE plain counter
plain 1
# TYPE suffixed_total counter
suffixed_total 2
# TYPE empty_total counter
"""
    for parse in (parse_exposition, parse_with_prometheus_client):
        families = parse(body, TEXT_CONTENT_TYPE)
        assert [(f.name, [s.name for s in f.samples]) for f in families] == [
            ("plain", ["plain"]),
            ("suffixed_total", ["suffixed_total"]),
            ("empty_total", []),
        ]


def test_counter_declared_with_and_without_total() -> None:
    # prometheus_client's families can't tell these apart; the TYPE lines can.
    body = b"""# TYPE foo counter
foo 1
bar 2
# TYPE foo counter
foo 3
# TYPE foo_total counter
foo_total 4
# TYPE foo counter
"""
    expected = [
        ("foo", ["foo"]),
        ("bar", ["bar"]),
        ("foo", ["foo"]),
        ("foo_total", ["foo_total"]),
        ("foo", []),
    ]
    for parse in (parse_exposition, parse_with_prometheus_client):
        assert [(f.name, [s.name for s in f.samples]) for f in parse(body, "")] == expected


def test_openmetrics_timestamps_exemplars_created() -> None:
    families = {
        f.name: f
        for f in parse_exposition(openmetrics_body(1_700_000_000), OPENMETRICS_CONTENT_TYPE)
    }
    requests = families["om_requests"]
    assert (requests.type, requests.documentation) == ("counter", "Requests served.")
    total, created = requests.samples
    assert (total.name, total.labels, total.value) == ("om_requests_total", {"code": "200"}, 5.0)
    assert total.timestamp == Timestamp(1_699_999_997, 250_000_000)
    assert total.exemplar == Exemplar(
        {"trace_id": "abc"}, 1.0, Timestamp(1_699_999_997, 250_000_000)
    )
    assert (created.name, created.value) == ("om_requests_created", 1.7e9)
    latency = families["om_latency_seconds"]
    assert (latency.type, latency.unit) == ("histogram", "seconds")
    assert [s.name for s in latency.samples] == [
        "om_latency_seconds_bucket",
        "om_latency_seconds_bucket",
        "om_latency_seconds_bucket",
        "om_latency_seconds_sum",
        "om_latency_seconds_count",
        "om_latency_seconds_created",
    ]
    assert latency.samples[0].exemplar == Exemplar({"trace_id": "x"}, 0.05)
    assert families["om_build"].samples[0].name == "om_build_info"
    assert [s.labels for s in families["om_state"].samples] == [
        {"om_state": "a"},
        {"om_state": "b"},
    ]
    assert families["om_temperature_celsius"].samples[0].labels == {"esc": 'a\\b"c\nd'}
    assert all(type(s.value) is float for f in families.values() for s in f.samples)


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [
        ("", "text"),
        ("text/plain; version=0.0.4; charset=utf-8", "text"),
        ("text/plain", "text"),
        ("text/html", "text"),  # Prometheus 2.x falls back to the text format
        ("not a media type;;", "text"),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics"),
        ("Application/OpenMetrics-Text;version=0.0.1", "openmetrics"),
    ],
)
def test_format_chosen_by_content_type(content_type: str, fmt: str) -> None:
    assert exposition_format(content_type) == fmt


def test_protobuf_refused() -> None:
    with pytest.raises(CollectError, match="protobuf"):
        parse_exposition(
            b"",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;"
            " encoding=delimited",
        )


def test_text_body_served_as_openmetrics_fails_without_eof() -> None:
    with pytest.raises(CollectError, match=r"openmetrics exposition, line 2: .*EOF"):
        parse_exposition(b"a 1\nb 2\n", OPENMETRICS_CONTENT_TYPE)


@pytest.mark.parametrize(
    ("body", "content_type", "line", "text"),
    [
        (b"ok 1\n# TYPE x gauge\nx{a=b} 1\nlater 2\n", TEXT_CONTENT_TYPE, 3, "x{a=b} 1"),
        (b"ok 1\n\nbad value here\n", TEXT_CONTENT_TYPE, 3, "bad value here"),
        (b'ok 1\nok{a="1",a="2"} 1\n', TEXT_CONTENT_TYPE, 2, 'ok{a="1",a="2"} 1'),
        (b"# TYPE c counter\nc_total NaN\n# EOF\n", OPENMETRICS_CONTENT_TYPE, 2, "c_total NaN"),
        (b"a 1\n# EOF\nb 2\n", OPENMETRICS_CONTENT_TYPE, 3, "b 2"),
    ],
)
def test_errors_name_the_line(body: bytes, content_type: str, line: int, text: str) -> None:
    with pytest.raises(CollectError) as failed:
        parse_exposition(body, content_type)
    message = str(failed.value)
    assert f"line {line}:" in message
    assert text in message


def test_invalid_utf8_names_the_line() -> None:
    with pytest.raises(CollectError, match=r"text exposition, line 2: not valid UTF-8"):
        parse_exposition(b'a 1\nb{x="\xff"} 1\n', "")


def test_lines_outside_the_fast_grammar_fall_back_to_prometheus_client() -> None:
    # Blanks and tabs where exporters write one space, a timestamp, comments:
    # prometheus_client accepts these, so tinct does too, the same way.
    body = b"""# a comment with TYPE in it
  spaced   {a="b" , c="d"}   1
tabbed\t2\t1700000000000
# HELP h x
h 3
"""
    families = parse_exposition(body, TEXT_CONTENT_TYPE)
    assert canonical(families) == canonical(parse_with_prometheus_client(body, TEXT_CONTENT_TYPE))
    values = by_series(families)
    assert values[("spaced", ("a", "b"), ("c", "d"))] == 1.0
    assert families[1].samples[0].timestamp == 1_700_000_000.0


def test_own_parser_matches_prometheus_client_on_mutated_bodies() -> None:
    """A seeded fuzz: every body either parses the same both ways or is left
    to prometheus_client (same errors then, by construction)."""
    from tinct.collectors.exposition import _parse_text_fast

    lines = EDGE_TEXT.decode().splitlines() + E2E.decode().splitlines()[3000:3060]
    lines += [
        "# TYPE foo counter",
        "foo 1",
        "foo_total 2",
        "# TYPE foo_total counter",
        "# TYPE h histogram",
        'h_bucket{le="1"} 1',
        "h_sum 1",
        "h_count 1",
        'a{b="c",} 1',
        'a{b="c\\\\d\\"e\\nf"} 1',
        "a 1 1700000000000",
        "a +Inf",
        "# HELP a doc \\\\ \\n",
        "# HELP a",
        'a{b="}"} 1',
        'a{b=","} 1',
    ]
    noise = ' \t"\\{}=,#_.0123456789eE+-aN'
    rng = random.Random(20240611)
    agreed = 0
    for _ in range(3000):
        body = [rng.choice(lines) for _ in range(rng.randint(1, 10))]
        for i, line in enumerate(body):
            roll = rng.random()
            if roll < 0.15 and line:
                at = rng.randrange(len(line) + 1)
                body[i] = line[:at] + rng.choice(noise) + line[at:]
            elif roll < 0.25 and line:
                at = rng.randrange(len(line))
                body[i] = line[:at] + line[at + 1 :]
        text = "\n".join(body) + "\n"
        fast = _parse_text_fast(text)
        if fast is None:
            continue
        assert canonical(fast) == canonical(parse_with_prometheus_client(text.encode(), "")), text
        agreed += 1
    assert agreed > 500
