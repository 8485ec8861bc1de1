"""Instance maps and tables written through the interfaces, by predict and by the CLI."""

import os

import keras
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import MemoryIO
from PIL import Image

from miseg.data_loading.data_io import Data_IO
from miseg.data_loading.interfaces import (
    DICOM_interface,
    Dictionary_interface,
    Image_interface,
    NIFTI_interface,
    NIFTIslicer_interface,
)
from miseg.data_loading.sample import Sample
from miseg.datasets import write_nuclei_dataset
from miseg.errors import ConfigurationError, LabelError
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.neural_network.model import Neural_Network
from miseg.processing.instances import (
    Instances,
    InstanceSegmenter,
    connected_components,
    save_instances,
)
from miseg.processing.preprocessor import Preprocessor


def blobs_3d(shape=(12, 10, 6)):
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 1:4, 1:3] = 1
    labels[6:9, 5:8, 2:5] = 1
    labels[2:4, 7:9, 3:5] = 2
    return labels


def segmented(labels, spacing=None, affine=None):
    return InstanceSegmenter()(labels, spacing=spacing, affine=affine, image=labels.astype(np.float32))


# --------------------------------------------------------------------------- interfaces
def test_nifti_instance_map_has_the_image_geometry_and_a_table(tmp_path):
    labels = blobs_3d()
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    affine[:3, 3] = [-30.0, 12.0, 7.5]
    case = tmp_path / "data" / "case_0"
    case.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels.astype(np.float32), affine), str(case / "imaging.nii.gz"))
    interface = NIFTI_interface(classes=3)
    interface.initialize(str(tmp_path / "data"))
    image, extended = interface.load_image("case_0")
    sample = Sample("case_0", image, 1, 3, extended, three_dim=True)
    inst = segmented(labels, spacing=sample.spacing, affine=sample.affine)
    save_instances(interface, sample, inst, str(tmp_path / "out"))
    written = nib.load(str(tmp_path / "out" / "case_0.instances.nii.gz"))
    assert written.get_data_dtype() == np.uint16
    np.testing.assert_allclose(written.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(written.dataobj), inst.labels)
    table = pd.read_csv(tmp_path / "out" / "case_0.instances.tsv", sep="\t")
    assert table["instance_id"].tolist() == [1, 2, 3] and sorted(table["class"]) == [1, 1, 2]
    first = table.iloc[0]  # the block at voxels 1..3, 1..3, 1..2
    assert first["volume_mm3"] == pytest.approx(18 * 0.8 * 0.9 * 2.5)
    assert first["centroid_x"] == pytest.approx(-30.0 + 0.8 * 2.0)
    assert first["centroid_z"] == pytest.approx(7.5 + 2.5 * 1.5)


def test_image_interface_writes_16_bit_instance_maps_and_refuses_more_than_65535(tmp_path):
    interface = Image_interface(classes=2, img_format="png")
    labels = np.zeros((40, 40), np.uint8)
    labels[::2, ::2] = 1  # 400 isolated pixels: more than 8 bits can number
    inst = connected_components(labels)
    assert inst.n == 400
    sample = Sample("c1", np.zeros((40, 40)), 1, 2, {}, three_dim=False)
    out = tmp_path / "out"
    save_instances(interface, sample, inst, str(out))
    with Image.open(out / "c1.instances.png") as img:
        assert img.mode.startswith("I")
        read = np.asarray(img).astype(np.int64)
    np.testing.assert_array_equal(read, inst.labels)
    assert len(pd.read_csv(out / "c1.instances.tsv", sep="\t")) == 400

    many = Instances(np.arange(1, 256 * 257 + 1, dtype=np.uint32).reshape(256, 257), np.ones(256 * 257))
    before = (out / "c1.instances.png").read_bytes()
    with pytest.raises(LabelError, match="65792 instances.*at most 65535"):
        save_instances(interface, sample, many, str(out))
    assert (out / "c1.instances.png").read_bytes() == before  # nothing overwritten


def test_dictionary_and_slicer_interfaces_store_instances(tmp_path):
    labels = blobs_3d()[:, :, 3]
    inst = segmented(labels)
    dictionary = Dictionary_interface({"a": (np.zeros(labels.shape),)}, classes=3, three_dim=False)
    sample = Sample("a", np.zeros(labels.shape), 1, 3, {}, three_dim=False)
    save_instances(dictionary, sample, inst, None)
    stored = dictionary.instance_predictions["a"]
    np.testing.assert_array_equal(stored.labels, inst.labels)
    assert stored.table["class"].tolist() == inst.classes.tolist()
    slicer = NIFTIslicer_interface(classes=3)
    save_instances(slicer, sample, inst, str(tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "a.instances.npy"), inst.labels)
    assert (tmp_path / "a.instances.tsv").is_file()


