"""Classical segmentation versus a U-Net on touching nuclei, with instance metrics.

Three models are cross-validated on the same folds of a 2D nuclei data set (generated with
``miseg.datasets.write_nuclei_dataset``; many nuclei touch): Otsu's threshold and a graph
cut (``miseg.classical.ClassicalModel``, no training beyond a few learned numbers) and a
small U-Net (``Neural_Network``). ``detailed_validation`` scores each held-out image with
the Dice and, through the instance step (connected components + distance-transform
watershed split, ``InstanceSegmenter``), with instance metrics against the true nuclei:
object F1 at IoU 0.5 and panoptic quality. ``benchmarks/classical_vs_unet.py`` runs the
full comparison (also on a real nuclei image and KiTS-like CT phantoms).

Run::

    python examples/classical_vs_unet.py            # full settings (a few minutes on a CPU)
    python examples/classical_vs_unet.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import pandas as pd

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.classical import ClassicalModel
from miseg.data_loading.interfaces import Image_interface
from miseg.datasets import load_nuclei_instances, write_nuclei_dataset
from miseg.evaluation.cross_validation import split_folds
from miseg.evaluation.detailed_validation import detailed_validation
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_crossentropy
from miseg.processing.instances import InstanceSegmenter
from miseg.processing.subfunctions import Normalization


def main(argv=None):
    parser = argparse.ArgumentParser(description="classical methods versus a U-Net, with instance metrics")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="classical_vs_unet_output", help="folder for data and evaluation")
    args = parser.parse_args(argv)

    if args.tiny:
        n_cases, shape, net, k_fold, epochs = 4, (64, 64), UNet_standard(n_filters=4, depth=2), 2, 1
    else:
        n_cases, shape, net, k_fold, epochs = 18, (128, 128), UNet_standard(n_filters=16, depth=3), 3, 40

    data_path = os.path.join(args.workdir, "nuclei")
    cases = write_nuclei_dataset(data_path, n_cases=n_cases, shape=shape, seed=0)
    data_io = Data_IO(Image_interface(classes=2, img_type="grayscale", img_format="png"), data_path,
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    plain = Preprocessor(data_io, batch_size=2, subfunctions=[Normalization(mode="z-score")], data_aug=None,
                         analysis="fullimage", seed=0)
    augmented = Preprocessor(data_io, batch_size=2, subfunctions=[Normalization(mode="z-score")],
                             data_aug=Data_Augmentation(cycles=1, mirror=True, rotations=True, seed=0),
                             analysis="fullimage", seed=0)
    models = {
        "otsu": ClassicalModel(plain, "otsu"),
        "graph_cut": ClassicalModel(plain, "graph_cut"),
        "unet": Neural_Network(augmented, architecture=net, loss=dice_crossentropy, metrics=[],
                               learning_rate=1e-3, workers=0),
    }

    # the same folds for every model; instances of every model come from the same instance step
    evaluation = os.path.join(args.workdir, "evaluation")
    folds = split_folds(cases, k_fold=k_fold, evaluation_path=evaluation, seed=0)
    segmenter = InstanceSegmenter(split="distance", seed_distance=4.0)
    tables = []
    for name, model in models.items():
        for fold, (training, validation) in enumerate(folds):
            model.reset()  # every fold starts from the same initial state
            model.train(training, epochs=epochs)
            table = detailed_validation(validation, model, os.path.join(evaluation, name, f"fold_{fold}"),
                                        metrics=["dice"], instances=segmenter, iou_threshold=0.5,
                                        truth_instances=lambda index: load_nuclei_instances(data_path, index))
            tables.append(table[table["class"] == 1].assign(method=name))

    scores = pd.concat(tables).groupby("method", sort=False)[["dice", "instance_f1", "pq"]].mean()
    scores.columns = ["Dice", "object F1 (IoU 0.5)", "panoptic quality"]
    scores.to_csv(os.path.join(args.workdir, "comparison.tsv"), sep="\t", float_format="%.4f")
    print(f"Nuclei, {k_fold}-fold cross-validation, means over the validation images:")
    print(scores.round(3).to_string())
    print(f"per-case tables in {evaluation}/<method>/fold_<i>/")


if __name__ == "__main__":
    main()
