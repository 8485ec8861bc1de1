"""miseg.cli.data_exploration: MIScnn's data_exp functions, checked against nibabel + numpy."""

import argparse
import os
import shutil
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from miseg.cli import data_exploration as de
from miseg.data_loading.interfaces.nifti_io import write_nifti
from miseg.datasets import write_kits_dataset


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    """4 cases (16^3), the last one without segmentation, plus their arrays."""
    path = tmp_path_factory.mktemp("kits_exp") / "data"
    cases = write_kits_dataset(str(path), n_cases=4, shape=(16, 16, 16), seed=2, unlabeled=1)
    images = {c: nib.load(path / c / "imaging.nii.gz").get_fdata() for c in cases}
    labels = {c: np.asarray(nib.load(path / c / "segmentation.nii.gz").dataobj) for c in cases[:3]}
    return str(path), cases, images, labels


@pytest.fixture()
def ctx(kits, capsys):
    context = de.setup_execution(SimpleNamespace(data_dir=kits[0], imagetype="Unknown"))
    capsys.readouterr()
    return context


def test_register_commands_and_setup(kits, capsys):
    path, cases, _, _ = kits
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_dir", default="./data")
    de.register_commands(parser.add_subparsers())
    args = parser.parse_args(["--data_dir", path, "data_exp", "-t", "NIFTI", "-cn", "-cl", "-mem", "-s", "-m",
                              "-mS", "-r", "-b", "4", "-bS", "2", "-e", "out.csv"])
    assert args.which == "data_exp" and args.imagetype == "NIFTI"
    assert all([args.counts, args.classes, args.memory, args.structure, args.minmax, args.minmax_seg, args.ratio])
    assert (args.binning, args.binning_seg, args.export) == (4, 2, "out.csv")
    plain = de.register_commands(argparse.ArgumentParser())  # a parser gets the options itself
    assert plain.parse_args(["--counts"]).counts and plain.parse_args([]).imagetype == "Unknown"

    context = de.setup_execution(args)
    assert "4 samples" in capsys.readouterr().out
    assert set(context) == {"dataio", "indices", "cnt", "images", "segmentations", "data_dir"}
    assert context["indices"] == cases and context["cnt"] == 4 and context["images"] == cases
    assert context["segmentations"] == cases[:3] and context["data_dir"] == path
    assert type(context["dataio"].interface).__name__ == "NIFTI_interface"
    de.execute_counts(context)
    out = capsys.readouterr().out
    assert "Number of samples: 4" in out and "with a segmentation: 3" in out


def test_classes_structure_memory_and_ratio(kits, ctx, capsys):
    path, cases, images, labels = kits
    assert de.execute_class_analysis(ctx) == [0, 1, 2]
    assert "[0, 1, 2]" in capsys.readouterr().out
    df = de.execute_memory_analysis(ctx, None)
    df = de.execute_structure_analysis(ctx, df)
    df = de.execute_ratio_analysis(ctx, df).set_index("name")
    assert df.loc[cases[0], "image_size"] == os.path.getsize(os.path.join(path, cases[0], "imaging.nii.gz"))
    assert df.loc[cases[1], "segmentation_size"] == os.path.getsize(
        os.path.join(path, cases[1], "segmentation.nii.gz"))
    assert np.isnan(df.loc[cases[3], "segmentation_size"])
    assert df.loc[cases[2], "shape"] == (16, 16, 16, 1)
    assert df.loc[cases[2], "voxel_spacing"] == pytest.approx((3.0, 0.8, 0.8))
    expected = tuple(round(float(f), 6) for f in np.bincount(labels[cases[1]].ravel(), minlength=3) / 16**3)
    assert df.loc[cases[1], "class_frequency"] == expected
    assert df.loc[cases[3], "class_frequency"] is None


