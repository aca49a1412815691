"""Rule files load as Prometheus's ``rule_files`` and are checked like ``promtool check rules``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinct import rules_cli
from tinct.alerting.rules import (
    AlertingRule,
    RecordingRule,
    RuleFileError,
    load_rule_files,
    parse_rule_text,
)

DATA = Path(__file__).parent / "rules_testdata"


def test_good_file_loads_every_field(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        """
groups:
  - name: g1
    interval: 30s
    limit: 10
    query_offset: 1m
    labels: {team: ops}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {tier: "1"}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.instance }} down"}
"""
    )
    (groups,) = load_rule_files(["*.yml"], base_dir=tmp_path)
    assert groups.name == "g1"
    assert groups.file == str(tmp_path / "a.yml")
    assert (groups.interval_s, groups.limit, groups.query_offset_s) == (30.0, 10, 60.0)
    assert groups.labels == {"team": "ops"}
    record, alert = groups.rules
    assert record == RecordingRule("job:up:sum", "sum by (job) (up)", {"tier": "1"})
    assert alert == AlertingRule(
        "Down",
        "up == 0",
        300.0,
        60.0,
        {"severity": "page"},
        {"summary": "{{ $labels.instance }} down"},
    )


def test_globs_match_nothing_silently_and_read_files_once(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("groups: [{name: a, rules: [{record: a:b, expr: up}]}]")
    groups = load_rule_files(["a.yml", "*.yml", "missing/*.yml"], base_dir=tmp_path)
    assert [g.name for g in groups] == ["a"]
    assert load_rule_files([str(tmp_path / "none-*.yml")]) == []


def test_empty_file_has_no_groups() -> None:
    assert parse_rule_text("", "empty.yml") == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bad_expr.yml",
            'bad_expr.yml:5:15: group "g", rule 1, "BadExpr": '
            "field 'expr': could not parse expression",
        ),
        ("both_record_alert.yml", "rule 1, \"a:b\": only one of 'record' and 'alert' must be set"),
        ("neither.yml", "rule 1, \"\": one of 'record' or 'alert' must be set"),
        (
            "record_name.yml",
            "rule 1, \"job-up\": field 'record': invalid recording rule name: job-up",
        ),
        ("record_annotations.yml", "invalid field 'annotations' in recording rule"),
        ("record_for.yml", "invalid field 'for' in recording rule"),
        ("dup_group.yml", 'dup_group.yml:4:11: group "g": group name is repeated in the same file'),
        ("label_name.yml", "field 'labels': invalid label name: bad-name"),
        ("duration.yml", "field 'for': unknown unit ' minutes' in duration '5 minutes'"),
        ("unknown_key.yml", 'unknown_key.yml:6:9: field severity not found in rule 1 of group "g"'),
        (
            "template_unclosed.yml",
            'annotation "summary": error parsing template __alert_A: '
            "template: __alert_A:1: unclosed action",
        ),
        ("template_function.yml", 'function "humanise" not defined'),
        (
            "template_variable.yml",
            'label "team": error parsing template __alert_A: '
            'template: __alert_A:1: undefined variable "$team"',
        ),
        ("template_end.yml", "unexpected EOF"),
        ("empty_group_name.yml", "group name must not be empty"),
        ("missing_expr.yml", "rule 1, \"A\": field 'expr' must be set in rule"),
        ("group_interval.yml", "group \"g\": field 'interval'"),
        ("top_key.yml", "field group not found in rule file"),
    ],
)
def test_bad_files_name_file_group_rule_and_field(name: str, expected: str) -> None:
    path = DATA / "bad" / name
    with pytest.raises(RuleFileError) as exc:
        load_rule_files([path])
    assert str(path) in str(exc.value)
    assert expected in str(exc.value)


def test_every_problem_is_reported() -> None:
    text = """
groups:
  - name: g
    rules:
      - record: "x y"
        expr: up
      - alert: A
        expr: "up =="
"""
    with pytest.raises(RuleFileError) as exc:
        parse_rule_text(text, "f.yml")
    assert len(exc.value.errors) == 2
    assert exc.value.errors[0].startswith('f.yml:5:17: group "g", rule 1, "x y"')
    assert exc.value.errors[1].startswith('f.yml:8:15: group "g", rule 2, "A"')


def test_check_command_output_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    good = str(DATA / "alerts.yml")
    assert rules_cli.check_rules([good]) == 0
    out = capsys.readouterr()
    assert out.out == f"Checking {good}\n  SUCCESS: 5 rules found\n\n"
    bad = str(DATA / "bad" / "record_name.yml")
    assert rules_cli.check_rules([good, bad]) == 1
    out = capsys.readouterr()
    assert f"Checking {bad}\n" in out.out
    assert out.err.startswith("  FAILED:\n")
    assert "invalid recording rule name" in out.err
