"""The MIScnn tutorial flow learns: kidney Dice > 0.8 on held-out KiTS-like phantoms.

Marked slow (about 3-4 minutes on 2 CPU cores); run with ``pytest -m slow``.
"""

import keras
import numpy as np
import pytest

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import NIFTI_interface
from miseg.datasets import write_kits_dataset
from miseg.evaluation.metrics import compute_dice
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.metrics import dice_crossentropy, dice_soft
from miseg.processing.subfunctions import Clipping, Normalization


@pytest.mark.slow
def test_training_reaches_kidney_dice_above_0_8_on_heldout_phantoms(tmp_path):
    keras.utils.set_random_seed(0)
    ids = write_kits_dataset(str(tmp_path / "data"), n_cases=10, shape=(32, 64, 64), spacing=(3.0, 1.6, 1.6), seed=0)
    data_io = Data_IO(NIFTI_interface(classes=3), str(tmp_path / "data"), output_path=str(tmp_path / "pred"),
                      batch_path=str(tmp_path / "batches"), seed=0)
    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Clipping(min=-200, max=400), Normalization()],
                      data_aug=Data_Augmentation(mirror=False, seed=0), prepare_subfunctions=True,
                      analysis="patchwise-crop", patch_shape=(32, 64, 64), patches_per_sample=2)
    model = Neural_Network(pp, architecture=UNet_standard(n_filters=8, depth=3), loss=dice_crossentropy,
                           metrics=[dice_soft], learning_rate=3e-3, workers=1)
    model.train(ids[:8], epochs=30, iterations=16)
    model.predict(ids[8:])
    dices = []
    for index in ids[8:]:
        sample = data_io.sample_loader(index, load_seg=True, load_pred=True)
        dices.append(compute_dice(sample.seg_data[..., 0], sample.pred_data[..., 0], 3))
    kidney = float(np.mean([d[1] for d in dices]))
    assert kidney > 0.8, f"kidney Dice {kidney:.3f} on held-out phantoms"
