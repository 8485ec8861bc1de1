"""Patch (tile) operations: grid slicing, padding/cropping and weighted merging.

Patchwise analysis cuts an image into a regular grid of (possibly overlapping) windows,
runs the network on each window and merges the window predictions back into one volume.

Grid semantics (MIScnn-compatible): along an axis of length ``L`` with window ``w`` and
overlap ``o`` there are ``max(1, ceil((L - o) / (w - o)))`` windows; window ``i`` starts at
``i * (w - o)`` and the last one is shifted back to ``max(0, L - w)`` so every window keeps
the full size unless the image is smaller than the window. Windows are ordered x-major,
z fastest. All functions share one implementation of that grid, :func:`grid_positions`.

Merging differs from MIScnn on purpose: MIScnn averaged overlaps pairwise and sequentially
(order-dependent ½, ¼, ... weights, patches mutated in place). Here every patch contributes
``weight * prediction`` to one preallocated buffer and ``weight`` to another, and the result is
their ratio (:class:`PatchAccumulator`). That is order-independent and, with the default
Gaussian importance weighting (nnU-Net), down-weights patch borders where predictions are
least reliable, which removes seam artefacts.

Arrays are channels-last: images ``(x, y[, z], C)``, batches ``(N, x, y[, z], C)``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import DTypeLike

from miseg.errors import ConfigurationError, DataError, ShapeMismatchError

__all__ = [
    "grid_positions",
    "slice_matrix",
    "slice_2Dmatrix",
    "slice_3Dmatrix",
    "concat_matrices",
    "concat_2Dmatrices",
    "concat_3Dmatrices",
    "pad_patch",
    "crop_patch",
    "gaussian_importance_map",
    "PatchAccumulator",
]

IntOrSeq = Union[int, Sequence[int]]

_WEIGHTINGS = ("gaussian", "constant", "mean")


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """Readable form of a user value (NumPy 2 scalars would print as ``np.int64(8)``)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_fmt(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _int_tuple(value: Any, name: str, rank: int | None) -> tuple[int, ...]:
    """Normalise an int or a sequence of ints to a tuple of ``rank`` ints."""
    if _is_int(value):
        if rank is None:
            raise ConfigurationError(
                f"{name} {_fmt(value)} must be a sequence with one entry per spatial axis"
            )
        return (int(value),) * rank
    if isinstance(value, (str, bytes)):
        raise ConfigurationError(f"{name} must be an int or a sequence of ints, got {value!r}")
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigurationError(
            f"{name} must be an int or a sequence of ints, got {_fmt(value)}"
        ) from None
    if rank is not None and len(items) != rank:
        raise ConfigurationError(
            f"{name} {_fmt(items)} has {len(items)} entries but the data has {rank} spatial "
            f"axes ({rank}D); give exactly one entry per spatial axis"
        )
    for axis, item in enumerate(items):
        if not _is_int(item):
            raise ConfigurationError(
                f"{name} {_fmt(items)} must hold integers; axis {axis} has {_fmt(item)}"
            )
    return tuple(int(item) for item in items)


def _positive_tuple(value: Any, name: str, rank: int | None) -> tuple[int, ...]:
    result = _int_tuple(value, name, rank)
    if len(result) == 0:
        raise ConfigurationError(f"{name} {_fmt(value)} must have at least one spatial axis")
    for axis, item in enumerate(result):
        if item < 1:
            raise ConfigurationError(
                f"{name} {_fmt(result)} must be positive on every axis; axis {axis} has {item}"
            )
    return result


def _window_overlap(
    window: IntOrSeq, overlap: IntOrSeq, rank: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate window and overlap for ``rank`` spatial axes (0 <= overlap < window)."""
    win = _positive_tuple(window, "window", rank)
    ovl = _int_tuple(overlap, "overlap", rank)
    for axis, (o, w) in enumerate(zip(ovl, win)):
        if o < 0:
            raise ConfigurationError(
                f"overlap {_fmt(ovl)} must be >= 0 on every axis; axis {axis} has overlap {o}"
            )
        if o >= w:
            raise ConfigurationError(
                f"overlap {_fmt(ovl)} must be smaller than the patch/window {_fmt(win)} on "
                f"every axis; axis {axis} has overlap {o} >= {w}"
            )
    return win, ovl


def _spatial_rank(three_dim: bool) -> int:
    if not isinstance(three_dim, (bool, np.bool_)):
        raise ConfigurationError(f"three_dim must be True or False, got {three_dim!r}")
    return 3 if three_dim else 2


def _float_dtype(dtype: DTypeLike, name: str = "dtype") -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise ConfigurationError(f"{name} {dtype!r} is not a NumPy dtype") from None
    if not np.issubdtype(resolved, np.floating):
        raise ConfigurationError(f"{name} must be a floating dtype, got {resolved}")
    return resolved


def _check_weighting(weighting: str) -> str:
    if weighting not in _WEIGHTINGS:
        raise ConfigurationError(
            f"weighting {weighting!r} is not supported; use one of {', '.join(_WEIGHTINGS)}"
        )
    return "constant" if weighting == "mean" else weighting


# --------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------


def _axis_starts(length: int, window: int, overlap: int) -> list[int]:
    stride = window - overlap
    steps = max(1, -(-(length - overlap) // stride))  # integer ceil
    last = max(0, length - window)
    return [min(i * stride, last) for i in range(steps)]


def grid_positions(
    image_size: Sequence[int], window: IntOrSeq, overlap: IntOrSeq
) -> list[tuple[int, ...]]:
    """Start coordinates of the grid patches, in grid order (x-major, z fastest).

    Shared by slicing and merging, so callers can crop patches lazily instead of
    materialising them all.

    Args:
        image_size: Spatial image shape, e.g. ``(x, y, z)``; its length sets the rank.
        window: Patch size per spatial axis (or one int for all axes).
        overlap: Overlap in voxels between neighbouring patches per axis (or one int);
            ``0 <= overlap < window``.

    Returns:
        One tuple of start indices per patch. A patch covers
        ``[start, start + window)`` clipped to the image.

    Raises:
        ConfigurationError: For invalid sizes, mismatching lengths or ``overlap >= window``.

    Example:
        >>> grid_positions((16,), (5,), (2,))
        [(0,), (3,), (6,), (9,), (11,)]
        >>> len(grid_positions((16, 16, 16), 4, 0))
        64
    """
    size = _positive_tuple(image_size, "image_size", None)
    win, ovl = _window_overlap(window, overlap, len(size))
    per_axis = [_axis_starts(L, w, o) for L, w, o in zip(size, win, ovl)]
    return list(itertools.product(*per_axis))


def _window_slices(start: Sequence[int], window: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(s, s + w) for s, w in zip(start, window))


# --------------------------------------------------------------------------------------
# Slicing
# --------------------------------------------------------------------------------------


def slice_matrix(
    array: np.ndarray, window: IntOrSeq, overlap: IntOrSeq, three_dim: bool
) -> list[np.ndarray]:
    """Cut an array into grid patches (views, no copies).

    Args:
        array: Channels-last array ``(x, y[, z], ...)``; trailing axes are carried along.
        window: Patch size per spatial axis (2 entries for 2D, 3 for 3D, or one int).
        overlap: Overlap per spatial axis, ``0 <= overlap < window``.
        three_dim: Whether the first three (else two) axes are spatial.

    Returns:
        List of views into ``array`` in grid order (see :func:`grid_positions`). A patch is
        smaller than ``window`` only along axes where the image itself is smaller; pad it with
        :func:`pad_patch`.

    Example:
        >>> patches = slice_matrix(np.zeros((16, 16, 16, 1)), (5, 5, 5), (2, 2, 2), True)
        >>> len(patches), patches[0].shape
        (125, (5, 5, 5, 1))
    """
    rank = _spatial_rank(three_dim)
    array = np.asarray(array)
    if array.ndim < rank:
        raise DataError(
            f"slice_matrix needs an array with at least {rank} spatial axes ({rank}D), "
            f"got shape {array.shape}"
        )
    win, ovl = _window_overlap(window, overlap, rank)
    positions = grid_positions(array.shape[:rank], win, ovl)
    return [array[_window_slices(start, win)] for start in positions]


def slice_2Dmatrix(array: np.ndarray, window: IntOrSeq, overlap: IntOrSeq) -> list[np.ndarray]:
    """2D form of :func:`slice_matrix` (``array`` is ``(x, y, ...)``)."""
    return slice_matrix(array, window, overlap, three_dim=False)


def slice_3Dmatrix(array: np.ndarray, window: IntOrSeq, overlap: IntOrSeq) -> list[np.ndarray]:
    """3D form of :func:`slice_matrix` (``array`` is ``(x, y, z, ...)``)."""
    return slice_matrix(array, window, overlap, three_dim=True)


# --------------------------------------------------------------------------------------
# Padding and cropping
# --------------------------------------------------------------------------------------


def pad_patch(
    patch: np.ndarray,
    patch_shape: Sequence[int],
    return_slicer: bool = False,
    value: float = 0,
) -> np.ndarray | tuple[np.ndarray, tuple[slice, ...]]:
    """Pad the spatial axes of a batch up to ``patch_shape`` (never crops).

    Padding is symmetric (floor before, ceil after) with one constant ``value``. MIScnn used
    NumPy's ``"minimum"`` mode, i.e. the minimum of each padded line, which made padded
    image values data-dependent and could turn padded one-hot voxels into all-zero or
    background vectors depending on the line; a constant is predictable and the padded
    region is cropped away again before merging anyway.

    Args:
        patch: Batch ``(N, x, y[, z], C)``.
        patch_shape: Target spatial shape, one entry per spatial axis.
        return_slicer: Also return the slicer that undoes the padding.
        value: Constant pad value.

    Returns:
        The padded batch, and with ``return_slicer`` a tuple ``(padded, slicer)`` where
        ``slicer`` is a tuple of slices over ``(N, x, y[, z], C)`` (channels-last; MIScnn's
        slicer was a channel-first list) for :func:`crop_patch`.

    Example:
        >>> padded, slicer = pad_patch(np.ones((1, 16, 16, 1)), (8, 20), return_slicer=True)
        >>> padded.shape, slicer[2]
        ((1, 16, 20, 1), slice(2, 18, None))
    """
    patch = np.asarray(patch)
    target = _positive_tuple(patch_shape, "patch_shape", None)
    rank = len(target)
    if patch.ndim != rank + 2:
        raise ShapeMismatchError(
            f"pad_patch expects a batch (N, *spatial, C) with {rank} spatial axes to match "
            f"patch_shape {_fmt(target)}, got an array of shape {patch.shape}"
        )
    pad_width = [(0, 0)]
    slicer = [slice(None)]
    for length, wanted in zip(patch.shape[1:-1], target):
        total = max(0, wanted - length)
        before = total // 2
        pad_width.append((before, total - before))
        slicer.append(slice(before, before + length))
    pad_width.append((0, 0))
    slicer.append(slice(None))
    padded = np.pad(patch, pad_width, mode="constant", constant_values=value)
    if return_slicer:
        return padded, tuple(slicer)
    return padded


def crop_patch(patch: np.ndarray, slicer: Sequence[slice]) -> np.ndarray:
    """Undo :func:`pad_patch`: crop the spatial axes of a batch with its slicer.

    The batch and channel axes are always kept whole, so a slicer obtained while padding
    the image batch also crops the prediction batch (which has a different channel count).
    Neither argument is modified.

    Args:
        patch: Batch ``(N, x, y[, z], C)``.
        slicer: Slicer returned by ``pad_patch(..., return_slicer=True)``.

    Returns:
        A view of ``patch`` with the padding removed.

    Example:
        >>> padded, slicer = pad_patch(np.ones((2, 3, 4, 1)), (6, 4), return_slicer=True)
        >>> crop_patch(padded, slicer).shape
        (2, 3, 4, 1)
    """
    patch = np.asarray(patch)
    items = tuple(slicer)
    if len(items) != patch.ndim:
        raise ShapeMismatchError(
            f"crop_patch got a slicer with {len(items)} entries for a batch of shape "
            f"{patch.shape}; the slicer must come from pad_patch on a batch of the same rank"
        )
    if not all(isinstance(item, slice) for item in items):
        raise ConfigurationError(f"slicer must hold slice objects, got {items!r}")
    return patch[(slice(None),) + items[1:-1] + (slice(None),)]


# --------------------------------------------------------------------------------------
# Importance weighting and merging
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _cached_gaussian(window: tuple[int, ...], sigma_scale: float, dtype: np.dtype) -> np.ndarray:
    rank = len(window)
    # Built in log space so the maximum is exactly 1 even when sigma is tiny.
    log_map = np.zeros(window, dtype=np.float64)
    for axis, w in enumerate(window):
        sigma = sigma_scale * w
        coords = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
        shape = [1] * rank
        shape[axis] = w
        log_map = log_map + (-0.5 * (coords / sigma) ** 2).reshape(shape)
    log_map -= log_map.max()
    weights = np.exp(log_map).astype(dtype)
    positive = weights > 0
    if not positive.all():
        # Underflow far from the centre: keep every weight positive so no voxel divides by 0.
        weights[~positive] = weights[positive].min()
    weights.setflags(write=False)
    return weights


def gaussian_importance_map(
    window: Sequence[int], sigma_scale: float = 1.0 / 8, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """nnU-Net-style Gaussian importance weights for one patch.

    ``sigma = sigma_scale * window`` per axis, centred on the geometric window centre
    ``(w - 1) / 2`` (exactly symmetric, also for even windows), normalised to a maximum of 1;
    values that underflow to 0 are replaced by the smallest positive value. Results are cached
    per ``(window, sigma_scale, dtype)`` and returned read-only.

    Args:
        window: Patch size per spatial axis.
        sigma_scale: Standard deviation as a fraction of the window size.
        dtype: Floating dtype of the map.

    Returns:
        Read-only array of shape ``window``.

    Example:
        >>> w = gaussian_importance_map((9, 9))
        >>> float(w.max()), float(w[4, 4])
        (1.0, 1.0)
    """
    win = _positive_tuple(window, "window", None)
    if not isinstance(sigma_scale, (int, float, np.integer, np.floating)) or isinstance(
        sigma_scale, (bool, np.bool_)
    ):
        raise ConfigurationError(f"sigma_scale must be a positive number, got {sigma_scale!r}")
    if not (math.isfinite(float(sigma_scale)) and float(sigma_scale) > 0):
        raise ConfigurationError(f"sigma_scale must be a positive number, got {sigma_scale!r}")
    return _cached_gaussian(win, float(sigma_scale), _float_dtype(dtype))


class PatchAccumulator:
    """Weighted merging of patch predictions into one image (sum of weights normalisation).

    Two preallocated buffers are kept: the weighted sum of predictions ``(*image_size, C)``
    and the sum of weights ``image_size`` (spatial only), so memory stays about twice the
    output. Patches can be added in any order; the result does not depend on it.

    A patch added at ``start`` has the spatial shape of ``window``, or of the image along axes
    where the image is smaller than the window (a grid patch, or a padded patch after
    :func:`crop_patch`). A full-window patch along such an axis is taken to be padded
    symmetrically as :func:`pad_patch` does, and only its centre part, which lies inside the
    image, is used. Parts of a patch past the image end are clipped. The weights of a patch are
    the matching part of the window's weight map, so cropping before or after merging gives the
    same result.

    Args:
        image_size: Spatial shape of the merged image.
        n_channels: Channels per voxel (e.g. classes).
        window: Patch size per spatial axis (or one int).
        weighting: ``"gaussian"`` (nnU-Net importance weighting, default) or ``"constant"``
            (plain mean; ``"mean"`` is an alias).
        dtype: Floating dtype of the buffers and of the result.
        sigma_scale: Gaussian sigma as a fraction of the window (``weighting="gaussian"``).

    Example:
        >>> image = np.random.default_rng(0).random((16, 16, 16, 2))
        >>> acc = PatchAccumulator(image.shape[:3], 2, (8, 8, 8))
        >>> for start in grid_positions(image.shape[:3], (8, 8, 8), (4, 4, 4)):
        ...     acc.add(image[tuple(slice(s, s + 8) for s in start)], start)
        >>> bool(np.allclose(acc.result(), image, atol=1e-6))
        True
    """

    def __init__(
        self,
        image_size: Sequence[int],
        n_channels: int,
        window: IntOrSeq,
        weighting: str = "gaussian",
        dtype: DTypeLike = np.float32,
        sigma_scale: float = 1.0 / 8,
    ) -> None:
        self.image_size = _positive_tuple(image_size, "image_size", None)
        self.window = _positive_tuple(window, "window", len(self.image_size))
        if not _is_int(n_channels) or n_channels < 1:
            raise ConfigurationError(f"n_channels must be a positive integer, got {n_channels!r}")
        self.n_channels = int(n_channels)
        self.weighting = _check_weighting(weighting)
        self.dtype = _float_dtype(dtype)
        self._weight_map = (
            gaussian_importance_map(self.window, sigma_scale, self.dtype)
            if self.weighting == "gaussian"
            else None
        )
        self._values = np.zeros(self.image_size + (self.n_channels,), dtype=self.dtype)
        self._weights = np.zeros(self.image_size, dtype=self.dtype)
        self._finalized = False

    def __repr__(self) -> str:
        return (
            f"PatchAccumulator(image_size={self.image_size}, n_channels={self.n_channels}, "
            f"window={self.window}, weighting={self.weighting!r}, dtype={self.dtype})"
        )

    @property
    def weighted_sum(self) -> np.ndarray:
        """Read-only view of the weighted prediction sum ``(*image_size, C)``."""
        view = self._values.view()
        view.setflags(write=False)
        return view

    @property
    def weight_sum(self) -> np.ndarray:
        """Read-only view of the weight sum ``image_size``."""
        view = self._weights.view()
        view.setflags(write=False)
        return view

    def _placement(
        self, spatial: tuple[int, ...], start: tuple[int, ...]
    ) -> tuple[tuple[slice, ...], tuple[slice, ...], tuple[slice, ...]]:
        """Slices into the patch, the image and the window weight map for one patch."""
        src, dst, wmap = [], [], []
        for axis, (size, length, w, st) in enumerate(
            zip(spatial, self.image_size, self.window, start)
        ):
            if size != w and not (length < w and size == length):
                raise ShapeMismatchError(
                    f"patch spatial shape {spatial} does not fit window {self.window} and "
                    f"image_size {self.image_size}: axis {axis} has {size}, expected {w}"
                    + (f" or {length} (the image size)" if length < w else "")
                )
            offset = (w - size) // 2  # a cropped patch is the centre of a padded window
            if size > length:
                if st != 0:
                    raise ShapeMismatchError(
                        f"a padded patch (axis {axis}: patch {size} > image {length}) must start "
                        f"at 0 on that axis, got start {start}"
                    )
                p0, d0, d1 = (size - length) // 2, 0, length
            else:
                if not 0 <= st < length:
                    raise ShapeMismatchError(
                        f"patch start {start} lies outside the image {self.image_size} "
                        f"on axis {axis}"
                    )
                p0, d0, d1 = 0, st, min(st + size, length)
            p1 = p0 + (d1 - d0)
            src.append(slice(p0, p1))
            dst.append(slice(d0, d1))
            wmap.append(slice(offset + p0, offset + p1))
        return tuple(src), tuple(dst), tuple(wmap)

    def add(self, patch: np.ndarray, start: Sequence[int]) -> None:
        """Add one patch prediction ``(*window, C)`` whose window starts at ``start``."""
        if self._finalized:
            raise ConfigurationError(
                "this PatchAccumulator was finalised by result(copy=False); create a new one"
            )
        patch = np.asarray(patch)
        rank = len(self.image_size)
        if patch.ndim != rank + 1 or patch.shape[-1] != self.n_channels:
            raise ShapeMismatchError(
                f"patch of shape {patch.shape} does not match (*spatial, C) with {rank} spatial "
                f"axes and C={self.n_channels}"
            )
        start_t = _int_tuple(start, "start", rank)
        src, dst, wmap = self._placement(patch.shape[:rank], start_t)
        if self._weight_map is None:
            self._values[dst] += patch[src]
            self._weights[dst] += 1
        else:
            weights = self._weight_map[wmap]
            self._values[dst] += patch[src] * weights[..., None]
            self._weights[dst] += weights

    def add_batch(
        self, patches: Sequence[np.ndarray] | np.ndarray, starts: Sequence[Sequence[int]]
    ) -> None:
        """Add a batch of patches ``(N, *window, C)`` with their ``N`` start coordinates."""
        starts = list(starts)
        if len(patches) != len(starts):
            raise ShapeMismatchError(
                f"add_batch got {len(patches)} patches but {len(starts)} start coordinates"
            )
        for patch, start in zip(patches, starts):
            self.add(patch, start)

    def result(self, copy: bool = True) -> np.ndarray:
        """Merged image ``(*image_size, C)``: weighted sum divided by the sum of weights.

        Args:
            copy: With ``False`` the value buffer is normalised in place and returned (no
                extra output-sized allocation); the accumulator then accepts no more patches.

        Raises:
            DataError: If some voxels were covered by no patch.
        """
        if self._finalized:
            return self._values
        uncovered = self._weights == 0
        if uncovered.any():
            first = tuple(int(i) for i in np.argwhere(uncovered)[0])
            raise DataError(
                f"{int(uncovered.sum())} of {uncovered.size} voxels of image_size "
                f"{self.image_size} were covered by no patch (first at {first}); add patches "
                f"covering the whole image before calling result()"
            )
        if copy:
            return self._values / self._weights[..., None]
        np.divide(self._values, self._weights[..., None], out=self._values)
        self._finalized = True
        return self._values


def concat_matrices(
    patches: Sequence[np.ndarray] | np.ndarray,
    image_size: Sequence[int],
    window: IntOrSeq,
    overlap: IntOrSeq,
    three_dim: bool,
    weighting: str = "gaussian",
    dtype: DTypeLike | None = None,
) -> np.ndarray:
    """Merge grid patches (in :func:`slice_matrix` order) back into one image.

    Overlaps are resolved by a weighted mean (see :class:`PatchAccumulator`), not by MIScnn's
    order-dependent pairwise averaging. Patches may be the grid crops or padded to the full
    window by :func:`pad_patch` (the padding is then ignored).

    Args:
        patches: Sequence or array of patches ``(*window, ...)`` in grid order.
        image_size: Spatial image shape; extra trailing entries (channels) are ignored.
        window: Patch size per spatial axis.
        overlap: Overlap per spatial axis used for slicing.
        three_dim: Whether the data is 3D.
        weighting: ``"gaussian"`` (default), ``"constant"`` or its alias ``"mean"``.
        dtype: Result dtype; default float64 for float64 patches, else float32.

    Returns:
        Merged array ``(*image_size[:rank], ...)`` with the patches' trailing axes.

    Example:
        >>> image = np.arange(16 * 16, dtype=float).reshape(16, 16, 1)
        >>> patches = slice_matrix(image, (5, 5), (2, 2), three_dim=False)
        >>> bool(np.allclose(concat_matrices(patches, image.shape, (5, 5), (2, 2), False), image))
        True
    """
    rank = _spatial_rank(three_dim)
    size = _positive_tuple(image_size, "image_size", None)
    if len(size) < rank:
        raise ConfigurationError(
            f"image_size {_fmt(size)} needs at least {rank} spatial entries for "
            f"{'3D' if three_dim else '2D'} data"
        )
    size = size[:rank]
    win, ovl = _window_overlap(window, overlap, rank)
    positions = grid_positions(size, win, ovl)
    if len(patches) != len(positions):
        raise ShapeMismatchError(
            f"concat_matrices got {len(patches)} patches but the grid of image_size {size} "
            f"with window {win} and overlap {ovl} has {len(positions)}"
        )
    first = np.asarray(patches[0])
    if first.ndim < rank:
        raise ShapeMismatchError(
            f"patches must have at least {rank} spatial axes, got a patch of shape {first.shape}"
        )
    trailing = first.shape[rank:]
    n_channels = math.prod(trailing)
    if dtype is None:
        dtype = np.float64 if first.dtype == np.float64 else np.float32
    accumulator = PatchAccumulator(size, n_channels, win, weighting=weighting, dtype=dtype)
    for index, (patch, start) in enumerate(zip(patches, positions)):
        patch = np.asarray(patch)
        if patch.ndim != rank + len(trailing) or patch.shape[rank:] != trailing:
            raise ShapeMismatchError(
                f"patch {index} has shape {patch.shape}; all patches must share the trailing "
                f"shape {trailing} of patch 0"
            )
        accumulator.add(patch.reshape(patch.shape[:rank] + (n_channels,)), start)
    return accumulator.result(copy=False).reshape(size + trailing)


def concat_2Dmatrices(
    patches: Sequence[np.ndarray] | np.ndarray,
    image_size: Sequence[int],
    window: IntOrSeq,
    overlap: IntOrSeq,
    weighting: str = "gaussian",
    dtype: DTypeLike | None = None,
) -> np.ndarray:
    """2D form of :func:`concat_matrices`."""
    return concat_matrices(patches, image_size, window, overlap, False, weighting, dtype)


def concat_3Dmatrices(
    patches: Sequence[np.ndarray] | np.ndarray,
    image_size: Sequence[int],
    window: IntOrSeq,
    overlap: IntOrSeq,
    weighting: str = "gaussian",
    dtype: DTypeLike | None = None,
) -> np.ndarray:
    """3D form of :func:`concat_matrices`."""
    return concat_matrices(patches, image_size, window, overlap, True, weighting, dtype)
