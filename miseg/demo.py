"""``make demo``: the whole miseg pipeline on generated KiTS-like phantoms, in a few minutes.

Steps: generate a phantom data set (NIfTI, KiTS layout) -> summarise it through Data_IO ->
train a small 3D U-Net with augmentation -> predict held-out and unlabeled cases into NIfTI
files aligned with their images -> score them (per-case, per-class metrics, summary with
confidence intervals, figures) -> a brief 3-fold cross-validation -> print where it all is.

Run: ``python -m miseg.demo --output demo_output`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def summarize_dataset(data_io, classes: int):
    """One row per case: shape, spacing, orientation, intensity range, class voxel counts."""
    import nibabel as nib
    import numpy as np
    import pandas as pd

    rows = []
    for index in data_io.get_indiceslist():
        sample = data_io.sample_loader(index, load_seg=data_io.has_segmentation(index))
        row = {
            "case": index,
            "shape": "x".join(map(str, sample.spatial_shape)),
            "spacing_mm": "x".join(f"{s:.2f}" for s in sample.spacing),
            "orientation": "".join(nib.aff2axcodes(sample.affine)),
            "HU_min": float(sample.img_data.min()),
            "HU_max": float(sample.img_data.max()),
        }
        if sample.seg_data is None:
            row.update({f"class_{c}_voxels": "-" for c in range(classes)})
        else:
            counts = np.bincount(sample.seg_data.ravel(), minlength=classes)
            row.update({f"class_{c}_voxels": int(counts[c]) for c in range(classes)})
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="demo_output", help="folder for data, predictions and evaluation")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test, ~1 minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data generation and training")
    args = parser.parse_args(argv)

    import keras
    import nibabel as nib
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
    from miseg.data_loading.interfaces import NIFTI_interface
    from miseg.datasets import write_kits_dataset
    from miseg.evaluation import cross_validation
    from miseg.evaluation.metrics import case_metrics
    from miseg.evaluation.reports import metrics_table, summary_table, wide_table, write_table
    from miseg.neural_network.architecture.unet import UNet_standard
    from miseg.neural_network.metrics import dice_crossentropy, dice_soft
    from miseg.processing.subfunctions import Clipping, Normalization
    from miseg.utils.plotting import plot_case_overlays, plot_metric_boxplots

    tf.get_logger().setLevel("ERROR")
    start = time.time()
    out = os.path.abspath(args.output)
    data_dir = os.path.join(out, "data")
    pred_dir = os.path.join(out, "predictions")
    eval_dir = os.path.join(out, "evaluation")
    if os.path.exists(data_dir) and os.listdir(data_dir):
        print(f"Reusing the phantom data set in {data_dir}")
    n_train, n_test = (4, 2) if args.quick else (10, 3)
    shape = (16, 32, 32) if args.quick else (32, 64, 64)
    epochs = 2 if args.quick else 30
    keras.utils.set_random_seed(args.seed)

    _banner("1. Phantom data set (KiTS19 layout: case_XXXXX/imaging.nii.gz, segmentation.nii.gz)")
    ids = write_kits_dataset(data_dir, n_cases=n_train + n_test + 1, shape=shape, spacing=(3.0, 1.6, 1.6),
                             seed=args.seed, unlabeled=1)
    print(f"{len(ids)} cases written to {data_dir} (the last one has no segmentation)")

    _banner("2. Data_IO: what the data layer sees")
    interface = NIFTI_interface(channels=1, classes=3)
    data_io = Data_IO(interface, data_dir, output_path=pred_dir, batch_path=os.path.join(out, "batches"),
                      seed=args.seed)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarize_dataset(data_io, 3).to_string(index=False))
    train_ids, test_ids, unlabeled_ids = ids[:n_train], ids[n_train:n_train + n_test], ids[-1:]

    _banner("3. Training a 3D U-Net (patchwise-crop, foreground oversampling, augmentation)")
    augmentation = Data_Augmentation(mirror=False, elastic_deform=False, seed=args.seed)
    preprocessor = Preprocessor(
        data_io, batch_size=2, subfunctions=[Clipping(min=-200, max=400), Normalization(mode="z-score")],
        data_aug=augmentation, prepare_subfunctions=True, analysis="patchwise-crop", patch_shape=shape,
        patches_per_sample=2,
    )
    model = Neural_Network(preprocessor, architecture=UNet_standard(n_filters=8, depth=3), loss=dice_crossentropy,
                           metrics=[dice_soft], learning_rate=3e-3, workers=1)
    model.verbose = 2
    history = model.train(train_ids, epochs=epochs, iterations=None if args.quick else 16)
    print(f"final training loss {history.history['loss'][-1]:.3f}, dice_soft {history.history['dice_soft'][-1]:.3f}")
    model_path = model.dump(os.path.join(out, "model.keras"))
    print(f"model saved to {model_path}")

    _banner("4. Prediction: NIfTI files aligned with their images")
    model.predict(test_ids + unlabeled_ids)
    for index in test_ids + unlabeled_ids:
        image = nib.load(os.path.join(data_dir, index, "imaging.nii.gz"))
        pred = nib.load(os.path.join(pred_dir, f"{index}.nii.gz"))
        aligned = np.allclose(image.affine, pred.affine) and image.shape == pred.shape
        print(f"{index}: prediction {pred.shape} {'aligned with' if aligned else 'NOT aligned with'} its image")

    _banner("5. Evaluation of the held-out cases")
    rows, cases = [], {}
    for index in test_ids:
        sample = data_io.sample_loader(index, load_seg=True, load_pred=True)
        truth, pred = sample.seg_data[..., 0], sample.pred_data[..., 0]
        rows += case_metrics(truth, pred, 3, spacing=sample.spacing, case=index,
                             metrics=["dice", "iou", "precision", "recall", "hd95", "assd", "nsd"],
                             include_background=False)
        cases[index] = (sample.img_data[..., 0], truth, pred)
    table = metrics_table(rows)
    os.makedirs(eval_dir, exist_ok=True)
    write_table(wide_table(table), os.path.join(eval_dir, "heldout_cases.tsv"))
    summary = summary_table(table, seed=args.seed)
    write_table(summary, os.path.join(eval_dir, "heldout_summary.tsv"))
    plot_metric_boxplots(table, os.path.join(eval_dir, "heldout_boxplots.png"), metrics=("dice", "hd95"))
    plot_case_overlays(cases, table, os.path.join(eval_dir, "overlays"), metric="dice")
    names = {1: "kidney", 2: "tumor"}
    for index in test_ids:
        dice = table[table["sample_id"] == index].set_index("class")["dice"]
        print(f"{index}: " + ", ".join(f"{names[c]} Dice {dice[c]:.3f}" for c in (1, 2)))
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(summary[summary["metric"].isin(["dice", "hd95"])].to_string(index=False))

    _banner("6. A brief 3-fold cross-validation (folds, histories, figures, detailed tables)")
    cv_model = Neural_Network(preprocessor, architecture=UNet_standard(n_filters=8, depth=3), loss=dice_crossentropy,
                              metrics=[dice_soft], learning_rate=3e-3, workers=1)
    cv_model.verbose = 2
    cross_validation(train_ids, cv_model, k_fold=3, epochs=1 if args.quick else 6, iterations=2 if args.quick else 8,
                     evaluation_path=os.path.join(eval_dir, "cross_validation"), draw_figures=True,
                     run_detailed_evaluation=True, seed=args.seed)

    _banner("Done")
    print(f"finished in {time.time() - start:.0f} s")
    print(f"  data:         {data_dir}")
    print(f"  model:        {model_path}")
    print(f"  predictions:  {pred_dir}")
    print(f"  evaluation:   {eval_dir} (tables *.tsv, figures *.png, cross_validation/fold_*)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
