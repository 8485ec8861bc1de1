"""Evaluation figures: training curves, metric box plots, segmentation overlays, histograms.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas (no
pyplot global state, no GUI backend, safe in threads and on headless machines), writes the
file atomically (temporary file in the target folder, then ``os.replace``) and returns the
written path(s). matplotlib is imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError
from miseg.utils.fileio import atomic_path

__all__ = [
    "plot_validation",
    "plot_fold_curves",
    "plot_metric_boxplots",
    "plot_overlays",
    "plot_case_overlays",
    "visualize_pixel_dist",
    "visualize_frequencies_1D",
]

_TRUTH_COLOUR = "#2ca02c"
_PRED_COLOUR = "#d62728"


# ---------------------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float] = (6.4, 4.8), dpi: int = 100) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig: Any, path: str | os.PathLike) -> str:
    """Save ``fig`` (format from the suffix, PNG by default) atomically; return the path."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_path(path, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, bbox_inches="tight")
    return path


def _safe_name(text: Any) -> str:
    """A file-name-safe version of a case id or metric name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return name or "unnamed"


def _metric_name(metric: Any) -> str:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(metric, "__name__", None)
    if isinstance(name, str):
        return name
    raise ConfigurationError(
        f"metrics: cannot name {metric!r}; pass a function, an object with .name or a string."
    )


def _history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    history = getattr(history, "history", history)
    if not isinstance(history, Mapping):
        raise ConfigurationError(
            f"history={type(history).__name__} is not a dict (or a keras History object)."
        )
    return history


# --------------------------------------------------------------------------- training curves
def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _curve_figure(train: Sequence[float] | None, val: Sequence[float] | None, name: str) -> Any:
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    if train is not None:
        ax.plot(np.arange(1, len(train) + 1), np.asarray(train, dtype=float), label="Train Set")
    if val is not None:
        ax.plot(np.arange(1, len(val) + 1), np.asarray(val, dtype=float), label="Test Set")
    ax.set_title(f"Validation: {name}")
    _integer_epochs(ax)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(name)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_validation(
    history: Mapping[str, Sequence[float]] | Any,
    metrics: Iterable[Any] | None,
    evaluation_directory: str | os.PathLike,
) -> list[str]:
    """Plot training and validation curves, one PNG per quantity (MIScnn's figures).

    Writes ``validation.loss.png`` (``loss`` and ``val_loss``) and ``validation.<name>.png``
    for each metric, with the legend "Train Set"/"Test Set" and the x-axis "Epoch". A
    metric's name is its ``.name`` attribute, its ``__name__`` or the string itself. A
    quantity missing from the history is skipped with a warning (if only ``val_<name>`` is
    missing, the training curve is still drawn).

    Args:
        history: ``History.history`` dict (a keras ``History`` object works too).
        metrics: The metric functions/objects/names the model was compiled with.
        evaluation_directory: Output folder (created if needed).

    Returns:
        The written file paths, loss first.

    Example:
        >>> import tempfile; out = tempfile.mkdtemp()
        >>> paths = plot_validation({"loss": [1, .5], "val_loss": [1, .7]}, [], out)
        >>> [os.path.basename(p) for p in paths]
        ['validation.loss.png']
    """
    history = _history_dict(history)
    names = ["loss"] + [n for n in (_metric_name(m) for m in (metrics or [])) if n != "loss"]
    paths = []
    for name in dict.fromkeys(names):
        train, val = history.get(name), history.get("val_" + name)
        if train is None and val is None:
            warnings.warn(
                f"plot_validation: '{name}' and 'val_{name}' are not in the history "
                f"(keys: {sorted(history)}); validation.{name}.png is skipped.",
                UserWarning,
                stacklevel=2,
            )
            continue
        if train is None or val is None:
            warnings.warn(
                f"plot_validation: '{'val_' + name if val is None else name}' is not in the "
                f"history; validation.{name}.png shows one curve.",
                UserWarning,
                stacklevel=2,
            )
        fig = _curve_figure(train, val, name)
        target = os.path.join(os.fspath(evaluation_directory), f"validation.{_safe_name(name)}.png")
        paths.append(_save_figure(fig, target))
    return paths


def plot_fold_curves(
    histories: Sequence[Mapping[str, Sequence[float]] | Any],
    path: str | os.PathLike,
    metrics: Sequence[str] = ("loss",),
) -> str:
    """Training (solid) and validation (dashed) curves of every fold in one figure.

    Args:
        histories: One history dict (or keras ``History``) per fold.
        path: Output PNG.
        metrics: Quantities to plot, one panel each (``<name>`` and ``val_<name>``).

    Returns:
        The written path.

    Example:
        >>> h = [{"loss": [1, .5], "val_loss": [1, .8]}, {"loss": [.9, .4], "val_loss": [1, .6]}]
        >>> import tempfile; out = tempfile.mkdtemp()
        >>> os.path.basename(plot_fold_curves(h, os.path.join(out, "folds.png")))
        'folds.png'
    """
    histories = [_history_dict(h) for h in histories]
    if not histories:
        raise ConfigurationError("histories=[] is empty; give one history per fold.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ConfigurationError("metrics=() is empty; name at least one quantity to plot.")
    fig = _new_figure(figsize=(6.4 * len(metrics), 4.8))
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    for panel, name in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), panel + 1)
        drawn = False
        for fold, history in enumerate(histories):
            colour = palette(fold % 10)
            for key, style, label in ((name, "-", "train"), ("val_" + name, "--", "val")):
                values = history.get(key)
                if values is None:
                    continue
                ax.plot(np.arange(1, len(values) + 1), np.asarray(values, dtype=float),
                        linestyle=style, color=colour, label=f"fold {fold} {label}")
                drawn = True
        if not drawn:
            warnings.warn(f"plot_fold_curves: no fold history has '{name}' or 'val_{name}'.",
                          UserWarning, stacklevel=2)
        ax.set_title(name)
        _integer_epochs(ax)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(loc="best", fontsize="small")
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------- box plots
def plot_metric_boxplots(
    df: Any,
    path: str | os.PathLike,
    metrics: Sequence[str] = ("dice", "hd95"),
) -> str:
    """Box plots of metrics per class across cases, one panel per metric.

    Args:
        df: Long metric table (``class`` plus metric columns), see
            :func:`miseg.evaluation.reports.metrics_table`. NaN values are left out.
        path: Output PNG.
        metrics: Metric columns to plot; missing ones are skipped with a warning.

    Returns:
        The written path.

    Raises:
        ConfigurationError: when none of ``metrics`` is a column of ``df``.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"class": [1, 1, 2, 2], "dice": [.8, .9, .5, .7]})
        >>> import tempfile; out = tempfile.mkdtemp()
        >>> os.path.basename(plot_metric_boxplots(t, os.path.join(out, "box.png"), ["dice"]))
        'box.png'
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    present = [m for m in metrics if m in df.columns]
    if not present:
        raise ConfigurationError(
            f"metrics={metrics!r}: none is a column of the table {list(df.columns)}."
        )
    for m in metrics:
        if m not in df.columns:
            warnings.warn(f"plot_metric_boxplots: metric '{m}' is not in the table; skipped.",
                          UserWarning, stacklevel=2)
    classes = sorted(df["class"].unique().tolist()) if "class" in df.columns else ["all"]
    fig = _new_figure(figsize=(max(4.0, 1.2 * len(classes) + 2) * len(present), 4.8))
    for panel, metric in enumerate(present):
        ax = fig.add_subplot(1, len(present), panel + 1)
        data, labels = [], []
        for cls in classes:
            values = df[metric] if cls == "all" else df.loc[df["class"] == cls, metric]
            values = np.asarray(values, dtype=float)
            data.append(values[~np.isnan(values)])
            labels.append(str(cls))
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(np.arange(1, len(labels) + 1), labels)
        ax.set_xlabel("Class")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per class (n cases: {', '.join(str(d.size) for d in data)})",
                     fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    return _save_figure(fig, path)


