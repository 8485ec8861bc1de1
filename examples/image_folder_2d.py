"""2D segmentation of a folder of PNG images: cells (label 1) with nuclei (label 2).

The images are generated (``miseg.datasets.write_image_dataset``) in the ``Image_interface``
layout, ``<case>/imaging.png`` + ``<case>/segmentation.png``; any folder of PNG/TIFF/JPEG
images with label masks in that layout works the same way.

Run::

    python examples/image_folder_2d.py            # full settings
    python examples/image_folder_2d.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import Image_interface
from miseg.datasets import CELL_CLASSES, write_image_dataset
from miseg.evaluation.metrics import compute_dice
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_crossentropy, dice_soft
from miseg.processing.subfunctions import Normalization
from miseg.utils.plotting import plot_overlays


def main(argv=None):
    parser = argparse.ArgumentParser(description="2D image-folder segmentation with miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="image_folder_2d_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)

    if args.tiny:
        n_cases, shape, net, epochs, workers = 4, (64, 64), UNet_standard(n_filters=4, depth=2), 1, 0
    else:
        n_cases, shape, net, epochs, workers = 40, (256, 256), UNet_standard(n_filters=32, depth=4), 40, 2

    data_path = os.path.join(args.workdir, "cells")
    write_image_dataset(data_path, n_cases=n_cases, shape=shape, seed=0, img_format="png")

    interface = Image_interface(classes=len(CELL_CLASSES), img_type="grayscale", img_format="png")
    data_io = Data_IO(interface, data_path, output_path=os.path.join(args.workdir, "predictions"),
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    cases = data_io.get_indiceslist()

    # Whole images go through the network; augmentation mirrors and rotates them in 2D
    data_aug = Data_Augmentation(cycles=1, mirror=True, rotations=True, seed=0)
    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Normalization(mode="z-score")], data_aug=data_aug,
                      analysis="fullimage", seed=0)
    model = Neural_Network(pp, architecture=net, loss=dice_crossentropy, metrics=[dice_soft],
                           learning_rate=1e-3, workers=workers)

    train_ids, test_ids = cases[:-1], cases[-1:]
    model.train(train_ids, epochs=epochs)
    model.dump(os.path.join(args.workdir, "model.keras"))

    # Predictions are written as PNG label images (values 0, 1, 2) into predictions/
    model.predict(test_ids)
    sample = data_io.sample_loader(test_ids[0], load_seg=True, load_pred=True)
    dice = compute_dice(sample.seg_data[..., 0], sample.pred_data[..., 0], classes=len(CELL_CLASSES))
    print("Dice on {}: {}".format(test_ids[0], ", ".join(f"{n} {d:.3f}" for n, d in zip(CELL_CLASSES[1:], dice[1:]))))
    figure = plot_overlays(sample.img_data, sample.seg_data, sample.pred_data,
                           os.path.join(args.workdir, "overlay.png"), title=f"{test_ids[0]}: truth vs prediction")
    print(f"predictions in {data_io.output_path}, overlay figure {figure}")


if __name__ == "__main__":
    main()
