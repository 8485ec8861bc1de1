"""The DICOM loop end to end: phantom DICOM study with RTSTRUCT in, train a step, predict,
DICOM SEG and RTSTRUCT out, read back."""

import numpy as np
import pydicom
import pytest

from miseg import Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import DICOM_interface
from miseg.datasets import make_kits_phantom
from miseg.datasets.dicom import write_dicom_study
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.processing.subfunctions import Clipping, Normalization


@pytest.fixture(scope="module")
def dicom_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom_data")
    for i in range(2):
        image, labels, _ = make_kits_phantom(shape=(16, 32, 32), spacing=(3.0, 1.6, 1.6), seed=i)
        # the interface serves (x, y, z) = (column, row, slice): put the phantom's slice axis last
        image, labels = np.moveaxis(image, 0, -1), np.moveaxis(labels, 0, -1)
        write_dicom_study(str(root / f"case_{i}"), image, labels, spacing=(1.6, 1.6, 3.0),
                          label_names={1: "Kidney", 2: "Tumor"}, seed=i)
    return root


@pytest.mark.parametrize("output_format", ["seg", "rtstruct"])
def test_dicom_train_predict_and_export(dicom_dataset, tmp_path, output_format):
    interface = DICOM_interface(classes=3, structure_dict={"kidney": 1, "tumor": 2}, output_format=output_format)
    data_io = Data_IO(interface, str(dicom_dataset), output_path=str(tmp_path / "pred"),
                      batch_path=str(tmp_path / "batches"), seed=0)
    ids = data_io.get_indiceslist()
    assert ids == ["case_0", "case_1"]
    sample = data_io.sample_loader("case_0")
    assert sample.spatial_shape == (32, 32, 16)
    assert set(np.unique(sample.seg_data)) == {0, 1, 2}
    assert sample.extended["hu"] is True
    pp = Preprocessor(data_io, batch_size=2, data_aug=None, analysis="patchwise-crop", patch_shape=(16, 16, 16),
                      subfunctions=[Clipping(min=-200, max=400), Normalization()], patches_per_sample=2)
    model = Neural_Network(pp, architecture=UNet_standard(n_filters=4, depth=2), workers=0)
    model.train(ids[:1], epochs=1, iterations=1)
    expected = model.predict(["case_1"], return_output=True)[0]
    model.predict(["case_1"])
    suffix = ".seg.dcm" if output_format == "seg" else ".rtstruct.dcm"
    written = tmp_path / "pred" / f"case_1{suffix}"
    assert written.exists()
    ds = pydicom.dcmread(written)
    assert ds.Modality == ("SEG" if output_format == "seg" else "RTSTRUCT")
    back = data_io.sample_loader("case_1", load_seg=False, load_pred=True).pred_data[..., 0]
    assert back.shape == expected.shape
    if output_format == "seg":
        np.testing.assert_array_equal(back, expected)
        source_uids = set(data_io.sample_loader("case_1", load_seg=False).extended["sop_instance_uids"])
        referenced = {
            item.ReferencedSOPInstanceUID
            for series in ds.ReferencedSeriesSequence
            for item in series.ReferencedInstanceSequence
        }
        assert referenced <= source_uids and referenced
    else:
        for c in (1, 2):
            a, b = expected == c, back == c
            if a.sum() > 50:  # contour round trip: one-voxel tolerance on larger structures
                assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.8