# ------------------------------------------------------------------------------- overlays
def _squeeze_label_map(label_map: np.ndarray) -> np.ndarray:
    if label_map.ndim in (3, 4) and label_map.shape[-1] == 1:
        return label_map[..., 0]
    return label_map


def _pick_slice(truth: np.ndarray, pred: np.ndarray | None, axis: int) -> int:
    for mask in (truth, pred):
        if mask is None:
            continue
        other = tuple(a for a in range(mask.ndim) if a != axis)
        counts = np.count_nonzero(mask > 0, axis=other)
        if counts.any():
            return int(np.argmax(counts))
    return truth.shape[axis] // 2


def plot_overlays(
    image: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray | None,
    path: str | os.PathLike,
    title: str | None = None,
    slice_index: int | None = None,
    slice_axis: int | None = None,
    channel: int = 0,
) -> str:
    """An image slice with the contours of the truth (green) and prediction (red, dashed).

    Arrays follow miseg's layout: label maps ``(x, y[, z])`` with an optional trailing
    ``(..., 1)``, the image with an optional trailing channel axis (``channel`` is shown).
    3D data is cut along ``slice_axis``; by default at the slice with the most truth
    foreground (the prediction's if the truth is empty, else the middle slice). The slice is
    shown with the first axis horizontal (``imshow`` of the transpose, origin lower).

    Args:
        image: Image array.
        truth: Ground-truth label map.
        pred: Predicted label map, or ``None`` to draw the truth only.
        path: Output PNG.
        title: Figure title; the slice number is appended for 3D data.
        slice_index: Slice to show (3D only); ``None`` picks it as described.
        slice_axis: Axis cut for 3D data; by default the shortest one (usually the
            slice axis of CT/MR volumes, whichever array position it has).
        channel: Image channel shown when the image has a channel axis.

    Returns:
        The written path.

    Example:
        >>> img = np.random.default_rng(0).random((16, 16, 8)); seg = np.zeros((16, 16, 8), int)
        >>> seg[4:10, 4:10, 2:5] = 1
        >>> import tempfile; out = os.path.join(tempfile.mkdtemp(), "ov.png")
        >>> os.path.basename(plot_overlays(img, seg, np.roll(seg, 1, 0), out))
        'ov.png'
    """
    truth = _squeeze_label_map(np.asarray(truth))
    pred = None if pred is None else _squeeze_label_map(np.asarray(pred))
    image = np.asarray(image)
    if pred is not None and pred.shape != truth.shape:
        raise ShapeMismatchError(
            f"plot_overlays: truth shape {truth.shape} and prediction shape {pred.shape} differ."
        )
    if truth.ndim not in (2, 3):
        raise DataError(f"plot_overlays: label map of shape {truth.shape} is neither 2D nor 3D.")
    if image.ndim == truth.ndim + 1:
        if not 0 <= channel < image.shape[-1]:
            raise ConfigurationError(
                f"channel={channel!r} is out of range for an image with {image.shape[-1]} "
                f"channels."
            )
        image = image[..., channel]
    if image.shape != truth.shape:
        raise ShapeMismatchError(
            f"plot_overlays: image shape {image.shape} does not match the label map shape "
            f"{truth.shape}."
        )
    label = title or ""
    if truth.ndim == 3:
        axis = int(np.argmin(truth.shape[:3])) if slice_axis is None else slice_axis % 3
        if slice_index is None:
            slice_index = _pick_slice(truth, pred, axis)
        if not 0 <= slice_index < truth.shape[axis]:
            raise ConfigurationError(
                f"slice_index={slice_index!r} is out of range for {truth.shape[axis]} slices "
                f"along axis {axis}."
            )
        image, truth = np.take(image, slice_index, axis), np.take(truth, slice_index, axis)
        pred = None if pred is None else np.take(pred, slice_index, axis)
        label = f"{label} - slice {slice_index}" if label else f"Slice {slice_index}"

    from matplotlib.lines import Line2D

    fig = _new_figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(np.asarray(image, dtype=float).T, cmap="gray", origin="lower",
              interpolation="nearest")
    handles = []
    for mask_map, colour, style, name in ((truth, _TRUTH_COLOUR, "solid", "Ground truth"),
                                          (pred, _PRED_COLOUR, "dashed", "Prediction")):
        if mask_map is None:
            continue
        for cls in np.unique(mask_map):
            if cls == 0:
                continue
            ax.contour((mask_map == cls).T.astype(float), levels=[0.5], colors=colour,
                       linestyles=style, linewidths=1.5, origin="lower")
        handles.append(Line2D([0], [0], color=colour, linestyle=style, label=name))
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    ax.set_title(label)
    ax.set_axis_off()
    return _save_figure(fig, path)


