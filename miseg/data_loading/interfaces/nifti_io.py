"""NIfTI data interface: one folder per case holding ``imaging.nii.gz`` and ``segmentation.nii.gz``.

The module also holds the NIfTI reading and writing helpers (with geometry) that the slicer
and the DICOM interface's NIfTI output share; format-independent case-folder helpers live
in ``_cases.py``.
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Mapping, Sequence

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from miseg.data_loading.interfaces._cases import (
    check_cases_have_file,
    compile_pattern,
    find_case_file,
    list_case_folders,
    prediction_array,
)
from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataError,
    DataNotFoundError,
    GeometryError,
    MissingSegmentationError,
    ShapeMismatchError,
)
from miseg.utils.fileio import atomic_path, safe_filename, safe_join

__all__ = ["NIFTI_interface"]

#: File endings of NIfTI files, in order of preference.
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
#: Largest difference (mm) tolerated between the affines of an image and its segmentation.
AFFINE_TOLERANCE_MM = 1e-3

# What nibabel, gzip and numpy raise on truncated or malformed files.
_READ_ERRORS = (OSError, EOFError, ValueError, zlib.error, ImageFileError, HeaderDataError)


# --------------------------------------------------------------------------- NIfTI helpers
def load_nifti(path: str, case: Any) -> nib.Nifti1Image:
    """Open a NIfTI file lazily (header only), turning read failures into CorruptFileError."""
    if not os.path.isfile(path):
        raise DataNotFoundError(f"Case {case!r}: file {path!r} does not exist.")
    try:
        return nib.load(path, mmap=False)
    except _READ_ERRORS as exc:
        raise CorruptFileError(f"Case {case!r}: cannot read NIfTI file {path!r}: {exc}") from exc


def read_nifti_data(img: nib.Nifti1Image, path: str, case: Any, as_float32: bool) -> np.ndarray:
    """Read the voxel data: float32 with scaling applied, or the stored (scaled) values as is."""
    try:
        if as_float32:
            return img.get_fdata(dtype=np.float32)
        return np.asanyarray(img.dataobj)
    except _READ_ERRORS as exc:
        raise CorruptFileError(
            f"Case {case!r}: NIfTI file {path!r} is truncated or corrupt: {exc}"
        ) from exc


def interface_shape(shape: Sequence[int], three_dim: bool, case: Any, path: str) -> tuple[int, ...]:
    """Map a NIfTI data shape to the interface layout ``spatial (+ channel)``.

    NIfTI keeps space in the first three axes. A 3D interface takes ``shape[:3]`` as spatial;
    a 2D interface takes ``shape[:2]`` and requires the third axis to be 1. Singleton axes after
    the spatial ones are dropped; one remaining axis is the channel axis.

    Raises:
        DataError: naming the case, file, found shape and expected layout.
    """
    shape = tuple(int(s) for s in shape)
    spatial = 3 if three_dim else 2
    kind = "3D" if three_dim else "2D"
    if len(shape) < spatial:
        raise DataError(
            f"Case {case!r}: {path!r} has shape {shape} ({len(shape)} axes), but a {kind} interface "
            f"expects {spatial} spatial axes (plus an optional channel axis)."
        )
    if not three_dim and len(shape) >= 3:
        if shape[2] != 1:
            raise DataError(
                f"Case {case!r}: {path!r} is a 3D volume of shape {shape}, but the interface is 2D "
                f"(three_dim=False) and expects shape (x, y) or (x, y, 1); use "
                f"NIFTIslicer_interface to read a volume slice by slice."
            )
        shape = shape[:2] + shape[3:]
    extra = tuple(s for s in shape[spatial:] if s != 1)
    if len(extra) > 1:
        raise DataError(
            f"Case {case!r}: {path!r} has shape {shape}: more than one non-spatial axis "
            f"({extra}); expected {spatial} spatial axes plus at most one channel axis."
        )
    return shape[:spatial] + extra


def header_geometry(img: nib.Nifti1Image) -> dict[str, Any]:
    """Geometry of a NIfTI image: best affine, qform/sform matrices and codes, units."""
    header = img.header
    geometry: dict[str, Any] = {"affine": np.asarray(img.affine, dtype=np.float64)}
    if isinstance(header, nib.Nifti1Header):  # NIfTI-2 derives from it
        geometry.update(
            qform=np.asarray(header.get_qform(), dtype=np.float64),
            sform=np.asarray(header.get_sform(), dtype=np.float64),
            qform_code=int(header["qform_code"]),
            sform_code=int(header["sform_code"]),
            xyzt_units=header.get_xyzt_units(),
        )
    return geometry


def write_nifti(path: str, data: np.ndarray, geometry: Mapping[str, Any] | None = None) -> None:
    """Write ``data`` atomically as NIfTI-1 with the given geometry.

    Args:
        path: Target file (``.nii.gz`` or ``.nii``).
        data: Array to store; its dtype is kept.
        geometry: Dict with ``"affine"`` and optionally ``"qform"``/``"sform"`` matrices,
            ``"qform_code"``/``"sform_code"`` and ``"xyzt_units"`` (as from
            :func:`header_geometry` or an interface's extended dict). Without codes, the
            affine goes into the sform with code 2 (aligned), nibabel's default.
    """
    data = np.asarray(data)
    geometry = dict(geometry or {})
    affine = geometry.get("affine")
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_data_shape(data.shape)
    if affine is not None:
        affine = np.asarray(affine, dtype=np.float64)
        qcode = int(geometry.get("qform_code", 0))
        scode = int(geometry.get("sform_code", 2 if "qform_code" not in geometry else 0))
        qform = geometry.get("qform")
        sform = geometry.get("sform")
        header.set_qform(np.asarray(qform if qform is not None and qcode else affine), code=qcode)
        header.set_sform(np.asarray(sform if sform is not None and scode else affine), code=scode)
        zooms = list(np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))[: data.ndim]
        header.set_zooms(tuple(zooms) + (1.0,) * (data.ndim - len(zooms)))
        units = geometry.get("xyzt_units") or ("mm", "sec")
        header.set_xyzt_units(*units)
    img = nib.Nifti1Image(data, None, header=header)
    with atomic_path(path, suffix=".nii.gz" if path.endswith(".nii.gz") else ".nii") as tmp:
        img.to_filename(tmp)


# --------------------------------------------------------------------------- the interface
class NIFTI_interface(Abstract_IO):
    """Reads NIfTI cases laid out as ``input_path/<case>/imaging.nii.gz`` (+ ``segmentation``).

    This is the KiTS19 layout. ``.nii`` files are accepted as well as ``.nii.gz``. Images are
    returned as float32 in nibabel's axis order (the first three axes are space); a 4-D file
    is a multi-channel image whose last axis holds the channels.

    The extended dict of a case holds ``"type": "nifti"``, ``"affine"`` (4x4 ndarray, the
    best of sform/qform), ``"spacing"`` (header zooms of the spatial axes), ``"qform_code"``
    and ``"sform_code"``. Predictions are written as ``output_path/<index>.nii.gz`` with the
    source image's geometry, so they open aligned in 3D Slicer or ITK-SNAP.

    Args:
        channels: Number of image channels (1, or the length of the 4th NIfTI axis).
        classes: Number of segmentation classes, background included.
        three_dim: ``True`` for volumes; ``False`` for 2D images stored as ``(x, y)`` or
            ``(x, y, 1)`` NIfTI files.
        pattern: Regex; only case folders whose name ``re.fullmatch``-es it are used.

    Example:
        >>> interface = NIFTI_interface(channels=1, classes=3)
        >>> indices = interface.initialize("data/kits19")        # doctest: +SKIP
        >>> image, extended = interface.load_image(indices[0])   # doctest: +SKIP
        >>> extended["spacing"]                                  # doctest: +SKIP
        (3.0, 0.78, 0.78)
    """

    def __init__(
        self, channels: int = 1, classes: int = 2, three_dim: bool = True, pattern: str | None = None
    ) -> None:
        super().__init__(channels=channels, classes=classes, three_dim=three_dim)
        self.pattern = pattern
        self._regex = compile_pattern(pattern, type(self).__name__)
        self.input_path: str | None = None

    # ------------------------------------------------------------------ paths
    def _case_dir(self, index: Any) -> str:
        if self.input_path is None:
            raise ConfigurationError(
                f"{type(self).__name__}: input_path is None; call initialize(input_path) first."
            )
        case_dir = os.path.join(self.input_path, safe_filename(index))
        if not os.path.isdir(case_dir):
            raise DataNotFoundError(f"Case {index!r}: case folder {case_dir!r} does not exist.")
        return case_dir

    def _image_path(self, index: Any) -> str:
        case_dir = self._case_dir(index)
        path = find_case_file(case_dir, "imaging", NIFTI_EXTENSIONS)
        if path is None:
            raise DataNotFoundError(
                f"Case {index!r}: no imaging.nii.gz or imaging.nii in {case_dir!r}."
            )
        return path

    def _segmentation_path(self, index: Any) -> str | None:
        return find_case_file(self._case_dir(index), "segmentation", NIFTI_EXTENSIONS)

    # ------------------------------------------------------------------ Abstract_IO
    def initialize(self, input_path: str) -> list[str]:
        """Scan ``input_path`` and return the case folder names, naturally sorted.

        Raises:
            DataNotFoundError: when the directory is missing, no case folder (matching
                ``pattern``) exists, or case folders lack an imaging file.
        """
        owner = type(self).__name__
        cases = list_case_folders(input_path, self._regex, owner)
        check_cases_have_file(input_path, cases, "imaging", NIFTI_EXTENSIONS, owner)
        self.input_path = input_path
        return cases

    def load_image(self, index: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Return ``(image float32, extended)`` of a case (see the class docstring)."""
        path = self._image_path(index)
        img = load_nifti(path, index)
        target = interface_shape(img.shape, self.three_dim, index, path)
        data = read_nifti_data(img, path, index, as_float32=True).reshape(target)
        spatial = 3 if self.three_dim else 2
        geometry = header_geometry(img)
        extended: dict[str, Any] = {
            "type": "nifti",
            "affine": geometry["affine"],
            "spacing": tuple(float(z) for z in img.header.get_zooms()[:spatial]),
            "qform_code": geometry.get("qform_code", 0),
            "sform_code": geometry.get("sform_code", 0),
        }
        return data, extended

    def has_segmentation(self, index: Any) -> bool:
        """Whether the case folder holds a segmentation file (no data is read)."""
        return self._segmentation_path(index) is not None

    def load_segmentation(self, index: Any) -> np.ndarray:
        """Return the label map of a case, in its stored dtype.

        Raises:
            MissingSegmentationError: when the case has no segmentation file.
            ShapeMismatchError / GeometryError: when the segmentation's shape or affine
                differs from the image's header.
        """
        seg_path = self._segmentation_path(index)
        if seg_path is None:
            raise MissingSegmentationError(
                f"Case {index!r}: no segmentation.nii.gz or segmentation.nii in "
                f"{self._case_dir(index)!r} (prediction-only case)."
            )
        seg_img = load_nifti(seg_path, index)
        seg_shape = interface_shape(seg_img.shape, self.three_dim, index, seg_path)
        spatial = 3 if self.three_dim else 2
        if len(seg_shape) > spatial:
            raise DataError(
                f"Case {index!r}: segmentation {seg_path!r} of shape {seg_img.shape} has a "
                f"non-spatial axis of length {seg_shape[-1]}; expected one label map."
            )
        img_path = self._image_path(index)
        img = load_nifti(img_path, index)
        check_same_geometry(img, img_path, seg_img, seg_path, self.three_dim, index)
        return read_nifti_data(seg_img, seg_path, index, as_float32=False).reshape(seg_shape)

    def load_prediction(self, index: Any, output_path: str) -> np.ndarray:
        """Read ``output_path/<index>.nii.gz`` back (uint8/uint16 labels or float32 maps)."""
        path = safe_join(output_path, index, ".nii.gz")
        if not os.path.isfile(path):
            raise DataNotFoundError(f"Case {index!r}: prediction file {path!r} does not exist.")
        img = load_nifti(path, index)
        data = read_nifti_data(img, path, index, as_float32=False)
        if not self.three_dim and data.ndim >= 3 and data.shape[2] == 1:
            data = data.reshape(data.shape[:2] + data.shape[3:])
        return data

    def save_prediction(self, sample: Any, output_path: str) -> None:
        """Write ``sample.pred_data`` to ``output_path/<index>.nii.gz`` atomically.

        Label maps are stored squeezed (no trailing singleton) as uint8 (uint16 when
        ``classes > 255``); activation maps keep their class axis as float32. The geometry is
        the source image's header (affine, qform/sform and their codes) when the case still
        exists and has the prediction's shape, else ``sample.extended``. ``output_path`` is
        created when missing.
        """
        spatial = 3 if self.three_dim else 2
        data, is_label = prediction_array(sample.pred_data, spatial, self.classes, sample.index)
        if not self.three_dim and not is_label:
            data = data[:, :, np.newaxis, :]  # NIfTI keeps channels after the 3 spatial axes
        geometry = self._prediction_geometry(sample, data.shape[:spatial])
        write_nifti(safe_join(output_path, sample.index, ".nii.gz"), data, geometry)

    #: Instance maps are written as uint16 (uint32 above 65535 instances).
    max_instances = int(np.iinfo(np.uint32).max)

    def save_instances(self, sample: Any, instances: Any, output_path: str) -> None:
        """Write ``output_path/<index>.instances.nii.gz`` (uint16/uint32 ids, the prediction's
        geometry) and ``<index>.instances.tsv`` atomically."""
        from miseg.processing.instances import instance_label_dtype, write_instance_table

        data = np.asarray(instances.labels).astype(instance_label_dtype(instances.n))
        geometry = self._prediction_geometry(sample, data.shape[: 3 if self.three_dim else 2])
        write_nifti(safe_join(output_path, sample.index, ".instances.nii.gz"), data, geometry)
        if instances.table is not None:
            write_instance_table(instances.table, output_path, sample.index)

    def _prediction_geometry(self, sample: Any, spatial_shape: tuple[int, ...]) -> dict[str, Any]:
        geometry = self._source_geometry(sample.index, spatial_shape)
        if geometry is None:
            geometry = {
                k: sample.extended[k]
                for k in ("affine", "qform_code", "sform_code")
                if sample.extended.get(k) is not None
            }
        return geometry

    def _source_geometry(self, index: Any, spatial_shape: tuple[int, ...]) -> dict[str, Any] | None:
        if self.input_path is None:
            return None
        case_dir = os.path.join(self.input_path, safe_filename(index))
        path = find_case_file(case_dir, "imaging", NIFTI_EXTENSIONS) if os.path.isdir(case_dir) else None
        if path is None:
            return None
        img = load_nifti(path, index)
        if interface_shape(img.shape, self.three_dim, index, path)[: len(spatial_shape)] != tuple(spatial_shape):
            return None
        return header_geometry(img)

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        """True for ``".nii.gz"`` and ``".nii"``."""
        return termination.lower() in NIFTI_EXTENSIONS


def check_same_geometry(
    img: nib.Nifti1Image, img_path: str, seg: nib.Nifti1Image, seg_path: str, three_dim: bool, case: Any
) -> None:
    """Check from the headers that a segmentation lies on its image's voxel grid.

    Raises:
        ShapeMismatchError: when the spatial shapes differ.
        GeometryError: when the affines differ by more than ``AFFINE_TOLERANCE_MM``.
    """
    spatial = 3 if three_dim else 2
    img_shape = interface_shape(img.shape, three_dim, case, img_path)[:spatial]
    seg_shape = interface_shape(seg.shape, three_dim, case, seg_path)[:spatial]
    if img_shape != seg_shape:
        raise ShapeMismatchError(
            f"Case {case!r}: segmentation {seg_path!r} has spatial shape {seg_shape}, but image "
            f"{img_path!r} has {img_shape}."
        )
    if not np.allclose(img.affine, seg.affine, rtol=0.0, atol=AFFINE_TOLERANCE_MM):
        raise GeometryError(
            f"Case {case!r}: segmentation {seg_path!r} and image {img_path!r} have different "
            f"affines (tolerance {AFFINE_TOLERANCE_MM} mm):\nimage:\n{np.round(img.affine, 4)}\n"
            f"segmentation:\n{np.round(seg.affine, 4)}\nResample the segmentation onto the image grid."
        )
