"""The interface registry of miseg.data_loading.interfaces (MIScnn's miscnn_data_interfaces)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SCRIPT = """
import sys
import miseg.data_loading.interfaces as interfaces
from miseg.data_loading.interfaces import DATA_INTERFACES, miscnn_data_interfaces, get_data_interface_from_file_term
heavy = ("tensorflow", "keras", "pydicom", "SimpleITK", "PIL", "nibabel")
assert miscnn_data_interfaces is DATA_INTERFACES is interfaces.miscnn_data_interfaces
assert list(miscnn_data_interfaces) == ["NIFTI", "DICT", "NIFTI_S", "IMG", "DICOM"]
assert len(miscnn_data_interfaces) == 5 and "IMG" in miscnn_data_interfaces and "PNG" not in miscnn_data_interfaces
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
assert not loaded, loaded  # listing the names imports no format library
assert miscnn_data_interfaces["NIFTI"] is interfaces.NIFTI_interface
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
print("ok")
"""


def test_registry_is_one_lazy_mapping_without_tensorflow():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_registry_maps_miscnn_names_and_file_terms():
    from miseg.data_loading import interfaces
    from miseg.data_loading.interfaces import DATA_INTERFACES, get_data_interface_from_file_term

    expected = {
        "NIFTI": "NIFTI_interface", "DICT": "Dictionary_interface", "NIFTI_S": "NIFTIslicer_interface",
        "IMG": "Image_interface", "DICOM": "DICOM_interface",
    }
    assert {k: v.__name__ for k, v in DATA_INTERFACES.items()} == expected
    assert dict(DATA_INTERFACES)["DICT"] is interfaces.Dictionary_interface
    assert DATA_INTERFACES["NIFTI"](classes=3).classes == 3  # MIScnn's miscnn_data_interfaces[type](...)
    with pytest.raises(KeyError, match="NIFTI_S"):
        DATA_INTERFACES["nifti"]
    with pytest.raises(TypeError):
        DATA_INTERFACES["X"] = interfaces.NIFTI_interface  # read-only: no shared mutable registry
    # first class in MIScnn's order: NIfTI wins over the slicer; unknown endings give None
    assert get_data_interface_from_file_term(".nii.gz") is interfaces.NIFTI_interface
    assert get_data_interface_from_file_term(".png") is interfaces.Image_interface
    assert get_data_interface_from_file_term(".dcm") is interfaces.DICOM_interface
    assert get_data_interface_from_file_term(".xyz") is None
