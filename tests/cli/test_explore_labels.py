"""miseg explore lists stray label values, labels outside --classes and seg/image shape mismatches."""

import shutil

import nibabel as nib
import numpy as np
import pytest

from miseg.cli.explore import explore_dataset
from miseg.cli.main import main
from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces.nifti_io import write_nifti
from miseg.datasets import write_kits_dataset


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    """4 labelled 3-class cases (16^3); every case holds labels 0, 1 and 2."""
    path = tmp_path_factory.mktemp("kits_labels") / "data"
    cases = write_kits_dataset(str(path), n_cases=4, shape=(16, 16, 16), seed=0)
    for case in cases:
        labels = np.asarray(nib.load(path / case / "segmentation.nii.gz").dataobj)
        assert np.unique(labels).tolist() == [0, 1, 2]  # precondition of the tests below
    return path


def _with_label(kits, tmp_path, value, case="case_00001"):
    data = tmp_path / f"label{value}"
    shutil.copytree(kits, data)
    seg = nib.load(data / case / "segmentation.nii.gz")
    labels = np.asarray(seg.dataobj).copy()
    labels[0, 0, :2] = value
    write_nifti(str(data / case / "segmentation.nii.gz"), labels, {"affine": seg.affine})
    return str(data)


def _problems(out):
    assert "Problems (" in out, out
    return out[out.index("Problems ("):].splitlines()[1:]


@pytest.mark.parametrize("value", [3, 7])
def test_stray_label_in_one_case_is_a_problem(kits, tmp_path, capsys, value):
    data = _with_label(kits, tmp_path, value)
    code = main(["explore", data])
    out = capsys.readouterr().out
    assert code == 0
    problems = _problems(out)
    stray = [p for p in problems if "case_00001" in p]
    assert len(stray) == 1 and f"label value {value} occurs in only 1 of 4 segmented cases" in stray[0]
    assert not [p for p in problems if "case_00000" in p or "case_00002" in p or "case_00003" in p]
    assert main(["explore", data, "--strict"]) == 1
    capsys.readouterr()


def test_labels_outside_classes_are_problems_even_when_data_io_accepts_them(kits, tmp_path, monkeypatch):
    data = _with_label(kits, tmp_path, 7)
    # Data_IO may accept labels >= classes on a plain load (checked at one-hot encoding instead)
    monkeypatch.setattr(Data_IO, "_check_labels", lambda self, index, seg: np.asarray(seg, np.int32))
    report = explore_dataset(data, classes=3)
    problems = report.problems()
    assert [case for case, _ in problems] == ["case_00001"]
    message = problems[0][1]
    assert "label values [7] are outside 0..2 (classes=3)" in message
    assert "occurs in only" not in message  # not reported twice
    assert report.cases[1].labels == (0, 1, 2, 7)  # still counted, shown in the table
    assert "frac_c7" in report.table().columns


def test_labels_outside_classes_with_the_default_data_io(kits, tmp_path, capsys):
    data = _with_label(kits, tmp_path, 7)
    code = main(["explore", data, "--classes", "3"])
    problems = _problems(capsys.readouterr().out)
    assert code == 0 and len(problems) == 1
    assert problems[0].strip().startswith("case_00001: segmentation: LabelError") and "[7]" in problems[0]


def test_shape_mismatch_and_clean_data(kits, tmp_path, capsys):
    code = main(["explore", str(kits), "--classes", "3"])
    assert code == 0 and "Problems: none found" in capsys.readouterr().out
    data = tmp_path / "shape"
    shutil.copytree(kits, data)
    seg = nib.load(data / "case_00002" / "segmentation.nii.gz")
    write_nifti(str(data / "case_00002" / "segmentation.nii.gz"), np.zeros((16, 16, 14), np.uint8),
                {"affine": seg.affine})
    report = explore_dataset(str(data), classes=3)
    problems = report.problems()
    assert len(problems) == 1 and problems[0][0] == "case_00002"
    assert "ShapeMismatchError" in problems[0][1] and "(16, 16, 14)" in problems[0][1]
    assert "(16, 16, 16)" in problems[0][1]
    assert not report.cases[2].labels_read


def test_rare_label_rule_needs_three_segmented_cases(tmp_path):
    data = tmp_path / "two"
    write_kits_dataset(str(data), n_cases=2, shape=(16, 16, 16), seed=0)
    seg = nib.load(data / "case_00001" / "segmentation.nii.gz")
    labels = np.asarray(seg.dataobj).copy()
    labels[0, 0, 0] = 3
    write_nifti(str(data / "case_00001" / "segmentation.nii.gz"), labels, {"affine": seg.affine})
    report = explore_dataset(str(data))
    assert report.label_values == [0, 1, 2, 3] and report.problems() == []


def test_negative_labels_are_problems_without_classes(kits, tmp_path):
    data = tmp_path / "negative"
    shutil.copytree(kits, data)
    seg = nib.load(data / "case_00000" / "segmentation.nii.gz")
    labels = np.asarray(seg.dataobj).astype(np.int16)
    labels[0, 0, 0] = -1
    write_nifti(str(data / "case_00000" / "segmentation.nii.gz"), labels, {"affine": seg.affine})
    problems = explore_dataset(str(data)).problems()
    assert problems and problems[0][0] == "case_00000" and "[-1]" in problems[0][1]
