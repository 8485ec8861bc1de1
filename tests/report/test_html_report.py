"""The HTML report: contents, self-containment, bad input, read-only folders, hooks, CLI.

These tests parse the HTML (no browser); ``test_report_browser.py`` opens it in Chromium.
"""

import base64
import io
import json
import os
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from miseg.cli.main import main
from miseg.errors import DataNotFoundError
from miseg.evaluation.reports import read_table, summary_table, wide_table, write_table
from miseg.report import collect_evaluation, write_report

from .report_fixtures import CASES, FLAGGED, file_hashes


class Page(HTMLParser):
    """Tables (id -> rows of cell texts, row classes), images, links, element ids, scripts."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.row_classes, self.images, self.links, self.ids = {}, {}, [], [], set()
        self.external, self.scripts = [], 0
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            if attrs.get(key, "").startswith(("http:", "https:", "//", "file:")):
                self.external.append(attrs[key])
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table], self.row_classes[self._table] = [], []
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._row_class = attrs.get("class", "")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append((attrs.get("src", ""), attrs.get("alt", "")))
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self.row_classes[self._table].append(self._row_class)
            self._row = None
        elif tag == "table":
            self._table = None

    def body_rows(self, table_id):
        return self.tables[table_id][1:]

    def column(self, table_id, name):
        header = self.tables[table_id][0]
        return [row[header.index(name)] for row in self.body_rows(table_id)]


def read_page(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return text, Page(text)


def decoded_image_widths(page):
    widths = []
    for src, _ in page.images:
        assert src.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), src[:40]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            widths.append(image.width)
    return widths


# ------------------------------------------------------------------------------ a real run
def test_cross_validation_with_figures_writes_the_report(cv_folder):
    folder, written_by_run = cv_folder
    page = Page(written_by_run)
    assert sorted(page.column("cases-table", "case")) == sorted(CASES)
    assert len(page.body_rows("plan-table")) == 3


def test_report_html_fallback_check(cv_folder, cv_report):
    """The HTML-parse check that also runs when no browser is available."""
    folder, _ = cv_folder
    text, page = read_page(cv_report)
    assert page.external == [] and "Content-Security-Policy" in text and page.scripts == 1
    # Settings and plan, curves, summary, box plots, cases, overlays, uncertainty are there.
    assert {"settings", "curves", "summary", "boxplots", "cases", "overlays", "uncertainty"} <= page.ids
    assert "manifest.json" in text and "cross_validation" in text
    assert [row[1] for row in page.body_rows("plan-table")] == ["complete"] * 3
    summary = read_table(os.path.join(folder, "detailed_validation.summary.tsv"))
    assert len(page.body_rows("summary-table")) == len(summary)
    dice_1 = summary[(summary["metric"] == "dice") & (summary["class"] == 1)].iloc[0]
    row = next(r for r in page.body_rows("summary-table") if r[:2] == ["1", "dice"])
    assert row[3] == f"{dice_1['mean']:.4g}" and row[6] == f"[{dice_1['ci_low']:.4g}, {dice_1['ci_high']:.4g}]"
    # The per-case table: every case once, with its fold and its Dice from the wide table.
    wide = read_table(os.path.join(folder, "detailed_validation.tsv")).set_index("sample_id")
    assert sorted(page.column("cases-table", "case")) == sorted(CASES)
    for case, dice in zip(page.column("cases-table", "case"), page.column("cases-table", "dice_class-1")):
        assert dice == f"{wide.loc[case, 'dice_class-1']:.4g}"
    folds = json.load(open(os.path.join(folder, "cross_validation.json"), encoding="utf-8"))["folds"]
    expected = {case: f"fold_{f['fold']}" for f in folds for case in f["validation"]}
    assert dict(zip(page.column("cases-table", "case"), page.column("cases-table", "fold"))) == expected
    # Overlay links lead to embedded overlay figures; 3 folds x best/median/worst exist.
    anchors = [link[1:] for link in page.links if link.startswith("#overlay-")]
    assert anchors and set(anchors) <= page.ids
    assert sum(alt.startswith(("best", "median", "worst")) for _, alt in page.images) == 9
    # Uncertainty: the flagged case is named and its row highlighted.
    flagged = [case for case, css in zip([r[0] for r in page.tables["cases-table"]], page.row_classes["cases-table"])
               if css == "flag"]
    assert flagged == [FLAGGED] and "1 of 6 case(s) flagged for review" in text
    assert all(width > 0 for width in decoded_image_widths(page)) and len(page.images) >= 11


def test_report_changes_nothing_else_in_the_folder(cv_folder):
    folder, _ = cv_folder
    before = file_hashes(folder)
    before.pop("report.html", None)
    path = write_report(folder)
    after = file_hashes(folder)
    assert after.pop("report.html") and after == before  # no other file changed, none added
    assert path == os.path.join(folder, "report.html")


# ------------------------------------------------------------------------------ bad input
def test_half_finished_folder_reports_what_is_there_and_what_is_missing(cv_folder, tmp_path):
    folder = str(tmp_path / "half done")
    shutil.copytree(cv_folder[0], folder)
    os.remove(os.path.join(folder, "fold_2", ".complete"))
    for name in ("history.tsv", "detailed_validation.long.tsv", "detailed_validation.tsv"):
        os.remove(os.path.join(folder, "fold_2", name))
    for name in ("detailed_validation.tsv", "detailed_validation.long.tsv", "detailed_validation.summary.tsv",
                 "manifest.json", "report.html"):
        os.remove(os.path.join(folder, name))
    overlay = next(n for n in os.listdir(os.path.join(folder, "fold_0")) if n.startswith("overlay.best."))
    with open(os.path.join(folder, "fold_0", overlay), "wb") as handle:
        handle.write(b"not a png")                                         # a broken figure
    with open(os.path.join(folder, "fold_1", "history.tsv"), "w") as handle:
        handle.write("epoch\tloss\n0\tnot-a-number\n")                    # a broken history
    text, page = read_page(write_report(folder))
    assert f"fold_0/{overlay}: unreadable image" in text and "fold_1/history.tsv: unreadable" in text
    assert [row[1] for row in page.body_rows("plan-table")] == ["complete", "complete", "unfinished"]
    assert "fold_2: unfinished" in text and "fold_2: no training history" in text
    assert "the tables of 2 fold(s) are pooled here" in text
    assert "the summary is computed here" in text and len(page.body_rows("summary-table")) > 0
    fold_2 = json.load(open(os.path.join(folder, "cross_validation.json"), encoding="utf-8"))["folds"][2]["validation"]
    assert sorted(page.column("cases-table", "case")) == sorted(set(CASES) - set(fold_2))


def test_empty_and_missing_folders(tmp_path, capsys):
    empty = tmp_path / "empty folder"
    empty.mkdir()
    text, page = read_page(write_report(empty))
    assert os.listdir(empty) == ["report.html"]
    assert "The folder holds no evaluation results yet." in text and "cases-table" not in page.tables
    assert page.images == []
    (empty / "cross_validation.json").write_text("{broken", encoding="utf-8")
    text, _ = read_page(write_report(empty))
    assert "cross_validation.json: unreadable" in text
    with pytest.raises(DataNotFoundError, match="does not exist"):
        write_report(tmp_path / "nope")
    assert main(["report", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def _synthetic_folder(folder, n_cases, names=None, instances=False, overlays=0, seed=0):
    """An evaluation folder from files only: 5 folds, tables, histories, smooth-noise overlays."""
    rng = np.random.default_rng(seed)
    names = names or [f"case_{k:03d}" for k in range(n_cases)]
    rows = []
    for k, name in enumerate(names):
        for cls in (0, 1, 2):
            row = {"sample_id": name, "class": cls, "dice": rng.uniform(0.5, 1), "iou": rng.uniform(0.3, 1),
                   "hd95": rng.uniform(0, 20), "assd": rng.uniform(0, 5)}
            if instances:
                row.update(pq=np.nan if cls == 0 else rng.uniform(0, 1), instance_f1=rng.uniform(0, 1),
                           n_truth=int(rng.integers(0, 5)), tp=int(rng.integers(0, 5)))
            rows.append(row)
    table = pd.DataFrame(rows)
    os.makedirs(folder, exist_ok=True)
    write_table(table, os.path.join(folder, "detailed_validation.long.tsv"))
    write_table(wide_table(table), os.path.join(folder, "detailed_validation.tsv"))
    write_table(summary_table(table, n_bootstrap=50), os.path.join(folder, "detailed_validation.summary.tsv"))
    for fold in range(5):
        fold_dir = os.path.join(folder, f"fold_{fold}")
        os.makedirs(fold_dir)
        epochs = pd.DataFrame({"epoch": range(10), "loss": np.linspace(1, 0.2, 10),
                               "val_loss": np.linspace(1.1, 0.4, 10)})
        epochs.to_csv(os.path.join(fold_dir, "history.tsv"), sep="\t", index=False)
        with open(os.path.join(fold_dir, ".complete"), "w") as handle:
            json.dump({"fold": fold, "epochs": 10}, handle)
    field = np.cumsum(np.cumsum(rng.normal(size=(overlays, 460, 440)), axis=1), axis=2)
    for k in range(overlays):
        slice_ = ((field[k] - field[k].min()) / np.ptp(field[k]) * 255).astype(np.uint8)
        rgb = np.stack([slice_] * 3, axis=-1)
        rgb[200:260, 180:183] = (44, 160, 44)
        rank = ("best", "median", "worst")[k % 3]
        Image.fromarray(rgb).save(os.path.join(folder, f"fold_{k // 3}", f"overlay.{rank}.{names[k]}.png"))
    return table


def test_html_escapes_case_names_and_paths(tmp_path):
    names = ['a<b>&"c', "Überweisung 7", "<script>alert(1)</script>"]
    folder = str(tmp_path / "pfad mit leerzeichen é")
    _synthetic_folder(folder, 3, names=names)
    text, page = read_page(write_report(folder, title="Bericht <ü>"))
    assert page.scripts == 1 and "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "Bericht &lt;ü&gt;" in text
    assert sorted(page.column("cases-table", "case")) == sorted(names)
    assert "pfad mit leerzeichen é" in text
    assert "instances" not in page.ids and "instance-table" not in page.tables  # no instance columns


def test_instance_and_lesion_metrics_get_their_own_section(tmp_path):
    with_instances = str(tmp_path / "instances")
    _synthetic_folder(with_instances, 4, instances=True)
    text, page = read_page(write_report(with_instances))
    metrics = {row[1] for row in page.body_rows("instance-table")}
    assert {"pq", "instance_f1", "n_truth", "tp"} <= metrics
    assert not metrics & {"dice", "hd95"} and "pq" not in {row[1] for row in page.body_rows("summary-table")}
    assert any(alt == "instance metric box plots" for _, alt in page.images)


def test_report_of_100_cases_stays_under_5_mb(tmp_path):
    folder = str(tmp_path / "big")
    _synthetic_folder(folder, 100, overlays=15)
    path = write_report(folder)
    _, page = read_page(path)
    assert len(page.body_rows("cases-table")) == 100
    assert sum(alt.startswith(("best", "median", "worst")) for _, alt in page.images) == 15
    assert os.path.getsize(path) < 5_000_000


def test_collect_evaluation_reads_uncertainty_columns_of_the_detailed_table(tmp_path):
    folder = str(tmp_path / "flags")
    table = _synthetic_folder(folder, 3)
    wide = wide_table(table).assign(review=["False", "True", "False"], uncertain_fraction=[0.1, 0.7, 0.2])
    write_table(wide, os.path.join(folder, "detailed_validation.tsv"))
    contents = collect_evaluation(folder)
    assert contents.uncertainty["case"].tolist() == ["case_000", "case_001", "case_002"]
    assert contents.uncertainty["review"].tolist() == [False, True, False]


# ------------------------------------------------------------------------------ command line
def test_report_command(cv_folder, tmp_path, capsys):
    folder, _ = cv_folder
    out = tmp_path / "sub dir" / "r.html"
    extra = tmp_path / "uncertainty.tsv"
    pd.DataFrame({"case": [CASES[0]], "review": [True]}).to_csv(extra, sep="\t", index=False)
    assert main(["-q", "report", folder, "-o", str(out), "--title", "My run", "--uncertainty", str(extra)]) == 0
    assert f"Report: {out}" in capsys.readouterr().out
    text, page = read_page(out)
    assert "<title>My run</title>" in text
    flagged = {row[0] for row, css in zip(page.tables["cases-table"], page.row_classes["cases-table"]) if css}
    assert flagged == {FLAGGED, CASES[0]}
    assert main(["report", "--help"]) == 0 and "EVALUATION_DIR" in capsys.readouterr().out


def test_miseg_evaluate_ends_with_a_report(tmp_path, capsys):
    from miseg.data_loading.interfaces.nifti_io import write_nifti

    rng = np.random.default_rng(0)
    grids = np.meshgrid(*[np.arange(16)] * 3, indexing="ij")
    for k in range(4):
        seg = (sum((g - c) ** 2 for g, c in zip(grids, rng.uniform(6, 10, 3))) <= 16).astype(np.uint8)
        case = tmp_path / "data" / f"case_{k:05d}"
        os.makedirs(case)
        write_nifti(str(case / "imaging.nii.gz"), (100 + 200 * seg + rng.normal(0, 20, seg.shape)).astype(np.float32),
                    {"affine": np.eye(4)})
        write_nifti(str(case / "segmentation.nii.gz"), seg, {"affine": np.eye(4)})
    out = str(tmp_path / "evaluation")
    assert main(["-q", "evaluate", str(tmp_path / "data"), "--method", "otsu", "--k-fold", "2", "--seed", "0",
                 "--no-figures", "-o", out]) == 0
    assert f"Report: {os.path.join(out, 'report.html')}" in capsys.readouterr().out
    text, page = read_page(os.path.join(out, "report.html"))
    assert sorted(page.column("cases-table", "case")) == [f"case_{k:05d}" for k in range(4)]
    assert "run.config.yaml" in text and len(page.body_rows("plan-table")) == 2
