"""A custom preprocessing subfunction that changes the geometry and undoes it for predictions.

``CropToBody`` crops every CT to the bounding box of the body (voxels above -500 HU) plus a
margin, so the network sees less air. A subfunction transforms the Sample in place in
``preprocessing`` and maps a prediction back in ``postprocessing``; whatever the inverse
needs goes into ``sample.extended`` (a per-sample, JSON-friendly dict). The Preprocessor
runs ``postprocessing`` in reverse order, so predictions come out on the original grid.

Run::

    python examples/custom_subfunction.py            # full settings
    python examples/custom_subfunction.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import numpy as np

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.errors import ConfigurationError
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.processing.subfunctions import Abstract_Subfunction, Clipping, Normalization


class CropToBody(Abstract_Subfunction):
    """Crop to the bounding box of voxels above ``threshold`` (plus ``margin`` voxels).

    Args:
        threshold: Intensity above which a voxel belongs to the body (HU for CT).
        margin: Voxels kept around the bounding box on every side.
    """

    def __init__(self, threshold=-500.0, margin=2):
        if margin < 0:
            raise ConfigurationError(f"CropToBody: margin must be >= 0, got {margin!r}.")
        self.threshold = threshold
        self.margin = margin

    def preprocessing(self, sample, training=True):
        spatial = sample.img_data.shape[:-1]
        body = (sample.img_data > self.threshold).any(axis=-1)
        if body.any():
            coords = np.nonzero(body)
            box = [[max(0, int(c.min()) - self.margin), min(n, int(c.max()) + 1 + self.margin)]
                   for c, n in zip(coords, spatial)]
        else:  # nothing above the threshold: keep everything
            box = [[0, n] for n in spatial]
        sample.extended["crop_to_body"] = {"box": box, "shape": list(spatial)}  # lists: JSON-friendly
        window = tuple(slice(lo, hi) for lo, hi in box)
        sample.img_data = sample.img_data[window]
        if sample.seg_data is not None:
            sample.seg_data = sample.seg_data[window]

    def postprocessing(self, sample, prediction, activation_output=False):
        info = sample.extended["crop_to_body"]
        window = tuple(slice(lo, hi) for lo, hi in info["box"])
        if activation_output:  # probabilities: outside the body is certain background
            full = np.zeros(tuple(info["shape"]) + prediction.shape[-1:], dtype=prediction.dtype)
            full[..., 0] = 1
        else:
            full = np.zeros(tuple(info["shape"]), dtype=prediction.dtype)
        full[window] = prediction
        return full


def main(argv=None):
    parser = argparse.ArgumentParser(description="a custom reversible subfunction for miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="custom_subfunction_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)
    if args.tiny:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            3, (16, 32, 32), (16, 16, 16), UNet_standard(n_filters=4, depth=2), 1, 2, 0)
    else:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            16, (64, 128, 128), (32, 64, 64), UNet_standard(n_filters=32, depth=4), 30, 100, 2)

    data_path = os.path.join(args.workdir, "kits_phantom")
    write_kits_dataset(data_path, n_cases=n_cases, shape=shape, seed=2)
    data_io = Data_IO(NIFTI_interface(classes=3), data_path, batch_path=os.path.join(args.workdir, "batches"), seed=0)
    cases = data_io.get_indiceslist()

    crop = CropToBody(threshold=-500, margin=2)
    print(f"{crop!r} -> get_config() = {crop.get_config()}")  # used for cache keys and run configs
    subfunctions = [crop, Clipping(min=-79, max=304), Normalization()]
    pp = Preprocessor(data_io, batch_size=2, subfunctions=subfunctions, data_aug=Data_Augmentation(seed=0),
                      analysis="patchwise-crop", patch_shape=patch, seed=0)

    original = data_io.sample_loader(cases[0], load_seg=False)
    cropped = pp.load_sample(cases[0], training=False)
    print(f"{cases[0]}: {original.spatial_shape} -> cropped to {cropped.spatial_shape}, "
          f"box {cropped.extended['crop_to_body']['box']}")

    model = Neural_Network(pp, architecture=net, workers=workers)
    model.train(cases[:-1], epochs=epochs, iterations=iterations)
    prediction = model.predict(cases[-1:], return_output=True)[0]
    image = data_io.sample_loader(cases[-1], load_seg=False)
    assert prediction.shape == image.spatial_shape, "postprocessing restores the original grid"
    crop.preprocessing(image)  # the box of this case, to check the inverse
    inside = np.zeros(prediction.shape, bool)
    inside[tuple(slice(lo, hi) for lo, hi in image.extended["crop_to_body"]["box"])] = True
    assert not prediction[~inside].any(), "outside the body box the prediction is background"
    print(f"{cases[-1]}: prediction {prediction.shape} on the original grid, {int((~inside).sum())} voxels "
          f"outside the body box set to background")

if __name__ == "__main__":
    main()
