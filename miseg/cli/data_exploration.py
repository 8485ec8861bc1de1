"""MIScnn's data-exploration functions (``miscnn.cli.data_exploration``), answered by ``miseg explore``.

The functions keep MIScnn's names, arguments and results: :func:`setup_execution` opens a
data folder and returns a context dict, each ``execute_*`` analysis prints its findings and
adds columns to a pandas DataFrame keyed by the ``name`` column (one row per case), and
:func:`execute` runs the analyses selected on the command line. The per-case facts come
from one :func:`miseg.cli.explore.explore_dataset` run, made on first use and kept in the
context under ``"exploration"``; only the binning analyses read the voxels again.

Differences from MIScnn (its defects are not reproduced):

* Class values are ints (column ``minimum_c1``, not ``minimum_c1.0``), for every format.
* ``bin0`` counts the voxels *below* the shared range, so the bins of a case add up to its
  voxel count; MIScnn's ``bin0`` repeated the voxels above the shared minimum.
* Memory sizes are found for every file format, not only ``imaging.nii.gz``.
* ``Unknown`` format detection is :func:`miseg.cli.config.detect_interface` (by the files'
  endings and DICOM preambles, not by the first ``.`` of the name); an undecidable folder is
  a ``DataError``, not a ``RuntimeError``.

Example:
    >>> from types import SimpleNamespace
    >>> ctx = setup_execution(SimpleNamespace(data_dir="data/kits", imagetype="NIFTI"))  # doctest: +SKIP
    >>> classes = execute_class_analysis(ctx)                                          # doctest: +SKIP
    >>> df, minmax = execute_minmax_analysis(ctx, None)                                # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any, Sequence

import numpy as np

from miseg.cli.explore import _CASE_ERRORS, DatasetExploration, _miscnn_type, explore_dataset, open_dataset
from miseg.errors import ConfigurationError, DataError

__all__ = [
    "register_commands",
    "setup_execution",
    "execute_counts",
    "execute_class_analysis",
    "execute_memory_analysis",
    "execute_structure_analysis",
    "execute_minmax_analysis",
    "execute_minmax_seg_analysis",
    "execute_ratio_analysis",
    "execute_binning",
    "execute_binning_seg",
    "execute",
]

_TYPES = ("NIFTI", "DICOM", "IMG", "Unknown")
_SWITCHES = (
    ("-cn", "--counts", "print the number of samples, images and segmentations"),
    ("-cl", "--classes", "print the class values found in the segmentations"),
    ("-mem", "--memory", "file sizes of images and segmentations (bytes)"),
    ("-s", "--structure", "shape (with channels) and voxel spacing of each sample"),
    ("-m", "--minmax", "intensity minimum and maximum of each sample"),
    ("-mS", "--minmax_seg", "intensity minimum and maximum inside each class"),
    ("-r", "--ratio", "fraction of voxels of each class"),
)


# ---------------------------------------------------------------------------------- parser
def register_commands(parser: Any) -> argparse.ArgumentParser:
    """Add MIScnn's ``data_exp`` options.

    Args:
        parser: A sub-parsers object (``ArgumentParser.add_subparsers()``), which gets a
            ``data_exp`` command, or an ``ArgumentParser`` that takes the options itself.

    Returns:
        The parser holding the options (its defaults include ``which="data_exp"``).
    """
    if hasattr(parser, "add_parser"):
        parser = parser.add_parser("data_exp", help="explore a data set (MIScnn's data exploration)")
    parser.add_argument("-t", "--type", dest="imagetype", choices=_TYPES, default="Unknown",
                        help="interface type (Unknown: detect it from the files)")
    for short, long, text in _SWITCHES:
        parser.add_argument(short, long, action="store_true", default=False, help=text)
    parser.add_argument("-e", "--export", metavar="CSVPATH", default=None,
                        help="write the table as CSV instead of printing it")
    parser.add_argument("-b", "--binning", metavar="N", type=int, default=None,
                        help="count voxels in N intensity bins of the shared range")
    parser.add_argument("-bS", "--binning_seg", metavar="N", type=int, default=None,
                        help="the same per class")
    parser.set_defaults(which="data_exp")
    return parser


# ---------------------------------------------------------------------------------- context
def setup_execution(args: Any) -> dict[str, Any]:
    """Open ``args.data_dir`` with the interface of ``args.imagetype``; print the sample count.

    Args:
        args: Needs ``data_dir`` (default ``"data"``) and ``imagetype`` (``NIFTI``,
            ``DICOM``, ``IMG`` or ``Unknown``; default ``Unknown``).

    Returns:
        The context ``{"dataio", "indices", "cnt", "images", "segmentations", "data_dir"}``:
        the Data_IO, all indices, their number, the indices with an image and those with a
        segmentation.

    Raises:
        DataNotFoundError / DataError / ConfigurationError: missing folder, no cases, or a
            format that cannot be detected.
    """
    data_dir = str(getattr(args, "data_dir", None) or "data")
    imagetype = getattr(args, "imagetype", None) or "Unknown"
    if imagetype not in _TYPES:
        raise ConfigurationError(f"imagetype={imagetype!r} is unknown; choose one of {', '.join(_TYPES)}.")
    _, data_io = open_dataset(data_dir, _miscnn_type(imagetype))
    indices = data_io.get_indiceslist()
    segmentations = []
    for index in indices:
        try:
            if data_io.has_segmentation(index):
                segmentations.append(index)
        except _CASE_ERRORS:
            continue  # an unreadable case folder: reported by the analyses
    print(f"{len(indices)} samples found in {data_dir!r} ({type(data_io.interface).__name__})")
    return {
        "dataio": data_io,
        "indices": indices,
        "cnt": len(indices),
        "images": list(indices),  # the interfaces list the cases that have an image
        "segmentations": segmentations,
        "data_dir": data_dir,
    }


def _exploration(ctx: dict[str, Any]) -> DatasetExploration:
    """The exploration of the context's data set, computed once."""
    if "exploration" not in ctx:
        data_io = ctx["dataio"]
        ctx["exploration"] = explore_dataset(ctx["data_dir"], interface=data_io.interface,
                                             label_mapping=data_io.label_mapping)
    return ctx["exploration"]


