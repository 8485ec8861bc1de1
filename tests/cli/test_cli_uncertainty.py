"""``miseg predict --uncertainty``: voxel maps and the per-case table from the command line."""

import os

os.environ.setdefault("MISEG_QUIET", "1")

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from miseg.cli.main import build_parser, main
from miseg.cli.predict import uncertainty_options
from miseg.datasets import write_kits_dataset
from miseg.errors import ConfigurationError

TINY = ["--classes", "3", "--patch-shape", "16", "16", "16", "--filters", "2", "--depth", "1",
        "--epochs", "1", "--iterations", "1", "--batch-size", "1", "--workers", "0", "--seed", "3"]


def test_uncertainty_options_from_the_flags(tmp_path):
    parse = build_parser().parse_args
    assert uncertainty_options(parse(["predict", "data"])) == {}
    assert uncertainty_options(parse(["predict", "data", "--uncertainty"])) == {
        "uncertainty": True, "review_threshold": None}
    assert uncertainty_options(parse(["predict", "data", "--uncertainty", "--review-threshold", "0.8"])) == {
        "uncertainty": True, "review_threshold": 0.8}
    calibration = str(tmp_path / "uncertainty_calibration.json")
    options = uncertainty_options(parse(["predict", "data", "--uncertainty", "--review-threshold", calibration]))
    assert options["review_threshold"] == calibration
    with pytest.raises(ConfigurationError, match="needs --uncertainty"):
        uncertainty_options(parse(["predict", "data", "--review-threshold", "0.8"]))


@pytest.mark.slow
def test_predict_uncertainty_flag(tmp_path, capsys):
    data = tmp_path / "data"
    write_kits_dataset(str(data), n_cases=2, shape=(16, 16, 16), seed=0)
    model = tmp_path / "run" / "model.keras"
    assert main(["train", str(data), *TINY, "-o", str(model)]) == 0
    out = tmp_path / "pred"
    code = main(["predict", str(data), "-m", str(model), "-o", str(out), "--uncertainty",
                 "--review-threshold", "1.5"])
    assert code == 0, capsys.readouterr().err
    for case in ("case_00000", "case_00001"):
        entropy = nib.load(out / f"{case}.entropy.nii.gz")
        assert entropy.shape == (16, 16, 16) and entropy.get_data_dtype() == np.float32
        assert (out / f"{case}.variance.nii.gz").is_file()
    table = pd.read_csv(out / "uncertainty.tsv", sep="\t")
    assert table["case"].tolist() == ["case_00000", "case_00001"]
    assert table["review"].tolist() == [True, True]  # member_dice is always below 1.5
    assert (table["n_members"] == 4).all()
    plain = tmp_path / "plain"
    assert main(["predict", str(data), "-m", str(model), "-o", str(plain)]) == 0
    assert not (plain / "uncertainty.tsv").exists() and not (plain / "case_00000.entropy.nii.gz").exists()
    capsys.readouterr()
    code = main(["predict", str(data), "-m", str(model), "-o", str(plain), "--review-threshold", "0.5"])
    assert code == 2 and "--review-threshold needs --uncertainty" in capsys.readouterr().err
