"""Prometheus relabelling, so a prometheus.yml's ``relabel_configs`` mean the same in tinct.

Implements ``<relabel_config>`` as documented at
https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config
and as Prometheus's ``model/relabel/relabel.go`` runs it: every action
(``replace`` by default, ``keep``, ``drop``, ``keepequal``, ``dropequal``,
``hashmod``, ``labelmap``, ``labeldrop``, ``labelkeep``, ``lowercase``,
``uppercase``), the same defaults (separator ``;``, regex ``(.*)``,
replacement ``$1``), the same checks at load time, and a label set to an
empty value is a label removed.

Regexes are RE2 in Prometheus and fully anchored: they run through
:func:`tinct.goregex.compile_go_regex` and ``fullmatch``. Replacements and
``target_label`` expand ``$1``, ``${1}`` and ``${name}`` by Go's
``Regexp.Expand`` rules, which Prometheus inherits: ``$1x`` names the group
called ``1x`` (usually empty), so write ``${1}x``; ``$$`` is a ``$``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinct.errors import ConfigError
from tinct.goregex import compile_go_regex, expand

__all__ = ["ACTIONS", "RelabelConfig", "parse_relabel_configs", "relabel"]

ACTIONS = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
_FIELDS = (
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
)
_DEFAULT_REGEX = "(.*)"
_DEFAULT_REPLACEMENT = "$1"
# tinct stores classic (legacy) Prometheus label names.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# relabel.go's relabelTarget: a label name that may contain $1 / ${name}.
_TEMPLATE_TARGET = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", re.ASCII)


class _FieldError(ValueError):
    """A relabel config value is invalid; ``field`` names the setting."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class RelabelConfig:
    """One ``<relabel_config>``, validated as Prometheus validates it.

    Construction raises ``ValueError`` (naming the field) for what Prometheus
    refuses to load; :func:`parse_relabel_configs` turns that into a
    ``ConfigError`` naming the place in the config file.
    """

    source_labels: tuple[str, ...] = ()
    separator: str = ";"
    regex: str = _DEFAULT_REGEX
    modulus: int = 0
    target_label: str = ""
    replacement: str = _DEFAULT_REPLACEMENT
    action: str = "replace"
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "pattern", compile_go_regex(self.regex))
        except ValueError as exc:
            raise _FieldError(
                "regex", f"invalid regular expression {self.regex!r}: {exc}"
            ) from None
        _validate(self)


