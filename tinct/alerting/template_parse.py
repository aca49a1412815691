"""Go ``text/template``'s lexer and parser, as Prometheus's templates need them.

Split from :mod:`tinct.alerting.templates`, which executes the parse tree
made here; Go's own split is the same (``text/template/parse``). Errors are
:class:`TemplateError` with Go's message shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinct.alerting.template_funcs import BOUND_FUNCTIONS, FUNCTIONS

__all__ = ["ARITY", "Command", "Control", "Node", "Parser", "Pipe", "TemplateError", "Token"]


class TemplateError(ValueError):
    """A template does not parse, or fails while executing (the message is Go's)."""


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
ARITY = {name: f.arity for name, f in FUNCTIONS.items()} | {
    "query": 1,
    "externalURL": 0,
    "pathPrefix": 0,
}


# ---- lexer ----------------------------------------------------------------


@dataclass
class Token:
    kind: str  # text, left, right, ident, keyword, field, var, string, number, char,
    # bool, dot, pipe, lparen, rparen, declare, assign, comma, eof
    val: str
    pos: int
    space: bool = False  # whitespace came right before it


def _lex(text: str, err: Callable[[int, str], TemplateError]) -> list[Token]:
    toks: list[Token] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find("{{", pos)
        if start < 0:
            toks.append(Token("text", text[pos:], pos))
            break
        after = start + 2
        trim_left = text.startswith("-", after) and after + 1 < n and text[after + 1] in _SPACE
        chunk = text[pos:start]
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            toks.append(Token("text", chunk, pos))
        if trim_left:
            after += 2
        pos = _lex_action(text, start, after, toks, err)
        if toks and toks[-1].kind == "right" and toks[-1].val == "-}}":
            while pos < n and text[pos] in _SPACE:
                pos += 1
    toks.append(Token("eof", "", n))
    return toks


def _at_right(text: str, pos: int) -> tuple[bool, int, bool]:
    """(at a right delimiter, its end, with trim marker)."""
    if text.startswith("}}", pos):
        return True, pos + 2, False
    if pos + 1 < len(text) and text[pos] in _SPACE and text.startswith("-}}", pos + 1):
        return True, pos + 4, True
    return False, pos, False


def _lex_action(
    text: str, start: int, pos: int, toks: list[Token], err: Callable[[int, str], TemplateError]
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
    toks.append(Token("left", "{{", start))
    depth = 0
    space = False
    while True:
        if pos >= n:
            raise err(start, "unclosed action")
        ok, stop, trim = _at_right(text, pos)
        if ok:
            if depth:
                raise err(pos, "unclosed left paren")
            toks.append(Token("right", "-}}" if trim else "}}", pos, space))
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
        toks.append(Token(kind, text[tok_start:pos], tok_start, space))
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
class Node:
    kind: str  # field var chain dot nil bool number string ident pipe
    value: Any = None
    fields: tuple[str, ...] = ()
    base: Any = None
    pos: int = 0


@dataclass
class Command:
    args: list[Node]
    pos: int
    src: str


@dataclass
class Pipe:
    decl: list[str]
    assign: bool
    cmds: list[Command]
    pos: int


@dataclass
class Control:
    kind: str  # action if range with template text break continue
    pipe: Pipe | None = None
    body: list[Any] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)
    text: str = ""
    pos: int = 0


class Parser:
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

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, context: str) -> Token:
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
            if isinstance(node, Control) and node.kind in ("end", "else"):
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

    def item_list(self) -> tuple[list[Any], Control]:
        body: list[Any] = []
        while True:
            if self.peek().kind == "eof":
                raise self.error(self.peek().pos, "unexpected EOF")
            node = self.item()
            if isinstance(node, Control) and node.kind in ("end", "else"):
                return body, node
            body.append(node)

    def item(self) -> Any:
        tok = self.next()
        if tok.kind == "text":
            return Control("text", text=tok.val, pos=tok.pos)
        # tok is "left"
        head = self.peek()
        if head.kind == "keyword":
            self.next()
            word = head.val
            if word == "end":
                self.expect("right", "end")
                return Control("end", pos=head.pos)
            if word == "else":
                if self.peek().kind == "keyword" and self.peek().val in ("if", "with"):
                    return Control("else", text=self.peek().val, pos=head.pos)
                self.expect("right", "else")
                return Control("else", pos=head.pos)
            if word in ("if", "with", "range"):
                return self.control(word, head.pos)
            if word in ("break", "continue"):
                if not self.range_depth:
                    raise self.error(head.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                self.expect("right", word)
                return Control(word, pos=head.pos)
            if word in ("template", "block"):
                return self.template(word, head.pos)
            if word == "define":
                raise self.error(head.pos, "unexpected <define> in command")
        pipe = self.pipeline("command", "right")
        return Control("action", pipe=pipe, pos=head.pos)

    def template(self, word: str, pos: int) -> Control:
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
        return Control("template", pipe=pipe, text=name, pos=pos)

    def control(self, word: str, pos: int) -> Control:
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
        return Control(word, pipe=pipe, body=body, other=other, pos=pos)

    def pipeline(self, context: str, end: str) -> Pipe:
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
        cmds: list[Command] = []
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
                return Pipe(decl, assign, cmds, start)
            if tok.kind in _OPERAND_START:
                cmds.append(self.command())
            else:
                raise self.error(tok.pos, f"unexpected {_desc(tok)} in {context}")

    def command(self) -> Command:
        start = self.peek().pos
        args: list[Node] = []
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
        return Command(args, start, self.text[start:end].strip())

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        fields: list[str] = []
        while self.peek().kind == "field" and not self.peek().space:
            fields.append(self.next().val[1:])
        if not fields:
            return node
        if node.kind == "field":
            return Node("field", fields=node.fields + tuple(fields), pos=node.pos)
        if node.kind == "var":
            return Node("var", node.value, fields=node.fields + tuple(fields), pos=node.pos)
        if node.kind in ("bool", "string", "number", "nil", "dot"):
            raise self.error(node.pos, f"unexpected . after term {node.value!r}")
        return Node("chain", base=node, fields=tuple(fields), pos=node.pos)

    def term(self) -> Node | None:
        tok = self.peek()
        kind = tok.kind
        if kind not in _OPERAND_START:
            return None
        self.next()
        if kind == "ident":
            if tok.val not in _NAMES:
                raise self.error(tok.pos, f'function "{tok.val}" not defined')
            return Node("ident", tok.val, pos=tok.pos)
        if kind == "keyword" and tok.val == "nil":
            return Node("nil", pos=tok.pos)
        if kind == "dot":
            return Node("dot", pos=tok.pos)
        if kind == "var":
            if tok.val not in self.vars:
                raise self.error(tok.pos, f'undefined variable "{tok.val}"')
            return Node("var", tok.val, pos=tok.pos)
        if kind == "field":
            return Node("field", fields=(tok.val[1:],), pos=tok.pos)
        if kind == "bool":
            return Node("bool", tok.val == "true", pos=tok.pos)
        if kind == "number" or kind == "char":
            return Node("number", self.number(tok), pos=tok.pos)
        if kind in ("string", "rawstring"):
            return Node("string", _string_value(tok), pos=tok.pos)
        # lparen
        pipe = self.pipeline("parenthesized pipeline", "rparen")
        return Node("pipe", pipe, pos=tok.pos)

    def number(self, tok: Token) -> int | float:
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


def _string_value(tok: Token) -> str:
    return tok.val[1:-1] if tok.kind == "rawstring" else _unquote(tok.val[1:-1])


def _desc(tok: Token) -> str:
    if tok.kind == "right":
        return "<}}>" if tok.val == "}}" else "<-}}>"
    if tok.kind == "eof":
        return "EOF"
    return f"<{tok.val}>"
