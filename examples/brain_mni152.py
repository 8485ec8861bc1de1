"""Brain tissue segmentation on the real MNI152 template: CSF (1), gray matter (2), white matter (3).

``miseg.datasets.write_mni152_dataset`` writes the ICBM152 2009a T1 average brain shipped
with nilearn as one NIfTI case; its labels are the argmax of the template's tissue
probability maps. One (average) brain is a demonstration, not a training set: the model
learns the intensity-to-tissue mapping on patches of that brain, with heavy augmentation,
and is scored on the same brain. For real work, use many subjects.

Run::

    python examples/brain_mni152.py            # 2 mm grid, longer training
    python examples/brain_mni152.py --tiny     # 8 mm grid, seconds on a CPU
"""

import argparse
import os

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import MNI152_CLASSES, write_mni152_dataset
from miseg.evaluation.metrics import case_metrics
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_crossentropy, dice_soft
from miseg.processing.subfunctions import Normalization


def main(argv=None):
    parser = argparse.ArgumentParser(description="brain tissue segmentation on the MNI152 template")
    parser.add_argument("--tiny", action="store_true", help="coarse grid, tiny network and schedule (smoke test)")
    parser.add_argument("--workdir", default="brain_mni152_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)
    if args.tiny:
        downsample, patch, epochs, iterations, workers = 8, (16, 16, 16), 1, 2, 0
        net = UNet_standard(n_filters=4, depth=2)
    else:
        downsample, patch, epochs, iterations, workers = 2, (64, 64, 64), 60, 100, 2
        net = UNet_standard(n_filters=16, depth=4)

    data_path = os.path.join(args.workdir, "mni152")
    write_mni152_dataset(data_path, downsample=downsample)
    data_io = Data_IO(NIFTI_interface(classes=len(MNI152_CLASSES)), data_path,
                      output_path=os.path.join(args.workdir, "predictions"),
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    case = data_io.get_indiceslist()[0]
    sample = data_io.sample_loader(case, load_seg=True)
    print(f"{case}: T1 {sample.spatial_shape} at {sample.spacing} mm, classes {MNI152_CLASSES}")

    # Normalise inside the brain only: the background of the template is exactly 0
    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Normalization(mode="z-score", foreground_only=True)],
                      data_aug=Data_Augmentation(cycles=2, mirror=True, elastic_deform=not args.tiny, seed=0),
                      analysis="patchwise-crop", patch_shape=patch, patches_per_sample=4,
                      foreground_oversampling=0.5, seed=0)
    model = Neural_Network(pp, architecture=net, loss=dice_crossentropy, metrics=[dice_soft],
                           learning_rate=1e-3, workers=workers)
    model.train([case], epochs=epochs, iterations=iterations)
    model.dump(os.path.join(args.workdir, "model.keras"))

    model.predict([case])  # predictions/mni152.nii.gz, aligned with the template
    scored = data_io.sample_loader(case, load_seg=True, load_pred=True)
    rows = case_metrics(scored.seg_data[..., 0], scored.pred_data[..., 0], classes=len(MNI152_CLASSES),
                        spacing=scored.spacing, metrics=["dice", "hd95"], include_background=False, case=case)
    for row in rows:
        print(f"{MNI152_CLASSES[row['class']]:>12}: Dice {row['dice']:.3f}, HD95 {row['hd95']:.1f} mm")


if __name__ == "__main__":
    main()