def _merge(df: Any, rows: dict[str, dict[str, Any]]) -> Any:
    """``df`` right-merged on ``name`` with one row per case of ``rows`` (replacing columns)."""
    import pandas as pd

    new = pd.DataFrame([{"name": name, **values} for name, values in rows.items()])
    if df is None or "name" not in getattr(df, "columns", ()):
        return new
    kept = [c for c in df.columns if c == "name" or c not in new.columns]
    return df[kept].merge(new, on="name", how="right")


def _ranges(minima: Sequence[float], maxima: Sequence[float]) -> dict[str, float]:
    """Global range (union) and shared range (intersection) of per-case ranges."""
    if not minima:
        return {"glob_min": np.nan, "glob_max": np.nan, "shr_min": np.nan, "shr_max": np.nan}
    return {
        "glob_min": float(min(minima)), "glob_max": float(max(maxima)),
        "shr_min": float(max(minima)), "shr_max": float(min(maxima)),
    }


# ---------------------------------------------------------------------------------- analyses
def execute_counts(ctx: dict[str, Any]) -> None:
    """Print the number of samples, of images and of segmentations."""
    print(f"Number of samples: {ctx['cnt']}")
    print(f"Samples with an image: {len(ctx['images'])}")
    print(f"Samples with a segmentation: {len(ctx['segmentations'])}")


