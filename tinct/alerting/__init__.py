"""Alerting: Prometheus rule files evaluated by tinct, notifications through Alertmanager.

``rules`` (the rule file model and its loading and checks), ``templates``
(Go text/template as Prometheus uses it), ``evaluator`` (groups on their
interval, Prometheus's alert state machine, recording rules), ``notifier``
(Alertmanager v2 and plain webhooks), ``unittest`` (``promtool test rules``
files), ``layer_rules`` (rules generated from the data standard) and ``api``
(``/api/v1/rules``, ``/api/v1/alerts``, the alert history).
"""

from tinct.alerting.rules import (
    AlertingRule,
    RecordingRule,
    RuleFileError,
    RuleGroup,
    load_rule_files,
)

__all__ = ["AlertingRule", "RecordingRule", "RuleFileError", "RuleGroup", "load_rule_files"]
