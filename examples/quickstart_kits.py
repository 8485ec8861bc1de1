"""Quickstart: kidney tumour segmentation on a KiTS19-like CT data set (MIScnn's README pipeline).

The data set is generated (``miseg.datasets.write_kits_dataset``): contrast CT phantoms with
kidneys (label 1) and tumours (label 2) in the KiTS19 folder layout, so the script runs
anywhere. With the real KiTS19 data, point ``NIFTI_interface``/``Data_IO`` at its folder.

Run::

    python examples/quickstart_kits.py            # full settings (GPU recommended)
    python examples/quickstart_kits.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import numpy as np

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.evaluation.metrics import compute_dice
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_crossentropy, dice_soft, tversky_loss
from miseg.processing.subfunctions import Clipping, Normalization, Resampling


def main(argv=None):
    parser = argparse.ArgumentParser(description="miseg quickstart on a KiTS19-like phantom data set")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="quickstart_kits_output", help="folder for data, model and predictions")
    args = parser.parse_args(argv)

    if args.tiny:
        n_cases, shape, patch = 4, (16, 32, 32), (16, 16, 16)
        architecture, epochs, iterations, workers = UNet_standard(n_filters=4, depth=2), 1, 2, 0
    else:
        n_cases, shape, patch = 24, (64, 128, 128), (32, 64, 64)
        architecture, epochs, iterations, workers = UNet_standard(n_filters=32, depth=4), 50, 100, 2

    # 1. Data: write the phantom data set (the last case has no segmentation: a "new" patient)
    data_path = os.path.join(args.workdir, "kits_phantom")
    write_kits_dataset(data_path, n_cases=n_cases, shape=shape, spacing=(3.0, 0.8, 0.8), seed=0, unlabeled=1)

    # 2. Data I/O: the NIfTI interface reads <case>/imaging.nii.gz and segmentation.nii.gz
    interface = NIFTI_interface(pattern="case_[0-9]+", channels=1, classes=3)
    data_io = Data_IO(interface, data_path, output_path=os.path.join(args.workdir, "predictions"),
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    sample_list = data_io.get_indiceslist()
    labelled = [i for i in sample_list if data_io.has_segmentation(i)]
    print(f"{len(sample_list)} cases, {len(labelled)} with segmentation")

    # 3. Augmentation and preprocessing: resample to a common spacing, clip the HU window of
    #    kidneys, z-score normalise; train on random patches (a third centred on foreground)
    data_aug = Data_Augmentation(cycles=2, scaling=True, rotations=True, elastic_deform=not args.tiny,
                                 mirror=True, brightness=True, contrast=True, gamma=True, gaussian_noise=True,
                                 seed=0)
    subfunctions = [Resampling((3.0, 1.6, 1.6)), Clipping(min=-79, max=304), Normalization(mode="z-score")]
    pp = Preprocessor(data_io, data_aug=data_aug, batch_size=2, subfunctions=subfunctions,
                      prepare_subfunctions=False, analysis="patchwise-crop", patch_shape=patch, seed=0)
    pp.patchwise_overlap = tuple(p // 2 for p in patch)  # overlap of the prediction patches

    # 4. The network: a standard U-Net with the Tversky loss
    model = Neural_Network(preprocessor=pp, architecture=architecture, loss=tversky_loss,
                           metrics=[dice_soft, dice_crossentropy], learning_rate=1e-4,
                           batch_queue_size=2, workers=workers)

    # 5. Train on all labelled cases but one, keep that one to check the result
    train_ids, test_ids = labelled[:-1], labelled[-1:]
    history = model.train(train_ids, epochs=epochs, iterations=iterations)
    print(f"final training loss {history.history['loss'][-1]:.4f}")
    model_path = model.dump(os.path.join(args.workdir, "model.keras"))
    print(f"model written to {model_path}")

    # 6. Predict: the held-out case (returned) and the unlabelled case (written as NIfTI)
    prediction = model.predict(test_ids, return_output=True)[0]
    truth = data_io.sample_loader(test_ids[0], load_seg=True).seg_data[..., 0]
    dice = compute_dice(truth, prediction, classes=3)
    print(f"Dice on {test_ids[0]}: kidney {dice[1]:.3f}, tumour {dice[2]:.3f}")
    new_cases = [i for i in sample_list if i not in labelled]
    model.predict(new_cases)
    print(f"predictions written to {data_io.output_path}: {sorted(os.listdir(data_io.output_path))}")
    return float(np.mean(dice[1:]))


if __name__ == "__main__":
    main()
