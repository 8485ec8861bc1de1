"""The HTML of the report: one self-contained page (inline CSS, inline JS, embedded images).

Every text taken from the evaluation folder (case names, file names, settings) goes through
:func:`html.escape`. A Content-Security-Policy forbids any network request: images must be
``data:`` URIs and scripts and styles inline, so the page opens from a USB stick.
"""

from __future__ import annotations

import datetime
import math
import os
from html import escape
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.report import figures
from miseg.report.contents import INSTANCE_COLUMNS, UNCERTAINTY_COLUMNS, EvaluationContents

__all__ = ["render_report"]

_MAIN_METRICS = ("dice", "hd95", "assd", "iou", "nsd", "precision", "recall")
_BOX_INSTANCE = ("pq", "sq", "rq", "instance_f1", "matched_dice")
_RANKS = ("best", "median", "worst")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 16px 48px;color:#1d2430;line-height:1.4}
h1{font-size:1.6em;margin:18px 0 4px}h2{border-bottom:2px solid #d5dbe5;padding-bottom:4px;margin-top:32px}
nav a{margin-right:12px}.meta{color:#5a6472;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}th,td{border:1px solid #d5dbe5;padding:3px 7px}
th{background:#eef1f6;text-align:left;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer}table.sortable th::after{content:" \\2195";color:#98a1ae}
th[aria-sort=ascending]::after{content:" \\2191"!important;color:#1d2430!important}
th[aria-sort=descending]::after{content:" \\2193"!important;color:#1d2430!important}
tr.flag td{background:#fff3cd}.scroll{overflow-x:auto}
.notes{background:#fff8e1;border:1px solid #f0c36d;padding:8px 16px;border-radius:4px}
.problems{background:#fdecea;border-color:#e0a3a0}
img{max-width:100%;height:auto}figure{display:inline-block;margin:8px;vertical-align:top}
figcaption{font-size:.85em;color:#5a6472}pre{background:#f6f8fa;padding:8px;overflow-x:auto;max-height:420px}
figure:target{outline:3px solid #f0c36d}figure.overlay img{width:300px}td.links{white-space:nowrap}
"""

_JS = """
(function(){
function key(cell){var v=cell.getAttribute("data-sort");return v===null?cell.textContent.trim():v;}
function sortBy(table,th,col){
 var asc=th.getAttribute("aria-sort")!=="ascending";
 Array.prototype.forEach.call(table.tHead.rows[0].cells,function(h){h.removeAttribute("aria-sort");});
 th.setAttribute("aria-sort",asc?"ascending":"descending");
 var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
 rows.sort(function(a,b){
  var x=key(a.cells[col]),y=key(b.cells[col]);
  if(x===""||y==="")return(x==="")-(y==="");
  var nx=Number(x),ny=Number(y);
  var r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
  return asc?r:-r;});
 rows.forEach(function(r){body.appendChild(r);});
}
document.querySelectorAll("table.sortable").forEach(function(table){
 Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
  th.tabIndex=0;th.title="sort";
  th.addEventListener("click",function(){sortBy(table,th,col);});
  th.addEventListener("keydown",function(e){if(e.key==="Enter")sortBy(table,th,col);});});
});
})();
"""

_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")


# ------------------------------------------------------------------------------ helpers
def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _flagged(value: Any) -> bool:
    return _is_bool(value) and bool(value)


def _number(value: Any) -> tuple[str, str]:
    """(display text, sort key) of a cell value; NaN shows a dash and sorts last."""
    if _is_bool(value):
        return ("yes" if value else "no"), ("1" if value else "0")
    try:
        number = float(value)
    except (TypeError, ValueError):
        text = "" if value is None else str(value)
        return text, text
    if math.isnan(number):
        return "\u2013", ""
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number)), repr(number)
    return f"{number:.4g}", repr(number)


def _cell(value: Any, numeric: bool = True) -> str:
    if not numeric or isinstance(value, str):
        return f"<td>{escape(str(value))}</td>"
    text, key = _number(value)
    return f'<td class="num" data-sort="{escape(key)}">{escape(text)}</td>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], table_id: str, sortable: bool = True,
           row_classes: Sequence[str] | None = None) -> str:
    """A table from header texts and rows of already rendered ``<td>`` cells."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        css = row_classes[k] if row_classes else ""
        opening = f'<tr class="{css}">' if css else "<tr>"
        body.append(f'{opening}{"".join(row)}</tr>')
    css_class = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table id="{table_id}"{css_class}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def _absent(text: str) -> str:
    return f'<p class="meta">{escape(text)}</p>'


def _case_list(cases: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(str(c) for c in cases[:limit])
    return shown + (f", ... (+{len(cases) - limit})" if len(cases) > limit else "")


# ------------------------------------------------------------------------------ sections
def _notes_section(contents: EvaluationContents) -> str:
    parts = []
    if contents.missing:
        items = "".join(f"<li>{escape(m)}</li>" for m in contents.missing)
        parts.append(f'<div class="notes" id="missing"><strong>Missing from this folder</strong><ul>{items}</ul></div>')
    if contents.problems:
        items = "".join(f"<li>{escape(m)}</li>" for m in contents.problems)
        parts.append(f'<div class="notes problems" id="problems"><strong>Unreadable files</strong>'
                     f"<ul>{items}</ul></div>")
    return "\n".join(parts)


def _plan_section(contents: EvaluationContents) -> str:
    run = contents.run
    facts = [f"<li>Run: {escape(contents.kind)}</li>"]
    if run:
        facts.append(f"<li>{len(run.get('samples', []))} case(s), k_fold = {escape(str(run.get('k_fold')))}, "
                     f"split seed = {escape(str(run.get('seed')))}</li>")
    rows = []
    for fold in contents.folds:
        marker = fold.marker
        rows.append([_cell(fold.name, False), _cell(fold.status, False), _cell(len(fold.training)),
                     _cell(len(fold.validation)), _cell(marker.get("epochs", float("nan"))),
                     _cell(str(marker.get("finished", "")), False), _cell(_case_list(fold.validation), False)])
    table = _table(["Fold", "Status", "Training cases", "Validation cases", "Epochs", "Finished",
                    "Validation case ids"], rows, "plan-table") if rows else _absent("No folds found.")
    settings = "".join(
        f"<details><summary>{escape(name)}</summary><pre>{escape(text)}</pre></details>"
        for name, text in contents.settings
    ) or _absent("No manifest.json or *.config.yaml in the folder.")
    return _section("settings", "Settings and plan", f"<ul>{''.join(facts)}</ul>{table}<h3>Settings</h3>{settings}")


def _curves_section(contents: EvaluationContents) -> str:
    runs = [(fold.name, fold.history) for fold in contents.folds if fold.history]
    uri = figures.curves_figure(runs) if runs else None
    if uri is None:
        return _section("curves", "Training curves", _absent("No training history (history.tsv) in the folder."))
    epochs = ", ".join(f"{name}: {max(len(v) for v in history.values())}" for name, history in runs)
    body = (f"<figure>{_img(uri, 'training curves per fold')}<figcaption>Solid: training, dashed: "
            f"validation; epochs per fold: {escape(epochs)}</figcaption></figure>")
    return _section("curves", "Training curves per fold", body)


def _metric_order(columns: Iterable[str]) -> list[str]:
    columns = list(dict.fromkeys(columns))
    return [m for m in _MAIN_METRICS if m in columns] + [m for m in columns if m not in _MAIN_METRICS]


def _summary_rows(summary: Any, instance: bool) -> list[list[str]]:
    rows = []
    for record in summary.to_dict("records"):
        if (str(record.get("metric")) in INSTANCE_COLUMNS) != instance:
            continue
        low, high = _number(record.get("ci_low"))[0], _number(record.get("ci_high"))[0]
        rows.append([_cell(str(record.get("class")), False), _cell(str(record.get("metric")), False),
                     _cell(record.get("count")), _cell(record.get("mean")), _cell(record.get("std")),
                     _cell(record.get("median")),
                     f'<td class="num" data-sort="{escape(_number(record.get("ci_low"))[1])}">'
                     f"[{escape(low)}, {escape(high)}]</td>"])
    return rows


_SUMMARY_HEADER = ["Class", "Metric", "n", "Mean", "Std", "Median", "CI of the mean (bootstrap)"]


def _summary_section(contents: EvaluationContents) -> str:
    if contents.summary is None:
        return _section("summary", "Summary", _absent("No metric tables: nothing to summarise."))
    rows = _summary_rows(contents.summary, instance=False)
    body = (f'<p class="meta">Source: {escape(contents.summary_source)}</p>'
            + _table(_SUMMARY_HEADER, rows, "summary-table"))
    return _section("summary", "Summary with confidence intervals", body)


def _boxplot_section(contents: EvaluationContents) -> str:
    table = contents.long_table
    uri = None
    if table is not None:
        metrics = _metric_order(c for c in table.columns if c not in INSTANCE_COLUMNS
                                and c not in ("sample_id", "class", "fold"))
        uri = figures.boxplot_figure(table, metrics[:4])
    body = _img(uri, "per-class box plots") if uri else _absent("No per-case metrics to plot.")
    return _section("boxplots", "Per-class box plots", body)


def _instance_section(contents: EvaluationContents) -> str:
    table = contents.long_table
    present = [] if table is None else [c for c in INSTANCE_COLUMNS if c in table.columns]
    if not present:
        return ""
    rows = _summary_rows(contents.summary, instance=True) if contents.summary is not None else []
    body = _table(_SUMMARY_HEADER, rows, "instance-table") if rows else ""
    uri = figures.boxplot_figure(table, [m for m in _BOX_INSTANCE if m in present], foreground_only=True)
    body += _img(uri, "instance metric box plots") if uri else ""
    return _section("instances", "Instance and lesion metrics", body or _absent("No instance values."))


def _uncertainty_section(contents: EvaluationContents) -> str:
    table = contents.uncertainty
    if table is None:
        return ""
    columns = ["case"] + [c for c in UNCERTAINTY_COLUMNS if c in table.columns]
    flagged = table[table["review"]] if "review" in table.columns else table.iloc[0:0]
    rows = [[_cell(r["case"], False)] + [_cell(r[c]) for c in columns[1:]] for r in table.to_dict("records")]
    classes = ["flag" if _flagged(r.get("review")) else "" for r in table.to_dict("records")]
    text = (f"<p>{len(flagged)} of {len(table)} case(s) flagged for review"
            + (f": {escape(_case_list(flagged['case'].tolist(), 20))}" if len(flagged) else "") + ".</p>")
    return _section("uncertainty", "Uncertainty flags",
                    text + _table(columns, rows, "uncertainty-table", row_classes=classes))


def _overlay_ids(contents: EvaluationContents) -> dict[str, list[tuple[str, str]]]:
    """``{str(case): [(anchor id, label)]}`` of the overlays of each case."""
    links: dict[str, list[tuple[str, str]]] = {}
    for k, overlay in enumerate(contents.overlays):
        label = overlay.rank + (f" ({overlay.fold})" if overlay.fold else "")
        links.setdefault(str(overlay.case), []).append((f"overlay-{k}", label))
    return links


def _overlays_section(contents: EvaluationContents) -> str:
    parts = []
    for k, overlay in enumerate(contents.overlays):
        where = os.path.relpath(overlay.path, contents.directory)
        try:
            picture = _img(figures.embed_image(overlay.path), f"{overlay.rank}: {overlay.case}")
        except OSError as exc:
            picture = _absent(f"{where}: unreadable image ({exc}).")
        parts.append(f'<figure class="overlay" id="overlay-{k}">{picture}<figcaption>{escape(overlay.rank)}: '
                     f"{escape(str(overlay.case))} ({escape(where)})</figcaption></figure>")
    body = "".join(parts) or _absent("No overlay figures in the folder.")
    return _section("overlays", "Best, median and worst cases", body)


def _files_section(contents: EvaluationContents, limit: int = 500) -> str:
    items = "".join(f"<li>{escape(f)}</li>" for f in contents.files[:limit])
    more = f"<li>... and {len(contents.files) - limit} more</li>" if len(contents.files) > limit else ""
    return _section("files", "Files", f"<details><summary>{len(contents.files)} file(s) in the folder"
                                      f"</summary><ul>{items}{more}</ul></details>")


def _case_frame(contents: EvaluationContents) -> Any:
    """One row per case: fold, mean foreground Dice, ``<metric>_class-<c>``, uncertainty."""
    from miseg.evaluation.reports import wide_table

    table = contents.long_table
    if table is None or table.empty:
        return None
    skip = set(INSTANCE_COLUMNS) | set(UNCERTAINTY_COLUMNS) | {"sample_id", "class", "fold"}
    metrics = _metric_order(c for c in table.columns if c not in skip)
    unique = table.drop_duplicates(["sample_id", "class"])
    frame = wide_table(unique[["sample_id", "class", *metrics]])
    if "fold" in table.columns:
        folds = unique.drop_duplicates("sample_id").set_index("sample_id")["fold"]
        frame.insert(1, "fold", frame["sample_id"].map(folds).fillna("").astype(str))
    if "dice" in table.columns:
        foreground = unique[unique["class"].astype(str) != "0"]
        scores = (foreground if not foreground.empty else unique).groupby("sample_id", sort=False)["dice"].mean()
        frame.insert(2 if "fold" in frame.columns else 1, "mean foreground dice", frame["sample_id"].map(scores))
    if contents.uncertainty is not None:
        extra = contents.uncertainty.rename(columns={"case": "sample_id"})
        frame = frame.merge(extra, how="left", on="sample_id", validate="one_to_one")
    return frame


def _cases_section(contents: EvaluationContents) -> str:
    frame = _case_frame(contents)
    if frame is None:
        return _section("cases", "Per-case results", _absent("No per-case metric table in the folder."))
    links = _overlay_ids(contents)
    lead = [c for c in ("sample_id", "fold", "mean foreground dice", *UNCERTAINTY_COLUMNS) if c in frame.columns]
    rest = [c for c in frame.columns if c not in lead]
    header = ["case" if c == "sample_id" else c for c in lead] + ["overlays"] + rest
    rows, classes = [], []
    for record in frame.to_dict("records"):
        anchors = links.get(str(record["sample_id"]), [])
        html = " ".join(f'<a href="#{a}">{escape(label)}</a>' for a, label in anchors)
        rows.append([_cell(record[c], numeric=c not in ("sample_id", "fold")) for c in lead]
                    + [f'<td class="links">{html}</td>'] + [_cell(record[c]) for c in rest])
        classes.append("flag" if _flagged(record.get("review")) else "")
    note = (f"<p>{len(frame)} case(s); click a column header to sort; the overlay links jump to the "
            f"best/median/worst figures. Rows flagged for review are highlighted.</p>")
    return _section("cases", "Per-case results", note + _table(header, rows, "cases-table", row_classes=classes))


def render_report(contents: EvaluationContents, title: str | None = None) -> str:
    """The report page of an evaluation folder.

    Args:
        contents: What :func:`miseg.report.contents.collect_evaluation` read.
        title: Page title (default: "Evaluation report: <folder name>").

    Returns:
        The HTML text (UTF-8; images embedded).
    """
    from miseg import __version__

    title = title or f"Evaluation report: {os.path.basename(contents.directory) or contents.directory}"
    sections = [_notes_section(contents), _plan_section(contents), _curves_section(contents),
                _summary_section(contents), _boxplot_section(contents), _instance_section(contents),
                _uncertainty_section(contents), _cases_section(contents), _overlays_section(contents),
                _files_section(contents)]
    nav_items = [("settings", "Settings"), ("curves", "Curves"), ("summary", "Summary"),
                 ("boxplots", "Box plots"), ("instances", "Instances"), ("uncertainty", "Uncertainty"),
                 ("cases", "Cases"), ("overlays", "Overlays"), ("files", "Files")]
    body = "\n".join(s for s in sections if s)
    nav = " ".join(f'<a href="#{i}">{t}</a>' for i, t in nav_items if f'<section id="{i}">' in body)
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1>
<p class="meta">Folder: <code>{escape(contents.directory)}</code> &middot;
written {escape(stamp)} by miseg {escape(__version__)}</p>
<nav>{nav}</nav></header>
{body}
<script>{_JS}</script>
</body>
</html>
"""
