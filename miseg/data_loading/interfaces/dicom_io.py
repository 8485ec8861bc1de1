"""DICOM interface: CT/MR series with RTSTRUCT or DICOM SEG labels in; SEG, RTSTRUCT or NIfTI out."""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from miseg.data_loading.dicom.labels import assign_classes, validate_structure_dict
from miseg.data_loading.dicom.series import (
    CaseScan,
    DicomFile,
    DicomSeries,
    build_series,
    load_series_pixels,
    scan_case_folder,
)
from miseg.data_loading.interfaces._cases import list_case_folders
from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.data_loading.interfaces.nifti_io import write_nifti
from miseg.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    GeometryError,
    LabelError,
    MissingSegmentationError,
    ShapeMismatchError,
)
from miseg.utils.fileio import atomic_path, safe_filename, safe_join

__all__ = ["DICOM_interface"]

_OUTPUT_FORMATS = ("seg", "rtstruct", "nifti")
_SUFFIXES = {"seg": ".seg.dcm", "rtstruct": ".rtstruct.dcm", "nifti": ".nii.gz"}
# Scanned headers are kept for the few most recent cases only (a pipeline loads the image,
# then the labels, then saves the prediction of one case before moving on); keeping every
# case's headers would grow to gigabytes on large data sets.
_CACHED_CASES = 4