def execute_class_analysis(ctx: dict[str, Any]) -> list[int]:
    """Print and return the label values found in the segmentations (warns when fewer than 2)."""
    report = _exploration(ctx)
    classes = report.label_values
    print(f"Classes found in the segmentations: {classes}")
    unread = [c.case for c in report.cases if c.has_segmentation and not c.labels_read]
    if unread:
        print(f"Segmentations that could not be read: {unread}")
    if len(classes) < 2:
        warnings.warn(
            f"Only {len(classes)} class value(s) {classes} found in the segmentations of "
            f"{ctx['data_dir']!r}; segmentation needs a background and at least one class.",
            stacklevel=2,
        )
    return classes


def _folder_sizes(ctx: dict[str, Any], index: Any) -> tuple[float, float]:
    """Bytes of the image and segmentation files of a case (NaN without a case folder)."""
    case_dir = os.path.join(ctx["data_dir"], str(index))
    if not os.path.isdir(case_dir):
        return np.nan, np.nan
    top = {e.name.lower(): e.stat().st_size for e in os.scandir(case_dir) if e.is_file()}
    image = sum(n for name, n in top.items() if name.startswith("imaging."))
    seg = sum(n for name, n in top.items() if name.startswith("segmentation."))
    if image:
        return float(image), float(seg) if index in ctx["segmentations"] else np.nan
    # DICOM: a case folder of series files; the annotation (RTSTRUCT/SEG) is the segmentation
    total = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(case_dir) for f in files)
    seg_size: float = np.nan
    annotation = getattr(ctx["dataio"].interface, "get_rtStruct_file", None)
    if annotation is not None and index in ctx["segmentations"]:
        try:
            seg_size = float(os.path.getsize(annotation(index)))
        except _CASE_ERRORS:
            seg_size = np.nan
    return float(total - (0 if np.isnan(seg_size) else seg_size)), seg_size


def execute_memory_analysis(ctx: dict[str, Any], df: Any) -> Any:
    """Add ``image_size`` and ``segmentation_size`` (file sizes in bytes, NaN when absent)."""
    rows = {}
    for index in ctx["indices"]:
        image, seg = _folder_sizes(ctx, index)
        rows[str(index)] = {"image_size": image, "segmentation_size": seg}
    return _merge(df, rows)


def execute_structure_analysis(ctx: dict[str, Any], df: Any) -> Any:
    """Add ``shape`` (spatial shape plus channels, e.g. ``(16, 16, 16, 1)``) and ``voxel_spacing``."""
    rows = {}
    for case in _exploration(ctx).cases:
        shape = (*case.shape, case.channels) if case.shape is not None else None
        rows[case.case] = {"shape": shape, "voxel_spacing": case.spacing}
    return _merge(df, rows)


def _minmax_data(report: DatasetExploration) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    rows = {c.case: {"minimum": c.intensity.get("min", np.nan), "maximum": c.intensity.get("max", np.nan)}
            for c in report.cases}
    loaded = [c.intensity for c in report.cases if c.intensity]
    return rows, _ranges([s["min"] for s in loaded], [s["max"] for s in loaded])


def execute_minmax_analysis(ctx: dict[str, Any], df: Any) -> tuple[Any, dict[str, float]]:
    """Add ``minimum`` and ``maximum`` intensity per sample; print the global and shared ranges.

    Returns:
        ``(df, {"glob_min", "glob_max", "shr_min", "shr_max"})``: the shared range is the
        intersection of the per-sample ranges.
    """
    rows, data = _minmax_data(_exploration(ctx))
    print(f"Intensity range of all samples: [{data['glob_min']:g}, {data['glob_max']:g}]; "
          f"shared by all samples: [{data['shr_min']:g}, {data['shr_max']:g}]")
    return _merge(df, rows), data


def _class_minmax(report: DatasetExploration, classes: Sequence[int]) -> tuple[dict, dict[int, dict[str, float]]]:
    rows: dict[str, dict[str, Any]] = {c.case: {} for c in report.cases}
    data = {}
    for cls in classes:
        present = [c for c in report.cases if cls in c.class_intensity]
        for case in report.cases:
            stats = case.class_intensity.get(cls, {})
            rows[case.case][f"minimum_c{cls}"] = stats.get("min", np.nan)
            rows[case.case][f"maximum_c{cls}"] = stats.get("max", np.nan)
        data[cls] = _ranges([c.class_intensity[cls]["min"] for c in present],
                            [c.class_intensity[cls]["max"] for c in present])
    return rows, data