def test_dicom_seg_has_one_segment_per_instance_named_by_class(tmp_path):
    from miseg.data_loading.dicom.seg import place_seg_frames, read_seg
    from miseg.datasets.dicom import write_dicom_study

    labels = blobs_3d()
    write_dicom_study(str(tmp_path / "cases" / "c1"), np.where(labels > 0, 60.0, 0.0).astype(np.float32),
                      labels, (0.7, 0.9, 2.5), label_names={1: "Liver", 2: "Tumor"})
    interface = DICOM_interface(classes=3, structure_dict={"Liver": 1, "Tumor": 2})
    interface.initialize(str(tmp_path / "cases"))
    image, extended = interface.load_image("c1")
    sample = Sample("c1", image, 1, 3, extended, three_dim=True)
    inst = segmented(interface.load_segmentation("c1"))
    save_instances(interface, sample, inst, str(tmp_path / "out"))
    seg = read_seg(str(tmp_path / "out" / "c1.instances.seg.dcm"))
    names = dict(seg.segments)
    assert sorted(names) == [1, 2, 3]
    assert [names[i + 1].split(" #")[0] for i in range(3)] == [
        {1: "Liver", 2: "Tumor"}[int(c)] for c in inst.classes]
    series = interface._get_series("c1")
    placed = place_seg_frames(seg, series.geometry, series.sop_instance_uids,
                              [(i, names[i], i) for i in names], dtype=np.uint16)
    np.testing.assert_array_equal(placed, inst.labels)
    assert (tmp_path / "out" / "c1.instances.tsv").is_file()


def test_interfaces_without_instance_output_raise_a_clear_error(tmp_path):
    io = MemoryIO({"c": (np.zeros((4, 4)), None)}, three_dim=False)
    sample = Sample("c", np.zeros((4, 4)), 1, 3, {}, three_dim=False)
    with pytest.raises(ConfigurationError, match="MemoryIO cannot write instance label maps"):
        save_instances(io, sample, segmented(np.eye(4, dtype=np.uint8)), str(tmp_path))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ predict
def _threshold_forward(batch):
    """A stand-in network: foreground probability is a steep sigmoid of the intensity."""
    p1 = 1.0 / (1.0 + np.exp(-(np.asarray(batch[..., 0], np.float64) - 60.0) / 4.0))
    return np.stack([1.0 - p1, p1], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def nuclei_network(tmp_path_factory):
    data = tmp_path_factory.mktemp("nuclei") / "data"
    write_nuclei_dataset(str(data), n_cases=2, shape=(64, 64), seed=5)
    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("pred")
    dio = Data_IO(Image_interface(classes=2), str(data), output_path=str(out))
    pp = Preprocessor(dio, batch_size=1, analysis="fullimage")
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=2, depth=1), workers=0)
    nn._forward = _threshold_forward
    return nn, out


def test_predict_with_instances_writes_semantic_and_instance_outputs(nuclei_network):
    nn, out = nuclei_network
    segmenter = InstanceSegmenter(split="distance", seed_distance=5.0)
    nn.predict(["case_00000"], instances=segmenter)
    with Image.open(out / "case_00000.png") as img:
        semantic = np.asarray(img)
    with Image.open(out / "case_00000.instances.png") as img:
        ids = np.asarray(img).astype(np.int64)
    table = pd.read_csv(out / "case_00000.instances.tsv", sep="\t")
    assert ((ids > 0) == (semantic == 1)).all()
    assert len(table) == ids.max() and table["instance_id"].tolist() == list(range(1, ids.max() + 1))
    assert connected_components(semantic).n < ids.max()  # touching nuclei were split
    assert ((table["mean_probability"] > 0.5) & (table["mean_probability"] <= 1)).all()
    semantic_only, (again, inst) = (nn.predict(["case_00000"], return_output=True)[0],
                                    nn.predict(["case_00000"], return_output=True, instances=segmenter)[0])
    np.testing.assert_array_equal(semantic_only, again)
    np.testing.assert_array_equal(inst.labels, ids)


def test_predict_instances_fails_before_writing_on_an_interface_without_instances():
    io = MemoryIO({"c": (np.linspace(0, 120, 256).reshape(16, 16).astype(np.float32), None)},
                  classes=2, three_dim=False)
    pp = Preprocessor(Data_IO(io, "-"), batch_size=1, analysis="fullimage")
    nn = Neural_Network(pp, architecture=UNet_standard(n_filters=2, depth=1), workers=0)
    nn._forward = _threshold_forward
    with pytest.raises(ConfigurationError, match="cannot write instance label maps"):
        nn.predict(["c"], instances=True)
    assert io.saved == {}
    labels, inst = nn.predict(["c"], return_output=True, instances=True)[0]
    assert inst.n == 1 and (inst.semantic() == labels).all()
