"""Relabelling gives Prometheus's answers: cases from Prometheus's model/relabel/relabel_test.go."""

from __future__ import annotations

import pytest
import yaml

from tinct.collectors.relabel import RelabelConfig, parse_relabel_configs, relabel
from tinct.errors import ConfigError


def rc(**kwargs) -> RelabelConfig:
    if "source_labels" in kwargs:
        kwargs["source_labels"] = tuple(kwargs["source_labels"])
    return RelabelConfig(**kwargs)


def parse(text: str) -> tuple[RelabelConfig, ...]:
    return parse_relabel_configs(yaml.safe_load(text), "relabel_configs")


# (input, configs, output or None when dropped), in relabel_test.go's order.
PROMETHEUS_CASES = [
    (
        {"a": "foo", "b": "bar", "c": "baz"},
        [rc(source_labels=["a"], regex="f(.*)", target_label="d", replacement="ch${1}-ch${1}")],
        {"a": "foo", "b": "bar", "c": "baz", "d": "choo-choo"},
    ),
    (
        {"a": "foo", "b": "bar", "c": "baz"},
        [
            rc(
                source_labels=["a", "b"],
                regex="f(.*);(.*)r",
                target_label="a",
                replacement="b${1}${2}m",
            ),
            rc(
                source_labels=["c", "a"],
                regex="(b).*b(.*)ba(.*)",
                target_label="d",
                replacement="$1$2$2$3",
            ),
        ],
        {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"},
    ),
    (
        {"a": "foo"},
        [
            rc(source_labels=["a"], regex=".*o.*", action="drop"),
            rc(source_labels=["a"], regex="f(.*)", target_label="d", replacement="ch$1-ch$1"),
        ],
        None,
    ),
    ({"a": "foo", "b": "bar"}, [rc(source_labels=["a"], regex=".*o.*", action="drop")], None),
    (
        {"a": "abc"},
        [rc(source_labels=["a"], regex=".*(b).*", target_label="d", replacement="$1")],
        {"a": "abc", "d": "b"},
    ),
    ({"a": "foo"}, [rc(source_labels=["a"], regex="no-match", action="drop")], {"a": "foo"}),
    ({"a": "foo"}, [rc(source_labels=["a"], regex="f|o", action="drop")], {"a": "foo"}),
    ({"a": "foo"}, [rc(source_labels=["a"], regex="no-match", action="keep")], None),
    ({"a": "foo"}, [rc(source_labels=["a"], regex="f.*", action="keep")], {"a": "foo"}),
    # No replacement must be applied if there is no match.
    (
        {"a": "boo"},
        [rc(source_labels=["a"], regex="f", target_label="b", replacement="bar")],
        {"a": "boo"},
    ),
    (
        {"a": "foo", "b": "bar", "c": "baz"},
        [rc(source_labels=["c"], target_label="d", action="hashmod", modulus=1000)],
        {"a": "foo", "b": "bar", "c": "baz", "d": "976"},
    ),
    (
        {"a": "foo\nbar"},
        [rc(source_labels=["a"], target_label="b", action="hashmod", modulus=1000)],
        {"a": "foo\nbar", "b": "734"},
    ),
    (
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [rc(regex="(b.*)", replacement="bar_${1}", action="labelmap")],
        {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"},
    ),
    (
        {"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"},
        [rc(regex="__meta_(my.*)", replacement="${1}", action="labelmap")],
        {
            "a": "foo",
            "__meta_my_bar": "aaa",
            "__meta_my_baz": "bbb",
            "__meta_other": "ccc",
            "my_bar": "aaa",
            "my_baz": "bbb",
        },
    ),
    (  # valid case
        {"a": "some-name-value"},
        [
            rc(
                source_labels=["a"],
                regex="some-([^-]+)-([^,]+)",
                replacement="${2}",
                target_label="${1}",
            )
        ],
        {"a": "some-name-value", "name": "value"},
    ),
    (  # invalid replacement ""
        {"a": "some-name-value"},
        [
            rc(
                source_labels=["a"],
                regex="some-([^-]+)-([^,]+)",
                replacement="${3}",
                target_label="${1}",
            )
        ],
        {"a": "some-name-value"},
    ),
    (  # invalid target_labels
        {"a": "some-name-0"},
        [
            rc(
                source_labels=["a"],
                regex="some-([^-]+)-([^,]+)",
                replacement="${1}",
                target_label="${3}",
            ),
            rc(
                source_labels=["a"],
                regex="some-([^-]+)-([^,]+)",
                replacement="${1}",
                target_label="${3}",
            ),
            rc(
                source_labels=["a"],
                regex="some-([^-]+)(-[^,]+)",
                replacement="${1}",
                target_label="${3}",
            ),
        ],
        {"a": "some-name-0"},
    ),
    (  # more complex real-life like usecase
        {"__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar"},
        [
            rc(
                source_labels=["__meta_sd_tags"],
                regex="(?:.+,|^)path:(/[^,]+).*",
                replacement="${1}",
                target_label="__metrics_path__",
            ),
            rc(
                source_labels=["__meta_sd_tags"],
                regex="(?:.+,|^)job:([^,]+).*",
                replacement="${1}",
                target_label="job",
            ),
            rc(
                source_labels=["__meta_sd_tags"],
                regex="(?:.+,|^)label:([^=]+)=([^,]+).*",
                replacement="${2}",
                target_label="${1}",
            ),
        ],
        {
            "__meta_sd_tags": "path:/secret,job:some-job,label:foo=bar",
            "__metrics_path__": "/secret",
            "job": "some-job",
            "foo": "bar",
        },
    ),
    (  # From https://github.com/prometheus/prometheus/issues/12283
        {
            "__meta_kubernetes_pod_container_port_name": "foo",
            "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
        },
        [
            rc(regex="^__meta_kubernetes_pod_container_port_name$", action="labeldrop"),
            rc(
                source_labels=["__meta_kubernetes_pod_annotation_XXX_metrics_port"],
                regex="(.+)",
                replacement="metrics",
                target_label="__meta_kubernetes_pod_container_port_name",
            ),
            rc(
                source_labels=["__meta_kubernetes_pod_container_port_name"],
                regex="^metrics$",
                action="keep",
            ),
        ],
        {
            "__meta_kubernetes_pod_annotation_XXX_metrics_port": "9091",
            "__meta_kubernetes_pod_container_port_name": "metrics",
        },
    ),
    (
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [rc(regex="(b.*)", action="labelkeep")],
        {"b1": "bar", "b2": "baz"},
    ),
    (
        {"a": "foo", "b1": "bar", "b2": "baz"},
        [rc(regex="(b.*)", action="labeldrop")],
        {"a": "foo"},
    ),
    (
        {"foo": "bAr123Foo"},
        [
            rc(source_labels=["foo"], action="uppercase", target_label="foo_uppercase"),
            rc(source_labels=["foo"], action="lowercase", target_label="foo_lowercase"),
        ],
        {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"},
    ),
    (
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [rc(source_labels=["__tmp_port"], action="keepequal", target_label="__port1")],
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
    ),
    (
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [rc(source_labels=["__tmp_port"], action="dropequal", target_label="__port1")],
        None,
    ),
    (
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [rc(source_labels=["__tmp_port"], action="dropequal", target_label="__port2")],
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
    ),
    (
        {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
        [rc(source_labels=["__tmp_port"], action="keepequal", target_label="__port2")],
        None,
    ),
]


@pytest.mark.parametrize(("labels", "configs", "expected"), PROMETHEUS_CASES)
def test_prometheus_relabel_cases(labels, configs, expected) -> None:
    before = dict(labels)
    assert relabel(labels, configs) == expected
    assert labels == before  # the input is not modified


def test_go_expansion_in_replacements() -> None:
    # Go's Regexp.Expand reads "$1x" as the group named "1x" (none): empty,
    # and an empty replacement removes the target label.
    configs = [rc(source_labels=["a"], regex="f(.*)", target_label="d", replacement="$1x")]
    assert relabel({"a": "foo", "d": "old"}, configs) == {"a": "foo"}
    configs = [rc(source_labels=["a"], regex="f(.*)", target_label="d", replacement="${1}x")]
    assert relabel({"a": "foo"}, configs) == {"a": "foo", "d": "oox"}


def test_replace_defaults_and_empty_values() -> None:
    (config,) = parse("- {source_labels: [a], target_label: b}")
    assert (config.separator, config.regex, config.replacement, config.action) == (
        ";",
        "(.*)",
        "$1",
        "replace",
    )
    assert relabel({"a": "x"}, [config]) == {"a": "x", "b": "x"}
    # An absent source is "", so the default regex sets b to "" -- removing it.
    assert relabel({"b": "old"}, [config]) == {}
    # Labels given with empty values are absent.
    assert relabel({"a": "", "c": "1"}, []) == {"c": "1"}
    # A fixed replacement with no source labels adds a label (the fast path).
    assert relabel({}, parse("- {target_label: cluster, replacement: dev}")) == {"cluster": "dev"}
    # The regex is anchored at both ends.
    anchored = parse("- {source_labels: [a], regex: 'o+', target_label: b, replacement: hit}")
    assert relabel({"a": "foo"}, anchored) == {"a": "foo"}
    assert relabel({"a": "oo"}, anchored) == {"a": "oo", "b": "hit"}


def test_separator_and_multiple_source_labels() -> None:
    configs = parse("- source_labels: [ns, pod, missing]\n  separator: /\n  target_label: path\n")
    assert relabel({"ns": "prod", "pod": "web-1"}, configs) == {
        "ns": "prod",
        "pod": "web-1",
        "path": "prod/web-1/",
    }


def test_kubernetes_style_pipeline_from_the_prometheus_benchmark() -> None:
    configs = parse(
        r"""
- source_labels: [__meta_kubernetes_pod_container_port_name]
  regex: .*-metrics
  action: keep
- source_labels: [__meta_kubernetes_pod_label_name]
  action: drop
  regex: ""
- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
  target_label: __address__
  regex: (.+?)(\:\d+)?;(\d+)
  replacement: $1:$3
- source_labels: [__meta_kubernetes_namespace, __meta_kubernetes_pod_label_name]
  separator: /
  target_label: job
- target_label: cluster
  replacement: dev-us-central-0
- source_labels: [__address__]
  target_label: __tmp_hash
  modulus: 3
  action: hashmod
- regex: __tmp_hash
  action: labeldrop
- regex: __meta_.*
  action: labeldrop
"""
    )
    out = relabel(
        {
            "__address__": "10.132.183.40:80",
            "__meta_kubernetes_namespace": "loki",
            "__meta_kubernetes_pod_container_port_name": "http-metrics",
            "__meta_kubernetes_pod_label_name": "promtail",
            "__meta_kubernetes_pod_annotation_prometheus_io_port": "3101",
        },
        configs,
    )
    assert out == {
        "__address__": "10.132.183.40:3101",
        "job": "loki/promtail",
        "cluster": "dev-us-central-0",
    }


def test_hashmod_matches_prometheus_md5_sharding() -> None:
    config = rc(source_labels=["__address__"], target_label="shard", action="hashmod", modulus=8)
    shards = {shard({"__address__": f"10.0.0.{i}:9100"}, config, "shard") for i in range(64)}
    assert shards == {str(i) for i in range(8)}
    # Values from relabel_test.go.
    big = rc(source_labels=["c"], target_label="d", action="hashmod", modulus=1000)
    assert shard({"c": "baz"}, big, "d") == "976"


def shard(labels: dict[str, str], config: RelabelConfig, name: str) -> str:
    out = relabel(labels, [config])
    assert out is not None
    return out[name]


def test_parse_reads_prometheus_yaml() -> None:
    configs = parse(
        """
- source_labels: [job, __meta_dns_name]
  regex: "(.*)some-[regex]"
  target_label: job
  replacement: foo-${1}
- source_labels: [abc]
  target_label: cde
- replacement: static
  target_label: abc
- regex:
  replacement: static
  target_label: abc
- action: LabelMap
  regex: __meta_(.+)
- action: HashMod
  source_labels: [a]
  modulus: 8
  target_label: shard
"""
    )
    assert [c.action for c in configs] == [
        "replace",
        "replace",
        "replace",
        "replace",
        "labelmap",
        "hashmod",
    ]
    assert configs[3].regex == ""  # `regex:` alone is Go's empty regex
    assert relabel({"job": "x", "__meta_dns_name": "my-some-r"}, configs[:1]) == {
        "job": "foo-x;my-",
        "__meta_dns_name": "my-some-r",
    }
    assert parse_relabel_configs(None, "x") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {action: foo}", "relabel_configs[0].action: unknown action 'foo' (known: replace,"),
        ("- {action: replace}", "relabel_configs[0].target_label: the replace action needs"),
        ("- {action: lowercase}", "relabel_configs[0].target_label: the lowercase action needs"),
        (
            "- {action: lowercase, target_label: '${3}'}",
            "relabel_configs[0].target_label: '${3}' is not a valid label name",
        ),
        (
            "- {target_label: '0${3}', source_labels: [a]}",
            "relabel_configs[0].target_label: '0${3}' is not a valid label name",
        ),
        (
            "- {target_label: '-${3}'}",
            "relabel_configs[0].target_label: '-${3}' is not a valid label name for the replace",
        ),
        (
            "- {action: hashmod, target_label: x}",
            "relabel_configs[0].modulus: the hashmod action needs a modulus greater than 0",
        ),
        (
            "- {action: keepequal, target_label: x, regex: a}",
            "relabel_configs[0].regex: cannot be set for the keepequal action",
        ),
        (
            "- {action: dropequal, target_label: x, replacement: y}",
            "relabel_configs[0].replacement: cannot be set for the dropequal action",
        ),
        (
            "- {action: labeldrop, regex: a, source_labels: [b]}",
            "relabel_configs[0].source_labels: cannot be set for the labeldrop action",
        ),
        (
            "- {action: labelkeep, regex: a, target_label: b}",
            "relabel_configs[0].target_label: cannot be set for the labelkeep action",
        ),
        (
            "- {action: labelmap, regex: a, replacement: '-x'}",
            "relabel_configs[0].replacement: '-x' is not a valid label name template",
        ),
        (
            "- {target_label: a}\n- {target_label: b, regex: '(unclosed'}",
            "relabel_configs[1].regex: invalid regular expression '(unclosed'",
        ),
        (
            "- {target_label: a, source_labels: [ok, 1bad]}",
            "relabel_configs[0].source_labels[1]: '1bad' is not a valid label name",
        ),
        (
            "- {target_label: a, source_label: [a]}",
            "relabel_configs[0].source_label: unknown field (known: source_labels,",
        ),
        ("- {action: hashmod, modulus: -1}", "relabel_configs[0].modulus: -1 is not a positive"),
        ("- {action:}", "relabel_configs[0].action: unknown action ''"),
        ("{action: keep}", "relabel_configs: must be a list"),
        ("- null", "relabel_configs[0]: must be a mapping"),
    ],
)
def test_parse_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert message in str(info.value)


def test_where_prefix_is_used_verbatim() -> None:
    with pytest.raises(ConfigError, match=r"^scrape_configs\[0\]\.relabel_configs\[2\]\.action"):
        parse_relabel_configs(
            [{"target_label": "a"}, {"target_label": "b"}, {"action": "foo"}],
            "scrape_configs[0].relabel_configs",
        )


@pytest.mark.parametrize(
    ("target", "valid"),
    [
        ("-label", False),
        ("label", True),
        ("label${1}", True),
        ("${1}label", True),
        ("${1}", True),
        ("${", False),
        ("$", False),
        ("${}", False),
        ("foo${", False),
        ("$1", True),
        ("asd$2asd", True),
        ("-foo${1}bar-", False),
        ("_${1}_", True),
        ("foo${bar}foo", True),
    ],
)
def test_target_label_validity(target: str, valid: bool) -> None:
    # relabel_test.go's TestTargetLabelValidity.
    if valid:
        rc(source_labels=["a"], target_label=target)
    else:
        with pytest.raises(ValueError, match="target_label"):
            rc(source_labels=["a"], target_label=target)
