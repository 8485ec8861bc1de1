"""Open a report in headless Chromium: console errors, tables, images, a screenshot.

Uses the ``playwright`` Python package with an installed Chromium (Debian's ``chromium``
package; nothing is downloaded: ``executable_path`` points at the system browser). Used by
the browser test and by ``python -m miseg.report DIR --screenshot PNG``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miseg.errors import ConfigurationError, DataNotFoundError
from miseg.utils.fileio import atomic_path

__all__ = ["find_chromium", "browser_unavailable", "BrowserCheck", "inspect_report"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable: ``$MISEG_CHROMIUM``, else the first of chromium/chrome on PATH."""
    configured = os.environ.get("MISEG_CHROMIUM")
    if configured:
        return configured if os.path.isfile(configured) else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_unavailable() -> str | None:
    """Why the browser check cannot run (``None`` when playwright and Chromium are there)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the 'playwright' Python package is not installed (pip install playwright)"
    if find_chromium() is None:
        return "no Chromium found (apt-get install -y chromium, or set MISEG_CHROMIUM)"
    return None


@dataclass
class BrowserCheck:
    """What a headless browser saw on a report page.

    Attributes:
        console_errors: Console messages of type ``error`` and uncaught page errors.
        table_rows: ``{table id: number of body rows}``.
        images: ``[(alt text, naturalWidth)]`` of every ``<img>`` after loading.
        screenshot: The written screenshot, or ``None``.
    """

    console_errors: list = field(default_factory=list)
    table_rows: dict = field(default_factory=dict)
    images: list = field(default_factory=list)
    screenshot: str | None = None


def launch(playwright: Any) -> Any:
    """A headless Chromium from ``find_chromium()`` (no download; ``--no-sandbox`` for root)."""
    executable = find_chromium()
    if executable is None:
        raise DataNotFoundError(f"Cannot open the report in a browser: {browser_unavailable()}.")
    return playwright.chromium.launch(executable_path=executable, headless=True,
                                      args=["--no-sandbox", "--disable-gpu"])


def inspect_report(report: str | os.PathLike, screenshot: str | os.PathLike | None = None,
                   width: int = 1280, full_page: bool = False, height: int = 900) -> BrowserCheck:
    """Load a report from disk in headless Chromium and record what it shows.

    Args:
        report: The ``report.html`` file.
        screenshot: Write a PNG screenshot here (``None``: none).
        width: Viewport width in pixels.
        full_page: Screenshot the whole page instead of the first screen.
        height: Viewport height in pixels.

    Returns:
        A :class:`BrowserCheck`.

    Raises:
        ConfigurationError: when playwright is not installed.
        DataNotFoundError: when the report or Chromium is missing.
    """
    path = Path(os.fspath(report)).resolve()
    if not path.is_file():
        raise DataNotFoundError(f"Report {str(path)!r} does not exist.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigurationError(f"Opening {str(path)!r} in a browser needs playwright: {exc}.") from exc
    check = BrowserCheck()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: check.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: check.console_errors.append(str(e)))
            page.goto(path.as_uri(), wait_until="load")
            check.table_rows = page.evaluate(
                "() => Object.fromEntries(Array.from(document.querySelectorAll('table[id]'))"
                ".map(t => [t.id, t.tBodies[0] ? t.tBodies[0].rows.length : 0]))")
            check.images = [tuple(item) for item in page.evaluate(
                "() => Array.from(document.images).map(i => [i.alt, i.complete ? i.naturalWidth : 0])")]
            if screenshot is not None:
                with atomic_path(screenshot, suffix=".png") as tmp:
                    page.screenshot(path=tmp, full_page=full_page, type="png")
                check.screenshot = os.fspath(screenshot)
        finally:
            browser.close()
    return check
