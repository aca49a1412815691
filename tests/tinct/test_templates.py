"""Alert templates render as Prometheus renders them.

Most cases are Prometheus's own (``template/template_test.go``,
``TestTemplateExpansion``), run through tinct's data model: the input the Go
test passes as ``.`` is bound here with ``{{ $x := ... }}`` or a query result.
"""

from __future__ import annotations

import math

import pytest

from tinct.alerting.templates import TemplateError, check, render

URL = "http://testhost:9090/path/prefix"


def _render(text: str, *, value: float = 0.0, labels: dict[str, str] | None = None, rows=None):
    def query(_: str):
        return rows or []

    return render(
        text,
        labels=labels or {"job": "api", "instance": "h:9090"},
        value=value,
        external_labels={"cluster": "eu1"},
        external_url=URL,
        query=query,
        timestamp_ms=0,
        name="test",
    )


METRIC_A = ({"__name__": "metric", "instance": "a"}, (0, 11.0))
METRIC_B = ({"__name__": "metric", "instance": "b"}, (0, 21.0))


@pytest.mark.parametrize(
    ("text", "rows", "want"),
    [
        ("plain text", None, "plain text"),
        ("{{ 1 }}", None, "1"),
        ('{{ "<b>" }}', None, "<b>"),
        ('{{ "<b>" | safeHtml }}', None, "<b>"),
        ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', None, "1 2"),
        ('{{ query "1.5" | first | value }}', [({}, (0, 1.5))], "1.5"),
        ("{{ query \"metric{instance='a'}\" | first | value }}", [METRIC_A], "11"),
        ('{{ query "metric{instance=\'a\'}" | first | label "instance" }}', [METRIC_A], "a"),
        (
            "{{ query \"metric{__value__='a'}\" | first | strvalue }}",
            [({"__name__": "metric", "__value__": "a"}, (0, 11.0))],
            "a",
        ),
        ('{{ query "metric{instance=\'a\'}" | first | label "foo" }}', [METRIC_A], ""),
        ('{{ $x := query "metric" | first }}{{ $x.Labels.foo }}', [METRIC_A], ""),
        (
            '{{ range query "metric" | sortByLabel "instance" }}'
            "{{.Labels.instance}}:{{.Value}}: {{end}}",
            [METRIC_B, METRIC_A],
            "a:11: b:21: ",
        ),
        ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', None, "xa"),
        ('{{ reReplaceAll "a*" "X" "baaac" }}', None, "XbXcX"),
        ('{{ "aa bb CC" | title }}', None, "Aa Bb CC"),
        ('{{ "aa bb CC" | toUpper }}', None, "AA BB CC"),
        ('{{ "aA bB CC" | toLower }}', None, "aa bb cc"),
        ('{{ match "a+" "aa" }} {{ match "a+" "b" }}', None, "true false"),
        ('{{ graphLink "up" }}', None, "/graph?g0.expr=up&g0.tab=0"),
        ('{{ tableLink "up" }}', None, "/graph?g0.expr=up&g0.tab=1"),
        (
            '{{ graphLink "rate(x[5m]) > 1" }}',
            None,
            "/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=0",
        ),
        ("{{ pathPrefix }}", None, "/path/prefix"),
        ("{{ externalURL }}", None, URL),
        ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}', None, "3720.01"),
        ('{{ "foo.example.com" | stripPort }}', None, "foo.example.com"),
        ('{{ "foo.example.com:12345" | stripPort }}', None, "foo.example.com"),
        ('{{ "192.0.2.1:12345" | stripPort }}', None, "192.0.2.1"),
        ('{{ "2001:0DB8::1" | stripPort }}', None, "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]:12345" | stripPort }}', None, "2001:0DB8::1"),
        ('{{ "[2001:0DB8::1]::12345" | stripPort }}', None, "[2001:0DB8::1]::12345"),
        ('{{ "foo.example.com" | stripDomain }}', None, "foo"),
        ('{{ "foo.example.com:12345" | stripDomain }}', None, "foo:12345"),
        ('{{ "192.0.2.1:12345" | stripDomain }}', None, "192.0.2.1:12345"),
        ('{{ "[2001:0DB8::1]:12345" | stripDomain }}', None, "[2001:0DB8::1]:12345"),
        ('{{ (1435065584.128 | toTime).Format "2006" }}', None, "2015"),
        ('{{ ("1435065584.128" | toTime).Format "2006" }}', None, "2015"),
        ("{{ 1435065584.128 | humanizeTimestamp }}", None, "2015-06-23 13:19:44.128 +0000 UTC"),
        ('{{ "1435065584.128" | humanizeTimestamp }}', None, "2015-06-23 13:19:44.128 +0000 UTC"),
        (
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:"
            "{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
            None,
            "-22.22%:0%:12.35%:123.5%",
        ),
    ],
)
def test_prometheus_template_cases(text: str, rows, want: str) -> None:
    assert _render(text, rows=rows) == want