def execute_minmax_seg_analysis(ctx: dict[str, Any], df: Any,
                                class_data: Sequence[int] | None = None) -> tuple[Any, dict[int, dict[str, float]]]:
    """Add ``minimum_c<k>`` and ``maximum_c<k>``: the intensity range inside each class.

    Args:
        class_data: Class values (from :func:`execute_class_analysis`; None: found ones).

    Returns:
        ``(df, {k: {"glob_min", "glob_max", "shr_min", "shr_max"}})`` over the samples that
        contain class ``k``.
    """
    report = _exploration(ctx)
    classes = [int(k) for k in (class_data if class_data is not None else report.label_values)]
    rows, data = _class_minmax(report, classes)
    for cls, ranges in data.items():
        print(f"Class {cls}: intensity range [{ranges['glob_min']:g}, {ranges['glob_max']:g}]; "
              f"shared [{ranges['shr_min']:g}, {ranges['shr_max']:g}]")
    return _merge(df, rows), data


def execute_ratio_analysis(ctx: dict[str, Any], df: Any) -> Any:
    """Add ``class_frequency``: per sample, the fraction of voxels of each found class (6 decimals)."""
    report = _exploration(ctx)
    classes = report.label_values
    print(f"class_frequency columns are the fractions of the classes {classes}")
    rows = {}
    for case in report.cases:
        total = sum(case.class_voxels.values())
        freq = tuple(round(case.class_voxels.get(k, 0) / total, 6) for k in classes) if total else None
        rows[case.case] = {"class_frequency": freq}
    return _merge(df, rows)


def _thresholds(ranges: dict[str, float], binning: int, what: str) -> np.ndarray:
    """``[shr_min, shr_min + k (shr_max - shr_min) / binning for k = 1..binning, glob_max + 1]``."""
    if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or binning < 1:
        raise ConfigurationError(f"binning must be an integer >= 1, got {binning!r}.")
    low, high = ranges["shr_min"], ranges["shr_max"]
    if np.isnan(low) or np.isnan(high):
        raise DataError(f"{what}: no intensities to bin (no sample could be read).")
    if high < low:
        warnings.warn(f"{what}: the per-sample intensity ranges do not overlap (shared range [{low:g}, {high:g}] "
                      f"is empty); binning the global range instead.", stacklevel=3)
        low, high = ranges["glob_min"], ranges["glob_max"]
    return np.array([low + k * (high - low) / binning for k in range(binning + 1)] + [ranges["glob_max"] + 1])


def _bin_counts(values: np.ndarray, thresholds: np.ndarray) -> list[int]:
    """Voxels below ``thresholds[0]``, then in each ``[t_i, t_i+1)``."""
    index = np.digitize(values.ravel(), thresholds)
    return np.bincount(index, minlength=len(thresholds) + 1)[: len(thresholds)].tolist()


def execute_binning(ctx: dict[str, Any], df: Any, binning: int, minmax_data: dict[str, float] | None = None) -> Any:
    """Add ``bin0 .. bin<binning+1>``: voxel counts per intensity bin of the shared range.

    ``bin0`` counts the voxels below the shared minimum, ``bin<i+1>`` those in
    ``[t_i, t_i+1)`` of the thresholds ``shr_min + i (shr_max - shr_min) / binning``
    (``i = 0..binning``, the last bin ending at ``glob_max + 1``).

    Args:
        minmax_data: The ranges of :func:`execute_minmax_analysis` (None: computed).
    """
    if minmax_data is None:
        minmax_data = _minmax_data(_exploration(ctx))[1]
    thresholds = _thresholds(minmax_data, binning, "binning")
    data_io = ctx["dataio"]
    rows = {}
    for index in ctx["indices"]:
        try:
            image = data_io.sample_loader(index, load_seg=False).img_data
        except _CASE_ERRORS:
            rows[str(index)] = {f"bin{i}": np.nan for i in range(len(thresholds))}
            continue
        rows[str(index)] = {f"bin{i}": n for i, n in enumerate(_bin_counts(image, thresholds))}
    return _merge(df, rows)


