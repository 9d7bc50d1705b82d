"""The built docs at 1280 px in headless Chromium: no page, sidebar or code block scrolls sideways.

Run by ``nox -s docs`` after the HTML build (``DOCS_HTML`` names the build, ``DOCS_SCREENSHOTS``
where the screenshots go). Needs Debian's ``chromium`` and ``chromium-driver`` and selenium:
when they are missing it fails with the line that installs them, so that ``nox -s docs``
never passes with its browser checks left out; ``DOCS_SKIP_RENDER=1`` skips them on purpose
(never in CI, where ``CI`` is set).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("DOCS_HTML", ROOT / "docs" / "_build" / "html"))
SCREENSHOTS = Path(os.environ.get("DOCS_SCREENSHOTS", ROOT / "docs" / "_build" / "screenshots"))
PAGES = ["index", "tutorial", "example_plugin", "configure", "runs", "reference/api"]
WIDTH, HEIGHT = 1280, 900
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--window-size={WIDTH},{HEIGHT}",
]

# Every element that scrolls sideways: its content is wider than its box and it may scroll.
SCROLLING = r"""
const found = [];
for (const element of [document.documentElement, ...document.querySelectorAll('body *')]) {
  const overflow = getComputedStyle(element).overflowX;
  const scrolls = element === document.documentElement || ['auto', 'scroll'].includes(overflow);
  if (scrolls && element.clientWidth > 0 && element.scrollWidth > element.clientWidth) {
    found.push(`${element.tagName.toLowerCase()}.${element.className}: ` +
      `${element.scrollWidth} > ${element.clientWidth} px ` +
      JSON.stringify((element.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60)));
  }
}
return found;
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("DOCS_SKIP_RENDER") and not os.environ.get("CI"):
        pytest.skip(f"{reason} (DOCS_SKIP_RENDER is set)")
    pytest.fail(
        f"{reason}; or set DOCS_SKIP_RENDER=1 to build the docs without the browser checks "
        "(CI always runs them: .ci/run installs chromium)"
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        _unavailable("needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("needs selenium: pip install selenium")
    if not (HTML / "index.html").exists():
        _unavailable(f"no built docs in {HTML}: nox -s docs builds them")
    options = Options()
    options.binary_location = str(chromium)
    profile = tempfile.mkdtemp(prefix="docs-render-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    # The given chromedriver: selenium does not look for (or download) one of its own.
    session = webdriver.Chrome(options=options, service=Service(str(driver)))
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize("page", PAGES)
def test_page_does_not_scroll_sideways_at_1280_px(browser: Any, page: str) -> None:
    browser.get((HTML / f"{page}.html").as_uri())
    assert browser.execute_script("return window.innerWidth") == WIDTH
    scrolling = browser.execute_script(SCROLLING)
    sidebar = browser.execute_script(
        "const s = document.querySelector('.sidebar-scroll');"
        "return s && [s.scrollWidth, s.clientWidth];"
    )
    # A full-page screenshot, to look at.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(height, 8000))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{page.replace('/', '-')}.png"
    browser.save_screenshot(str(shot))
    browser.set_window_size(WIDTH, HEIGHT)
    assert shot.stat().st_size > 10_000
    assert scrolling == [], f"{page}.html scrolls sideways at {WIDTH} px:\n" + "\n".join(scrolling)
    assert sidebar is not None, "no .sidebar-scroll: is the theme furo?"
    assert sidebar[0] <= sidebar[1], f"the sidebar of {page}.html scrolls sideways: {sidebar}"