def _lower_is_better(metric: str) -> bool:
    from miseg.evaluation.metrics import LOWER_IS_BETTER

    return metric in LOWER_IS_BETTER


def plot_case_overlays(
    cases: Mapping[Any, tuple[np.ndarray, np.ndarray, np.ndarray]],
    df: Any,
    out_dir: str | os.PathLike,
    metric: str = "dice",
    class_id: int | None = None,
) -> dict[str, str]:
    """Overlay figures of the best, median and worst case by a metric.

    A case's score is the metric of ``class_id``, or by default the mean over its
    foreground classes (``class != 0``; all classes if there is no foreground row). Cases
    with a NaN score are left out. For distances (``hd``, ``hd95``, ``assd``,
    ``abs_volume_difference``) lower is better. The median case is the one with the lower
    median score (``statistics.median_low``).

    Args:
        cases: ``{case id: (image, truth, pred)}``; only cases present in ``df`` are ranked.
        df: Long metric table with ``sample_id``, ``class`` and ``metric`` columns.
        out_dir: Output folder; files are ``overlay.<rank>.<case id>.png``.
        metric: Metric column used for ranking.
        class_id: Class whose metric ranks the cases; ``None`` averages foreground classes.

    Returns:
        ``{"best": path, "median": path, "worst": path}``.

    Raises:
        ConfigurationError: when ``metric`` is not a column or no case can be ranked.
    """
    for column in ("sample_id", "class", metric):
        if column not in df.columns:
            raise ConfigurationError(
                f"plot_case_overlays: column '{column}' (metric={metric!r}) is not in the "
                f"table {list(df.columns)}."
            )
    table = df[df["sample_id"].isin(list(cases))]
    if class_id is not None:
        table = table[table["class"] == class_id]
    elif (table["class"] != 0).any():
        table = table[table["class"] != 0]
    scores = table.groupby("sample_id", sort=False)[metric].mean().dropna()
    if scores.empty:
        raise ConfigurationError(
            f"plot_case_overlays: no case of {list(cases)[:5]}... has a finite '{metric}'"
            f"{'' if class_id is None else f' for class {class_id}'}."
        )
    ascending = scores.sort_values(kind="stable").index.tolist()
    median = ascending[(len(ascending) - 1) // 2]  # the lower median value (median_low)
    best, worst = (ascending[0], ascending[-1]) if _lower_is_better(metric) else (
        ascending[-1], ascending[0])
    picks = {"best": best, "median": median, "worst": worst}
    paths = {}
    for rank, case in picks.items():
        image, truth, pred = cases[case]
        title = f"{rank}: {case} ({metric} = {scores[case]:.3f})"
        target = os.path.join(os.fspath(out_dir), f"overlay.{rank}.{_safe_name(case)}.png")
        paths[rank] = plot_overlays(image, truth, pred, target, title=title)
    return paths


# ---------------------------------------------------------------------- data exploration
def _image_of(item: Any) -> np.ndarray:
    return np.asarray(getattr(item, "img_data", item))


def visualize_pixel_dist(
    sample_list: Iterable[Any],
    functor: Callable[[Any], Any],
    name: str = "graph",
    min: float = 0,  # noqa: A002 - MIScnn's parameter names
    max: float = 2000,  # noqa: A002
    cutoff: bool = True,
    out_dir: str | os.PathLike = ".",
    bins: int = 100,
    progress: bool = False,
) -> str:
    """Normalised intensity histogram of every sample in one figure, saved as ``<name>.png``.

    Args:
        sample_list: Case indices.
        functor: ``functor(index)`` returning a Sample (or an image array), e.g.
            ``lambda i: data_io.sample_loader(i, load_seg=False)``.
        name: File name without suffix.
        min: Lower edge of the histogram range.
        max: Upper edge of the histogram range.
        cutoff: ``True`` drops intensities outside ``[min, max)``; ``False`` clips them into
            the outer bins.
        out_dir: Output folder (MIScnn wrote to the working directory).
        bins: Number of histogram bins.
        progress: Show a tqdm progress bar while loading samples.

    Returns:
        The written path.
    """
    if not max > min:
        raise ConfigurationError(f"max={max!r} must be larger than min={min!r}.")
    if int(bins) < 1:
        raise ConfigurationError(f"bins={bins!r} must be >= 1.")
    from tqdm import tqdm

    indices = list(sample_list)
    edges = np.linspace(min, max, int(bins) + 1)
    fig = _new_figure(figsize=(8, 5))
    ax = fig.add_subplot(1, 1, 1)
    for index in tqdm(indices, desc="pixel distribution", disable=not progress):
        values = _image_of(functor(index)).astype(np.float64).ravel()
        values = values[np.isfinite(values)]
        if cutoff:
            values = values[(values >= min) & (values < max)]
        else:
            values = np.clip(values, min, np.nextafter(max, min))
        if values.size == 0:
            warnings.warn(f"visualize_pixel_dist: case {index!r} has no intensity in "
                          f"[{min}, {max}); skipped.", UserWarning, stacklevel=2)
            continue
        density, _ = np.histogram(values, bins=edges, density=True)
        ax.stairs(density, edges, label=str(index))
    ax.set_xlabel("Intensity")
    ax.set_ylabel("Density")
    ax.set_title(f"Intensity distribution ({len(indices)} samples)")
    if 0 < len(indices) <= 20:
        ax.legend(loc="best", fontsize="small")
    return _save_figure(fig, os.path.join(os.fspath(out_dir), f"{_safe_name(name)}.png"))


def visualize_frequencies_1D(
    sample: Any,
    out_path: str | os.PathLike = "visualization",
    sample_rate: float | None = None,
) -> str:
    """Mean 1D amplitude spectrum of an image along its first spatial axis.

    Every line of the (first-channel) image along axis 0 is mean-centred and transformed
    with a real FFT; the amplitudes are averaged over all lines. Frequencies are in cycles
    per mm when the sample has a spacing (``1 / spacing[0]`` samples per mm), in cycles per
    ``1 / sample_rate`` otherwise (per voxel without either).

    Args:
        sample: A Sample or an image array (channels-last when it has a channel axis).
        out_path: Output folder; the file is ``frequencies.<index>.png``.
        sample_rate: Samples per unit length along axis 0; overrides the spacing.

    Returns:
        The written path.
    """
    image = _image_of(sample).astype(np.float64)
    if getattr(sample, "img_data", None) is not None:
        image = image[..., 0]
    if image.ndim < 1 or image.shape[0] < 2:
        raise DataError(f"visualize_frequencies_1D: image of shape {image.shape} is too small.")
    spacing = getattr(sample, "spacing", None)
    if sample_rate is not None:
        if not sample_rate > 0:
            raise ConfigurationError(f"sample_rate={sample_rate!r} must be > 0.")
        step, unit = 1.0 / float(sample_rate), "cycles per unit length"
    elif spacing:
        step, unit = float(spacing[0]), "cycles per mm"
    else:
        step, unit = 1.0, "cycles per voxel"
    lines = image.reshape(image.shape[0], -1)
    lines = lines - lines.mean(axis=0, keepdims=True)
    amplitude = np.abs(np.fft.rfft(lines, axis=0)).mean(axis=1)
    freqs = np.fft.rfftfreq(image.shape[0], d=step)
    fig = _new_figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(freqs, amplitude)
    ax.set_xlabel(f"Frequency ({unit})")
    ax.set_ylabel("Mean amplitude")
    index = getattr(sample, "index", "image")
    ax.set_title(f"Frequency spectrum along axis 0: {index}")
    return _save_figure(fig, os.path.join(os.fspath(out_path),
                                          f"frequencies.{_safe_name(index)}.png"))
