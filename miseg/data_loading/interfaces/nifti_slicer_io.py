"""NIfTI slicer interface: serves the 2D slices of NIfTI volumes as separate cases."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from miseg.data_loading.interfaces._cases import (
    check_cases_have_file,
    compile_pattern,
    find_case_file,
    list_case_folders,
    prediction_array,
)
from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.data_loading.interfaces.nifti_io import (
    NIFTI_EXTENSIONS,
    check_same_geometry,
    header_geometry,
    interface_shape,
    load_nifti,
    read_nifti_data,
    write_nifti,
)
from miseg.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    MissingSegmentationError,
    ShapeMismatchError,
)
from miseg.utils.fileio import atomic_path, safe_filename, safe_join

__all__ = ["NIFTIslicer_interface"]

#: Separator between case name and slice number in slicer indices (MIScnn's format).
SLICE_SEPARATOR = ":#:"


class NIFTIslicer_interface(Abstract_IO):
    """Reads NIfTI volumes (NIfTI folder layout) as 2D slices ``"<case>:#:<slice>"``.

    Indices are computed from the file headers only. The most recently used volume (one image
    and one segmentation volume per interface instance) is kept in memory, so reading the
    slices of a case in order loads each file once.

    Slice predictions are written as ``output_path/<index>.npy``;
    :meth:`save_volume_prediction` stacks all slice predictions of a case back into a volume
    ``output_path/<case>.nii.gz`` with the source image's geometry.

    The extended dict of a slice holds ``"type": "nifti_slice"``, ``"affine"`` (the 4x4 affine
    of the source volume), ``"spacing"`` (the two in-plane spacings), ``"case"``, ``"slice"``
    and ``"slice_axis"``.

    Args:
        slice_axis: Volume axis (0, 1 or 2, nibabel order) along which slices are taken.
        channels: Number of image channels (a 4-D file's last axis).
        classes: Number of segmentation classes, background included.
        pattern: Regex; only case folders whose name ``re.fullmatch``-es it are used.

    Example:
        >>> interface = NIFTIslicer_interface(slice_axis=2, classes=3)
        >>> indices = interface.initialize("data/kits19")   # doctest: +SKIP
        >>> indices[:2]                                      # doctest: +SKIP
        ['case_00000:#:0', 'case_00000:#:1']
    """

    def __init__(
        self, slice_axis: int = 0, channels: int = 1, classes: int = 2, pattern: str | None = None
    ) -> None:
        super().__init__(channels=channels, classes=classes, three_dim=False)
        if isinstance(slice_axis, bool) or not isinstance(slice_axis, (int, np.integer)) or not 0 <= slice_axis <= 2:
            raise ConfigurationError(
                f"NIFTIslicer_interface: slice_axis must be 0, 1 or 2, got {slice_axis!r}."
            )
        self.slice_axis = int(slice_axis)
        self.pattern = pattern
        self._regex = compile_pattern(pattern, type(self).__name__)
        self.input_path: str | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, np.ndarray, dict[str, Any]]] = {}

    # the lock and cached volumes are per process: drop them when pickled
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock")
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ paths and indices
    def _case_dir(self, case: str) -> str:
        if self.input_path is None:
            raise ConfigurationError(
                "NIFTIslicer_interface: input_path is None; call initialize(input_path) first."
            )
        case_dir = os.path.join(self.input_path, safe_filename(case))
        if not os.path.isdir(case_dir):
            raise DataNotFoundError(f"Case {case!r}: case folder {case_dir!r} does not exist.")
        return case_dir

    def _file(self, case: str, stem: str) -> str | None:
        return find_case_file(self._case_dir(case), stem, NIFTI_EXTENSIONS)

    @staticmethod
    def split_index(index: str) -> tuple[str, int]:
        """Split ``"<case>:#:<slice>"`` into ``(case, slice)``."""
        case, sep, number = str(index).rpartition(SLICE_SEPARATOR)
        if not sep or not number.isdigit():
            raise DataNotFoundError(
                f"Index {index!r} is not a slicer index of the form '<case>{SLICE_SEPARATOR}<slice>'."
            )
        return case, int(number)

    def _n_slices(self, shape: tuple[int, ...], case: str, path: str) -> int:
        if len(shape) < 3:
            raise DataError(
                f"Case {case!r}: {path!r} has shape {shape}; NIFTIslicer_interface slices 3D "
                f"volumes and expects at least 3 axes. Use NIFTI_interface(three_dim=False) for 2D files."
            )
        return int(interface_shape(shape, True, case, path)[self.slice_axis])

    # ------------------------------------------------------------------ volume cache
    def _volume(self, kind: str, case: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Return ``(data, info)`` of the image or segmentation volume, cached per kind."""
        stem = "imaging" if kind == "image" else "segmentation"
        path = self._file(case, stem)
        if path is None:
            if kind == "image":
                raise DataNotFoundError(
                    f"Case {case!r}: no imaging.nii.gz or imaging.nii in {self._case_dir(case)!r}."
                )
            raise MissingSegmentationError(
                f"Case {case!r}: no segmentation.nii.gz or segmentation.nii in "
                f"{self._case_dir(case)!r} (prediction-only case)."
            )
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(kind)
            if cached is not None and cached[0] == key:
                return cached[1], cached[2]
            img = load_nifti(path, case)
            self._n_slices(img.shape, case, path)  # dimensionality check
            target = interface_shape(img.shape, True, case, path)
            if kind == "segmentation":
                if len(target) > 3:
                    raise DataError(
                        f"Case {case!r}: segmentation {path!r} of shape {img.shape} has a "
                        f"non-spatial axis; expected one label map."
                    )
                img_path = self._file(case, "imaging")
                check_same_geometry(load_nifti(img_path, case), img_path, img, path, True, case)
            data = read_nifti_data(img, path, case, as_float32=(kind == "image")).reshape(target)
            info = header_geometry(img)
            info["zooms"] = tuple(float(z) for z in img.header.get_zooms()[:3])
            self._cache[kind] = (key, data, info)
            return data, info

    def _slice(self, kind: str, index: str) -> tuple[np.ndarray, dict[str, Any], str, int]:
        case, number = self.split_index(index)
        data, info = self._volume(kind, case)
        n = data.shape[self.slice_axis]
        if not 0 <= number < n:
            raise DataNotFoundError(
                f"Index {index!r}: slice {number} is out of range; case {case!r} has {n} slices "
                f"along axis {self.slice_axis}."
            )
        return np.take(data, number, axis=self.slice_axis), info, case, number

    # ------------------------------------------------------------------ Abstract_IO
    def initialize(self, input_path: str) -> list[str]:
        """Return one index ``"<case>:#:<slice>"`` per slice, from the file headers only.

        Raises:
            DataNotFoundError: missing directory, no case folder, case folders without image.
            DataError: a file that is not a volume.
        """
        owner = type(self).__name__
        cases = list_case_folders(input_path, self._regex, owner)
        check_cases_have_file(input_path, cases, "imaging", NIFTI_EXTENSIONS, owner)
        self.input_path = input_path
        indices = []
        for case in cases:
            path = self._file(case, "imaging")
            n = self._n_slices(load_nifti(path, case).shape, case, path)
            indices.extend(f"{case}{SLICE_SEPARATOR}{i}" for i in range(n))
        return indices

    def load_image(self, index: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Return ``(slice float32, extended)``; the slice has shape ``(a, b)`` or ``(a, b, c)``."""
        image, info, case, number = self._slice("image", index)
        in_plane = [z for axis, z in enumerate(info["zooms"]) if axis != self.slice_axis]
        extended = {
            "type": "nifti_slice",
            "affine": info["affine"].copy(),
            "spacing": tuple(in_plane),
            "case": case,
            "slice": number,
            "slice_axis": self.slice_axis,
        }
        return image, extended

    def has_segmentation(self, index: str) -> bool:
        """Whether the slice's case folder holds a segmentation file (no data is read)."""
        case, _ = self.split_index(index)
        return self._file(case, "segmentation") is not None

    def load_segmentation(self, index: str) -> np.ndarray:
        """Return the label map slice (stored dtype).

        Raises:
            MissingSegmentationError: when the case has no segmentation file.
        """
        return self._slice("segmentation", index)[0]

    def save_prediction(self, sample: Any, output_path: str, *args: str, index: str | None = None) -> None:
        """Write the slice prediction to ``output_path/<index>.npy`` atomically.

        Called as ``save_prediction(sample, output_path)`` (the :class:`Abstract_IO` form that
        ``Data_IO`` uses). MIScnn's slicer form ``save_prediction(pred, index, output_path)``
        (the prediction array, its index and the folder; ``index`` may be a keyword) works too.
        Label maps are stored squeezed as uint8 (uint16 when ``classes > 255``); activation
        maps keep their class axis as float32.

        Args:
            sample: The predicted Sample, or (MIScnn's form) the prediction array.
            output_path: The prediction folder, or (MIScnn's form, positional) the index.
            *args: MIScnn's form: the prediction folder.
            index: MIScnn's form by keyword: the index (``output_path`` is then the folder).

        Raises:
            TypeError: when the arguments fit neither form.

        Example:
            >>> interface.save_prediction(labels_2d, "case_00000:#:3", "predictions")  # doctest: +SKIP
        """
        if len(args) > 1 or (args and index is not None):
            raise TypeError(
                "NIFTIslicer_interface.save_prediction takes (sample, output_path) or MIScnn's "
                "(pred, index, output_path)."
            )
        if args:
            pred, index, output_path = sample, output_path, args[0]
        elif index is not None:
            pred = sample
        else:
            pred, index = sample.pred_data, sample.index
        data, _ = prediction_array(pred, 2, self.classes, index)
        with atomic_path(safe_join(output_path, index, ".npy"), suffix=".npy") as tmp:
            np.save(tmp, data, allow_pickle=False)

    #: Instance maps are ``.npy`` files (uint16, uint32 above 65535 instances).
    max_instances = int(np.iinfo(np.uint32).max)

    def save_instances(self, sample: Any, instances: Any, output_path: str) -> None:
        """Write ``output_path/<index>.instances.npy`` and ``<index>.instances.tsv`` atomically."""
        from miseg.processing.instances import instance_label_dtype, write_instance_table

        data = np.asarray(instances.labels).astype(instance_label_dtype(instances.n))
        with atomic_path(safe_join(output_path, sample.index, ".instances.npy"), suffix=".npy") as tmp:
            np.save(tmp, data, allow_pickle=False)
        if instances.table is not None:
            write_instance_table(instances.table, output_path, sample.index)

    def load_prediction(self, index: str, output_path: str) -> np.ndarray:
        """Read ``output_path/<index>.npy`` (no pickles)."""
        path = safe_join(output_path, index, ".npy")
        if not os.path.isfile(path):
            raise DataNotFoundError(f"Index {index!r}: prediction file {path!r} does not exist.")
        return np.load(path, allow_pickle=False)

    def assemble_volume(self, case: str, output_path: str) -> np.ndarray:
        """Stack the slice predictions of ``case`` along ``slice_axis`` into a volume.

        Raises:
            DataNotFoundError: naming the missing slices when not all were predicted.
            ShapeMismatchError: when slice predictions have different shapes.
        """
        path = self._file(case, "imaging")
        if path is None:
            raise DataNotFoundError(f"Case {case!r}: no imaging file in {self._case_dir(case)!r}.")
        n = self._n_slices(load_nifti(path, case).shape, case, path)
        files = [safe_join(output_path, f"{case}{SLICE_SEPARATOR}{i}", ".npy") for i in range(n)]
        missing = [i for i, f in enumerate(files) if not os.path.isfile(f)]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise DataNotFoundError(
                f"Case {case!r}: {len(missing)} of {n} slice predictions are missing in "
                f"{output_path!r} (slices {shown})."
            )
        slices = [np.load(f, allow_pickle=False) for f in files]
        shapes = {s.shape for s in slices}
        if len(shapes) > 1:
            raise ShapeMismatchError(
                f"Case {case!r}: slice predictions in {output_path!r} have different shapes {sorted(shapes)}."
            )
        return np.stack(slices, axis=self.slice_axis)

    def save_volume_prediction(self, case: str, output_path: str) -> str:
        """Assemble the slice predictions of ``case`` and write ``output_path/<case>.nii.gz``.

        The volume gets the source image's affine and qform/sform codes; activation maps keep
        their class axis as the 4th NIfTI axis.

        Returns:
            The path of the written file.

        Example:
            >>> for index in indices:                                       # doctest: +SKIP
            ...     data_io.save_prediction(predicted_sample(index))
            >>> interface.save_volume_prediction("case_00000", "predictions")  # doctest: +SKIP
            'predictions/case_00000.nii.gz'
        """
        volume = self.assemble_volume(case, output_path)
        path = self._file(case, "imaging")
        geometry = header_geometry(load_nifti(path, case))
        target = safe_join(output_path, case, ".nii.gz")
        write_nifti(target, volume, geometry)
        return target

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        """True for ``".nii.gz"`` and ``".nii"``."""
        return termination.lower() in NIFTI_EXTENSIONS
