"""Data-set exploration behind ``miseg explore`` (and MIScnn's ``data_exp`` / ``verify``).

Every case is loaded through the interface and ``Data_IO`` (so the same checks as in
training apply) and summarised: shape, channels, spacing, orientation, intensity statistics
overall and inside each label, and class frequencies. A case that fails to load is listed
with the error instead of stopping the exploration. Intensity percentiles use a
deterministic subsample of at most ``sample_voxels`` voxels per case and class.

Example:
    >>> report = explore_dataset("data/kits", classes=3)          # doctest: +SKIP
    >>> print(report.summary())                                   # doctest: +SKIP
    >>> report.table().to_csv("kits.csv", index=False)            # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from miseg.cli.config import PERMISSIVE_CLASSES as _LABEL_LIMIT  # labels accepted without --classes
from miseg.errors import LabelError, MisegError, ShapeMismatchError

__all__ = ["CaseSummary", "DatasetExploration", "explore_dataset", "open_dataset"]

# Errors a broken case may raise while loading; anything else is a bug and propagates.
_CASE_ERRORS = (MisegError, OSError, ValueError, EOFError)


@dataclass
class CaseSummary:
    """What exploration found about one case (``None`` where loading failed first)."""

    case: str
    shape: tuple[int, ...] | None = None
    channels: int | None = None
    spacing: tuple[float, ...] | None = None
    orientation: str | None = None
    dtype: str | None = None
    intensity: dict[str, float] = field(default_factory=dict)
    has_segmentation: bool = False  # the interface found a segmentation file
    labels: tuple[int, ...] = ()  # label values, when the segmentation could be read
    class_voxels: dict[int, int] = field(default_factory=dict)
    class_intensity: dict[int, dict[str, float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        """Whether the image could be loaded."""
        return self.shape is not None

    @property
    def labels_read(self) -> bool:
        """Whether the segmentation could be loaded (and passed the label checks)."""
        return bool(self.class_voxels)


@dataclass
class DatasetExploration:
    """The result of :func:`explore_dataset`.

    Attributes:
        data_path: The explored folder.
        interface: Interface class name.
        three_dim: Dimensionality of the interface.
        classes: Declared class count, or ``None`` when inferred from the labels.
        cases: One :class:`CaseSummary` per case, in index order.
        dataset_problems: Problems that concern the whole data set (orientation mix, absent
            classes, non-contiguous labels).
        intensity_sample: Subsampled intensities of all cases (for percentiles and plots).
        class_samples: Subsampled intensities inside each label value.
    """

    data_path: str
    interface: str
    three_dim: bool
    classes: int | None
    cases: list[CaseSummary]
    dataset_problems: list[str] = field(default_factory=list)
    intensity_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    class_samples: dict[int, np.ndarray] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived facts
    @property
    def label_values(self) -> list[int]:
        """Sorted label values found in all segmentations."""
        return sorted({v for c in self.cases for v in c.labels})

    @property
    def class_columns(self) -> list[int]:
        """Classes reported per case: ``0..classes-1`` when declared, else the found labels."""
        found = self.label_values
        if self.classes is not None:
            return sorted(set(range(self.classes)) | set(found))
        return found

    def problems(self) -> list[tuple[str, str]]:
        """All problems as ``(case or "(data set)", message)``."""
        out = [(c.case, p) for c in self.cases for p in c.problems]
        return out + [("(data set)", p) for p in self.dataset_problems]

    def class_frequencies(self) -> dict[int, float]:
        """Fraction of labelled voxels per class over all segmentations."""
        totals: dict[int, int] = {}
        for case in self.cases:
            for label, n in case.class_voxels.items():
                totals[label] = totals.get(label, 0) + n
        total = sum(totals.values())
        return {k: (v / total if total else 0.0) for k, v in sorted(totals.items())}

    # ------------------------------------------------------------------ tables
    def table(self) -> Any:
        """One row per case (the CSV content), as a pandas DataFrame.

        Columns: ``case``, ``loaded``, ``has_segmentation``, ``shape``, ``channels``,
        ``spacing``, ``orientation``, ``dtype``, ``min``, ``max``, ``mean``, ``std``,
        ``labels``, then ``frac_c<k>``, ``mean_c<k>``, ``std_c<k>`` per class and ``problems``.
        """
        import pandas as pd

        rows = []
        for c in self.cases:
            row: dict[str, Any] = {
                "case": c.case,
                "loaded": c.loaded,
                "has_segmentation": c.has_segmentation,
                "shape": _join(c.shape),
                "channels": c.channels,
                "spacing": _join(c.spacing),
                "orientation": c.orientation,
                "dtype": c.dtype,
            }
            for key in ("min", "max", "mean", "std"):
                row[key] = c.intensity.get(key, np.nan)
            row["labels"] = " ".join(str(v) for v in c.labels)
            total = sum(c.class_voxels.values())
            for k in self.class_columns:
                row[f"frac_c{k}"] = c.class_voxels.get(k, 0) / total if total else np.nan
                stats = c.class_intensity.get(k, {})
                row[f"mean_c{k}"] = stats.get("mean", np.nan)
                row[f"std_c{k}"] = stats.get("std", np.nan)
            row["problems"] = " | ".join(c.problems)
            rows.append(row)
        table = pd.DataFrame(rows)
        if "channels" in table:
            table["channels"] = table["channels"].astype("Int64")  # stays integer next to failed cases
        return table

    def display_table(self) -> str:
        """The per-case table as aligned text (the part of ``miseg explore``'s report)."""
        import pandas as pd

        rows = []
        fg_classes = [k for k in self.class_columns if k != 0]
        for c in self.cases:
            total = sum(c.class_voxels.values())
            fg = sum(n for k, n in c.class_voxels.items() if k != 0)
            rows.append({
                "case": c.case,
                "shape": _join(c.shape) or "-",
                "ch": c.channels if c.channels is not None else "-",
                "spacing": _join(c.spacing, ".3g") or "-",
                "orient": c.orientation or "-",
                "min": _num(c.intensity.get("min")),
                "max": _num(c.intensity.get("max")),
                "mean": _num(c.intensity.get("mean")),
                "labels": (" ".join(map(str, c.labels)) if c.labels_read
                           else ("unread" if c.has_segmentation else "none")),
                "fg %": f"{100 * fg / total:.2f}" if total and fg_classes else "-",
                "problems": str(len(c.problems)) if c.problems else "",
            })
        return pd.DataFrame(rows).to_string(index=False)

    # ------------------------------------------------------------------ report
    def summary(self) -> str:
        """The text report of ``miseg explore``: overview, per-case table and problems."""
        loaded = [c for c in self.cases if c.loaded]
        with_seg = [c for c in self.cases if c.has_segmentation]
        read = [c for c in with_seg if c.labels_read]
        kind = "3D" if self.three_dim else "2D"
        lines = [
            f"Data set: {self.data_path} ({self.interface}, {kind})",
            f"Cases: {len(self.cases)}: {len(loaded)} image(s) loaded, {len(with_seg)} with a segmentation "
            f"({len(read)} readable), {len(self.cases) - len(with_seg)} without; "
            f"{len({c.case for c in self.cases if c.problems})} with problems",
        ]
        if loaded:
            shapes = np.array([c.shape for c in loaded if c.shape is not None], dtype=float)
            if shapes.ndim == 2 and len({len(c.shape or ()) for c in loaded}) == 1:
                lines.append(
                    f"Shape:       min {_join(shapes.min(0).astype(int))}  median "
                    f"{_join(np.median(shapes, 0), '.4g')}  max {_join(shapes.max(0).astype(int))}"
                )
            spacings = [c.spacing for c in loaded if c.spacing is not None]
            if spacings and len({len(s) for s in spacings}) == 1:
                arr = np.array(spacings, dtype=float)
                lines.append(
                    f"Spacing:     min {_join(arr.min(0), '.4g')}  median {_join(np.median(arr, 0), '.4g')}"
                    f"  max {_join(arr.max(0), '.4g')}"
                )
            else:
                lines.append("Spacing:     unknown (the interface gives none)")
            orients: dict[str, int] = {}
            for c in loaded:
                orients[c.orientation or "unknown"] = orients.get(c.orientation or "unknown", 0) + 1
            lines.append("Orientation: " + ", ".join(f"{k} ({v})" for k, v in sorted(orients.items())))
            channels = sorted({c.channels for c in loaded if c.channels is not None})
            lines.append(f"Channels:    {', '.join(map(str, channels))}")
            lines.append("Intensity:   " + _stats_text(self._overall_stats(loaded), self.intensity_sample))
            for label, values in sorted(self.class_samples.items()):
                stats = {"mean": float(values.mean()), "std": float(values.std())} if values.size else {}
                lines.append(f"  in class {label}: " + _stats_text(stats, values))
        frequencies = self.class_frequencies()
        if frequencies:
            lines.append(
                "Class frequencies: " + "  ".join(f"{k}: {100 * v:.3g}%" for k, v in frequencies.items())
            )
        inferred = max(self.label_values) + 1 if self.label_values else None
        classes = self.classes if self.classes is not None else inferred
        source = "declared" if self.classes is not None else "inferred from the labels"
        if classes is not None:
            lines.append(f"Classes: {classes} ({source})")
        lines += ["", self.display_table(), ""]
        problems = self.problems()
        if problems:
            lines.append(f"Problems ({len(problems)}):")
            lines += [f"  {case}: {message}" for case, message in problems]
        else:
            lines.append("Problems: none found")
        return "\n".join(lines)

    def _overall_stats(self, loaded: Sequence[CaseSummary]) -> dict[str, float]:
        stats = [c.intensity for c in loaded if c.intensity]
        if not stats:
            return {}
        weights = np.array([s["n"] for s in stats], dtype=float)
        means = np.array([s["mean"] for s in stats])
        mean = float(np.average(means, weights=weights))
        second = np.array([s["std"] ** 2 + s["mean"] ** 2 for s in stats])
        return {
            "min": float(min(s["min"] for s in stats)),
            "max": float(max(s["max"] for s in stats)),
            "mean": mean,
            "std": float(np.sqrt(max(0.0, np.average(second, weights=weights) - mean**2))),
        }

    # ------------------------------------------------------------------ outputs
    def write_csv(self, path: str | os.PathLike) -> str:
        """Write :meth:`table` as CSV (atomically). Returns the path."""
        from miseg.utils.fileio import atomic_path

        path = os.fspath(path)
        with atomic_path(path, suffix=".csv") as tmp:
            self.table().to_csv(tmp, index=False)
        return path

    def plot(self, out_dir: str | os.PathLike) -> list[str]:
        """Write ``intensity_histogram.png`` and ``class_frequencies.png`` into ``out_dir``.

        Returns:
            The written paths (the class chart only when segmentations were found).
        """
        from matplotlib.figure import Figure

        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        fig = Figure(figsize=(8, 4.5), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        values = self.intensity_sample
        if values.size:
            low, high = np.percentile(values, [0.1, 99.9])
            if not high > low:
                low, high = low - 0.5, high + 0.5
            edges = np.linspace(low, high, 101)
            ax.hist(np.clip(values, low, high), bins=edges, density=True, histtype="stepfilled",
                    alpha=0.35, color="grey", label="all voxels")
            for label, cls_values in sorted(self.class_samples.items()):
                if cls_values.size:
                    ax.hist(np.clip(cls_values, low, high), bins=edges, density=True, histtype="step",
                            linewidth=1.5, label=f"class {label}")
            ax.legend(loc="best", fontsize="small")
        ax.set_xlabel("Intensity")
        ax.set_ylabel("Density")
        ax.set_title(f"Intensity distribution ({sum(c.loaded for c in self.cases)} cases)")
        paths.append(_save(fig, os.path.join(out_dir, "intensity_histogram.png")))
        frequencies = self.class_frequencies()
        if frequencies:
            fig = Figure(figsize=(6.4, 4.2), dpi=100)
            ax = fig.add_subplot(1, 1, 1)
            labels = [str(k) for k in frequencies]
            percent = [100 * v for v in frequencies.values()]
            bars = ax.bar(labels, percent, color="#1f77b4")
            ax.bar_label(bars, labels=[f"{p:.3g}%" for p in percent], fontsize="small")
            if min(p for p in percent if p > 0) < 1:
                ax.set_yscale("log")
            ax.set_xlabel("Class")
            ax.set_ylabel("Voxels (%)")
            ax.set_title("Class frequencies (all segmentations)")
            paths.append(_save(fig, os.path.join(out_dir, "class_frequencies.png")))
        return paths


# ---------------------------------------------------------------------------------- helpers
def _join(values: Any, fmt: str = "g") -> str:
    if values is None:
        return ""
    return "x".join(format(float(v), fmt) if fmt != "g" or not float(v).is_integer() else str(int(v))
                    for v in values)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.4g}"


def _stats_text(stats: dict[str, float], sample: np.ndarray) -> str:
    parts = []
    for key in ("min", "max", "mean", "std"):
        if key in stats:
            parts.append(f"{key} {stats[key]:.4g}")
    if sample.size:
        p_low, p_med, p_high = np.percentile(sample, [0.5, 50, 99.5])
        parts.append(f"p0.5 {p_low:.4g}  median {p_med:.4g}  p99.5 {p_high:.4g}")
    return "  ".join(parts) if parts else "-"


def _save(fig: Any, path: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from miseg.utils.fileio import atomic_path

    FigureCanvasAgg(fig)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _subsample(values: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` values, taken at a fixed stride (deterministic, no RNG)."""
    values = values.ravel()
    if values.size <= limit:
        return values.astype(np.float64)
    stride = int(np.ceil(values.size / limit))
    return values[::stride].astype(np.float64)


def _orientation(extended: dict[str, Any]) -> str | None:
    affine = extended.get("affine")
    if affine is None:
        return None
    from nibabel.orientations import aff2axcodes

    try:
        codes = aff2axcodes(np.asarray(affine, dtype=np.float64))
    except (ValueError, np.linalg.LinAlgError):
        return None
    return "".join(c if c is not None else "?" for c in codes)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _explore_case(data_io: Any, index: Any, sample_voxels: int, samples: list[np.ndarray],
                  class_samples: dict[int, list[np.ndarray]], classes: int | None = None) -> CaseSummary:
    summary = CaseSummary(case=str(index))
    try:
        summary.has_segmentation = bool(data_io.has_segmentation(index))
    except _CASE_ERRORS as exc:
        summary.problems.append(_describe(exc))
    try:
        sample = data_io.sample_loader(index, load_seg=False)
    except _CASE_ERRORS as exc:
        summary.problems.append(_describe(exc))
        return summary
    image = sample.img_data
    summary.shape = tuple(int(s) for s in sample.spatial_shape)
    summary.channels = int(image.shape[-1])
    summary.spacing = sample.spacing
    summary.orientation = _orientation(sample.extended)
    summary.dtype = str(image.dtype)
    values = image.astype(np.float64, copy=False)
    summary.intensity = {
        "min": float(values.min()), "max": float(values.max()),
        "mean": float(values.mean()), "std": float(values.std()), "n": int(values.size),
    }
    samples.append(_subsample(values, sample_voxels))
    if not summary.has_segmentation:
        return summary
    seg = _load_checked_segmentation(data_io, index, sample.spatial_shape, classes, summary)
    if seg is None:
        return summary
    labels, counts = np.unique(seg, return_counts=True)
    summary.labels = tuple(int(v) for v in labels)
    summary.class_voxels = {int(v): int(n) for v, n in zip(labels, counts)}
    for label in summary.labels:
        inside = image[seg == label]  # (n_voxels, channels)
        summary.class_intensity[label] = {
            "mean": float(inside.mean()), "std": float(inside.std()),
            "min": float(inside.min()), "max": float(inside.max()),
        }
        class_samples.setdefault(label, []).append(_subsample(inside, sample_voxels))
    return summary


def _load_checked_segmentation(data_io: Any, index: Any, spatial_shape: Sequence[int], classes: int | None,
                               summary: CaseSummary) -> np.ndarray | None:
    """The label map of a case, or ``None`` (problem recorded) when it cannot be used.

    The shape and the declared class range are checked here, whatever ``Data_IO`` checks:
    a shape mismatch makes the map unusable; labels outside ``0..classes-1`` are a problem
    but still counted (so the table shows them).
    """
    try:
        seg = np.asarray(data_io.load_segmentation(index))
    except _CASE_ERRORS as exc:
        summary.problems.append("segmentation: " + _describe(exc))
        return None
    spatial_shape = tuple(int(s) for s in spatial_shape)
    if seg.ndim == len(spatial_shape) + 1 and seg.shape[-1] == 1:
        seg = seg[..., 0]
    if seg.shape != spatial_shape:
        summary.problems.append("segmentation: " + _describe(ShapeMismatchError(
            f"Case {str(index)!r}: segmentation shape {seg.shape} differs from image shape {spatial_shape}."
        )))
        return None
    values = np.unique(seg)
    outside = [int(v) for v in values if not _label_in_range(v, classes)][:10]
    if outside:
        declared = f"0..{classes - 1} (classes={classes})" if classes is not None else (
            f"0..{_LABEL_LIMIT - 1} (the label values exploration accepts without --classes)")
        summary.problems.append("segmentation: " + _describe(LabelError(
            f"Case {str(index)!r}: label values {outside} are outside {declared}; fix the "
            f"segmentation, or map the values to classes (--label-map VALUE=CLASS)."
        )))
    return seg


def _label_in_range(value: Any, classes: int | None) -> bool:
    """Whether a label value is a valid class (``0..classes-1``, or ``0..255`` when undeclared)."""
    return 0 <= value < (classes if classes is not None else _LABEL_LIMIT)


def _rare_label_problems(report: DatasetExploration) -> None:
    """Flag, on each case concerned, label values found in only a few segmented cases.

    A value other than background (0) that occurs in at most ``max(1, n // 10)`` of ``n >= 3``
    segmented cases is likely a stray value (e.g. a 7 in a 3-class data set). Values already
    reported as outside the declared classes are not repeated.
    """
    segmented = [c for c in report.cases if c.labels_read]
    n = len(segmented)
    if n < 3:
        return
    limit = max(1, n // 10)
    for value in report.label_values:
        if value == 0 or not _label_in_range(value, report.classes):
            continue  # background, or already reported as outside the classes
        holders = [c for c in segmented if value in c.labels]
        if len(holders) <= limit:
            for case in holders:
                case.problems.append(
                    f"segmentation: label value {value} occurs in only {len(holders)} of {n} segmented "
                    f"cases (a stray value?); check the file, or map it to a class (--label-map {value}=CLASS)"
                )


def _dataset_problems(report: DatasetExploration) -> list[str]:
    problems = []
    loaded = [c for c in report.cases if c.loaded]
    orients = sorted({c.orientation for c in loaded if c.orientation})
    if len(orients) > 1:
        counts = {o: sum(c.orientation == o for c in loaded) for o in orients}
        problems.append(
            "cases have different orientations (" + ", ".join(f"{o}: {n}" for o, n in counts.items())
            + "); reorient them to one (e.g. nibabel.as_closest_canonical) or check the headers"
        )
    channels = sorted({c.channels for c in loaded if c.channels is not None})
    if len(channels) > 1:
        problems.append(f"cases have different channel counts {channels}")
    dims = sorted({len(c.shape) for c in loaded if c.shape is not None})
    if len(dims) > 1:
        problems.append(f"cases have different numbers of axes {dims}")
    segmented = [c for c in report.cases if c.labels_read]
    found = set(report.label_values)
    if report.cases and not segmented:
        problems.append("no case has a (readable) segmentation: the data can be predicted, not trained on")
    elif report.classes is not None:
        absent = sorted(set(range(report.classes)) - found)
        if absent:
            problems.append(f"class(es) {absent} of classes={report.classes} never occur in any segmentation")
    elif found and sorted(found) != list(range(max(found) + 1)):
        problems.append(
            f"label values {sorted(found)} are not contiguous 0..{max(found)}; map them to classes "
            f"with a label mapping (data.label_mapping, e.g. {{0: 0, {max(found)}: 1}})"
        )
    return problems


def explore_dataset(
    data_path: str,
    interface: str | Any = "auto",
    classes: int | None = None,
    channels: int = 1,
    three_dim: bool | None = None,
    pattern: str | None = None,
    options: dict[str, Any] | None = None,
    label_mapping: dict[Any, int] | None = None,
    max_cases: int | None = None,
    sample_voxels: int = 10000,
    progress: bool = False,
) -> DatasetExploration:
    """Explore a data set: per-case geometry, intensities, labels and problems.

    Args:
        data_path: Data folder.
        interface: ``"auto"`` (from the file endings), ``"nifti"``, ``"image"``, ``"dicom"``,
            ``"nifti_slicer"``, or an interface instance.
        classes: Declared class count; labels outside ``0..classes-1`` are problems. ``None``
            accepts any label up to 255 and infers the count. Either way, label values found
            in only a few cases and segmentations whose shape differs from the image's are
            problems.
        channels: Image channels (NIfTI/DICOM).
        three_dim: Dimensionality (default: 3D for NIfTI and DICOM).
        pattern: Regex of case folder names.
        options: Further interface arguments (e.g. ``{"img_type": "rgb"}``).
        label_mapping: Label remapping applied when loading (as in ``Data_IO``).
        max_cases: Explore only the first cases.
        sample_voxels: Voxels per case and class kept for percentiles and histograms.
        progress: Show a progress bar.

    Returns:
        A :class:`DatasetExploration`.

    Raises:
        DataNotFoundError / DataError / ConfigurationError: when the folder cannot be read
            as a data set at all (missing, no cases, unknown format, bad arguments). Errors
            of single cases are collected, not raised.
    """
    from tqdm import tqdm

    iface, data_io = open_dataset(data_path, interface, channels=channels, three_dim=three_dim,
                                  pattern=pattern, options=options, label_mapping=label_mapping)
    indices = data_io.get_indiceslist()
    if max_cases is not None:
        indices = indices[: int(max_cases)]
    samples: list[np.ndarray] = []
    class_samples: dict[int, list[np.ndarray]] = {}
    cases = [
        _explore_case(data_io, index, sample_voxels, samples, class_samples, classes)
        for index in tqdm(indices, desc="Exploring", unit="case", disable=None if progress else True)
    ]
    report = DatasetExploration(
        data_path=str(data_path),
        interface=type(iface).__name__,
        three_dim=bool(getattr(iface, "three_dim", False)),
        classes=classes,
        cases=cases,
        intensity_sample=np.concatenate(samples) if samples else np.zeros(0, np.float64),
        class_samples={k: np.concatenate(v) for k, v in sorted(class_samples.items())},
    )
    _rare_label_problems(report)
    report.dataset_problems = _dataset_problems(report)
    return report


def open_dataset(
    data_path: str,
    interface: str | Any = "auto",
    channels: int = 1,
    three_dim: bool | None = None,
    pattern: str | None = None,
    options: dict[str, Any] | None = None,
    label_mapping: dict[Any, int] | None = None,
) -> tuple[Any, Any]:
    """The interface and ``Data_IO`` that exploration reads a data folder with.

    Named interfaces get a permissive class count (any label up to 255 loads), so label
    values can be reported rather than rejected; the declared classes are checked by the
    caller. Arguments as in :func:`explore_dataset`.

    Returns:
        ``(interface, data_io)``; ``data_io`` writes nothing.

    Raises:
        DataNotFoundError / DataError / ConfigurationError: missing folder, no cases,
            unknown format or bad interface arguments.
    """
    from miseg.cli.config import (
        PERMISSIVE_CLASSES,
        build_data_io,
        build_interface,
        default_config,
        resolve_data_section,
    )

    config = default_config()
    if isinstance(interface, str):
        config["data"].update(
            path=data_path, interface=interface, channels=channels, three_dim=three_dim,
            pattern=pattern, options=dict(options or {}), label_mapping=label_mapping,
        )
        resolve_data_section(config)
        iface = build_interface(config["data"], classes=PERMISSIVE_CLASSES)
    else:
        iface = interface
        config["data"].update(path=data_path, label_mapping=label_mapping)
    config["training"]["seed"] = 0  # Data_IO's batch-file prefix; exploration writes nothing
    return iface, build_data_io(config, iface)


# ---------------------------------------------------------------------------------- commands
def _miscnn_type(name: str) -> str:
    """MIScnn's ``-t`` value (``NIFTI``, ``DICOM``, ``IMG``, ``Unknown``) as an interface name."""
    from miseg.cli.config import interface_name

    return "auto" if name == "Unknown" else interface_name(name)


def _data_path(args: Any) -> str:
    from miseg.errors import ConfigurationError

    path = args.data or args.data_dir
    if not path:
        raise ConfigurationError("No data folder given: pass DATA (or --data_dir before the command).")
    return path


def run_explore(args: Any, explicit: set[str]) -> int:
    """``miseg explore``: print the report, write CSV/plots; 1 with --strict and problems."""
    from miseg.cli.common import progress_enabled

    options: dict[str, Any] = {}
    if args.image_type:
        options["img_type"] = args.image_type
    if args.structure:
        options["structure_dict"] = dict(args.structure)
    report = explore_dataset(
        _data_path(args), interface=args.interface, classes=args.classes, channels=args.channels,
        three_dim=args.three_dim, pattern=args.pattern, options=options,
        label_mapping=dict(args.label_map) if args.label_map else None,
        max_cases=args.max_cases, progress=progress_enabled(args),
    )
    print(report.summary())
    if args.csv:
        print(f"Per-case table written to {report.write_csv(args.csv)}")
    if args.plots:
        for path in report.plot(args.plots):
            print(f"Plot written to {path}")
    return 1 if args.strict and report.problems() else 0


def run_data_exp(args: Any, explicit: set[str]) -> int:
    """MIScnn's ``data_exp``: the exploration report, ``-e`` writes the CSV."""
    from miseg.cli.common import progress_enabled

    report = explore_dataset(_data_path(args), interface=_miscnn_type(args.type), progress=progress_enabled(args))
    print(report.summary())
    if args.export:
        print(f"Per-case table written to {report.write_csv(args.export)}")
    return 0


def run_verify(args: Any, explicit: set[str]) -> int:
    """MIScnn's ``verify``: load every case; list problems; 1 when there are any."""
    from miseg.cli.common import progress_enabled

    report = explore_dataset(_data_path(args), interface=_miscnn_type(args.type), classes=args.classes,
                             progress=progress_enabled(args))
    problems = report.problems()
    for case, message in problems:
        print(f"[ERROR] {case}: {message}")
    ok = sum(1 for c in report.cases if not c.problems)
    print(f"{ok} of {len(report.cases)} case(s) loaded without problems"
          + (f"; {len(problems)} problem(s)" if problems else ""))
    return 1 if problems else 0
