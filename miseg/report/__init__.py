"""HTML report of an evaluation folder (``miseg report EVALUATION_DIR``).

* :mod:`~miseg.report.contents`: what the folder holds (read-only).
* :mod:`~miseg.report.figures`: figures drawn in memory and embedded as ``data:`` URIs.
* :mod:`~miseg.report.page`: the self-contained HTML page.
* :mod:`~miseg.report.writer`: :func:`write_report` (atomic ``report.html``).
* :mod:`~miseg.report.browser`: open a report in headless Chromium (checks, screenshot).
"""

from miseg.report.contents import EvaluationContents, collect_evaluation
from miseg.report.writer import REPORT_FILE, write_report

__all__ = ["write_report", "collect_evaluation", "EvaluationContents", "REPORT_FILE"]