def execute_binning_seg(ctx: dict[str, Any], df: Any, binning_seg: int, class_data: Sequence[int] | None = None,
                        minmax_data: dict[int, dict[str, float]] | None = None) -> Any:
    """Add ``class<k>_bin<i>``: :func:`execute_binning` inside each class ``k``.

    Args:
        class_data: Class values (None: the found ones).
        minmax_data: Per-class ranges of :func:`execute_minmax_seg_analysis` (None: computed).
    """
    report = _exploration(ctx)
    classes = [int(k) for k in (class_data if class_data is not None else report.label_values)]
    if minmax_data is None:
        minmax_data = _class_minmax(report, classes)[1]
    thresholds = {k: _thresholds(minmax_data[k], binning_seg, f"binning of class {k}") for k in classes
                  if not np.isnan(minmax_data.get(k, {}).get("shr_min", np.nan))}  # absent classes stay NaN
    data_io = ctx["dataio"]
    rows = {}
    for index in ctx["indices"]:
        row: dict[str, Any] = {f"class{k}_bin{i}": np.nan for k in classes for i in range(binning_seg + 2)}
        if index in ctx["segmentations"]:
            try:
                sample = data_io.sample_loader(index, load_seg=False)
                seg = data_io.load_segmentation(index, sample.spatial_shape)
            except _CASE_ERRORS:
                seg = None
            if seg is not None:
                for k in thresholds:
                    counts = _bin_counts(sample.img_data[seg == k], thresholds[k])
                    row.update({f"class{k}_bin{i}": n for i, n in enumerate(counts)})
        rows[str(index)] = row
    return _merge(df, rows)


# ---------------------------------------------------------------------------------- command
def execute(args: Any) -> Any:
    """Run the analyses selected in ``args`` (as parsed by :func:`register_commands`).

    Order: counts, classes, memory, structure, minmax, minmax_seg, ratio, binning,
    binning_seg. The table (one row per sample, column ``name`` first) is written to
    ``args.export`` as CSV (atomically) or printed in full.

    Returns:
        The table (a pandas DataFrame).
    """
    import pandas as pd

    from miseg.utils.fileio import atomic_path

    ctx = setup_execution(args)
    df = pd.DataFrame({"name": [str(i) for i in ctx["indices"]]})
    if getattr(args, "counts", False):
        execute_counts(ctx)
    class_data = execute_class_analysis(ctx) if getattr(args, "classes", False) else None
    if getattr(args, "memory", False):
        df = execute_memory_analysis(ctx, df)
    if getattr(args, "structure", False):
        df = execute_structure_analysis(ctx, df)
    minmax_data = seg_minmax = None
    if getattr(args, "minmax", False):
        df, minmax_data = execute_minmax_analysis(ctx, df)
    if getattr(args, "minmax_seg", False):
        df, seg_minmax = execute_minmax_seg_analysis(ctx, df, class_data)
    if getattr(args, "ratio", False):
        df = execute_ratio_analysis(ctx, df)
    if getattr(args, "binning", None):
        df = execute_binning(ctx, df, args.binning, minmax_data)
    if getattr(args, "binning_seg", None):
        df = execute_binning_seg(ctx, df, args.binning_seg, class_data, seg_minmax)
    export = getattr(args, "export", None)
    if export:
        with atomic_path(os.fspath(export), suffix=".csv") as tmp:
            df.to_csv(tmp, index=False)
        print(f"Table written to {export}")
    else:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", None):
            print(df.to_string(index=False))
    return df