def test_class_analysis_warns_on_a_single_class(kits, tmp_path, capsys):
    data = tmp_path / "empty"
    shutil.copytree(kits[0], data)
    for case in kits[1][:3]:
        seg = nib.load(data / case / "segmentation.nii.gz")
        write_nifti(str(data / case / "segmentation.nii.gz"), np.zeros((16, 16, 16), np.uint8), {"affine": seg.affine})
    context = de.setup_execution(SimpleNamespace(data_dir=str(data), imagetype="NIFTI"))
    with pytest.warns(UserWarning, match="Only 1 class value"):
        assert de.execute_class_analysis(context) == [0]


def test_minmax_analyses(kits, ctx):
    _, cases, images, labels = kits
    df, data = de.execute_minmax_analysis(ctx, None)
    df = df.set_index("name")
    minima = [images[c].min() for c in cases]
    maxima = [images[c].max() for c in cases]
    assert df["minimum"].tolist() == pytest.approx(minima) and df["maximum"].tolist() == pytest.approx(maxima)
    assert data == pytest.approx({"glob_min": min(minima), "glob_max": max(maxima),
                                  "shr_min": max(minima), "shr_max": min(maxima)})
    df, per_class = de.execute_minmax_seg_analysis(ctx, None)
    df = df.set_index("name")
    assert sorted(per_class) == [0, 1, 2]
    inside = [images[c][labels[c] == 2] for c in cases[:3]]
    assert df.loc[cases[:3], "minimum_c2"].tolist() == pytest.approx([v.min() for v in inside])
    assert df.loc[cases[:3], "maximum_c2"].tolist() == pytest.approx([v.max() for v in inside])
    assert np.isnan(df.loc[cases[3], "minimum_c2"])
    assert per_class[2] == pytest.approx({"glob_min": min(v.min() for v in inside),
                                          "glob_max": max(v.max() for v in inside),
                                          "shr_min": max(v.min() for v in inside),
                                          "shr_max": min(v.max() for v in inside)})


def test_binning_counts_every_voxel_once(kits, ctx):
    _, cases, images, labels = kits
    _, data = de.execute_minmax_analysis(ctx, None)
    df = de.execute_binning(ctx, None, 4, data).set_index("name")
    assert list(df.columns) == [f"bin{i}" for i in range(6)]
    edges = [data["shr_min"] + k * (data["shr_max"] - data["shr_min"]) / 4 for k in range(5)] + [data["glob_max"] + 1]
    for case in cases:
        values = images[case].ravel()
        expected = [int((values < edges[0]).sum())]
        expected += [int(((values >= lo) & (values < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])]
        assert df.loc[case].tolist() == expected
        assert sum(expected) == values.size
    df = de.execute_binning_seg(ctx, None, 2).set_index("name")
    for k in (0, 1, 2):
        columns = [f"class{k}_bin{i}" for i in range(4)]
        assert df.loc[cases[0], columns].sum() == (labels[cases[0]] == k).sum()
        assert df.loc[cases[3], columns].isna().all()


def test_execute_runs_the_selected_analyses(kits, tmp_path, capsys):
    path, cases, _, _ = kits
    csv_path = tmp_path / "exp.csv"
    args = SimpleNamespace(data_dir=path, imagetype="NIFTI", counts=True, classes=True, memory=False,
                           structure=True, minmax=True, minmax_seg=False, ratio=True, export=str(csv_path),
                           binning=2, binning_seg=None)
    df = de.execute(args)
    out = capsys.readouterr().out
    assert "Number of samples: 4" in out and "Classes found in the segmentations: [0, 1, 2]" in out
    table = pd.read_csv(csv_path)
    expected = ["name", "shape", "voxel_spacing", "minimum", "maximum", "class_frequency", "bin0", "bin1", "bin2",
                "bin3"]
    assert list(table.columns) == expected == list(df.columns)
    assert table["name"].tolist() == cases
    args.export = None
    de.execute(args)
    assert "class_frequency" in capsys.readouterr().out  # printed when not exported
