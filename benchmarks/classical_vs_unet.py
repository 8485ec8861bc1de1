"""Classical segmentation versus a small U-Net (issue 11), on the same cross-validation folds.

(a) 2D nuclei, many of them touching: the nuclei phantoms (``write_nuclei_dataset``) and the
    real stardist nuclei image tiled into 128x128 cases (``write_stardist_nuclei_dataset``,
    skipped when it cannot be fetched). Otsu + distance watershed, graph cut and a small 2D
    U-Net are cross-validated with the same folds. Instances of the graph cut and the U-Net
    come from the instance step (connected components + distance-transform watershed split,
    ``InstanceSegmenter(split="distance")``); Otsu + watershed gives its own. Columns: Dice,
    object F1 at IoU 0.5, panoptic quality (means over the validation images) and time per
    image (prediction and instance step, after training).
(b) KiTS-like 3D phantoms (``write_kits_dataset``, the geometry of ``miseg.demo``: 32x64x64
    voxels of 3 x 1.6 x 1.6 mm), one train/test split for every method (the U-Net's training
    is too slow on a CPU for k folds): a learned intensity window (``"threshold"``) and
    thresholding + region growing from automatic seeds (``"threshold_region_growing"``: the
    deepest voxel of each large component of the learned window, grown inside the window;
    optionally with slice-wise hole filling) against a small 3D U-Net trained with the
    demo's settings (8 filters, depth 3, batch 2, Dice + cross-entropy, learning rate 3e-3,
    clipping to [-200, 400] HU and z-score; whole volumes, 480 steps, 10 training cases).
    The classical pipeline must reach kidney Dice >= 0.7; the U-Net's training is short, so
    its margin is a lower bound.

Run: ``python benchmarks/classical_vs_unet.py [--quick] [--only nuclei|kits]`` (prints the
tables; numbers go into README). ``--quick`` uses fewer cases and epochs; its KiTS U-Net sees
the volumes resampled to half resolution (16x32x32 voxels of 6 x 3.2 x 3.2 mm, predictions
resampled back) for 600 steps, 5-15 minutes on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MISEG_QUIET", "1")

import numpy as np

from miseg.classical import DistanceWatershed

#: Minimum kidney Dice of thresholding + region growing on the KiTS-like phantoms (issue 11).
KIDNEY_TARGET = 0.7


# ------------------------------------------------------------------------------ methods
class OtsuWatershed(DistanceWatershed):
    """Distance watershed whose foreground is Otsu's threshold of each image (nothing learned)."""

    learns = False


# ------------------------------------------------------------------------------ helpers
def _data_io(interface, data, root, name):
    from miseg import Data_IO

    return Data_IO(interface, data, output_path=os.path.join(root, "work", name, "pred"),
                   batch_path=os.path.join(root, "work", name, "batches"), seed=0)


def _folds(ids, k_fold, root, name):
    from miseg.evaluation.cross_validation import split_folds

    return split_folds(ids, k_fold=k_fold, evaluation_path=os.path.join(root, "work", name, "folds"), seed=0)


