"""Uncertainty benchmark: does the review flag single out the poorly segmented cases?

On KiTS-like phantoms (``miseg.datasets.write_kits_dataset``), a small 3D U-Net is trained on
clean cases. Held-out cases get extra Gaussian noise of a random level per case (0 to
``--max-noise`` HU; the phantoms' own noise is 10-20 HU), so segmentation quality varies.
The review threshold is calibrated on the validation cases (``detailed_validation(...,
uncertainty=True)`` and ``calibrate_from_tables``: Youden-optimal threshold for Dice below
the validation median), then the test cases are predicted with ``uncertainty=True`` and
that calibration. Printed: the mean Dice of flagged and unflagged test cases and the
Spearman rank correlation between each uncertainty score and Dice.

Run: ``python benchmarks/uncertainty.py [--quick] [--shape 32 64 64]``: 16x32x32 phantoms, 40 epochs
of 16 steps (about 10 minutes on 2 CPU cores); ``--quick``: 15 epochs (about 6 minutes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MISEG_QUIET", "1")

import keras
import numpy as np

from miseg import Data_IO, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.data_loading.interfaces.nifti_io import load_nifti, write_nifti
from miseg.datasets import write_kits_dataset
from miseg.evaluation.detailed_validation import detailed_validation
from miseg.evaluation.metrics import compute_dice
from miseg.evaluation.uncertainty import SCORES, calibrate_from_tables
from miseg.neural_network.architecture.unet.standard import Architecture
from miseg.neural_network.metrics import dice_crossentropy
from miseg.neural_network.model import Neural_Network
from miseg.processing.subfunctions import Clipping, Normalization


def write_data(root, n_train, n_val, n_test, shape, max_noise, seed):
    """Clean training cases, then validation and test cases with a per-case extra noise level."""
    cases = write_kits_dataset(root, n_cases=n_train + n_val + n_test, shape=shape, spacing=(3.0, 1.6, 1.6),
                               seed=seed)
    rng = np.random.default_rng(seed + 1)
    for case in cases[n_train:]:
        path = os.path.join(root, case, "imaging.nii.gz")
        image = load_nifti(path, case)
        data = np.asarray(image.dataobj, dtype=np.float32)
        data += rng.standard_normal(data.shape).astype(np.float32) * rng.uniform(0.0, max_noise)
        hu = np.clip(np.rint(data), -32768, 32767).astype(np.int16)
        write_nifti(path, hu, {"affine": image.affine, "qform_code": 1, "sform_code": 1})
    return cases[:n_train], cases[n_train:n_train + n_val], cases[n_train + n_val:]


def spearman(x, y):
    from scipy.stats import spearmanr

    keep = np.isfinite(x) & np.isfinite(y)
    return float(spearmanr(x[keep], y[keep]).statistic)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="15 instead of 40 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--test-cases", type=int, default=16)
    parser.add_argument("--max-noise", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(16, 32, 32))
    args = parser.parse_args()
    epochs = args.epochs or (15 if args.quick else 40)
    shape = tuple(args.shape)
    keras.utils.set_random_seed(args.seed)
    root = tempfile.mkdtemp(prefix="miseg_uncertainty_")
    train, val, test = write_data(os.path.join(root, "data"), 8, 8, args.test_cases, shape,
                                  args.max_noise, args.seed)
    data_io = Data_IO(NIFTI_interface(classes=3), os.path.join(root, "data"),
                      output_path=os.path.join(root, "predictions"), seed=args.seed)
    pp = Preprocessor(data_io, batch_size=2, data_aug=None, analysis="fullimage", prepare_subfunctions=False,
                      subfunctions=[Clipping(min=-200, max=400), Normalization()])
    model = Neural_Network(pp, architecture=Architecture(n_filters=8, depth=3), loss=dice_crossentropy,
                           learning_rate=3e-3, workers=0, use_multiprocessing=False)
    start = time.perf_counter()
    model.train(train, epochs=epochs, iterations=16)
    print(f"trained on {len(train)} cases of {shape} for {epochs} epochs x 16 steps in "
          f"{time.perf_counter() - start:.0f} s")

    evaluation = os.path.join(root, "evaluation")
    detailed_validation(val, model, evaluation, metrics=["dice"], uncertainty=True)
    calibration = calibrate_from_tables([evaluation])
    print(f"calibration ({len(val)} validation cases): {calibration['rule']}")

    model.predict(test, uncertainty=True, review_threshold=evaluation)
    from miseg.evaluation.reports import read_table

    table = read_table(os.path.join(data_io.output_path, "uncertainty.tsv")).set_index("case").loc[test]
    dice = []
    for case in test:
        truth = data_io.sample_loader(case, load_seg=True).seg_data[..., 0]
        prediction = data_io.sample_loader(case, load_seg=False, load_pred=True).pred_data
        dice.append(float(np.mean(compute_dice(truth, np.asarray(prediction).reshape(truth.shape), [1, 2]))))
    dice = np.asarray(dice)
    flagged = table["review"].astype(str).str.lower().eq("true").to_numpy()
    print(f"{len(test)} test cases ({epochs} epochs): {flagged.sum()} flagged")
    print(f"mean Dice flagged:   {dice[flagged].mean() if flagged.any() else float('nan'):.3f}")
    print(f"mean Dice unflagged: {dice[~flagged].mean() if (~flagged).any() else float('nan'):.3f}")
    for score in SCORES:
        rho = spearman(table[score].to_numpy(dtype=float), dice)
        marker = "  (calibrated score)" if score == calibration["score"] else ""
        print(f"Spearman rho({score}, Dice) = {rho:+.3f}{marker}")


if __name__ == "__main__":
    main()
