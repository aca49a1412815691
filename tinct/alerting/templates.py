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
from dataclasses import dataclass, field
from typing import Any

from tinct.alerting.template_funcs import (
    BOUND_FUNCTIONS,
    FUNCTIONS,
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

__all__ = ["HEADER", "TemplateError", "check", "render", "samples_from_vector"]

HEADER = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
_DATA_TYPE = (
    "struct { Labels map[string]string; ExternalLabels map[string]string; "
    "ExternalURL string; Value float64 }"
)
_KEYWORDS = {
    "block",
    "break",
    "continue",
    "define",
    "else",
    "end",
    "if",
    "range",
    "nil",
    "template",
    "with",
}
_SPACE = " \t\r\n"
_NAMES = set(FUNCTIONS) | set(BOUND_FUNCTIONS) | {"and", "or"}
_ARITY = {name: f.arity for name, f in FUNCTIONS.items()} | {
    "query": 1,
    "externalURL": 0,
    "pathPrefix": 0,
}


class TemplateError(ValueError):
    """A template does not parse, or fails while executing (the message is Go's)."""


# ---- lexer ----------------------------------------------------------------


@dataclass
class _Tok:
    kind: str  # text, left, right, ident, keyword, field, var, string, number, char,
    # bool, dot, pipe, lparen, rparen, declare, assign, comma, eof
    val: str
    pos: int
    space: bool = False  # whitespace came right before it


def _lex(text: str, err: Callable[[int, str], TemplateError]) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find("{{", pos)
        if start < 0:
            toks.append(_Tok("text", text[pos:], pos))
            break
        after = start + 2
        trim_left = text.startswith("-", after) and after + 1 < n and text[after + 1] in _SPACE
        chunk = text[pos:start]
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            toks.append(_Tok("text", chunk, pos))
        if trim_left:
            after += 2
        pos = _lex_action(text, start, after, toks, err)
        if toks and toks[-1].kind == "right" and toks[-1].val == "-}}":
            while pos < n and text[pos] in _SPACE:
                pos += 1
    toks.append(_Tok("eof", "", n))
    return toks


def _at_right(text: str, pos: int) -> tuple[bool, int, bool]:
    """(at a right delimiter, its end, with trim marker)."""
    if text.startswith("}}", pos):
        return True, pos + 2, False
    if pos + 1 < len(text) and text[pos] in _SPACE and text.startswith("-}}", pos + 1):
        return True, pos + 4, True
    return False, pos, False


def _lex_action(
    text: str, start: int, pos: int, toks: list[_Tok], err: Callable[[int, str], TemplateError]
) -> int:
    n = len(text)
    if text.startswith("/*", pos):  # a comment fills the whole action
        end = text.find("*/", pos + 2)
        if end < 0:
            raise err(start, "unclosed comment")
        ok, stop, trim = _at_right(text, end + 2)
        if not ok:
            raise err(start, "comment ends before closing delimiter")
        if trim:
            while stop < n and text[stop] in _SPACE:
                stop += 1
        return stop
    toks.append(_Tok("left", "{{", start))
    depth = 0
    space = False
    while True:
        if pos >= n:
            raise err(start, "unclosed action")
        ok, stop, trim = _at_right(text, pos)
        if ok:
            if depth:
                raise err(pos, "unclosed left paren")
            toks.append(_Tok("right", "-}}" if trim else "}}", pos, space))
            return stop
        c = text[pos]
        if c in _SPACE:
            space = True
            pos += 1
            continue
        tok_start = pos
        if c == "|":
            kind, pos = "pipe", pos + 1
        elif c == "(":
            kind, pos, depth = "lparen", pos + 1, depth + 1
        elif c == ")":
            if depth == 0:
                raise err(pos, "unexpected right paren")
            kind, pos, depth = "rparen", pos + 1, depth - 1
        elif c == ",":
            kind, pos = "comma", pos + 1
        elif text.startswith(":=", pos):
            kind, pos = "declare", pos + 2
        elif c == "=":
            kind, pos = "assign", pos + 1
        elif c == '"':
            pos = _scan_quoted(text, pos, '"', err)
            kind = "string"
        elif c == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise err(pos, "unterminated raw quoted string")
            kind, pos = "rawstring", end + 1
        elif c == "'":
            pos = _scan_quoted(text, pos, "'", err)
            kind = "char"
        elif c == "$":
            pos = _scan_word(text, pos + 1)
            kind = "var"
        elif c == "." and pos + 1 < n and (text[pos + 1].isalpha() or text[pos + 1] == "_"):
            pos = _scan_word(text, pos + 1)
            kind = "field"
        elif c.isdigit() or (c in "+-." and pos + 1 < n and text[pos + 1].isdigit()):
            pos = _scan_number(text, pos)
            kind = "number"
        elif c == ".":
            kind, pos = "dot", pos + 1
        elif c.isalpha() or c == "_":
            pos = _scan_word(text, pos)
            word = text[tok_start:pos]
            kind = (
                "keyword"
                if word in _KEYWORDS
                else ("bool" if word in ("true", "false") else "ident")
            )
        else:
            raise err(pos, f"unrecognized character in action: U+{ord(c):04X}")
        toks.append(_Tok(kind, text[tok_start:pos], tok_start, space))
        space = False


def _scan_word(text: str, pos: int) -> int:
    while pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
        pos += 1
    return pos


def _scan_number(text: str, pos: int) -> int:
    if text[pos] in "+-":
        pos += 1
    while pos < len(text) and (
        text[pos].isalnum() or text[pos] in "._" or (text[pos] in "+-" and text[pos - 1] in "eEpP")
    ):
        pos += 1
    return pos


def _scan_quoted(text: str, pos: int, quote: str, err: Callable[[int, str], TemplateError]) -> int:
    i = pos + 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise err(
                pos,
                "unterminated quoted string" if quote == '"' else "unterminated character constant",
            )
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1


_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


def _unquote(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt == "U":
            out.append(chr(int(body[i + 2 : i + 10], 16)))
            i += 10
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise ValueError(f"invalid escape \\{nxt}")
    return "".join(out)


# ---- parse tree -----------------------------------------------------------


@dataclass
class _Node:
    kind: str  # field var chain dot nil bool number string ident pipe
    value: Any = None
    fields: tuple[str, ...] = ()
    base: Any = None
    pos: int = 0


@dataclass
class _Command:
    args: list[_Node]
    pos: int
    src: str


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[_Command]
    pos: int


@dataclass
class _Control:
    kind: str  # action if range with template text break continue
    pipe: _Pipe | None = None
    body: list[Any] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)
    text: str = ""
    pos: int = 0


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.toks = _lex(text, self.error)
        self.i = 0
        self.vars = ["$"]
        self.defines: dict[str, list[Any]] = {}
        self.range_depth = 0

    def error(self, pos: int, msg: str) -> TemplateError:
        line = self.text.count("\n", 0, pos) + 1
        return TemplateError(f"template: {self.name}:{line}: {msg}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, context: str) -> _Tok:
        tok = self.next()
        if tok.kind != kind:
            raise self.error(tok.pos, f"unexpected {_desc(tok)} in {context}")
        return tok

    def parse(self) -> list[Any]:
        nodes: list[Any] = []
        while self.peek().kind != "eof":
            tok = self.peek()
            if tok.kind == "left" and self.toks[self.i + 1].val == "define":
                self.i += 2
                self.define()
                continue
            node = self.item()
            if isinstance(node, _Control) and node.kind in ("end", "else"):
                raise self.error(node.pos, f"unexpected {{{{{node.kind}}}}}")
            nodes.append(node)
        return nodes

    def define(self) -> None:
        name_tok = self.next()
        if name_tok.kind not in ("string", "rawstring"):
            raise self.error(name_tok.pos, f"unexpected {_desc(name_tok)} in define clause")
        self.expect("right", "define clause")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        if end.kind != "end":
            raise self.error(end.pos, "unexpected {{else}} in define clause")
        self.vars = saved
        self.defines[_string_value(name_tok)] = body

    def item_list(self) -> tuple[list[Any], _Control]:
        body: list[Any] = []
        while True:
            if self.peek().kind == "eof":
                raise self.error(self.peek().pos, "unexpected EOF")
            node = self.item()
            if isinstance(node, _Control) and node.kind in ("end", "else"):
                return body, node
            body.append(node)

    def item(self) -> Any:
        tok = self.next()
        if tok.kind == "text":
            return _Control("text", text=tok.val, pos=tok.pos)
        # tok is "left"
        head = self.peek()
        if head.kind == "keyword":
            self.next()
            word = head.val
            if word == "end":
                self.expect("right", "end")
                return _Control("end", pos=head.pos)
            if word == "else":
                if self.peek().kind == "keyword" and self.peek().val in ("if", "with"):
                    return _Control("else", text=self.peek().val, pos=head.pos)
                self.expect("right", "else")
                return _Control("else", pos=head.pos)
            if word in ("if", "with", "range"):
                return self.control(word, head.pos)
            if word in ("break", "continue"):
                if not self.range_depth:
                    raise self.error(head.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                self.expect("right", word)
                return _Control(word, pos=head.pos)
            if word in ("template", "block"):
                return self.template(word, head.pos)
            if word == "define":
                raise self.error(head.pos, "unexpected <define> in command")
        pipe = self.pipeline("command", "right")
        return _Control("action", pipe=pipe, pos=head.pos)

    def template(self, word: str, pos: int) -> _Control:
        name_tok = self.next()
        if name_tok.kind not in ("string", "rawstring"):
            raise self.error(name_tok.pos, f"unexpected {_desc(name_tok)} in template clause")
        pipe = None
        if self.peek().kind != "right":
            pipe = self.pipeline(f"{word} clause", "right")
        else:
            self.next()
        name = _string_value(name_tok)
        if word == "block":
            body, end = self.item_list()
            if end.kind != "end":
                raise self.error(end.pos, "unexpected {{else}} in block clause")
            self.defines[name] = body
        return _Control("template", pipe=pipe, text=name, pos=pos)

    def control(self, word: str, pos: int) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(word, "right")
        if word == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if word == "range":
            self.range_depth -= 1
        other: list[Any] = []
        if nxt.kind == "else":
            if nxt.text:  # else if / else with: a nested control sharing our {{end}}
                self.next()
                other = [self.control(nxt.text, nxt.pos)]
            else:
                other, end = self.item_list()
                if end.kind != "end":
                    raise self.error(end.pos, "expected end; found {{else}}")
        del self.vars[mark:]
        return _Control(word, pipe=pipe, body=body, other=other, pos=pos)

    def pipeline(self, context: str, end: str) -> _Pipe:
        decl: list[str] = []
        assign = False
        start = self.peek().pos
        if self.peek().kind == "var":
            save = self.i
            var = self.next()
            nxt = self.peek()
            if nxt.kind in ("declare", "assign"):
                self.next()
                decl = [var.val]
                assign = nxt.kind == "assign"
            elif nxt.kind == "comma" and context == "range":
                self.next()
                var2 = self.expect("var", "range")
                self.expect("declare", "range")
                decl = [var.val, var2.val]
            elif nxt.kind == "comma":
                raise self.error(nxt.pos, f"too many declarations in {context}")
            else:
                self.i = save
            if decl and not assign:
                self.vars.extend(decl)
            elif decl and decl[0] not in self.vars:
                raise self.error(var.pos, f"undefined variable {decl[0]!r}".replace("'", '"'))
        cmds: list[_Command] = []
        while True:
            tok = self.peek()
            if tok.kind == end:
                self.next()
                if not cmds:
                    raise self.error(tok.pos, f"missing value for {context}")
                for stage, cmd in enumerate(cmds[1:], start=2):
                    if cmd.args[0].kind in ("bool", "dot", "nil", "number", "string"):
                        raise self.error(
                            cmd.pos, f"non executable command in pipeline stage {stage}"
                        )
                return _Pipe(decl, assign, cmds, start)
            if tok.kind in _OPERAND_START:
                cmds.append(self.command())
            else:
                raise self.error(tok.pos, f"unexpected {_desc(tok)} in {context}")

    def command(self) -> _Command:
        start = self.peek().pos
        args: list[_Node] = []
        end = start
        while True:
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            end = self.toks[self.i - 1].pos + len(self.toks[self.i - 1].val)
            tok = self.peek()
            if tok.kind in ("right", "rparen"):
                break
            if tok.kind == "pipe":
                self.next()
                break
            if operand is not None and tok.space and tok.kind in _OPERAND_START:
                continue
            raise self.error(tok.pos, f"unexpected {_desc(tok)} in operand")
        if not args:
            raise self.error(start, "empty command")
        return _Command(args, start, self.text[start:end].strip())

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        fields: list[str] = []
        while self.peek().kind == "field" and not self.peek().space:
            fields.append(self.next().val[1:])
        if not fields:
            return node
        if node.kind == "field":
            return _Node("field", fields=node.fields + tuple(fields), pos=node.pos)
        if node.kind == "var":
            return _Node("var", node.value, fields=node.fields + tuple(fields), pos=node.pos)
        if node.kind in ("bool", "string", "number", "nil", "dot"):
            raise self.error(node.pos, f"unexpected . after term {node.value!r}")
        return _Node("chain", base=node, fields=tuple(fields), pos=node.pos)

    def term(self) -> _Node | None:
        tok = self.peek()
        kind = tok.kind
        if kind not in _OPERAND_START:
            return None
        self.next()
        if kind == "ident":
            if tok.val not in _NAMES:
                raise self.error(tok.pos, f'function "{tok.val}" not defined')
            return _Node("ident", tok.val, pos=tok.pos)
        if kind == "keyword" and tok.val == "nil":
            return _Node("nil", pos=tok.pos)
        if kind == "dot":
            return _Node("dot", pos=tok.pos)
        if kind == "var":
            if tok.val not in self.vars:
                raise self.error(tok.pos, f'undefined variable "{tok.val}"')
            return _Node("var", tok.val, pos=tok.pos)
        if kind == "field":
            return _Node("field", fields=(tok.val[1:],), pos=tok.pos)
        if kind == "bool":
            return _Node("bool", tok.val == "true", pos=tok.pos)
        if kind == "number" or kind == "char":
            return _Node("number", self.number(tok), pos=tok.pos)
        if kind in ("string", "rawstring"):
            return _Node("string", _string_value(tok), pos=tok.pos)
        # lparen
        pipe = self.pipeline("parenthesized pipeline", "rparen")
        return _Node("pipe", pipe, pos=tok.pos)

    def number(self, tok: _Tok) -> int | float:
        text = tok.val
        if tok.kind == "char":
            body = _unquote(text[1:-1])
            if len(body) != 1:
                raise self.error(tok.pos, f"malformed character constant: {text}")
            return ord(body)
        clean = text.replace("_", "")
        try:
            if any(c in clean for c in ".eEpP") and not clean.lower().lstrip("+-").startswith("0x"):
                return float(clean)
            return int(clean, 0)
        except ValueError:
            raise self.error(tok.pos, f"bad number syntax: {text!r}") from None


_OPERAND_START = {
    "bool",
    "char",
    "dot",
    "field",
    "ident",
    "number",
    "string",
    "rawstring",
    "var",
    "lparen",
}


def _string_value(tok: _Tok) -> str:
    return tok.val[1:-1] if tok.kind == "rawstring" else _unquote(tok.val[1:-1])


def _desc(tok: _Tok) -> str:
    if tok.kind == "right":
        return "<}}>" if tok.val == "}}" else "<-}}>"
    if tok.kind == "eof":
        return "EOF"
    return f"<{tok.val}>"


# ---- execution ------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MISSING = object()


class _Exec:
    def __init__(self, parser: _Parser, funcs: Mapping[str, Callable[..., Any]]) -> None:
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

    def call_template(self, dot: Any, node: _Control) -> None:
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

    def range(self, dot: Any, node: _Control) -> None:
        assert node.pipe is not None
        mark = len(self.vars)
        pipe = _Pipe([], False, node.pipe.cmds, node.pipe.pos)
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

    def pipeline(self, dot: Any, pipe: _Pipe | None) -> Any:
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

    def command(self, dot: Any, cmd: _Command, final: Any) -> Any:
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

    def no_args(self, cmd: _Command, final: Any, what: str) -> None:
        if len(cmd.args) > 1 or final is not _MISSING:
            raise ArgTypeError(f"can't give argument to non-function {what}")

    def arg(self, dot: Any, node: _Node, cmd: _Command) -> Any:
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
        cmd: _Command,
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

    def function(
        self, dot: Any, name: str, arg_nodes: list[_Node], final: Any, cmd: _Command
    ) -> Any:
        if name in ("and", "or"):
            nodes: list[Any] = list(arg_nodes)
            if final is not _MISSING:
                nodes.append(final)
            if not nodes:
                raise ArgTypeError(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = self.arg(dot, node, cmd) if isinstance(node, _Node) else node
                if truth(value) != (name == "and"):
                    return value
            return value
        args = [self.arg(dot, a, cmd) for a in arg_nodes]
        if final is not _MISSING:
            args.append(final)
        fn = self.funcs[name]
        want = _ARITY.get(name)
        if want is not None and len(args) != want:
            raise ArgTypeError(f"wrong number of args for {name}: want {want} got {len(args)}")
        if want is None and not args and name not in ("print", "println", "args"):
            raise ArgTypeError(f"wrong number of args for {name}: want at least 1 got 0")
        try:
            return fn(*args)
        except CallError as exc:
            raise CallError(f"error calling {name}: {exc}") from None


# ---- API ------------------------------------------------------------------


def _parse(text: str, name: str) -> _Parser:
    parser = _Parser(text, name)
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