@pytest.mark.parametrize(
    ("func", "inputs", "want"),
    [
        ("humanize", [0.0, 1.0, 1234567.0, 0.12], "0:1:1.235M:120m:"),
        ("humanize", ['"0.0"', '"1.0"', '"1234567.0"', '".12"'], "0:1:1.235M:120m:"),
        ("humanize", [0, -1, 1, 1234567, 9223372036854775807], "0:-1:1:1.235M:9.223E:"),
        ("humanize1024", [0.0, 1.0, 1048576.0, 0.12], "0:1:1Mi:0.12:"),
        ("humanize1024", [0, -1, 1, 1234567, 9223372036854775807], "0:-1:1:1.177Mi:8Ei:"),
        (
            "humanizeDuration",
            [
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600,
                -(86400 * 2 + 3600 * 3 + 60 * 4 + 5.0),
                899.99,
            ],
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:",
        ),
        (
            "humanizeDuration",
            [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
            "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:",
        ),
        ("humanizeDuration", [0, -1, 1, 1234567], "0s:-1s:1s:14d 6h 56m 7s:"),
        ("humanizePercentage", [0, -1, 1, 1234567], "0%:-100%:100%:1.235e+08%:"),
        (
            "humanizeTimestamp",
            [0, -1, 1, 1234567, 9223372036],
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:"
            "1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:"
            "2262-04-11 23:47:16 +0000 UTC:",
        ),
    ],
)
def test_humanize_functions(func: str, inputs: list, want: str) -> None:
    text = "".join(f"{{{{ {func} {_go_literal(v)} }}}}:" for v in inputs)
    assert _render(text) == want


def _go_literal(v: object) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        text = repr(v)
        return text if "." in text or "e" in text else text + ".0"
    return str(v)


def test_humanize_inf_and_nan() -> None:
    text = (
        "{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{ humanizeTimestamp . }}"
    )
    text = text.replace(".", "$value").replace("$value }}", "$value }}")
    for value, want in ((math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")):
        assert _render(text, value=value) == ":".join([want] * 4)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{{", "error parsing template test: template: test:1: unclosed action"),
        ("{{\u00a0}}", "unrecognized character in action: U+00A0"),
        (
            '{{ query "missing" | first }}',
            'error executing template test: template: test:1:133: executing "test" at <first>: '
            "error calling first: first() called on vector with no elements",
        ),
        (
            '{{ humanize "one" }}',
            'at <humanize "one">: error calling humanize: '
            'strconv.ParseFloat: parsing "one": invalid syntax',
        ),
        ('{{ "one" | humanizePercentage }}', 'parsing "one": invalid syntax'),
        ("{{ nofunc }}", 'function "nofunc" not defined'),
        ("{{ $x }}", 'undefined variable "$x"'),
        ("{{ if 1 }}", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ gt $value 5 }}", "error calling gt: incompatible types for comparison"),
        ("{{ .Foo }}", "can't evaluate field Foo in type struct"),
        ("{{ break }}", "{{break}} outside {{range}}"),
    ],
)
def test_errors_are_gos(text: str, error: str) -> None:
    with pytest.raises(TemplateError) as exc:
        _render(text)
    assert error in str(exc.value)


@pytest.mark.parametrize(
    ("text", "value", "want"),
    [
        ("{{ $value }}", 1.5, "1.5"),
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value }}", 100000.0, "100000"),
        ("{{ $value }}", 0.00001, "1e-05"),
        ("{{ .Value }}", 2.0, "2"),
        ("{{ $labels.job }}/{{ .Labels.instance }}/{{ $labels.missing }}.", 0, "api/h:9090/."),
        ("{{ $externalLabels.cluster }} {{ $externalURL }}", 0, f"eu1 {URL}"),
        ('{{ index $labels "job" }} {{ len $labels }}', 0, "api 2"),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0, "instance=h:9090;job=api;"),
        ("{{ range $labels }}{{ . }},{{ else }}none{{ end }}", 0, "h:9090,api,"),
        ('{{ range $i, $e := query "x" }}{{ $i }}{{ else }}none{{ end }}', 0, "none"),
        (
            "{{ if gt $value 5.0 }}big{{ else if gt $value 1.0 }}mid{{ else }}small{{ end }}",
            3,
            "mid",
        ),
        ("{{ with $labels.job }}[{{ . }}]{{ end }}{{ with $labels.nope }}x{{ end }}", 0, "[api]"),
        ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", 0, "2"),
        ("a  {{- /* comment */ -}}  b {{- 1 }}", 0, "ab1"),
        (
            '{{ and 1 0 }} {{ or 0 "" "x" }} {{ not 0 }} {{ eq 1 2 1 }} {{ ne "a" "b" }}',
            0,
            "0 x true true true",
        ),
        ("{{ lt 1 2 }} {{ le 2 2 }} {{ ge 1.5 2.5 }}", 0, "true true false"),
        ('{{ print 1 2 "a" 3 }}|{{ println "x" 1 }}', 0, "1 2a3|x 1\n"),
        (
            '{{ printf "%s=%q %v %5.1f|%-3d|%x %d%%" "a" "b" 1.5 3.14159 7 "hi" 5 }}',
            0,
            'a="b" 1.5   3.1|7  |6869 5%',
        ),
        ('{{ printf "%d" $value }}', 1.5, "%!d(float64=1.5)"),
        ('{{ printf "%.2f" 5 }}', 0, "%!f(int=5)"),
        ('{{ printf "%s" }}', 0, "%!s(MISSING)"),
        ('{{ range $labels }}{{ if eq . "api" }}{{ break }}{{ end }}{{ . }}{{ end }}', 0, "h:9090"),
        ("{{ `raw $x` }} {{ 'a' }} {{ 0x10 }}", 0, "raw $x 97 16"),
    ],
)
def test_go_template_semantics(text: str, value: float, want: str) -> None:
    assert _render(text, value=value) == want


def test_check_parses_without_running() -> None:
    check('{{ query "up" | first | value | humanize }}')
    check("{{ $labels.job }} {{ $value }} {{ $externalLabels.x }} {{ $externalURL }}")
    with pytest.raises(TemplateError, match="unclosed action"):
        check("{{ $labels.job ")


def test_query_failure_is_an_error_calling_query() -> None:
    def failing(_: str):
        raise RuntimeError("boom")

    with pytest.raises(TemplateError, match="error calling query: boom"):
        render('{{ query "x" }}', labels={}, value=0, query=failing)
