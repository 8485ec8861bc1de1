"""``python -m miseg.report EVALUATION_DIR [--screenshot PNG]``: write (and photograph) a report."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from miseg.report.writer import write_report


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``report.html`` of a folder; ``--screenshot`` also saves a headless-Chromium PNG.

    Returns:
        The exit code (0).
    """
    parser = argparse.ArgumentParser(prog="python -m miseg.report", description=main.__doc__)
    parser.add_argument("evaluation_dir", metavar="EVALUATION_DIR")
    parser.add_argument("-o", "--output", default=None, help="report file (default: EVALUATION_DIR/report.html)")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="also save a screenshot of the page (needs playwright and chromium)")
    parser.add_argument("--full-page", action="store_true", help="screenshot the whole page")
    parser.add_argument("--height", type=int, default=900, help="browser window height in pixels")
    args = parser.parse_args(argv)
    path = write_report(args.evaluation_dir, args.output)
    print(f"Report: {path}")
    if args.screenshot:
        from miseg.report.browser import inspect_report

        check = inspect_report(path, screenshot=args.screenshot, full_page=args.full_page,
                               height=args.height)
        print(f"Screenshot: {check.screenshot} (console errors: {len(check.console_errors)})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
