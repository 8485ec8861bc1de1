"""A custom data interface: cases stored as NumPy ``.npy`` files (plus a spacing sidecar).

An interface subclasses ``Abstract_IO`` and only reads and writes its format; ``Data_IO``
adds validation (NaNs, label range, shape checks), label mapping and safe file names.
The layout used here is one flat folder::

    <case>_img.npy       image (x, y, z) float
    <case>_seg.npy       label map (optional: prediction-only cases have none)
    <case>.json          {"spacing": [sx, sy, sz]}

Run::

    python examples/custom_interface.py            # full settings
    python examples/custom_interface.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import json
import os

import numpy as np

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.datasets import make_kits_phantom
from miseg.errors import DataNotFoundError, MissingSegmentationError
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.processing.subfunctions import Clipping, Normalization
from miseg.utils.fileio import safe_join


class NumpyFolder_interface(Abstract_IO):
    """Reads ``<case>_img.npy`` / ``<case>_seg.npy`` / ``<case>.json`` from one folder.

    Args:
        classes: Number of classes, background included.
    """

    def __init__(self, classes=2):
        super().__init__(channels=1, classes=classes, three_dim=True)
        self.path = None

    def initialize(self, input_path):
        if not os.path.isdir(input_path):
            raise DataNotFoundError(f"NumpyFolder_interface: {input_path!r} is not a directory.")
        self.path = input_path
        cases = sorted(name[: -len("_img.npy")] for name in os.listdir(input_path) if name.endswith("_img.npy"))
        if not cases:
            raise DataNotFoundError(f"NumpyFolder_interface: no *_img.npy files in {input_path!r}.")
        return cases

    def load_image(self, index):
        image = np.load(safe_join(self.path, index, "_img.npy"), allow_pickle=False)
        with open(safe_join(self.path, index, ".json"), encoding="utf-8") as handle:
            spacing = json.load(handle)["spacing"]
        return image, {"type": "npy", "spacing": tuple(spacing), "affine": np.diag([*spacing, 1.0])}

    def has_segmentation(self, index):
        return os.path.isfile(safe_join(self.path, index, "_seg.npy"))

    def load_segmentation(self, index):
        if not self.has_segmentation(index):
            raise MissingSegmentationError(f"Case {index!r} has no {index}_seg.npy (prediction-only case).")
        return np.load(safe_join(self.path, index, "_seg.npy"), allow_pickle=False)

    def load_prediction(self, index, output_path):
        return np.load(safe_join(output_path, index, ".npy"), allow_pickle=False)

    def save_prediction(self, sample, output_path):
        os.makedirs(output_path, exist_ok=True)
        np.save(safe_join(output_path, sample.index, ".npy"), np.asarray(sample.pred_data)[..., 0].astype(np.uint8))

    @staticmethod
    def check_file_termination(termination):
        return termination == ".npy"


def write_npy_dataset(path, n_cases, shape, unlabeled=1):
    os.makedirs(path, exist_ok=True)
    spacing = (3.0, 0.8, 0.8)
    for i, child in enumerate(np.random.SeedSequence(7).spawn(n_cases)):
        image, labels, _ = make_kits_phantom(shape, spacing, seed=child)
        np.save(os.path.join(path, f"scan{i:02d}_img.npy"), image)
        if i < n_cases - unlabeled:
            np.save(os.path.join(path, f"scan{i:02d}_seg.npy"), labels)
        with open(os.path.join(path, f"scan{i:02d}.json"), "w", encoding="utf-8") as handle:
            json.dump({"spacing": spacing}, handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description="a custom NumPy data interface for miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="custom_interface_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)
    if args.tiny:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            3, (16, 32, 32), (16, 16, 16), UNet_standard(n_filters=4, depth=2), 1, 2, 0)
    else:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            16, (64, 128, 128), (32, 64, 64), UNet_standard(n_filters=32, depth=4), 30, 100, 2)

    data_path = os.path.join(args.workdir, "npy_cases")
    write_npy_dataset(data_path, n_cases, shape)

    data_io = Data_IO(NumpyFolder_interface(classes=3), data_path,
                      output_path=os.path.join(args.workdir, "predictions"),
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    cases = data_io.get_indiceslist()
    labelled = [c for c in cases if data_io.has_segmentation(c)]
    print(f"cases: {cases} ({len(labelled)} labelled)")

    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Clipping(min=-79, max=304), Normalization()],
                      data_aug=Data_Augmentation(seed=0), analysis="patchwise-crop", patch_shape=patch, seed=0)
    model = Neural_Network(pp, architecture=net, workers=workers)
    model.train(labelled, epochs=epochs, iterations=iterations)
    unlabelled = [c for c in cases if c not in labelled]
    model.predict(unlabelled)
    for case in unlabelled:
        prediction = data_io.interface.load_prediction(case, data_io.output_path)
        print(f"{case}: prediction {prediction.shape}, voxels per class {np.bincount(prediction.ravel(), minlength=3)}")


if __name__ == "__main__":
    main()
