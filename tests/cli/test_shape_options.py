"""Shape-like options (--patch-shape, --resample, --overlap) accept 16 32 32, 16,32,32 and 16x32x32."""

import pytest

from miseg.cli.config import load_config
from miseg.cli.main import build_parser, main
from miseg.datasets import write_kits_dataset


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("patch, spacing, overlap", [
    (["16", "32", "32"], ["3", "1.5", "1.5"], ["8", "16", "16"]),
    (["16,32,32"], ["3,1.5,1.5"], ["8,16,16"]),
    (["16x32x32"], ["3x1.5x1.5"], ["8X16x16"]),
    (["16,", "32,", "32"], ["3,", "1.5", "1.5"], ["8", "16,16"]),
])
def test_shape_options_accept_separators(command, patch, spacing, overlap):
    args = build_parser().parse_args([command, "data", "--patch-shape", *patch, "--resample", *spacing,
                                      "--overlap", *overlap])
    assert args.patch_shape == [16, 32, 32]
    assert args.resample == [3.0, 1.5, 1.5]
    assert args.overlap == [8, 16, 16]
    assert build_parser().parse_args([command, "data", "--patch-shape", "auto"]).patch_shape == ["auto"]


def test_comma_and_x_shapes_reach_the_run_config(tmp_path, capsys):
    data = tmp_path / "kits"
    write_kits_dataset(str(data), n_cases=2, shape=(16, 16, 16), seed=0)
    saved = tmp_path / "run.yaml"
    code = main(["train", str(data), "--classes", "3", "--depth", "2", "--patch-shape", "16,16,8",
                 "--resample", "3x1x1", "--overlap", "4x4x2", "--dry-run", "--save-config", str(saved)])
    _, err = capsys.readouterr()
    assert code == 0, err
    pre = load_config(str(saved))["preprocessing"]
    assert pre["patch_shape"] == [16, 16, 8]
    assert pre["patchwise_overlap"] == [4, 4, 2]
    resampling = [s for s in pre["subfunctions"] if s["class_name"] == "Resampling"]
    assert resampling[0]["config"]["new_spacing"] == [3.0, 1.0, 1.0]


@pytest.mark.parametrize("flag, value, message", [
    ("--patch-shape", "16,a,32", "'a' in '16,a,32': 'a' is not an integer"),
    ("--patch-shape", "16x0x32", "'0' must be >= 1"),
    ("--patch-shape", "16,,32", "'16,,32': empty value"),
    ("--resample", "3x-1x1", "'-1' must be a positive number"),
    ("--overlap", "8;8;8", "'8;8;8' is not an integer"),
])
def test_bad_shape_values_are_usage_errors(flag, value, message, capsys):
    code = main(["train", "data", flag, value])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"argument {flag}" in err and message in err
