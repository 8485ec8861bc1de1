"""Overlay pictures of cases: image with ground truth and/or prediction, PNG or animated GIF.

Frames are composed with NumPy and written with Pillow (no ImageMagick, no pyplot). A 2D case
becomes one PNG; a 3D case becomes an animated GIF that steps through the slices along the
last spatial axis, or a PNG montage of all slices (``fmt="png"``). Files are written
atomically.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError
from miseg.utils.fileio import atomic_path
from miseg.utils.plotting import _safe_name

__all__ = [
    "normalize",
    "overlay_segmentation_greyscale",
    "visualize_samples",
    "visualize_prediction_overlap_3D",
]

# RGB colours of the outcome overlay (MIScnn's palette).
_TP_COLOUR = (31, 113, 80)
_FP_COLOUR = (153, 12, 12)
_FN_COLOUR = (3, 92, 135)
_MIN_PANEL = 128  # small images are upscaled (nearest) to at least this many pixels
_HEADER = 14  # height of the text band above each frame


def normalize(img: np.ndarray) -> np.ndarray:
    """Min-max scale an array to ``[0, 1]`` (float64); a constant array gives zeros.

    Non-finite values are ignored for the range and mapped to 0.

    Example:
        >>> normalize(np.array([2.0, 4.0, 6.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    img = np.asarray(img, dtype=np.float64)
    finite = np.isfinite(img)
    if not finite.any():
        return np.zeros(img.shape)
    low, high = img[finite].min(), img[finite].max()
    out = np.zeros(img.shape)
    if high > low:
        out[finite] = (img[finite] - low) / (high - low)
    return out


def _colormap(cm: Any) -> Any:
    from matplotlib import colormaps

    if isinstance(cm, str):
        if cm not in colormaps:
            raise ConfigurationError(f"cm={cm!r} is not a matplotlib colormap name.")
        return colormaps[cm]
    return cm


def _squeeze_channel(array: np.ndarray, spatial_shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape == spatial_shape:
        return array
    if array.shape[:-1] == spatial_shape and array.shape[-1] == 1:
        return array[..., 0]
    raise ShapeMismatchError(
        f"{what} of shape {array.shape} does not match the image shape {spatial_shape}."
    )


def overlay_segmentation_greyscale(
    vol: np.ndarray, seg: np.ndarray, cm: Any = "hsv", alpha: float = 0.3
) -> np.ndarray:
    """Colour a label map over a greyscale image or volume.

    The image is min-max scaled to grey; each label ``l > 0`` gets the colormap colour at
    ``l / (max_label + 1)`` (stable per label value, unlike MIScnn's ``l / n_unique``) and is
    alpha-blended where ``seg == l``.

    Args:
        vol: Greyscale image or volume, with or without a trailing single channel.
        seg: Label map of the same spatial shape (trailing ``(..., 1)`` allowed).
        cm: Colormap name or object.
        alpha: Opacity of the labels in ``[0, 1]``.

    Returns:
        ``uint8`` RGB array of shape ``vol.shape[:spatial] + (3,)``.

    Example:
        >>> out = overlay_segmentation_greyscale(np.eye(4), np.eye(4, dtype=int))
        >>> out.shape, out.dtype.name
        ((4, 4, 3), 'uint8')
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigurationError(f"alpha={alpha!r} must lie in [0, 1].")
    vol = np.asarray(vol)
    seg = np.asarray(seg)
    if vol.ndim == seg.ndim + 1 and vol.shape[-1] == 1:
        vol = vol[..., 0]
    seg = _squeeze_channel(seg, vol.shape, "seg")
    grey = normalize(vol) * 255.0
    rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)
    labels = [int(l) for l in np.unique(seg) if l > 0]
    if labels:
        cmap = _colormap(cm)
        top = max(labels) + 1
        for label in labels:
            colour = np.asarray(cmap(label / top)[:3]) * 255.0
            where = seg == label
            rgb[where] = (1.0 - alpha) * rgb[where] + alpha * colour
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- frame helpers
def _upscale(frame: np.ndarray) -> np.ndarray:
    factor = max(1, int(np.ceil(_MIN_PANEL / max(1, min(frame.shape[:2])))))
    return np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)


def _to_display(slice_rgb: np.ndarray) -> np.ndarray:
    # Arrays are (x, y); show x horizontally and y upwards, as plot_overlays does.
    return np.ascontiguousarray(np.flipud(np.swapaxes(slice_rgb, 0, 1)))


def _compose(panels: Sequence[np.ndarray], text: str) -> Any:
    from PIL import Image, ImageDraw

    panels = [_upscale(_to_display(p)) for p in panels]
    gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
    body = panels[0]
    for panel in panels[1:]:
        body = np.concatenate([body, gap, panel], axis=1)
    canvas = np.full((body.shape[0] + _HEADER, body.shape[1], 3), 255, dtype=np.uint8)
    canvas[_HEADER:] = body
    image = Image.fromarray(canvas)
    ImageDraw.Draw(image).text((2, 1), text, fill=(0, 0, 0))
    return image


def _save_images(frames: Sequence[Any], path: str, fps: float) -> str:
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as tmp:
        if path.lower().endswith(".gif"):
            frames[0].save(tmp, format="GIF", save_all=True, append_images=list(frames[1:]),
                           duration=max(1, int(round(1000.0 / fps))), loop=0)
        else:
            frames[0].save(tmp, format="PNG")
    return path


def _montage(frames: Sequence[Any]) -> Any:
    from PIL import Image

    columns = int(np.ceil(np.sqrt(len(frames))))
    rows = int(np.ceil(len(frames) / columns))
    width, height = frames[0].size
    sheet = Image.new("RGB", (columns * width, rows * height), (255, 255, 255))
    for i, frame in enumerate(frames):
        sheet.paste(frame, ((i % columns) * width, (i // columns) * height))
    return sheet


def _write_case(frames: list[Any], out_dir: str, stem: str, three_dim: bool, fmt: str,
                fps: float) -> str:
    if three_dim and fmt == "gif":
        return _save_images(frames, os.path.join(out_dir, stem + ".gif"), fps)
    image = _montage(frames) if three_dim else frames[0]
    return _save_images([image], os.path.join(out_dir, stem + ".png"), fps)


def _check_output(fmt: str, fps: float) -> None:
    if fmt not in ("gif", "png"):
        raise ConfigurationError(f"fmt={fmt!r} must be 'gif' or 'png'.")
    if not fps > 0:
        raise ConfigurationError(f"fps={fps!r} must be > 0.")


def _image_volume(sample: Any) -> np.ndarray:
    img = np.asarray(sample.img_data)
    if img.ndim < 3:
        raise DataError(f"Case {sample.index!r}: img_data of shape {img.shape} has no channel "
                        f"axis; expected channels-last (x, y[, z], c).")
    # Multi-channel images are shown through their first channel.
    return img[..., 0]


def _label_map(array: np.ndarray | None, spatial: tuple[int, ...], what: str,
               index: Any) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.shape[:-1] == spatial and array.shape[-1] > 1:
        array = np.argmax(array, axis=-1)  # activation output / one-hot
    try:
        return _squeeze_channel(array, spatial, what)
    except ShapeMismatchError as error:
        raise ShapeMismatchError(f"Case {index!r}: {error}") from None


# ------------------------------------------------------------------------- public writers
def _load(item: Any, data_io: Any, load_seg: bool, load_pred: bool) -> Any:
    if hasattr(item, "img_data"):
        return item
    if data_io is None:
        raise ConfigurationError(
            f"sample_list holds the index {item!r}, not a Sample; pass data_io= to load it."
        )
    return data_io.sample_loader(item, load_seg=load_seg, load_pred=load_pred)


def _apply_preprocessing(sample: Any, preprocessing: Any) -> Any:
    subfunctions = getattr(preprocessing, "subfunctions", preprocessing)
    for subfunction in subfunctions:
        subfunction.preprocessing(sample, training=True)
    return sample


def visualize_samples(
    sample_list: Iterable[Any],
    out_dir: str | os.PathLike = "vis",
    mask_seg: bool = False,
    mask_pred: bool = True,
    data_io: Any = None,
    preprocessing: Any = None,
    fmt: str = "gif",
    fps: float = 10.0,
    cm: Any = "hsv",
    alpha: float = 0.3,
) -> list[str]:
    """Write one overlay picture per case: the image next to its truth and/or prediction.

    Each frame shows the image with the segmentation (``mask_seg``) and the prediction
    (``mask_pred``) overlaid in separate panels, titled "Case ID: <index> - Slice: <i>".
    Files are ``<out_dir>/visualization.case_<index>.<gif|png>`` (numeric indices
    zero-padded to 5 digits, as in MIScnn).

    Args:
        sample_list: Samples, or case indices loaded through ``data_io``.
        out_dir: Output folder (created if needed).
        mask_seg: Overlay the ground truth.
        mask_pred: Overlay the prediction (``Sample.pred_data``; argmax of probabilities).
        data_io: ``Data_IO`` used to load indices (``sample_loader``).
        preprocessing: A Preprocessor (its ``subfunctions``) or a list of subfunctions run
            on each loaded sample with ``training=True``, so image and truth are shown as the
            network sees them. Predictions are in the original space and are not shown then.
        fmt: For 3D cases, ``"gif"`` (animated, slices along the last axis) or ``"png"``
            (montage of all slices). 2D cases are always PNG.
        fps: Frames per second of the GIF.
        cm: Colormap of the labels.
        alpha: Label opacity.

    Returns:
        The written paths, in case order.

    Example:
        >>> from miseg.data_loading.sample import Sample
        >>> s = Sample("7", np.random.default_rng(0).random((8, 8, 4)), 1, 2, three_dim=True)
        >>> s.add_segmentation((s.img_data[..., 0] > .5).astype(int))
        >>> import tempfile; out = tempfile.mkdtemp()
        >>> [os.path.basename(p) for p in visualize_samples([s], out, mask_seg=True,
        ...                                                  mask_pred=False)]
        ['visualization.case_00007.gif']
    """
    _check_output(fmt, fps)
    if preprocessing is not None and mask_pred:
        warnings.warn("visualize_samples: predictions are not shown with preprocessing= "
                      "(they are in the original image space).", UserWarning, stacklevel=2)
        mask_pred = False
    out_dir = os.fspath(out_dir)
    paths = []
    for item in sample_list:
        sample = _load(item, data_io, mask_seg, mask_pred)
        if preprocessing is not None:
            sample = _apply_preprocessing(sample, preprocessing)
        image = _image_volume(sample)
        spatial = image.shape
        overlays = []
        if mask_seg:
            seg = _label_map(getattr(sample, "seg_data", None), spatial, "seg_data", sample.index)
            if seg is None:
                raise DataError(f"Case {sample.index!r}: mask_seg=True but it has no "
                                f"segmentation.")
            overlays.append(overlay_segmentation_greyscale(image, seg, cm, alpha))
        if mask_pred:
            pred = _label_map(getattr(sample, "pred_data", None), spatial, "pred_data",
                              sample.index)
            if pred is None:
                raise DataError(f"Case {sample.index!r}: mask_pred=True but it has no "
                                f"prediction.")
            overlays.append(overlay_segmentation_greyscale(image, pred, cm, alpha))
        if not overlays:
            overlays.append(overlay_segmentation_greyscale(image, np.zeros(spatial, int)))
        three_dim = image.ndim == 3
        if three_dim:
            frames = [
                _compose([o[:, :, z] for o in overlays],
                         f"Case ID: {sample.index} - Slice: {z}")
                for z in range(image.shape[2])
            ]
        else:
            frames = [_compose(overlays, f"Case ID: {sample.index}")]
        stem = f"visualization.case_{_safe_name(str(sample.index).zfill(5))}"
        paths.append(_write_case(frames, out_dir, stem, three_dim, fmt, fps))
    return paths


def visualize_prediction_overlap_3D(
    sample: Any,
    classes: Sequence[int] | None = None,
    visualization_path: str | os.PathLike = "visualization",
    alpha: float = 0.6,
    fmt: str = "gif",
    fps: float = 10.0,
) -> list[str]:
    """Colour true positives, false positives and false negatives of each class.

    TP are green (31, 113, 80), FP red (153, 12, 12), FN blue (3, 92, 135), blended over the
    greyscale image. One file per class: ``visualization.<index>.class_<c>.<gif|png>``.

    Args:
        sample: A Sample with ``seg_data`` and ``pred_data`` (2D or 3D).
        classes: Class labels to draw; ``None`` means every foreground class
            ``1..sample.classes-1``.
        visualization_path: Output folder.
        alpha: Opacity of the outcome colours.
        fmt: ``"gif"`` or ``"png"`` (montage) for 3D samples.
        fps: Frames per second of the GIF.

    Returns:
        The written paths, one per class.
    """
    _check_output(fmt, fps)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigurationError(f"alpha={alpha!r} must lie in [0, 1].")
    image = _image_volume(sample)
    spatial = image.shape
    truth = _label_map(getattr(sample, "seg_data", None), spatial, "seg_data", sample.index)
    pred = _label_map(getattr(sample, "pred_data", None), spatial, "pred_data", sample.index)
    if truth is None or pred is None:
        raise DataError(f"Case {sample.index!r}: needs both a segmentation and a prediction.")
    if classes is None:
        classes = range(1, int(getattr(sample, "classes", 2)))
    grey = np.repeat((normalize(image) * 255.0)[..., np.newaxis], 3, axis=-1)
    paths = []
    for cls in classes:
        t, p = truth == cls, pred == cls
        rgb = grey.copy()
        for mask, colour in ((t & p, _TP_COLOUR), (p & ~t, _FP_COLOUR), (t & ~p, _FN_COLOUR)):
            rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * np.asarray(colour, dtype=float)
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        three_dim = image.ndim == 3
        if three_dim:
            frames = [_compose([rgb[:, :, z]], f"Case ID: {sample.index} - class {cls} - "
                                               f"Slice: {z}") for z in range(spatial[2])]
        else:
            frames = [_compose([rgb], f"Case ID: {sample.index} - class {cls}")]
        stem = f"visualization.{_safe_name(sample.index)}.class_{cls}"
        paths.append(_write_case(frames, os.fspath(visualization_path), stem, three_dim, fmt,
                                 fps))
    return paths
