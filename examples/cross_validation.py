"""k-fold cross-validation with training curves, per-case metric tables and figures.

``miseg.evaluation.cross_validation`` trains one model per fold from the same initial
weights, scores every held-out case (Dice, IoU, HD95, ... per class, spacing-aware) and
writes tables and figures into the evaluation folder. A second call on the same folder
resumes: finished folds are kept.

Run::

    python examples/cross_validation.py            # full settings (GPU recommended)
    python examples/cross_validation.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import pandas as pd

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.evaluation import cross_validation
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_soft, tversky_crossentropy
from miseg.processing.subfunctions import Clipping, Normalization, Resampling


def main(argv=None):
    parser = argparse.ArgumentParser(description="k-fold cross-validation with miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="cross_validation_output", help="folder for data and evaluation")
    args = parser.parse_args(argv)

    if args.tiny:
        n_cases, shape, patch, net, k_fold, epochs, iterations, workers = (
            4, (16, 32, 32), (16, 16, 16), UNet_standard(n_filters=4, depth=2), 2, 1, 1, 0)
    else:
        n_cases, shape, patch, net, k_fold, epochs, iterations, workers = (
            30, (64, 128, 128), (32, 64, 64), UNet_standard(n_filters=32, depth=4), 5, 50, 100, 2)

    data_path = os.path.join(args.workdir, "kits_phantom")
    write_kits_dataset(data_path, n_cases=n_cases, shape=shape, seed=1)
    data_io = Data_IO(NIFTI_interface(channels=1, classes=3), data_path,
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    pp = Preprocessor(data_io, batch_size=2, data_aug=Data_Augmentation(cycles=1, mirror=True, seed=0),
                      subfunctions=[Resampling((3.0, 1.6, 1.6)), Clipping(min=-79, max=304), Normalization()],
                      analysis="patchwise-crop", patch_shape=patch, seed=0)
    model = Neural_Network(pp, architecture=net, loss=tversky_crossentropy, metrics=[dice_soft], workers=workers)

    evaluation = os.path.join(args.workdir, "evaluation")
    cross_validation(data_io.get_indiceslist(), model, k_fold=k_fold, epochs=epochs, iterations=iterations,
                     evaluation_path=evaluation, draw_figures=True, run_detailed_evaluation=True, seed=0,
                     metrics=["dice", "iou", "hd95", "assd"])

    summary = pd.read_csv(os.path.join(evaluation, "detailed_validation.summary.tsv"), sep="\t")
    dice = summary[summary["metric"] == "dice"][["class", "count", "mean", "ci_low", "ci_high"]]
    print("Dice per class over all validation cases (mean and 95% bootstrap interval):")
    print(dice.to_string(index=False))
    figures = sorted(f for f in os.listdir(evaluation) if f.endswith(".png"))
    print(f"figures in {evaluation}: {figures}")
    print(f"per fold: {sorted(os.listdir(os.path.join(evaluation, 'fold_0')))}")


if __name__ == "__main__":
    main()