def _unet(pp, filters, depth, learning_rate=1e-3):
    import keras

    from miseg import Neural_Network
    from miseg.neural_network.architecture.unet import UNet_standard
    from miseg.neural_network.metrics import dice_crossentropy

    keras.utils.set_random_seed(0)
    model = Neural_Network(pp, architecture=UNet_standard(n_filters=filters, depth=depth), loss=dice_crossentropy,
                           metrics=[], learning_rate=learning_rate, workers=0)
    model.verbose = 0
    return model


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _table(title, header, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    print(title)
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


# ------------------------------------------------------------------------------ (a) nuclei
def nuclei_scores(data, ids, folds, root, name, epochs, filters, depth, seed_distance=4.0):
    """Per method: mean Dice, object F1 (IoU 0.5), PQ over the validation images; s/image."""
    from miseg import Data_Augmentation, Preprocessor
    from miseg.classical import ClassicalModel, GraphCut
    from miseg.data_loading.interfaces import Image_interface
    from miseg.datasets import load_nuclei_instances
    from miseg.evaluation.instance_metrics import instance_metrics
    from miseg.evaluation.metrics import compute_dice
    from miseg.processing.instances import Instances, InstanceSegmenter
    from miseg.processing.subfunctions import Normalization

    dio = _data_io(Image_interface(classes=2, img_type="grayscale", img_format="png"), data, root, name)
    segmenter = InstanceSegmenter(split="distance", seed_distance=seed_distance)

    def preprocessor(augment):
        aug = Data_Augmentation(cycles=1, mirror=True, rotations=True, seed=0) if augment else None
        return Preprocessor(dio, batch_size=2, subfunctions=[Normalization(mode="z-score")], data_aug=aug,
                            analysis="fullimage", seed=0)

    truth = {i: Instances.from_instance_map(load_nuclei_instances(data, i)) for i in ids}

    def otsu_watershed(model, index):
        sample = model.preprocessor.load_sample(index, training=False)
        found = Instances.from_instance_map(model.method.predict_instances(sample))
        return found.semantic(), found

    def classical(model, index):
        prediction = model.predict([index], return_output=True)[0]
        return prediction, segmenter(prediction)

    def unet(model, index):
        return model.predict([index], return_output=True, instances=segmenter)[0]

    methods = {
        "Otsu + distance watershed": (lambda: ClassicalModel(preprocessor(False), OtsuWatershed()), otsu_watershed),
        "graph cut + instance step": (lambda: ClassicalModel(preprocessor(False), GraphCut()), classical),
        f"U-Net 2D ({epochs} epochs) + instance step": (lambda: _unet(preprocessor(True), filters, depth), unet),
    }
    results = {}
    for label, (build, segment) in methods.items():
        scores, seconds, train_seconds = [], [], 0.0
        model = build()
        for training, validation in folds:
            model.reset()  # every fold starts from the same initial state
            elapsed, _ = _timed(model.train, training, epochs=epochs)
            train_seconds += elapsed
            segment(model, training[0])  # warm-up (graph tracing), not timed
            for index in validation:
                elapsed, (prediction, found) = _timed(segment, model, index)
                seconds.append(elapsed)
                labels = np.asarray(prediction).reshape(truth[index].labels.shape)
                dice = compute_dice(truth[index].semantic(), labels, 2)[1]
                row = instance_metrics(truth[index], found, classes=2)[0]
                scores.append((dice, row["instance_f1"], row["pq"]))
        mean = np.mean(scores, axis=0)
        results[label] = (*mean, float(np.mean(seconds)), train_seconds / len(folds))
    return results


# ------------------------------------------------------------------------------ (b) KiTS
def kits_scores(data, training, test, root, epochs, iterations, filters, depth, patch, spacing=None):
    """Per method: mean kidney and tumour Dice over the test cases; s/case; training s."""
    from miseg import Data_Augmentation, Preprocessor
    from miseg.classical import ClassicalModel
    from miseg.data_loading.interfaces import NIFTI_interface
    from miseg.evaluation.metrics import compute_dice
    from miseg.processing.subfunctions import Clipping, Normalization, Resampling

    dio = _data_io(NIFTI_interface(classes=3), data, root, "kits")
    classical_pp = Preprocessor(dio, batch_size=1, subfunctions=[Clipping(min=-79, max=304)], data_aug=None,
                                analysis="fullimage", seed=0)
    # miseg.demo's U-Net settings (there: whole 32x64x64 volumes, 480 steps); with ``spacing`` the
    # U-Net sees the volumes resampled to it (predictions are resampled back to the cases' grid)
    resample = [Resampling(new_spacing=spacing)] if spacing else []
    unet_pp = Preprocessor(dio, batch_size=2,
                           subfunctions=resample + [Clipping(min=-200, max=400), Normalization(mode="z-score")],
                           data_aug=Data_Augmentation(mirror=False, elastic_deform=False, seed=0),
                           prepare_subfunctions=True, analysis="patchwise-crop", patch_shape=patch,
                           patches_per_sample=2, foreground_oversampling=0.5, seed=0)
    truth = {i: dio.sample_loader(i, load_seg=True).seg_data[..., 0] for i in training + test}
    methods = {
        "window threshold (learned)": lambda: ClassicalModel(classical_pp, "threshold"),
        "threshold + region growing": lambda: ClassicalModel(classical_pp, "threshold_region_growing"),
        "threshold + region growing + hole filling":
            lambda: ClassicalModel(classical_pp, "threshold_region_growing", {"fill_holes": True}),
        f"U-Net 3D ({epochs * iterations} steps)": lambda: _unet(unet_pp, filters, depth, learning_rate=3e-3),
    }
    results = {}
    for label, build in methods.items():
        model = build()
        train_seconds, _ = _timed(model.train, training, epochs=epochs, iterations=iterations)
        model.predict(training[:1], return_output=True)  # warm-up, not timed
        scores, seconds = [], []
        for index in test:
            elapsed, prediction = _timed(model.predict, [index], return_output=True)
            seconds.append(elapsed)
            dice = compute_dice(truth[index], np.asarray(prediction[0]).reshape(truth[index].shape), 3)
            scores.append(dice[1:3])
        kidney, tumour = np.mean(scores, axis=0)
        results[label] = (float(kidney), float(tumour), float(np.mean(seconds)), train_seconds)
        print(f"  ... {label}: kidney Dice {kidney:.3f}", flush=True)
    return results


def nuclei_part(args, root, n_nuclei, epochs):
    from miseg.datasets import write_nuclei_dataset, write_stardist_nuclei_dataset

    name = f"nuclei phantoms (128x128, {n_nuclei} cases)"
    paths = {name: os.path.join(root, "data", "nuclei")}
    sets = {name: write_nuclei_dataset(paths[name], n_cases=n_nuclei, shape=(128, 128), seed=0)}
    if not args.no_stardist:
        try:
            name = "stardist nuclei (real image, 16 tiles 128x128)"
            paths[name] = os.path.join(root, "data", "stardist")
            sets[name] = write_stardist_nuclei_dataset(paths[name], tile=128)
        except Exception as exc:  # noqa: BLE001 - offline: the real image is optional
            print(f"(stardist nuclei image unavailable, skipped: {exc})")

    print(f"(a) 2D nuclei, {args.k_fold}-fold cross-validation, same folds for every method; means over "
          f"validation images; s/image = prediction + instance step after training; train s = per fold")
    header = ["method", "Dice", "F1@0.5", "PQ", "s/image", "train s"]
    for number, (name, ids) in enumerate(sets.items()):
        folds = _folds(ids, args.k_fold, root, f"folds{number}")
        results = nuclei_scores(paths[name], ids, folds, root, f"set{number}", epochs, filters=8, depth=3)
        rows = [[label, f"{d:.3f}", f"{f1:.3f}", f"{pq:.3f}", f"{s:.3f}", f"{t:.1f}"]
                for label, (d, f1, pq, s, t) in results.items()]
        _table(f"  {name}", header, rows)


def kits_part(root, n_train, n_test, epochs, iterations, patch, unet_spacing=None):
    from miseg.datasets import write_kits_dataset

    kits = os.path.join(root, "data", "kits")
    shape, spacing = (32, 64, 64), (3.0, 1.6, 1.6)
    ids = write_kits_dataset(kits, n_cases=n_train + n_test, shape=shape, spacing=spacing, seed=0)
    training, test = ids[:n_train], ids[n_train:]
    if unet_spacing:
        patch_text = (f"whole volumes resampled to {' x '.join(f'{s:g}' for s in unet_spacing)} mm ("
                      + "x".join(map(str, patch)) + ")")
    else:
        patch_text = "whole volumes" if tuple(patch) == shape else "patches " + "x".join(map(str, patch))
    print(f"(b) KiTS-like phantoms, {n_train + n_test} cases 32x64x64 (3 x 1.6 x 1.6 mm): every method trained "
          f"on the same {n_train} cases and scored on the same {n_test} held-out cases (one split, no folds); the "
          f"U-Net: 8 filters, depth 3, {patch_text}, batch 2, Dice + cross-entropy, lr 3e-3", flush=True)
    results = kits_scores(kits, training, test, root, epochs, iterations, filters=8, depth=3, patch=patch,
                          spacing=unet_spacing)
    rows = [[label, f"{k:.3f}", f"{t:.3f}", f"{s:.3f}", f"{tr:.1f}"] for label, (k, t, s, tr) in results.items()]
    _table("", ["method", "kidney Dice", "tumour Dice", "s/case", "train s"], rows)
    classical = results["threshold + region growing"][0]
    filled = results["threshold + region growing + hole filling"][0]
    unet = results[f"U-Net 3D ({epochs * iterations} steps)"][0]
    verdict = "reached" if classical >= KIDNEY_TARGET else "NOT reached"
    print(f"  threshold + region growing: kidney Dice {classical:.3f} (target >= {KIDNEY_TARGET}: {verdict}); "
          f"U-Net - threshold + region growing: {unet - classical:+.3f}; U-Net - with hole filling: "
          f"{unet - filled:+.3f}")


# ------------------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer cases and epochs; the KiTS U-Net trains at half resolution")
    parser.add_argument("--k-fold", type=int, default=3, help="folds of the nuclei part")
    parser.add_argument("--no-stardist", action="store_true", help="skip the real stardist nuclei image")
    parser.add_argument("--only", choices=["nuclei", "kits"], default=None, help="run one part only")
    parser.add_argument("--root", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.quick:   # KiTS U-Net: whole volumes at half resolution, 600 steps (minutes on 2 CPU cores)
        n_nuclei, nuclei_epochs = 9, 12
        n_train, n_test, kits_epochs, kits_iterations = 10, 3, 60, 10
        patch, unet_spacing = (16, 32, 32), (6.0, 3.2, 3.2)
    else:            # KiTS U-Net: miseg.demo's schedule (whole volumes, 480 steps)
        n_nuclei, nuclei_epochs = 18, 30
        n_train, n_test, kits_epochs, kits_iterations = 10, 3, 30, 16
        patch, unet_spacing = (32, 64, 64), None
    root = args.root or tempfile.mkdtemp(prefix="miseg_classical_")
    if args.only != "kits":
        nuclei_part(args, root, n_nuclei, nuclei_epochs)
    if args.only != "nuclei":
        kits_part(root, n_train, n_test, kits_epochs, kits_iterations, patch, unet_spacing)


if __name__ == "__main__":
    main()
