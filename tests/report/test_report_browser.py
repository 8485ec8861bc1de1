"""The report in a real headless browser (Debian's chromium driven by playwright).

No browser is downloaded: ``miseg.report.browser`` points playwright at the installed
Chromium (``make test`` installs Debian's ``chromium`` when it runs as root). Without one the
test is skipped with the reason, the terminal summary says plainly that the browser test did
not run, and ``test_html_report.py::test_report_html_fallback_check`` still checks the HTML.
Set ``MISEG_REQUIRE_BROWSER=1`` to fail instead of skipping.
"""

import os
import re

import pytest
from PIL import Image

from miseg.report.browser import browser_unavailable, inspect_report, launch

from .report_fixtures import CASES


@pytest.fixture(scope="session")
def browser_ready(note_browser_skipped):
    """Skips (saying so plainly) before the session's evaluation folder is built."""
    reason = browser_unavailable()
    if reason is not None:
        if os.environ.get("MISEG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MISEG_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}.")
        note_browser_skipped(reason)
        pytest.skip(f"BROWSER TEST DID NOT RUN: {reason}; the HTML-parse fallback test still ran.")


def _column(page, table, header):
    return page.evaluate(
        """([table, header]) => {
            const t = document.getElementById(table);
            const col = Array.from(t.tHead.rows[0].cells).findIndex(c => c.textContent === header);
            return Array.from(t.tBodies[0].rows).map(r => r.cells[col].getAttribute('data-sort')
                                                           ?? r.cells[col].textContent.trim());
        }""", [table, header])


def test_report_in_headless_browser(browser_ready, cv_report, tmp_path):
    shot = tmp_path / "report.png"
    check = inspect_report(cv_report, screenshot=shot)
    assert check.console_errors == []
    assert check.table_rows["cases-table"] == len(CASES) and check.table_rows["plan-table"] == 3
    assert check.table_rows["summary-table"] > 0 and check.table_rows["uncertainty-table"] == len(CASES)
    assert len(check.images) >= 11 and all(width > 0 for _, width in check.images), check.images
    with Image.open(shot) as image:
        low, high = image.convert("L").getextrema()
        assert image.size == (1280, 900) and high - low > 50


def test_sorting_a_column_in_the_browser(browser_ready, cv_report):
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(Path(cv_report).as_uri())
            original = _column(page, "cases-table", "case")
            header = page.locator("#cases-table th", has_text="uncertain_fraction")
            header.click()
            values = [float(v) for v in _column(page, "cases-table", "uncertain_fraction")]
            assert values == sorted(values) and header.get_attribute("aria-sort") == "ascending"
            header.click()
            values = [float(v) for v in _column(page, "cases-table", "uncertain_fraction")]
            assert values == sorted(values, reverse=True) and values[0] > values[-1]
            page.locator("#cases-table th").filter(has_text=re.compile(r"^case$")).click()
            names = _column(page, "cases-table", "case")
            assert sorted(names) == sorted(original)
            assert names == page.evaluate("a => a.slice().sort((x, y) => x.localeCompare(y))", original)
        finally:
            browser.close()
