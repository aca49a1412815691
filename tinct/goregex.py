"""Go ``regexp`` (RE2) patterns and replacement templates, on Python's ``re``.

Prometheus's configuration takes RE2 regexes (relabelling, and PromQL's
``=~`` matchers) and expands ``$1`` / ``${name}`` templates with Go's
``Regexp.Expand``. A prometheus.yml carried over to tinct must mean the same,
so :func:`compile_go_regex` translates the RE2 forms Python spells
differently (inline flags in mid-pattern, ``(?<name>``, ``\\z``,
``\\Q..\\E``, ``[[:alpha:]]``, octal and ``\\x{..}`` escapes) and refuses
what RE2 refuses (look-arounds, back-references), so a pattern means the
same or fails when loaded (https://github.com/google/re2/wiki/Syntax).
``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII as in RE2; Unicode classes
(``\\p{Greek}``) are reported as unsupported. Callers anchor as they need
(Prometheus's relabelling anchors at both ends: use ``fullmatch``).

:func:`expand` follows ``Regexp.Expand`` to the letter: ``$1x`` names the
group called ``1x`` (usually empty), so ``${1}x`` is what users mean;
``$$`` is a ``$``.
"""

from __future__ import annotations

import re

__all__ = ["compile_go_regex", "expand"]


def expand(template: str, match: re.Match[str]) -> str:
    """``template`` with ``$1``/``${1}``/``$name``/``${name}`` filled in, by Go's rules.

    As Go's ``Regexp.Expand``: the name after ``$`` is the longest run of
    letters, digits and ``_`` (so ``$1x`` is the group named ``1x``); an
    unknown or unmatched group expands to nothing; ``$$`` is ``$``; a ``$``
    not followed by a name is kept as is.
    """
    out: list[str] = []
    pos = 0
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            out.append(template[pos:])
            return "".join(out)
        out.append(template[pos:dollar])
        pos = dollar + 1
        if template.startswith("$", pos):
            out.append("$")
            pos += 1
            continue
        ref = _extract(template, pos)
        if ref is None:
            out.append("$")
            continue
        name, number, pos = ref
        group: str | None = None
        if number >= 0:
            if number <= match.re.groups:
                group = match.group(number)
        elif name in match.re.groupindex:
            group = match.group(name)
        if group is not None:
            out.append(group)


def _extract(template: str, pos: int) -> tuple[str, int, int] | None:
    """Go's ``extract``: (name, number or -1, end) of the reference at ``pos``."""
    brace = template.startswith("{", pos)
    start = pos + 1 if brace else pos
    end = start
    while end < len(template) and (
        template[end].isalpha() or template[end].isdecimal() or template[end] == "_"
    ):
        end += 1
    if end == start:
        return None
    name = template[start:end]
    if brace:
        if not template.startswith("}", end):
            return None
        end += 1
    number = -1
    if (
        name.isascii()
        and name.isdigit()
        and len(name) <= 8
        and not (name[0] == "0" and len(name) > 1)
    ):
        number = int(name)
    return name, number, end


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\x00-\x7f",
    "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r"\t\n\v\f\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_GROUP_START = re.compile(
    r"\(\?(?:P?<(?P<name>\w+)>|(?P<flags>[a-zA-Z]*(?:-[a-zA-Z]*)?)(?P<end>[:)]))"
)
_OCTAL = re.compile(r"\\([0-7]{1,3})")


def compile_go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 (Go ``regexp``) pattern for ``fullmatch``.

    Raises:
        ValueError: the pattern is invalid, or uses syntax RE2 refuses or
            Python cannot express.
    """
    try:
        return re.compile(_translate(pattern), re.ASCII)
    except re.error as exc:
        raise ValueError(str(exc)) from None


def _translate(pattern: str) -> str:
    out: list[str] = []
    # For each open group, the inline flag scopes "(?i)" opened in it: RE2
    # applies them to the rest of the group, Python only at the very start,
    # so each becomes a "(?i:" closed with the group (and around each "|").
    scopes: list[list[str]] = [[]]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            text, i = _escape(pattern, i, in_class=False)
            out.append(text)
        elif char == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
        elif char == "(" and pattern.startswith("(?", i):
            m = _GROUP_START.match(pattern, i)
            if m is None:
                raise ValueError(
                    f"unsupported group syntax at position {i} (RE2 has no look-around, "
                    "atomic groups, conditionals or back-references)"
                )
            if m["name"]:
                out.append(f"(?P<{m['name']}>")
                scopes.append([])
            else:
                flags = m["flags"]
                if "U" in flags:
                    raise ValueError("the ungreedy flag (?U) is not supported by tinct")
                if set(flags) - set("ims-"):
                    raise ValueError(f"unknown flags (?{flags}) (RE2 flags: i, m, s, U)")
                if m["end"] == ":":
                    out.append(f"(?{flags}:")
                    scopes.append([])
                else:
                    out.append(f"(?{flags}:")
                    scopes[-1].append(flags)
            i = m.end()
        elif char == "(":
            out.append("(")
            scopes.append([])
            i += 1
        elif char == ")":
            out.append(")" * len(scopes[-1]) + ")")
            if len(scopes) > 1:
                scopes.pop()
            i += 1
        elif char == "|":
            open_ = scopes[-1]
            out.append(")" * len(open_) + "|" + "".join(f"(?{f}:" for f in open_))
            i += 1
        else:
            out.append(char)
            i += 1
    out.append(")" * len(scopes[0]))
    return "".join(out)


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    nxt = pattern[i + 1 : i + 2]
    if nxt == "Q" and not in_class:
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if nxt == "z":
        return r"\Z", i + 2
    if nxt in ("p", "P"):
        raise ValueError("Unicode classes (\\p{..}) are not supported by tinct")
    if nxt == "x" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            raise ValueError(f"missing closing }} in \\x{{ at position {i}")
        return f"\\U{int(pattern[i + 3 : end], 16):08x}", end + 1
    if nxt in ("8", "9"):
        raise ValueError(f"invalid escape \\{nxt}")
    octal = _OCTAL.match(pattern, i)
    if octal is not None and nxt != "0" and len(octal[1]) == 1:
        raise ValueError(f"back-references (\\{nxt}) are not supported by RE2")
    if octal is not None:
        return f"\\u{int(octal[1], 8):04x}", octal.end()
    return pattern[i : i + 2], i + 2


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):  # a leading ] is literal, in RE2 as in re
        out.append(r"\]")
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end > 0 else ""
            if name.startswith("^"):
                raise ValueError(f"negated POSIX class [:{name}:] is not supported by tinct")
            if name not in _POSIX_CLASSES:
                raise ValueError(f"unknown POSIX class [:{name}:]")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
        elif pattern[i] == "\\":
            text, i = _escape(pattern, i, in_class=True)
            out.append(text)
        elif pattern[i] in "[&~|":
            # Literal in RE2; escaped so Python does not read a nested set.
            out.append("\\" + pattern[i])
            i += 1
        else:
            out.append(pattern[i])
            i += 1
    if i >= len(pattern):
        raise ValueError("missing closing ] in character class")
    out.append("]")
    return "".join(out), i + 1
