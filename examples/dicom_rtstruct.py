"""DICOM in, DICOM out: CT series with RTSTRUCT contours -> training -> DICOM SEG predictions.

Each case is a folder holding a CT series and an RTSTRUCT (written here from KiTS-like
phantoms with ``miseg.datasets.dicom.write_dicom_study``; real exports from a PACS or a
treatment planning system have the same layout). ``DICOM_interface`` rasterises the
contours of the ROIs named in ``structure_dict`` into classes, and writes predictions as
DICOM SEG objects that reference the source slices, so they open in 3D Slicer, OHIF or any
SEG-aware viewer next to the CT. The SEG is read back at the end, with miseg and with
highdicom.

Run::

    python examples/dicom_rtstruct.py            # full settings (GPU recommended)
    python examples/dicom_rtstruct.py --tiny     # tiny data and network, seconds on a CPU
"""

import argparse
import os

import highdicom
import numpy as np

from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor
from miseg.data_loading.interfaces import DICOM_interface
from miseg.datasets import make_kits_phantom
from miseg.datasets.dicom import write_dicom_study
from miseg.neural_network.architecture.unet import UNet_standard
from miseg.processing.subfunctions import Clipping, Normalization


def write_cases(path, n_cases, shape, seed=0):
    """CT + RTSTRUCT case folders; the phantom's (slice, row, col) becomes DICOM's (x, y, z)."""
    spacing_zyx = (3.0, 0.8, 0.8)
    studies = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n_cases)):
        image, labels, _ = make_kits_phantom(shape, spacing_zyx, seed=child)
        studies.append(write_dicom_study(
            os.path.join(path, f"patient_{i:03d}"), image.transpose(2, 1, 0), labels.transpose(2, 1, 0),
            spacing=spacing_zyx[::-1], label_names={1: "Kidney", 2: "Tumor"}, seed=i, with_rtstruct=True,
        ))
    return studies


def main(argv=None):
    parser = argparse.ArgumentParser(description="DICOM RTSTRUCT training and DICOM SEG export with miseg")
    parser.add_argument("--tiny", action="store_true", help="tiny data, network and schedule (smoke test)")
    parser.add_argument("--workdir", default="dicom_rtstruct_output", help="folder for data, model and outputs")
    args = parser.parse_args(argv)

    if args.tiny:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            3, (16, 32, 32), (16, 16, 16), UNet_standard(n_filters=4, depth=2), 1, 2, 0)
    else:
        n_cases, shape, patch, net, epochs, iterations, workers = (
            16, (64, 128, 128), (64, 64, 32), UNet_standard(n_filters=32, depth=4), 40, 100, 2)

    data_path = os.path.join(args.workdir, "dicom")
    studies = write_cases(data_path, n_cases, shape)
    print(f"wrote {len(studies)} DICOM studies ({len(studies[0].image_files)} CT slices + RTSTRUCT each)")

    # ROI names -> classes; everything else in the RTSTRUCT is ignored (with a warning)
    interface = DICOM_interface(classes=3, structure_dict={"Kidney": 1, "Tumor": 2}, output_format="seg")
    data_io = Data_IO(interface, data_path, output_path=os.path.join(args.workdir, "predictions"),
                      batch_path=os.path.join(args.workdir, "batches"), seed=0)
    cases = data_io.get_indiceslist()
    sample = data_io.sample_loader(cases[0], load_seg=True)
    print(f"{cases[0]}: CT {sample.shape} (x, y, z, channel), spacing {sample.spacing} mm, "
          f"labels {np.unique(sample.seg_data).tolist()}")

    pp = Preprocessor(data_io, batch_size=2, subfunctions=[Clipping(min=-79, max=304), Normalization()],
                      data_aug=Data_Augmentation(cycles=1, mirror=False, seed=0), analysis="patchwise-crop",
                      patch_shape=patch, seed=0)
    model = Neural_Network(pp, architecture=net, workers=workers)
    model.train(cases[:-1], epochs=epochs, iterations=iterations)
    model.dump(os.path.join(args.workdir, "model.keras"))

    # Predict the last patient: written as <case>.seg.dcm, on the CT's grid
    test = cases[-1]
    labels = model.predict([test], return_output=True)[0]
    model.predict([test])
    seg_path = os.path.join(data_io.output_path, f"{test}.seg.dcm")
    print(f"DICOM SEG written to {seg_path}")

    # Read it back: miseg gives the label map, highdicom the DICOM view of it
    read_back = interface.load_prediction(test, data_io.output_path)
    assert np.array_equal(np.asarray(read_back).reshape(labels.shape), labels), "SEG round trip changed labels"
    seg = highdicom.seg.segread(seg_path)
    names = [seg.get_segment_description(n).SegmentLabel for n in seg.segment_numbers]
    source = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    assert source == studies[-1].series_instance_uid
    print(f"read back: segments {names}, {seg.NumberOfFrames} frame(s), referencing CT series {source}")
    print(f"predicted voxels per class: {np.bincount(labels.ravel(), minlength=3).tolist()}")
    # For an RTSTRUCT instead of a SEG: DICOM_interface(..., output_format="rtstruct")


if __name__ == "__main__":
    main()
