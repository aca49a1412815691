"""RE2 patterns and Go templates mean on Python's re what they mean in Prometheus."""

from __future__ import annotations

import pytest

from tinct.goregex import compile_go_regex, expand


def test_go_expansion_dollar_name_runs_to_the_longest_word() -> None:
    # Go's Regexp.Expand reads "$1x" as the group named "1x" (none): empty.
    match = compile_go_regex("f(.*)").fullmatch("foo")
    assert match is not None
    assert expand("$1x", match) == ""
    assert expand("${1}x", match) == "oox"
    assert expand("$1-$1", match) == "oo-oo"
    assert expand("$$1 costs $", match) == "$1 costs $"
    assert expand("${1", match) == "${1"  # malformed: the $ is kept as text
    assert expand("$9", match) == ""  # no such group
    named = compile_go_regex("(?P<host>[^:]+):(?<port>\\d+)").fullmatch("db:5432")
    assert named is not None
    assert expand("$host/${port}x/$portx", named) == "db/5432x/"
    assert expand("$01", named) == ""  # leading zero: a name, not group 1


def test_re2_syntax_runs_on_python_re() -> None:
    def matches(pattern: str, text: str) -> bool:
        return compile_go_regex(pattern).fullmatch(text) is not None

    assert matches("(?i)FOO", "foo")
    # An inline flag holds to the end of its group, across alternatives.
    assert matches("a(?i)b|c", "C")
    assert not matches("a(?i)b|c", "Ab")
    assert matches("x(a(?i)b|c)y", "xCy")
    assert matches("[[:alpha:]_]+", "ab_C")
    assert matches(r"\Qa.b\E", "a.b") and not matches(r"\Qa.b\E", "axb")
    assert matches(r"\x{41}\101", "AA")
    assert matches("[]a]+", "]a]")
    assert not matches(r"\d", "٣")  # \d is ASCII, as in RE2
    for bad in [r"(?=a)", r"a(?!b)", r"(a)\1", r"\pL", "(?U)a+", "(", "[[:foo:]]"]:
        with pytest.raises(ValueError):
            compile_go_regex(bad)