def _validate(c: RelabelConfig) -> None:
    # The checks and their order follow relabel.go's Config.Validate.
    action = c.action
    if action not in ACTIONS:
        raise _FieldError("action", f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    for i, name in enumerate(c.source_labels):
        if not _LABEL_NAME.fullmatch(name):
            raise _FieldError(f"source_labels[{i}]", f"{name!r} is not a valid label name")
    if action == "hashmod" and c.modulus <= 0:
        raise _FieldError("modulus", "the hashmod action needs a modulus greater than 0")
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if action in needs_target and not c.target_label:
        raise _FieldError("target_label", f"the {action} action needs a target_label")
    if action == "replace":
        valid = (
            _TEMPLATE_TARGET.fullmatch(c.target_label)
            if "$" in c.target_label
            else _LABEL_NAME.fullmatch(c.target_label)
        )
        if not valid:
            raise _FieldError(
                "target_label",
                f"{c.target_label!r} is not a valid label name for the replace action "
                "(letters, digits and _, not starting with a digit; $1 or ${name} allowed)",
            )
    if action in ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod"):
        if not _LABEL_NAME.fullmatch(c.target_label):
            raise _FieldError(
                "target_label", f"{c.target_label!r} is not a valid label name for {action}"
            )
    if action in ("lowercase", "uppercase", "keepequal", "dropequal"):
        if c.replacement != _DEFAULT_REPLACEMENT:
            raise _FieldError("replacement", f"cannot be set for the {action} action")
    if action == "labelmap" and not _TEMPLATE_TARGET.fullmatch(c.replacement):
        raise _FieldError(
            "replacement",
            f"{c.replacement!r} is not a valid label name template for the labelmap action",
        )
    if action in ("keepequal", "dropequal"):
        extra = _first_set(c, ("regex", "modulus", "separator"))
        if extra:
            raise _FieldError(
                extra,
                f"cannot be set for the {action} action (it takes source_labels and "
                "target_label only)",
            )
    if action in ("labeldrop", "labelkeep"):
        extra = _first_set(c, ("source_labels", "target_label", "modulus", "separator"))
        if extra or c.replacement != _DEFAULT_REPLACEMENT:
            raise _FieldError(
                extra or "replacement",
                f"cannot be set for the {action} action (it takes regex only)",
            )


_DEFAULTS: dict[str, Any] = {
    "source_labels": (),
    "target_label": "",
    "modulus": 0,
    "separator": ";",
    "regex": _DEFAULT_REGEX,
}


def _first_set(c: RelabelConfig, names: Sequence[str]) -> str:
    for name in names:
        if getattr(c, name) != _DEFAULTS[name]:
            return name
    return ""


def parse_relabel_configs(raw: Any, where: str) -> tuple[RelabelConfig, ...]:
    """Parse a YAML list of ``<relabel_config>`` mappings.

    Args:
        raw: the value under ``relabel_configs`` (``None`` for none).
        where: the list's place in the config file for messages, e.g.
            ``"scrape_configs[0].relabel_configs"``.

    Raises:
        ConfigError: naming ``where``, the index and the field, e.g.
            ``scrape_configs[0].relabel_configs[2].action: unknown action 'foo'
            (known: replace, keep, ...)``.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of relabel configs")
    configs = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{here}: must be a mapping (source_labels, regex, action...)")
        for key in item:
            if key not in _FIELDS:
                raise ConfigError(f"{here}.{key}: unknown field (known: {', '.join(_FIELDS)})")
        kwargs: dict[str, Any] = {}
        for key in ("separator", "regex", "target_label", "replacement", "action"):
            if key in item:
                # An explicit null is Go's zero value: `regex:` alone is the
                # empty regex, `action:` alone an empty (refused) action.
                value = item[key]
                kwargs[key] = "" if value is None else _scalar(value, f"{here}.{key}")
        if "action" in kwargs:
            # Prometheus accepts the action in any case.
            kwargs["action"] = kwargs["action"].lower()
        if item.get("source_labels") is not None:
            labels = item["source_labels"]
            if not isinstance(labels, list):
                raise ConfigError(f"{here}.source_labels: must be a list of label names")
            kwargs["source_labels"] = tuple(
                _scalar(v, f"{here}.source_labels[{j}]") for j, v in enumerate(labels)
            )
        if item.get("modulus") is not None:
            modulus = item["modulus"]
            if isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 0:
                raise ConfigError(f"{here}.modulus: {modulus!r} is not a positive integer")
            kwargs["modulus"] = modulus
        try:
            configs.append(RelabelConfig(**kwargs))
        except _FieldError as exc:
            raise ConfigError(f"{here}.{exc.field}: {exc.message}") from None
    return tuple(configs)


def _scalar(value: Any, where: str) -> str:
    # YAML scalars read into Go strings keep their text: `regex: 1` is "1".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where}: {value!r} is not a string")


def relabel(labels: Mapping[str, str], configs: Sequence[RelabelConfig]) -> dict[str, str] | None:
    """Apply ``configs`` in order to a label set, as Prometheus's ``relabel.Process``.

    Labels with empty values are absent (a label set to ``""`` is removed).
    Pure and thread-safe.

    Returns:
        The new label set, or ``None`` when a keep/drop action dropped it.
    """
    out = {name: value for name, value in labels.items() if value != ""}
    for config in configs:
        if not _apply(config, out):
            return None
    return out


def _apply(c: RelabelConfig, lb: dict[str, str]) -> bool:
    value = c.separator.join(lb.get(name, "") for name in c.source_labels)
    action = c.action
    if action == "drop":
        return c.pattern.fullmatch(value) is None
    if action == "keep":
        return c.pattern.fullmatch(value) is not None
    if action == "dropequal":
        return lb.get(c.target_label, "") != value
    if action == "keepequal":
        return lb.get(c.target_label, "") == value
    if action == "replace":
        if (
            value == ""
            and c.regex == _DEFAULT_REGEX
            and "$" not in c.target_label
            and "$" not in c.replacement
        ):
            _set(lb, c.target_label, c.replacement)
            return True
        match = c.pattern.fullmatch(value)
        if match is None:
            return True  # no match, no replacement
        target = expand(c.target_label, match)
        if not _LABEL_NAME.fullmatch(target):
            return True
        _set(lb, target, expand(c.replacement, match))
    elif action == "lowercase":
        _set(lb, c.target_label, value.lower())
    elif action == "uppercase":
        _set(lb, c.target_label, value.upper())
    elif action == "hashmod":
        # md5 of the value, last 8 bytes as a big-endian uint64, as relabel.go
        # does so that shards match Prometheus's.
        digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
        _set(lb, c.target_label, str(int.from_bytes(digest[8:], "big") % c.modulus))
    elif action == "labelmap":
        for name, label_value in sorted(lb.items()):
            match = c.pattern.fullmatch(name)
            if match is not None:
                new_name = expand(c.replacement, match)
                if new_name:
                    _set(lb, new_name, label_value)
    elif action == "labeldrop":
        for name in [n for n in lb if c.pattern.fullmatch(n)]:
            del lb[name]
    elif action == "labelkeep":
        for name in [n for n in lb if not c.pattern.fullmatch(n)]:
            del lb[name]
    return True


def _set(lb: dict[str, str], name: str, value: str) -> None:
    if value == "":
        lb.pop(name, None)
    else:
        lb[name] = value
