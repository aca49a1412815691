"""Reading Dash component trees in tests, as a browser would show them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dash.development.base_component import Component

__all__ = ["walk", "text", "classes", "by_id", "no_id", "with_class"]


def _components_of_html(markup: str) -> list[Any]:
    """Raw HTML (the waterfall's rows) as the Dash components it stands for,
    so the tests below read rows the same way whatever renders them."""
    from html.parser import HTMLParser

    from dash import html as dhtml

    root: list[Any] = []
    stack: list[Any] = []

    class Builder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            props: dict[str, Any] = {"children": []}
            for key, value in attrs:
                if key == "class":
                    props["className"] = value
                elif key == "style":
                    props["style"] = {
                        re.sub(r"-(\w)", lambda m: m.group(1).upper(), k.strip()): v.strip()
                        for k, _, v in (p.partition(":") for p in (value or "").split(";") if p)
                    }
                else:
                    props[key] = value
            node = getattr(dhtml, tag.capitalize())(**props)
            (stack[-1].children if stack else root).append(node)
            stack.append(node)

        def handle_endtag(self, tag: str) -> None:
            stack.pop()

        def handle_data(self, data: str) -> None:
            (stack[-1].children if stack else root).append(data)

    Builder().feed(markup)
    return root


def walk(node: Any) -> Iterator[Any]:
    if isinstance(node, list | tuple):
        for child in node:
            yield from walk(child)
    elif isinstance(node, Component):
        yield node
        if getattr(node, "dangerously_allow_html", False):
            yield from walk(_components_of_html(str(node.children)))
        else:
            yield from walk(getattr(node, "children", None))


def text(node: Any) -> str:
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list | tuple):
        return " ".join(text(c) for c in node)
    if isinstance(node, Component):
        return text(getattr(node, "children", None))
    return ""


def classes(component: Any) -> set[str]:
    return set((getattr(component, "className", None) or "").split())


def by_id(node: Any, component_id: Any) -> Any:
    found = [c for c in walk(node) if getattr(c, "id", None) == component_id]
    assert len(found) == 1, f"{len(found)} components with id {component_id!r}"
    return found[0]


def no_id(node: Any, component_id: Any) -> bool:
    return not any(getattr(c, "id", None) == component_id for c in walk(node))


def with_class(node: Any, css: str) -> list[Any]:
    return [c for c in walk(node) if css in classes(c)]
