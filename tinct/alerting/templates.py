"""Go ``text/template`` as Prometheus uses it for alert labels and annotations.

Rule files written for Prometheus carry annotations such as
``{{ $labels.instance }} is at {{ $value | humanizePercentage }}``; they must
render, and fail, the same way in tinct. This is Go's ``text/template``
(https://pkg.go.dev/text/template: actions, trim markers, comments,
pipelines, variables, ``if``/``else if``/``range``/``with``/``define``/
``template``/``break``/``continue``, the builtin functions) with Prometheus's
function map and data (``template/template.go``, documented at
https://prometheus.io/docs/prometheus/latest/configuration/template_reference/).

Like Prometheus (``rules/alerting.go``), every text is prefixed with
:data:`HEADER`, which binds ``$labels``, ``$externalLabels``,
``$externalURL`` and ``$value`` from the data ``.Labels``,
``.ExternalLabels``, ``.ExternalURL`` and ``.Value``; ``missingkey=zero``
makes a missing label the empty string. Error messages keep Go's shape
(``template: NAME:LINE:COL: executing "NAME" at <humanize "one">: ...``),
positions counted in the prefixed text as Go counts them.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from tinct.alerting.govalues import (
    ArgTypeError,
    CallError,
    GoMap,
    GoStruct,
    GoTime,
    Sample,
    go_type,
    go_value_text,
    truth,
)
from tinct.alerting.template_funcs import FUNCTIONS
from tinct.alerting.template_parse import (
    ARITY,
    Command,
    Control,
    Node,
    Parser,
    Pipe,
    TemplateError,
)

__all__ = ["HEADER", "TemplateError", "check", "render", "samples_from_vector"]

HEADER = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
_DATA_TYPE = (
    "struct { Labels map[string]string; ExternalLabels map[string]string; "
    "ExternalURL string; Value float64 }"
)
# ---- execution ------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MISSING = object()


class _Exec:
    def __init__(self, parser: Parser, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.text = parser.text
        self.name = parser.name
        self.defines = parser.defines
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = []
        self.out: list[str] = []
        self.depth = 0

    def error(self, pos: int, src: str, msg: str) -> TemplateError:
        line_start = self.text.rfind("\n", 0, pos)
        line = self.text.count("\n", 0, pos) + 1
        col = pos if line_start < 0 else pos - line_start - 1
        return TemplateError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at <{src}>: {msg}'
        )

    def walk(self, dot: Any, nodes: list[Any]) -> None:
        for node in nodes:
            kind = node.kind
            if kind == "text":
                self.out.append(node.text)
            elif kind == "action":
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(go_value_text(value))
            elif kind in ("if", "with"):
                mark = len(self.vars)
                value = self.pipeline(dot, node.pipe)
                if truth(value):
                    self.walk(value if kind == "with" else dot, node.body)
                else:
                    self.walk(dot, node.other)
                del self.vars[mark:]
            elif kind == "range":
                self.range(dot, node)
            elif kind == "template":
                self.call_template(dot, node)
            elif kind == "break":
                raise _Break
            elif kind == "continue":
                raise _Continue

    def call_template(self, dot: Any, node: Control) -> None:
        body = self.defines.get(node.text)
        if body is None:
            raise self.error(node.pos, f'template "{node.text}"', f'no such template "{node.text}"')
        value = self.pipeline(dot, node.pipe) if node.pipe else None
        self.depth += 1
        if self.depth > 1000:
            raise self.error(node.pos, "template", "exceeded maximum template depth (100000)")
        saved = self.vars
        self.vars = [("$", value)]
        self.walk(value, body)
        self.vars = saved
        self.depth -= 1

    def range(self, dot: Any, node: Control) -> None:
        assert node.pipe is not None
        mark = len(self.vars)
        pipe = Pipe([], False, node.pipe.cmds, node.pipe.pos)
        value = self.pipeline(dot, pipe)
        if isinstance(value, dict):
            items: list[tuple[Any, Any]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif value is None:
            items = []
        else:
            src = node.pipe.cmds[0].src
            raise self.error(node.pos, src, f"range can't iterate over {go_value_text(value)}")
        for key, elem in items:
            if len(node.pipe.decl) == 1:
                self.vars.append((node.pipe.decl[0], elem))
            elif len(node.pipe.decl) == 2:
                self.vars.append((node.pipe.decl[0], key))
                self.vars.append((node.pipe.decl[1], elem))
            try:
                self.walk(elem, node.body)
            except _Break:
                del self.vars[mark:]
                break
            except _Continue:
                pass
            del self.vars[mark:]
        if not items:
            self.walk(dot, node.other)
        del self.vars[mark:]

    def pipeline(self, dot: Any, pipe: Pipe | None) -> Any:
        if pipe is None:
            return None
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        if pipe.decl:
            if pipe.assign:
                self.set_var(pipe.decl[0], value)
            else:
                self.vars.append((pipe.decl[0], value))
        return value

    def lookup(self, name: str) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise TemplateError(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}")

    def command(self, dot: Any, cmd: Command, final: Any) -> Any:
        first = cmd.args[0]
        try:
            if first.kind == "field":
                return self.fields(dot, dot, first.fields, cmd, final)
            if first.kind == "chain":
                base = self.arg(dot, first.base, cmd)
                return self.fields(dot, base, first.fields, cmd, final)
            if first.kind == "var":
                value = self.lookup(first.value)
                if first.fields:
                    return self.fields(dot, value, first.fields, cmd, final)
                self.no_args(cmd, final, first.value)
                return value
            if first.kind == "ident":
                return self.function(dot, first.value, cmd.args[1:], final, cmd)
            if first.kind == "pipe":
                self.no_args(cmd, final, cmd.src)
                return self.pipeline(dot, first.value)
            self.no_args(cmd, final, cmd.src)
            if first.kind == "nil":
                raise TemplateError("nil is not a command")
            if first.kind == "dot":
                return dot
            return first.value
        except (CallError, ArgTypeError) as exc:
            raise self.error(cmd.pos, cmd.src, str(exc)) from None

    def no_args(self, cmd: Command, final: Any, what: str) -> None:
        if len(cmd.args) > 1 or final is not _MISSING:
            raise ArgTypeError(f"can't give argument to non-function {what}")

    def arg(self, dot: Any, node: Node, cmd: Command) -> Any:
        kind = node.kind
        if kind == "dot":
            return dot
        if kind == "nil":
            return None
        if kind == "var":
            value = self.lookup(node.value)
            return self.fields(dot, value, node.fields, cmd, _MISSING, no_args=True)
        if kind == "field":
            return self.fields(dot, dot, node.fields, cmd, _MISSING, no_args=True)
        if kind == "chain":
            base = self.arg(dot, node.base, cmd)
            return self.fields(dot, base, node.fields, cmd, _MISSING, no_args=True)
        if kind == "pipe":
            return self.pipeline(dot, node.value)
        if kind == "ident":
            return self.function(dot, node.value, [], _MISSING, cmd)
        return node.value

    def fields(
        self,
        dot: Any,
        receiver: Any,
        names: tuple[str, ...],
        cmd: Command,
        final: Any,
        no_args: bool = False,
    ) -> Any:
        for i, name in enumerate(names):
            last = i == len(names) - 1
            args: list[Any] = []
            if last and not no_args:
                args = [self.arg(dot, a, cmd) for a in cmd.args[1:]]
                if final is not _MISSING:
                    args.append(final)
            receiver = self.field(receiver, name, args, bool(args))
        return receiver

    def field(self, receiver: Any, name: str, args: list[Any], has_args: bool) -> Any:
        if receiver is None:
            return None
        if isinstance(receiver, GoTime):
            return receiver.call(name, args)
        if isinstance(receiver, dict):
            if has_args:
                raise ArgTypeError(f"{name} is not a method but has arguments")
            zero = receiver.zero if isinstance(receiver, GoMap) else None
            return receiver.get(name, zero)
        if isinstance(receiver, GoStruct) and name in receiver.fields:
            if has_args:
                raise ArgTypeError(f"{name} has arguments but cannot be invoked as function")
            return receiver.fields[name]
        if isinstance(receiver, Sample) and name in ("Labels", "Value"):
            if has_args:
                raise ArgTypeError(f"{name} has arguments but cannot be invoked as function")
            return getattr(receiver, name)
        raise ArgTypeError(f"can't evaluate field {name} in type {go_type(receiver)}")

    def function(self, dot: Any, name: str, arg_nodes: list[Node], final: Any, cmd: Command) -> Any:
        if name in ("and", "or"):
            nodes: list[Any] = list(arg_nodes)
            if final is not _MISSING:
                nodes.append(final)
            if not nodes:
                raise ArgTypeError(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = self.arg(dot, node, cmd) if isinstance(node, Node) else node
                if truth(value) != (name == "and"):
                    return value
            return value
        args = [self.arg(dot, a, cmd) for a in arg_nodes]
        if final is not _MISSING:
            args.append(final)
        fn = self.funcs[name]
        want = ARITY.get(name)
        if want is not None and len(args) != want:
            raise ArgTypeError(f"wrong number of args for {name}: want {want} got {len(args)}")
        if want is None and not args and name not in ("print", "println", "args"):
            raise ArgTypeError(f"wrong number of args for {name}: want at least 1 got 0")
        try:
            return fn(*args)
        except CallError as exc:
            raise CallError(f"error calling {name}: {exc}") from None


# ---- API ------------------------------------------------------------------


def _parse(text: str, name: str) -> Parser:
    parser = Parser(text, name)
    parser.root = parser.parse()  # type: ignore[attr-defined]
    return parser


def check(text: str, *, name: str = "__alert_") -> None:
    """Parse ``text`` (with Prometheus's header) as ``promtool check rules`` does.

    Raises:
        TemplateError: ``error parsing template NAME: template: NAME:LINE: ...``.
    """
    try:
        _parse(HEADER + text, name)
    except TemplateError as exc:
        raise TemplateError(f"error parsing template {name}: {exc}") from None


def samples_from_vector(items: list[Any]) -> list[Sample]:
    """Query results as templates see them: ``[(labels, (t_ms, value))]`` or
    ``[(labels, value)]`` → samples with ``.Labels`` and ``.Value``."""
    out: list[Sample] = []
    for item in items:
        if isinstance(item, Sample):
            out.append(item)
            continue
        labels, point = item
        value = point[1] if isinstance(point, tuple | list) else point
        out.append(Sample(GoMap(dict(labels)), float(value)))
    return out


def render(
    text: str,
    *,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    query: Callable[[str], list[Any]] | None = None,
    timestamp_ms: int = 0,
    name: str = "__alert_",
) -> str:
    """Expand an alert label or annotation template, as Prometheus does.

    Args:
        text: the template, without Prometheus's header (it is added here).
        labels: the alert's labels (``$labels``, ``.Labels``).
        value: the sample value (``$value``).
        external_labels: ``$externalLabels``.
        external_url: ``$externalURL``, ``externalURL`` and ``pathPrefix``.
        query: runs a PromQL instant query at the evaluation time; returns
            ``[(labels, (t_ms, value))]`` (an engine ``vector`` result) or
            samples. None makes ``query`` fail.
        timestamp_ms: the evaluation time (for the caller's query function).
        name: the template's name in messages (Prometheus: ``__alert_NAME``).

    Returns:
        The expanded text.

    Raises:
        TemplateError: parse or execution failure; the message is
            Prometheus's ``error parsing/executing template NAME: ...``.
    """
    del timestamp_ms  # the query callable is already bound to it
    try:
        parser = _parse(HEADER + text, name)
    except TemplateError as exc:
        raise TemplateError(f"error parsing template {name}: {exc}") from None
    parsed = urllib.parse.urlsplit(external_url)

    def run_query(q: Any) -> list[Sample]:
        if not isinstance(q, str):
            raise ArgTypeError(f"wrong type for value; expected string; got {go_type(q)}")
        if query is None:
            raise CallError("no query function")
        try:
            return samples_from_vector(list(query(q)))
        except (CallError, ArgTypeError):
            raise
        except Exception as exc:  # the query's own failure, reported as Go does
            raise CallError(str(exc)) from exc

    funcs: dict[str, Callable[..., Any]] = {k: f.fn for k, f in FUNCTIONS.items()}
    funcs["query"] = run_query
    funcs["externalURL"] = lambda: external_url
    funcs["pathPrefix"] = lambda: parsed.path
    data = GoStruct(
        _DATA_TYPE,
        {
            "Labels": GoMap(dict(labels)),
            "ExternalLabels": GoMap(dict(external_labels or {})),
            "ExternalURL": external_url,
            "Value": float(value),
        },
    )
    ex = _Exec(parser, funcs)
    ex.vars = [("$", data)]
    try:
        ex.walk(data, parser.root)  # type: ignore[attr-defined]
    except TemplateError as exc:
        raise TemplateError(f"error executing template {name}: {exc}") from None
    except RecursionError:
        raise TemplateError(f"error executing template {name}: too deep") from None
    return "".join(ex.out)
