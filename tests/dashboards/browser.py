"""Playwright helpers for the web UI's browser tests (``pytest -m browser``).

Debian's Chromium (``/usr/bin/chromium``) through Playwright's sync API;
``playwright install`` is never run. A test module gets one browser and one
context (so Dash's and Plotly's scripts are fetched and compiled once), each
test a fresh ``page`` whose console errors and uncaught exceptions fail the
test. :func:`wait_drawn` waits until a Dash page has finished drawing (its
callbacks answered, its graphs plotted), :func:`pick_option` picks in a Dash 4
dropdown, and :func:`screenshot` keeps what the page looked like under
``test-artifacts/screenshots/`` at the repo root.

Use from a test module: import the fixture functions (``name=`` gives the
fixtures their short names, so test arguments don't shadow the imports)::

    from tests.dashboards.browser import browser_fixture, context_fixture, page_fixture
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page

__all__ = [
    "CHROMIUM",
    "Console",
    "browser_fixture",
    "context_fixture",
    "page_fixture",
    "pick_option",
    "screenshot",
    "wait_drawn",
]

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
WAIT_SECONDS = 15.0

# Drawn: the router filled #page, no Dash component waits for a callback
# (Dash marks those with data-dash-is-loading), every dcc.Graph has loaded
# Plotly (it is `dash-graph--pending`, without a plot, until then) and every
# Plotly graph has traces or is an empty figure (an annotation: "No data").
_DRAWN_JS = """() => {
    const page = document.querySelector('#page');
    if (!page || page.childElementCount === 0) return false;
    if (document.querySelector('[data-dash-is-loading]')) return false;
    for (const graph of document.querySelectorAll('.dash-graph')) {
        if (graph.classList.contains('dash-graph--pending')) return false;
        if (!graph.querySelector('.js-plotly-plot')) return false;
    }
    for (const gd of document.querySelectorAll('.js-plotly-plot')) {
        const hasData = gd.data && gd.data.length > 0;
        const notes = (gd.layout && gd.layout.annotations) || [];
        if (!hasData && notes.length === 0) return false;
    }
    return true;
}"""


@dataclass
class Console:
    """The console errors and uncaught exceptions of one page, with the URL they came from."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Console:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"console.error at {page.url}: {message.text}")

        def on_error(error: Error) -> None:
            self.errors.append(f"uncaught at {page.url}: {error.message}\n{error.stack or ''}")

        page.on("console", on_console)
        page.on("pageerror", on_error)
        return self

    def take(self) -> list[str]:
        """The errors seen since the last call."""
        seen, self.errors = self.errors, []
        return seen


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """Headless Chromium for a test module; skipped when Debian's chromium is missing."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module", name="context")
def context_fixture(browser: Browser) -> Iterator[BrowserContext]:
    """One context per module: its HTTP cache keeps the UI's scripts between tests."""
    shared = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(name="page")
def page_fixture(context: BrowserContext) -> Iterator[Page]:
    """A fresh page; fails the test at teardown, listing them, when the page
    logged a console error or threw an uncaught exception."""
    opened = context.new_page()
    opened.set_default_timeout(WAIT_SECONDS * 1000)
    console = Console().attach(opened)
    try:
        yield opened
    finally:
        opened.close()
    if errors := console.take():
        pytest.fail("the page logged errors:\n" + "\n".join(errors), pytrace=False)


def wait_drawn(page: Page, timeout: float = WAIT_SECONDS) -> None:
    """Block until the page is drawn (see ``_DRAWN_JS``), at most ``timeout`` seconds.

    Raises:
        playwright.sync_api.TimeoutError: not drawn in time.
    """
    page.wait_for_function(_DRAWN_JS, timeout=timeout * 1000, polling=100)


def pick_option(page: Page, dropdown: str, label: str) -> None:
    """Open the Dash 4 dropdown ``dropdown`` (a selector of its button) and
    click the option labelled ``label``, as a user does. In a multi-value
    dropdown the click toggles that option."""
    page.locator(dropdown).click()
    menu = page.locator(".dash-dropdown-content[data-state=open]")
    menu.locator("[role=option]", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).click()


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``test-artifacts/screenshots/<test>-<name>.png``; its path."""
    # PYTEST_CURRENT_TEST is "tests/x.py::test_name[param] (call)".
    test = os.environ.get("PYTEST_CURRENT_TEST", "test").split("::")[-1].rsplit(" ", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}-{name}").strip("_")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
