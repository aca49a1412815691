"""The rule file model: Prometheus's rule files, as plain data.

Prometheus's format (docs "Recording rules", "Alerting rules")::

    groups:
      - name: example
        interval: 1m          # default: global.evaluation_interval
        limit: 0              # 0: no limit on alerts/series per rule
        query_offset: 0s
        labels: {team: ops}   # added to every rule's series/alerts
        rules:
          - record: job:http_requests:rate5m
            expr: sum by (job) (rate(http_requests_total[5m]))
            labels: {...}
          - alert: HighErrorRate
            expr: ... > 0.05
            for: 10m
            keep_firing_for: 5m
            labels: {severity: page}
            annotations: {summary: "{{ $labels.job }} is failing"}

Loading and checking (with errors naming file, group and rule, as
``promtool check rules`` does) is :func:`load_rule_files`.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tinct.durations import parse_duration
from tinct.errors import ConfigError
from tinct.yamlnodes import Collector, Node, compose, mapping, scalar_text, str_map

__all__ = [
    "AlertingRule",
    "RecordingRule",
    "Rule",
    "RuleGroup",
    "RuleFileError",
    "load_rule_files",
    "parse_rule_file",
    "parse_rule_text",
]


class RuleFileError(ConfigError):
    """A rule file is invalid; the message names the file, group and rule.

    Attributes:
        errors: every problem found, one line each (``promtool check rules``
            lists them all, not just the first).
    """

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertingRule:
    alert: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True)
class RuleGroup:
    """One group: its rules are evaluated in order, every ``interval_s``.

    Attributes:
        file: the file it came from (for APIs and errors).
        interval_s: 0 means the global evaluation interval.
        limit: most alerts (alerting rules) or series (recording rules) per
            rule; 0 for no limit.
        query_offset_s: evaluate at ``now - query_offset``.
        labels: added to every rule's output (a rule's own labels win).
    """

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval_s: float = 0.0
    limit: int = 0
    query_offset_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)


# ---- loading and checking (Prometheus's model/rulefmt) ---------------------------

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_GROUPS_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "query_offset", "limit", "rules", "labels")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


def _duration(node: Node | None, what: str, errs: Collector, where: str = "") -> float:
    if node is None or node.value is None:
        return 0.0
    try:
        return parse_duration(scalar_text(node.value))
    except ValueError as exc:
        errs.add(node, f"{where}field {what!r}: {exc}")
        return 0.0


def parse_rule_text(text: str, path: str) -> list[RuleGroup]:
    """The groups of one rule file's text, checked as ``promtool check rules`` does.

    Raises:
        RuleFileError: every problem found, each naming the file (with line
            and column), the group, the rule's 1-based index and name, and
            the field.
    """
    errs = Collector(path)
    try:
        tree = compose(text, errs)
    except yaml.YAMLError as exc:
        raise RuleFileError([f"{path}: yaml: {exc}"]) from exc
    if tree is None:
        return []
    top = mapping(tree, "rule file (keys: groups)", _GROUPS_KEYS, errs)
    groups_node = top.get("groups")
    groups: list[RuleGroup] = []
    if groups_node is not None and groups_node.value is not None:
        if not isinstance(groups_node.value, list):
            errs.add(groups_node, "'groups' must be a list")
        else:
            seen: set[str] = set()
            for gnode in groups_node.value:
                group = _group(gnode, path, seen, errs)
                if group is not None:
                    groups.append(group)
    if errs.errors:
        raise RuleFileError(errs.errors)
    return groups


def _group(gnode: Node, path: str, seen: set[str], errs: Collector) -> RuleGroup | None:
    fields = mapping(gnode, "rule group", _GROUP_KEYS, errs)
    name_node = fields.get("name")
    name = "" if name_node is None or name_node.value is None else scalar_text(name_node.value)
    if not name:
        errs.add(gnode, "group name must not be empty")
    elif name in seen:
        errs.add(name_node, f'group "{name}": group name is repeated in the same file')
    seen.add(name)
    where = f'group "{name}": '
    interval = _duration(fields.get("interval"), "interval", errs, where)
    offset = _duration(fields.get("query_offset"), "query_offset", errs, where)
    limit = 0
    if (lnode := fields.get("limit")) is not None and lnode.value is not None:
        if not isinstance(lnode.value, int) or isinstance(lnode.value, bool):
            errs.add(lnode, f"{where}field 'limit' must be an integer")
        else:
            limit = lnode.value
    labels = str_map(fields.get("labels"), f"{where}labels", errs)
    _check_labels(labels, fields.get("labels"), where, errs)
    rules: list[Rule] = []
    rnode = fields.get("rules")
    if rnode is not None and rnode.value is not None:
        if not isinstance(rnode.value, list):
            errs.add(rnode, f"{where}'rules' must be a list")
        else:
            for index, node in enumerate(rnode.value, start=1):
                rule = _rule(node, name, index, errs)
                if rule is not None:
                    rules.append(rule)
    return RuleGroup(name, path, tuple(rules), interval, limit, offset, labels)


def _check_labels(labels: dict[str, str], node: Node | None, where: str, errs: Collector) -> None:
    for key in labels:
        if not _LABEL_NAME.match(key) or key == "__name__":
            errs.add(node, f"{where}field 'labels': invalid label name: {key}")


def _rule(node: Node, group: str, index: int, errs: Collector) -> Rule | None:
    before = len(errs.errors)
    fields = mapping(node, f'rule {index} of group "{group}"', _RULE_KEYS, errs)

    def text(key: str) -> str:
        n = fields.get(key)
        return "" if n is None or n.value is None else scalar_text(n.value)

    record, alert, expr = text("record"), text("alert"), text("expr")
    where = f'group "{group}", rule {index}, "{record or alert}": '

    def err(key: str | None, msg: str) -> None:
        at = fields.get(key) if key else None
        errs.add(at or node, where + (f"field '{key}': " if key else "") + msg)

    if record and alert:
        err(None, "only one of 'record' and 'alert' must be set")
    elif not record and not alert:
        err(None, "one of 'record' or 'alert' must be set")
    if not expr:
        err(None, "field 'expr' must be set in rule")
    else:
        from tinct.promql.ast import parse

        try:
            parse(expr)
        except Exception as exc:  # noqa: BLE001 - any parser failure is the user's expr
            err("expr", f"could not parse expression: {exc}")
    labels = str_map(fields.get("labels"), where + "labels", errs)
    annotations = str_map(fields.get("annotations"), where + "annotations", errs)
    for_s = _duration(fields.get("for"), "for", errs, where)
    keep_s = _duration(fields.get("keep_firing_for"), "keep_firing_for", errs, where)
    if record:
        if annotations:
            err("annotations", "invalid field 'annotations' in recording rule")
        if "for" in fields and for_s:
            err("for", "invalid field 'for' in recording rule")
        if "keep_firing_for" in fields and keep_s:
            err("keep_firing_for", "invalid field 'keep_firing_for' in recording rule")
        if not _METRIC_NAME.match(record):
            err("record", f"invalid recording rule name: {record}")
    for key in labels:
        if not _LABEL_NAME.match(key) or key == "__name__":
            err("labels", f"invalid label name: {key}")
    for key in annotations:
        if not _LABEL_NAME.match(key):
            err("annotations", f"invalid annotation name: {key}")
    if alert:
        from tinct.alerting.templates import TemplateError, check

        for kind, values in (("labels", labels), ("annotations", annotations)):
            for key, value in values.items():
                try:
                    check(value, name=f"__alert_{alert}")
                except TemplateError as exc:
                    err(kind, f"{kind[:-1]} {key!r}: {exc}".replace("'", '"', 2))
    if len(errs.errors) > before:
        return None
    if record:
        return RecordingRule(record, expr, labels)
    return AlertingRule(alert, expr, for_s, keep_s, labels, annotations)


def parse_rule_file(path: Path | str) -> list[RuleGroup]:
    """Read and check one rule file.

    Raises:
        RuleFileError: the file can't be read, or is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError([f"{path}: {exc}"]) from exc
    return parse_rule_text(text, str(path))


def load_rule_files(
    paths: Sequence[Path | str], *, base_dir: Path | str | None = None
) -> list[RuleGroup]:
    """The groups of every file matching ``paths``, in order, as Prometheus's ``rule_files``.

    Each entry is a glob (``rules/*.yml``); relative ones are relative to
    ``base_dir`` (the config file's folder). A pattern matching nothing adds
    nothing, as in Prometheus; matches are read in sorted order, each file once.

    Raises:
        RuleFileError: every problem of every file (each line names its file).
    """
    files: list[str] = []
    for pattern in paths:
        pat = Path(pattern)
        if base_dir is not None and not pat.is_absolute():
            pat = Path(base_dir) / pat
        for match in sorted(glob.glob(str(pat))):
            if match not in files:
                files.append(match)
    groups: list[RuleGroup] = []
    errors: list[str] = []
    for file in files:
        try:
            groups.extend(parse_rule_file(file))
        except RuleFileError as exc:
            errors.extend(exc.errors)
    if errors:
        raise RuleFileError(errors)
    return groups