class DICOM_interface(Abstract_IO):
    """Reads DICOM image series with RTSTRUCT or DICOM SEG labels, writes predictions as SEG.

    **Layout:** one folder per case, ``input_path/<case>/...`` at any depth, holding one image
    series (CT, MR, ...) and optionally one label object (RTSTRUCT or SEG). Files are told
    apart by their ``Modality``, never by their names; non-DICOM files are skipped with a
    warning. A case folder's headers are read once and kept for the few most recently used
    cases; call :meth:`initialize` again after changing files on disk.

    **Arrays** are ``(x, y, z) = (column, row, slice)``, the NIfTI interface's order (MIScnn
    returned ``(z, y, x)``). Slices are sorted along the slice normal; the spacing comes from
    ``PixelSpacing`` and the real distance between slice positions. CT values are in HU
    (rescale applied, ``extended["hu"] = True``). ``extended`` holds ``"spacing"``,
    ``"origin"`` (LPS mm), ``"direction"`` (3x3, columns = axis directions, LPS),
    ``"affine"`` (4x4 voxel -> RAS, usable as a NIfTI affine), ``"series_uid"``,
    ``"frame_of_reference_uid"``, ``"sop_instance_uids"`` (slice order), ``"modality"``,
    ``"hu"``, ``"slope"``, ``"intercept"``; all JSON-friendly.

    **Labels:**

    * RTSTRUCT: closed planar contours are rasterised per slice (every point mapped LPS ->
      voxel; contour matched to the nearest slice; even-odd filling, so inner contours cut
      holes). Contours on slices outside the series are skipped and contours leaving the
      image are clipped, both with a warning. An RTSTRUCT in another frame of reference
      raises ``GeometryError``.
    * SEG: frames are placed by referenced SOP instance, else by plane position; frames that
      fit no slice raise ``GeometryError``.
    * ``structure_dict`` maps ROI / segment names to classes, painted in dict order (later
      entries overwrite earlier ones where structures overlap); names matching no entry are
      listed in a warning. Without it, ROI number / segment number = class label.

    **Predictions** (``save_prediction``) go to ``output_path/<index>.seg.dcm`` (BINARY DICOM
    SEG, one segment per foreground class, referencing the source slices), or
    ``<index>.rtstruct.dcm`` (``output_format="rtstruct"``, one ROI per class, ROINumber =
    class), or ``<index>.nii.gz`` (``output_format="nifti"``, affine from ``extended``).
    Files are written atomically. ``load_prediction`` reads whichever of them exists.

    Args:
        channels: Image channels (1, or 3 for RGB series).
        classes: Segmentation classes, background included.
        three_dim: ``True`` for volumes; ``False`` reads single-slice cases as 2D images.
        mask_background: Value of unlabelled voxels in label maps (non-negative int).
        structure_dict: ROI / segment name -> class label (``None``: numbers are labels).
        annotation_tag: Optional regular expression searched in the label file's path
            (relative to the case folder), to pick one of several label objects.
        pattern: Regular expression that case folder names must fully match.
        series_uid: ``SeriesInstanceUID`` to read when a case holds several image series,
            or a mapping ``case -> SeriesInstanceUID``.
        output_format: ``"seg"`` (default), ``"rtstruct"`` or ``"nifti"``.
        case_insensitive: Whether ``structure_dict`` names match regardless of case and
            extra whitespace.

    Example:
        >>> interface = DICOM_interface(classes=3, structure_dict={"Liver": 1, "Tumor": 2})
        >>> cases = interface.initialize("data/dicom")                # doctest: +SKIP
        >>> image, extended = interface.load_image(cases[0])         # doctest: +SKIP
        >>> labels = interface.load_segmentation(cases[0])            # doctest: +SKIP
        >>> image.shape == labels.shape, extended["hu"]               # doctest: +SKIP
        (True, True)
    """

    def __init__(
        self,
        channels: int = 1,
        classes: int = 2,
        three_dim: bool = True,
        mask_background: int = 0,
        structure_dict: Mapping[str, int] | None = None,
        annotation_tag: str | None = None,
        pattern: str | None = None,
        series_uid: str | Mapping[Any, str] | None = None,
        output_format: str = "seg",
        case_insensitive: bool = True,
    ) -> None:
        for name, value, low in (("channels", channels, 1), ("classes", classes, 2)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigurationError(f"{name} must be an integer >= {low}, got {value!r}.")
        if not isinstance(three_dim, (bool, np.bool_)):
            raise ConfigurationError(f"three_dim must be a bool, got {three_dim!r}.")
        if (isinstance(mask_background, bool) or not isinstance(mask_background, (int, np.integer))
                or mask_background < 0):
            raise ConfigurationError(
                f"mask_background must be a non-negative int (the value of unlabelled voxels), "
                f"got {mask_background!r}."
            )
        if not isinstance(case_insensitive, (bool, np.bool_)):
            raise ConfigurationError(f"case_insensitive must be a bool, got {case_insensitive!r}.")
        for name, value in (("annotation_tag", annotation_tag), ("pattern", pattern)):
            if value is not None:
                if not isinstance(value, str):
                    raise ConfigurationError(f"{name} must be a regular expression string or None, got {value!r}.")
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ConfigurationError(f"{name}={value!r} is not a valid regular expression: {exc}.") from exc
        if series_uid is not None and not isinstance(series_uid, (str, Mapping)):
            raise ConfigurationError(
                f"series_uid must be a SeriesInstanceUID string, a mapping case -> UID, or None, "
                f"got {series_uid!r}."
            )
        fmt = output_format.lower() if isinstance(output_format, str) else output_format
        if fmt not in _OUTPUT_FORMATS:
            raise ConfigurationError(f"output_format must be one of {_OUTPUT_FORMATS}, got {output_format!r}.")
        super().__init__(channels=int(channels), classes=int(classes), three_dim=bool(three_dim))
        self.mask_background = int(mask_background)
        self.case_insensitive = bool(case_insensitive)
        self.structure_dict = validate_structure_dict(structure_dict, self.classes, self.case_insensitive)
        self.annotation_tag = annotation_tag
        self.pattern = pattern
        self.series_uid = dict(series_uid) if isinstance(series_uid, Mapping) else series_uid
        self.output_format = fmt
        self.input_path: str | None = None
        self._scans: OrderedDict[Any, CaseScan] = OrderedDict()
        self._series: OrderedDict[Any, DicomSeries] = OrderedDict()

    # ------------------------------------------------------------------ case discovery
    def initialize(self, input_path: str) -> list[str]:
        """List the case folders of ``input_path`` (naturally sorted, filtered by ``pattern``).

        Raises:
            DataNotFoundError: when ``input_path`` is missing or holds no case folder.
        """
        path = os.fspath(input_path)
        regex = None if self.pattern is None else re.compile(self.pattern)
        try:
            cases = list_case_folders(path, regex, type(self).__name__)
        except DataNotFoundError as exc:
            entries = os.listdir(path) if os.path.isdir(path) else []
            loose = [e for e in entries if os.path.isfile(os.path.join(path, e))]
            if not loose:
                raise
            raise DataNotFoundError(
                f"{exc} It holds {len(loose)} file(s) directly: put each case (image series and "
                f"label object) in its own sub-folder."
            ) from exc
        self.input_path = path
        self._scans.clear()
        self._series.clear()
        return cases

    def _case_folder(self, index: Any) -> str:
        name = safe_filename(index)
        if self.input_path is None:
            raise ConfigurationError(
                f"{type(self).__name__}: input_path is None; call initialize(input_path) first."
            )
        folder = os.path.join(self.input_path, name)
        if not os.path.isdir(folder):
            raise DataNotFoundError(f"Case {index!r}: folder {folder!r} does not exist.")
        return folder

    def _scan(self, index: Any) -> CaseScan:
        if index in self._scans:
            self._scans.move_to_end(index)
            return self._scans[index]
        scan = scan_case_folder(self._case_folder(index), case=index)
        _remember(self._scans, index, scan)
        return scan

    def _wanted_series_uid(self, index: Any) -> str | None:
        if isinstance(self.series_uid, dict):
            return self.series_uid.get(index)
        return self.series_uid

    def _get_series(self, index: Any) -> DicomSeries:
        if index in self._series:
            self._series.move_to_end(index)
            return self._series[index]
        scan = self._scan(index)
        if not scan.images:
            raise DataNotFoundError(
                f"Case {index!r}: folder {scan.folder!r} holds no DICOM image series (only label "
                f"or other objects)."
            )
        wanted = self._wanted_series_uid(index)
        if wanted is not None:
            if wanted not in scan.images:
                raise DataNotFoundError(
                    f"Case {index!r}: series_uid {wanted!r} is not in folder {scan.folder!r}; "
                    f"series found: {scan.describe_series()}."
                )
            uid = wanted
        elif len(scan.images) > 1:
            raise DataError(
                f"Case {index!r}: folder {scan.folder!r} holds {len(scan.images)} image series: "
                f"{scan.describe_series()}. Pass series_uid= (a UID or a mapping case -> UID) to "
                f"choose one."
            )
        else:
            uid = next(iter(scan.images))
        series = build_series(scan.images[uid], series_uid=uid, case=index)
        _remember(self._series, index, series)
        return series

    def _label_file(self, index: Any) -> tuple[str, DicomFile]:
        scan = self._scan(index)
        candidates = [("rtstruct", f) for f in scan.rtstructs] + [("seg", f) for f in scan.segs]
        if self.annotation_tag is not None:
            candidates = [
                (kind, f) for kind, f in candidates
                if re.search(self.annotation_tag, os.path.relpath(f.path, scan.folder))
            ]
        if not candidates:
            tag = f" matching annotation_tag {self.annotation_tag!r}" if self.annotation_tag else ""
            raise MissingSegmentationError(
                f"Case {index!r}: no RTSTRUCT or DICOM SEG{tag} in folder {scan.folder!r}."
            )
        if len(candidates) > 1:
            series_uid = self._get_series(index).series_uid
            referencing = [(kind, f) for kind, f in candidates if series_uid in _referenced_series(kind, f)]
            if len(referencing) == 1:
                return referencing[0]
            raise DataError(
                f"Case {index!r}: {len(candidates)} label objects in folder {scan.folder!r}: "
                f"{[f.path for _, f in candidates]}. Pass annotation_tag= (a regular expression "
                f"searched in the file path) to choose one."
            )
        return candidates[0]

    # ------------------------------------------------------------------ loading
    def load_image(self, index: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Read the case's image series as an ``(x, y, z)`` float32 array (``(x, y)`` in 2D).

        Returns:
            ``(image, extended)``; see the class docstring for the ``extended`` keys.

        Raises:
            DataNotFoundError: missing folder, no DICOM files or no image series.
            DataError: several series without ``series_uid``; channel mismatch.
            GeometryError: mixed series, missing slices, uneven spacing.
        """
        series = self._get_series(index)
        volume, info = load_series_pixels(series, case=index)
        samples = info["samples_per_pixel"]
        if samples != self.channels:
            raise DataError(
                f"Case {index!r}: series {series.series_uid} has {samples} sample(s) per pixel but "
                f"the interface declares channels={self.channels}."
            )
        volume = self._to_dimensionality(volume, index, series)
        geometry = series.geometry
        extended = {
            "type": "dicom",
            "spacing": [float(s) for s in geometry.spacing],
            "origin": [float(v) for v in geometry.origin],
            "direction": geometry.direction.tolist(),
            "affine": geometry.affine_ras.tolist(),
            "series_uid": series.series_uid,
            "frame_of_reference_uid": geometry.frame_of_reference_uid,
            "sop_instance_uids": series.sop_instance_uids,
            "modality": series.modality,
            "hu": series.modality.upper() == "CT",
            "slope": info["slope"],
            "intercept": info["intercept"],
        }
        if not self.three_dim:
            extended["spacing"] = extended["spacing"][:2]
        return volume, extended

    def _to_dimensionality(self, array: np.ndarray, index: Any, series: DicomSeries) -> np.ndarray:
        if self.three_dim:
            return array
        if array.shape[2] != 1:
            raise DataError(
                f"Case {index!r}: series {series.series_uid} has {array.shape[2]} slices, but "
                f"three_dim=False reads single-slice cases only; use three_dim=True."
            )
        return array[:, :, 0]

    def _label_dtype(self) -> type:
        return np.min_scalar_type(max(self.classes - 1, self.mask_background, 1)).type

    def load_segmentation(self, index: Any) -> np.ndarray:
        """Rasterise the case's RTSTRUCT, or place its SEG frames, as an ``(x, y, z)`` label map.

        Raises:
            MissingSegmentationError: when the case has no label object.
            GeometryError: label object in another frame of reference, or SEG frames that fit
                no slice of the series.
        """
        kind, entry = self._label_file(index)
        series = self._get_series(index)
        if kind == "rtstruct":
            label_map = self._rasterise_rtstruct(index, entry, series)
        else:
            label_map = self._place_seg(index, entry.path, series, by_name=True)
        return self._to_dimensionality(label_map, index, series)

    def _rasterise_rtstruct(self, index: Any, entry: DicomFile, series: DicomSeries,
                            by_name: bool = True) -> np.ndarray:
        from miseg.data_loading.dicom.rtstruct import (
            rasterise_roi,
            read_rtstruct,
            rtstruct_frame_of_reference_uids,
        )

        ds, rois = read_rtstruct(entry.path)
        source = f"Case {index!r}: RTSTRUCT {entry.path!r}"
        series_frame = series.geometry.frame_of_reference_uid
        declared = rtstruct_frame_of_reference_uids(ds)
        if series_frame and declared and series_frame not in declared:
            raise GeometryError(
                f"{source} refers to FrameOfReferenceUID {sorted(declared)} but the image series "
                f"{series.series_uid} has FrameOfReferenceUID {series_frame}: the structures belong "
                f"to another patient position/scan."
            )
        assignments = assign_classes(
            [(roi.number, roi.name) for roi in rois],
            self.structure_dict if by_name else None,
            self.classes, self.case_insensitive, "ROI", source,
        )
        by_number = {roi.number: roi for roi in rois}
        label_map = np.full(series.geometry.shape, self.mask_background, dtype=self._label_dtype())
        for number, _, cls in assignments:
            roi = by_number[number]
            if series_frame and roi.frame_of_reference_uid and roi.frame_of_reference_uid != series_frame:
                raise GeometryError(
                    f"{source}: ROI {roi.name!r} has ReferencedFrameOfReferenceUID "
                    f"{roi.frame_of_reference_uid} but the image series has {series_frame}."
                )
            label_map[rasterise_roi(roi, series.geometry, source)] = cls
        return label_map

    def _place_seg(self, index: Any, path: str, series: DicomSeries, by_name: bool) -> np.ndarray:
        from miseg.data_loading.dicom.seg import place_seg_frames, read_seg

        seg = read_seg(path)
        assignments = assign_classes(
            seg.segments, self.structure_dict if by_name else None, self.classes,
            self.case_insensitive, "segment", f"Case {index!r}: DICOM SEG {path!r}",
        )
        return place_seg_frames(
            seg, series.geometry, series.sop_instance_uids, assignments,
            background=self.mask_background, dtype=self._label_dtype(), case=index,
        )

    def has_segmentation(self, index: Any) -> bool:
        """Whether the case folder holds a label object (no pixel data is read)."""
        try:
            self._label_file(index)
        except MissingSegmentationError:
            return False
        return True

    # ------------------------------------------------------------------ predictions
    def _prediction_path(self, index: Any, output_path: str, fmt: str) -> str:
        return safe_join(output_path, index, _SUFFIXES[fmt])

    def _class_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for name, cls in (self.structure_dict or {}).items():
            names.setdefault(cls, name)
        return {c: names.get(c, f"class_{c}") for c in range(1, self.classes)}

    def save_prediction(self, sample: Any, output_path: str) -> None:
        """Write ``sample.pred_data`` as ``output_path/<index>.seg.dcm`` (or RTSTRUCT / NIfTI).

        The label map must be on the grid of the case's series (postprocessing undoes any
        resampling first). Activation outputs (class probabilities) can only be written with
        ``output_format="nifti"``.

        Raises:
            DataError: no prediction, or probabilities with a DICOM output format.
            LabelError: label values outside ``[0, classes)``.
            ShapeMismatchError: prediction and series grids differ.
        """
        index = sample.index
        pred = getattr(sample, "pred_data", None)
        if pred is None:
            raise DataError(f"Case {index!r}: the sample has no prediction to save.")
        pred = np.asarray(pred)
        spatial = 3 if self.three_dim else 2
        probabilities = False
        if pred.ndim == spatial + 1:
            if pred.shape[-1] == 1:
                pred = pred[..., 0]
            else:
                probabilities = True
        elif pred.ndim != spatial:
            raise ShapeMismatchError(
                f"Case {index!r}: prediction of shape {pred.shape} is not a "
                f"{'3D' if self.three_dim else '2D'} label map."
            )
        if probabilities and self.output_format != "nifti":
            raise DataError(
                f"Case {index!r}: an activation output (class probabilities, shape "
                f"{pred.shape}) cannot be written as {self.output_format!r}; use "
                f"output_format='nifti' or save the argmax label map."
            )
        os.makedirs(output_path, exist_ok=True)
        path = self._prediction_path(index, output_path, self.output_format)
        series = self._get_series(index)
        if not self.three_dim:
            pred = pred[:, :, np.newaxis, ...]
        if tuple(pred.shape[:3]) != tuple(series.geometry.shape):
            raise ShapeMismatchError(
                f"Case {index!r}: prediction of spatial shape {tuple(pred.shape[:3])} does not match "
                f"the image series grid {series.geometry.shape} (x, y, z)."
            )
        if probabilities:
            self._write_nifti(pred.astype(np.float32), sample, series, path)
            return
        if not np.array_equal(pred, np.round(pred)) or pred.min() < 0 or pred.max() >= self.classes:
            raise LabelError(
                f"Case {index!r}: prediction values {pred.min()}..{pred.max()} are not class labels "
                f"in [0, {self.classes - 1}]."
            )
        labels = pred.astype(np.int64)
        if self.output_format == "nifti":
            self._write_nifti(labels.astype(np.uint8 if self.classes <= 256 else np.uint16),
                              sample, series, path)
        elif self.output_format == "seg":
            from miseg.data_loading.dicom.seg import build_seg

            try:
                ds = build_seg(labels, series.headers, self._class_names())
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise DataError(
                    f"Case {index!r}: cannot build a DICOM SEG on series {series.series_uid} "
                    f"(highdicom: {exc}); use output_format='rtstruct' or 'nifti'."
                ) from exc
            with atomic_path(path, suffix=".dcm") as tmp:
                ds.save_as(tmp)
        else:
            from miseg.data_loading.dicom.rtstruct import build_rtstruct

            ds = build_rtstruct(labels, series.headers, series.geometry, self._class_names())
            with atomic_path(path, suffix=".dcm") as tmp:
                ds.save_as(tmp, enforce_file_format=True)

    @property
    def max_instances(self) -> int:
        """Most instances per case: 65535 segments / ROIs in DICOM, 2^32 - 1 in NIfTI."""
        return int(np.iinfo(np.uint32 if self.output_format == "nifti" else np.uint16).max)

    def save_instances(self, sample: Any, instances: Any, output_path: str) -> None:
        """Write an instance map as ``<index>.instances.seg.dcm`` (or ``.rtstruct.dcm`` / ``.nii.gz``).

        DICOM SEG and RTSTRUCT get one segment / ROI per instance (segment number = instance
        id), labelled ``"<class name> #<id>"`` so the class of each instance is kept; a case
        without instances gets no SEG / RTSTRUCT file. The per-instance table goes to
        ``<index>.instances.tsv``.

        Raises:
            LabelError: more than 65535 instances for SEG / RTSTRUCT (nothing is written).
            ShapeMismatchError: the map is not on the series grid.
        """
        from miseg.processing.instances import (
            check_instance_capacity,
            instance_label_dtype,
            write_instance_table,
        )

        check_instance_capacity(self, instances, sample.index)
        index = sample.index
        labels = np.asarray(instances.labels)
        series = self._get_series(index)
        grid = labels if self.three_dim else labels[:, :, np.newaxis]
        if tuple(grid.shape) != tuple(series.geometry.shape):
            raise ShapeMismatchError(
                f"Case {index!r}: instance map of shape {labels.shape} does not match the image "
                f"series grid {series.geometry.shape} (x, y, z)."
            )
        os.makedirs(output_path, exist_ok=True)
        suffix = ".instances" + _SUFFIXES[self.output_format]
        path = safe_join(output_path, index, suffix)
        class_names = self._class_names()
        names = {i + 1: f"{class_names.get(int(c), f'class_{int(c)}')} #{i + 1}"
                 for i, c in enumerate(instances.classes)}
        if self.output_format == "nifti":
            self._write_nifti(grid.astype(instance_label_dtype(instances.n)), sample, series, path)
        elif not names:
            pass  # a SEG / RTSTRUCT needs at least one segment: only the (empty) table is written
        elif self.output_format == "seg":
            from miseg.data_loading.dicom.seg import build_seg

            ds = build_seg(grid.astype(np.int64), series.headers, names,
                           series_description="miseg instances")
            with atomic_path(path, suffix=".dcm") as tmp:
                ds.save_as(tmp)
        else:
            from miseg.data_loading.dicom.rtstruct import build_rtstruct

            ds = build_rtstruct(grid.astype(np.int64), series.headers, series.geometry, names)
            with atomic_path(path, suffix=".dcm") as tmp:
                ds.save_as(tmp, enforce_file_format=True)
        if instances.table is not None:
            write_instance_table(instances.table, output_path, index)

    def _write_nifti(self, array: np.ndarray, sample: Any, series: DicomSeries, path: str) -> None:
        extended = getattr(sample, "extended", None) or {}
        affine = extended.get("affine")
        affine = np.asarray(affine if affine is not None else series.geometry.affine_ras, dtype=np.float64)
        if affine.shape != (4, 4):
            raise GeometryError(f"Case {sample.index!r}: extended['affine'] has shape {affine.shape}, not 4x4.")
        if not self.three_dim:
            array = array[:, :, 0, ...]
        write_nifti(path, array, {"affine": affine})

    def load_prediction(self, index: Any, output_path: str) -> np.ndarray:
        """Read a prediction written by :meth:`save_prediction`, whatever its format.

        The configured ``output_format`` is tried first, then the other two. SEG and RTSTRUCT
        predictions are placed on the case's series (segment / ROI number = class).

        Raises:
            DataNotFoundError: when no prediction file exists for the case.
        """
        formats = [self.output_format] + [f for f in _OUTPUT_FORMATS if f != self.output_format]
        paths = [(fmt, self._prediction_path(index, output_path, fmt)) for fmt in formats]
        for fmt, path in paths:
            if not os.path.isfile(path):
                continue
            if fmt == "nifti":
                import nibabel as nib

                data = np.asarray(nib.load(path).dataobj)
                return data
            series = self._get_series(index)
            if fmt == "seg":
                label_map = self._place_seg(index, path, series, by_name=False)
            else:
                label_map = self._rasterise_rtstruct(index, DicomFile(path, None), series, by_name=False)
            return self._to_dimensionality(label_map, index, series)
        raise DataNotFoundError(
            f"Case {index!r}: no prediction in {output_path!r} (looked for "
            f"{[os.path.basename(p) for _, p in paths]})."
        )

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        """True for ``".dcm"`` (any case)."""
        return isinstance(termination, str) and termination.lower() == ".dcm"

    # ------------------------------------------------------------------ MIScnn helpers
    def get_rtStruct_file(self, index: Any) -> str:
        """Path of the case's label object (RTSTRUCT or SEG)."""
        return self._label_file(index)[1].path

    def get_ROI_data(self, rtstruct_path: str) -> list[dict[str, Any]]:
        """ROIs of an RTSTRUCT as MIScnn's dicts (matched by ROI number, not position).

        Returns:
            ``[{"ROI_ID", "ROI_Name", "ROI_Sequence": [{"type", "points": {"x", "y", "z"}}]}]``.
        """
        from miseg.data_loading.dicom.rtstruct import read_rtstruct

        _, rois = read_rtstruct(rtstruct_path)
        return [
            {
                "ROI_ID": roi.number,
                "ROI_Name": roi.name,
                "ROI_Sequence": [
                    {
                        "type": c.geometric_type or "No_type",
                        "points": {axis: c.points[:, n].tolist() for n, axis in enumerate("xyz")},
                    }
                    for c in roi.contours
                ],
            }
            for roi in rois
        ]

    def get_ROI_names(self, index: Any) -> list[list[Any]]:
        """``[[ROI number, ROI name], ...]`` of the case's RTSTRUCT (segments of a SEG)."""
        kind, entry = self._label_file(index)
        if kind == "seg":
            from miseg.data_loading.dicom.seg import read_seg

            return [[n, name] for n, name in read_seg(entry.path).segments]
        return [[roi["ROI_ID"], roi["ROI_Name"]] for roi in self.get_ROI_data(entry.path)]

    def load_image_sitk(self, index: Any) -> tuple[Any, dict[str, Any]]:
        """The image as a SimpleITK image (spacing, origin, direction set) and ``extended``."""
        import SimpleITK as sitk

        volume, extended = self.load_image(index)
        array = volume if volume.ndim == 3 else volume[:, :, np.newaxis]
        image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
        series = self._get_series(index)
        image.SetSpacing(series.geometry.spacing)
        image.SetOrigin([float(v) for v in series.geometry.origin])
        image.SetDirection(series.geometry.direction.ravel().tolist())
        return image, extended


def _remember(cache: OrderedDict, key: Any, value: Any) -> None:
    cache[key] = value
    while len(cache) > _CACHED_CASES:
        cache.popitem(last=False)


def _referenced_series(kind: str, entry: DicomFile) -> set[str]:
    header = entry.header
    if kind == "rtstruct":
        from miseg.data_loading.dicom.rtstruct import rtstruct_series_uids

        return rtstruct_series_uids(header)
    return {
        str(item.SeriesInstanceUID)
        for item in header.get("ReferencedSeriesSequence", [])
        if item.get("SeriesInstanceUID")
    }
