"""Data augmentation for training batches, built on batchgenerators.

:class:`Data_Augmentation` keeps MIScnn's constructor, configuration attribute names and
defaults, and its transform order (mirror, contrast, brightness, gamma, Gaussian noise,
spatial), with these fixes:

* All configuration is held per instance; nothing is shared through class attributes.
* Runs are reproducible per instance (``seed``) and never touch the global random state.
* Out-of-image voxels created by rotation, scaling or zoom-out repeat the nearest image
  voxel (``config_border_mode_data="nearest"``) instead of a constant 0, which after z-score
  normalisation is the mean intensity, not the background. Segmentations are filled with
  background (label 0), and one-hot segmentations stay valid one-hot there.
* Segmentations may be label maps (preferred) or one-hot; labels are never interpolated.
* Mirroring has a per-axis probability (``config_mirror_p``).

batchgenerators is imported on first use, so importing this module stays fast.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any, Sequence

import numpy as np

from miseg.errors import ConfigurationError, DataError, LabelError, ShapeMismatchError

__all__ = ["Data_Augmentation", "flip_axes"]

# batchgenerators draws from the global ``np.random`` and ``random`` states. Runs swap in a
# per-call seeded state and restore the caller's afterwards; the lock keeps concurrent runs
# (e.g. threaded data loading) from interleaving inside that window.
_GLOBAL_RANDOM_STATE_LOCK = threading.Lock()

_SCIPY_BORDER_MODES = {
    "nearest": "edge",
    "constant": "constant",
    "grid-constant": "constant",
    "reflect": "symmetric",
    "grid-mirror": "symmetric",
    "mirror": "reflect",
    "wrap": "wrap",
    "grid-wrap": "wrap",
}

_CONSTRUCTOR_FIELDS = (
    "cycles",
    "scaling",
    "rotations",
    "elastic_deform",
    "mirror",
    "brightness",
    "contrast",
    "gamma",
    "gaussian_noise",
)


def flip_axes(three_dim: bool) -> list[int]:
    """Spatial axes of a channels-last batch array, as used for test-time flipping.

    Args:
        three_dim: Whether the batch is 3D ``(N, x, y, z, C)`` or 2D ``(N, x, y, C)``.

    Returns:
        ``[1, 2, 3]`` for 3D, ``[1, 2]`` for 2D.

    Example:
        >>> flip_axes(False)
        [1, 2]
    """
    return [1, 2, 3] if three_dim else [1, 2]


class _AxisMirror:
    """Flip each listed spatial axis of every sample with probability ``p`` (channel-first)."""

    def __init__(self, axes: Sequence[int], p: float) -> None:
        self.axes = tuple(axes)
        self.p = p

    def __call__(self, **data_dict: Any) -> dict[str, Any]:
        data = data_dict["data"]
        seg = data_dict.get("seg")
        for b in range(data.shape[0]):
            for axis in self.axes:
                if np.random.uniform() < self.p:
                    data[b] = np.flip(data[b], axis=axis + 1).copy()
                    if seg is not None:
                        seg[b] = np.flip(seg[b], axis=axis + 1).copy()
        return data_dict

    def __repr__(self) -> str:
        return f"_AxisMirror(axes={self.axes}, p={self.p})"


class Data_Augmentation:
    """Random intensity and spatial augmentation of channels-last batches.

    The constructor flags choose the transforms; the ``config_*`` attributes (set on the
    instance after construction, as in MIScnn) tune them:

    ========================================  ====================  ===========================
    attribute                                 default               meaning
    ========================================  ====================  ===========================
    ``config_p_per_sample``                   0.15                  probability per sample of
                                                                    contrast, brightness, gamma,
                                                                    noise, elastic, rotation and
                                                                    scaling (each drawn alone)
    ``config_mirror_axes``                    (0, 1, 2)             spatial axes to mirror (2 is
                                                                    ignored for 2D)
    ``config_mirror_p``                       0.5                   flip probability per axis
    ``config_contrast_range``                 (0.3, 3.0)            contrast factor
    ``config_brightness_range``               (0.5, 2)              brightness multiplier
    ``config_gamma_range``                    (0.7, 1.5)            gamma (mean/std retained)
    ``config_gaussian_noise_range``           (0.0, 0.05)           batchgenerators noise_variance
    ``config_elastic_deform_alpha``/``sigma`` (0, 900) / (9, 13)    elastic deformation
    ``config_rotations_angleX/Y/Z``           ±15° in radians       rotation (2D: X only)
    ``config_scaling_range``                  (0.85, 1.25)          scale factor (>1 zooms out)
    ``config_border_mode_data``               ``"nearest"``         scipy ``map_coordinates``
                                                                    mode for image voxels taken
                                                                    from outside the image
    ``config_border_cval_data``               0.0                   fill value for mode
                                                                    ``"constant"``
    ``coloraug_per_channel``                  True                  own factor per channel
    ``config_contrast_preserverange``         True                  clip contrast to input range
    ``cropping``/``cropping_patch_shape``     False / None          random crops of that shape
    ``infaug``/``infaug_flip_current``        False / None          test-time flipping (see
                                                                    :meth:`run_infaug`)
    ``infaug_flip_list``                      [1, 2, 3]             candidate flip axes
    ``seg_augmentation``                      True                  False: segmentation is passed
                                                                    through unchanged
    ========================================  ====================  ===========================

    Out-of-image segmentation voxels are background (label 0).

    Randomness: batchgenerators draws from the global ``np.random`` and ``random`` states.
    Each :meth:`run` draws one seed from the instance's generator, runs the transforms under
    global states seeded with it, and then restores the caller's global states, so results
    depend only on ``seed`` and the number of previous runs, and ``np.random.seed`` /
    ``random.seed`` elsewhere neither influence nor are influenced by augmentation. Runs are
    serialised by a module lock while the global states are swapped. Copies (``copy.deepcopy``,
    pickling to worker processes) carry the generator state and so repeat the same sequence;
    give each worker its own instance and seed.

    Args:
        cycles: Augmented copies made of every input item (``N`` items give ``N*cycles``).
        scaling: Random scaling.
        rotations: Random rotation.
        elastic_deform: Random elastic deformation.
        mirror: Random mirroring.
        brightness: Random multiplicative brightness.
        contrast: Random contrast.
        gamma: Random gamma.
        gaussian_noise: Additive Gaussian noise.
        seed: ``int`` or ``numpy.random.Generator`` making the runs reproducible; ``None``
            draws fresh entropy.

    Example:
        >>> aug = Data_Augmentation(cycles=2, mirror=True, seed=0)
        >>> img = np.random.default_rng(0).normal(size=(1, 16, 16, 1))
        >>> seg = np.zeros((1, 16, 16, 1), dtype=np.uint8)
        >>> img_aug, seg_aug = aug.run(img, seg)
        >>> img_aug.shape, img_aug.dtype, seg_aug.dtype
        ((2, 16, 16, 1), dtype('float32'), dtype('uint8'))
    """

    flip_axes = staticmethod(flip_axes)

    def __init__(
        self,
        cycles: int = 1,
        scaling: bool = True,
        rotations: bool = True,
        elastic_deform: bool = False,
        mirror: bool = False,
        brightness: bool = True,
        contrast: bool = True,
        gamma: bool = True,
        gaussian_noise: bool = True,
        *,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if isinstance(cycles, (bool, np.bool_)) or not isinstance(cycles, (int, np.integer)):
            raise ConfigurationError(f"cycles must be a positive int, got {cycles!r}.")
        if cycles < 1:
            raise ConfigurationError(f"cycles must be >= 1, got {cycles!r}.")
        flags = {
            "scaling": scaling,
            "rotations": rotations,
            "elastic_deform": elastic_deform,
            "mirror": mirror,
            "brightness": brightness,
            "contrast": contrast,
            "gamma": gamma,
            "gaussian_noise": gaussian_noise,
        }
        for name, value in flags.items():
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigurationError(f"{name} must be a bool, got {value!r}.")
        if isinstance(seed, np.random.Generator):
            self._rng = seed
        elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
            if seed is not None and seed < 0:
                raise ConfigurationError(f"seed must be a non-negative int, got {seed!r}.")
            self._rng = np.random.default_rng(seed)
        else:
            raise ConfigurationError(
                f"seed must be None, an int or a numpy.random.Generator, got {seed!r}."
            )

        self.cycles = int(cycles)
        self.scaling = bool(scaling)
        self.rotations = bool(rotations)
        self.elastic_deform = bool(elastic_deform)
        self.mirror = bool(mirror)
        self.brightness = bool(brightness)
        self.contrast = bool(contrast)
        self.gamma = bool(gamma)
        self.gaussian_noise = bool(gaussian_noise)

        self.config_p_per_sample = 0.15
        self.config_mirror_axes = (0, 1, 2)
        self.config_mirror_p = 0.5
        self.config_contrast_range = (0.3, 3.0)
        self.config_brightness_range = (0.5, 2)
        self.config_gamma_range = (0.7, 1.5)
        self.config_gaussian_noise_range = (0.0, 0.05)
        self.config_elastic_deform_alpha = (0.0, 900.0)
        self.config_elastic_deform_sigma = (9.0, 13.0)
        self.config_rotations_angleX = (-15.0 / 360 * 2.0 * math.pi, 15.0 / 360 * 2.0 * math.pi)
        self.config_rotations_angleY = (-15.0 / 360 * 2.0 * math.pi, 15.0 / 360 * 2.0 * math.pi)
        self.config_rotations_angleZ = (-15.0 / 360 * 2.0 * math.pi, 15.0 / 360 * 2.0 * math.pi)
        self.config_scaling_range = (0.85, 1.25)
        self.config_border_mode_data = "nearest"
        self.config_border_cval_data = 0.0
        self.coloraug_per_channel = True
        self.config_contrast_preserverange = True
        self.cropping = False
        self.cropping_patch_shape: tuple[int, ...] | None = None
        self.infaug = False
        self.infaug_flip_current: int | None = None
        self.infaug_flip_list = [1, 2, 3]
        self.seg_augmentation = True

    # ------------------------------------------------------------------ identity

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in _CONSTRUCTOR_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Data_Augmentation):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((Data_Augmentation, self._fields()))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in _CONSTRUCTOR_FIELDS)
        return f"Data_Augmentation({args})"

    # ------------------------------------------------------------------ public API

    def run(
        self,
        img_data: np.ndarray,
        seg_data: np.ndarray | None,
        patch_shape: Sequence[int] | None = None,
        *,
        seed: int | None = None,
        cycles: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Augment a batch ``cycles`` times.

        Args:
            img_data: Images ``(N, x, y, C)`` (2D) or ``(N, x, y, z, C)`` (3D).
            seg_data: Segmentations of the same spatial shape, either label maps
                ``(N, ..., 1)`` (preferred; any integer dtype) or one-hot ``(N, ..., classes)``;
                or ``None``. With ``seg_augmentation=False`` any array with ``N`` items, which
                is returned unchanged (repeated ``cycles`` times).
            patch_shape: Spatial output shape. The spatial transform then produces a centre
                crop of this shape, so a caller can cut a region slightly larger than the
                patch and let rotations draw image content into the corners. Images smaller
                than the patch are padded with the data border mode (segmentation: 0). It
                takes precedence over ``cropping``.
            seed: Seed of this call alone (instead of the next draw of the instance's
                generator). The pipeline passes one per batch item, so a batch is a pure
                function of its index, whichever worker process builds it.
            cycles: Number of augmented copies for this call (default: ``self.cycles``).

        Returns:
            ``(img_aug, seg_aug)``: ``N * cycles`` items (cycle-major: the first ``N`` items
            are the first cycle), channels-last; the image is float32, label maps keep their
            dtype and values (plus background 0 where image content ran out), one-hot input
            comes back as valid one-hot of its dtype; ``seg_aug`` is ``None`` for ``None``.

        Raises:
            DataError: The image is not 4D/5D or holds NaN/Inf.
            ShapeMismatchError: Image and segmentation shapes disagree.
            LabelError: A label map holds non-integer values or a one-hot array is invalid.
            ConfigurationError: A configuration attribute or ``patch_shape`` is invalid.

        Example:
            >>> aug = Data_Augmentation(seed=1)
            >>> img = np.zeros((2, 24, 24, 16, 1), dtype=np.float32)
            >>> out, _ = aug.run(img, None, patch_shape=(16, 16, 16))
            >>> out.shape
            (2, 16, 16, 16, 1)
        """
        img = np.asarray(img_data)
        if img.ndim not in (4, 5) or img.shape[0] < 1 or img.shape[-1] < 1:
            raise DataError(
                "img_data must be a channels-last batch (N, x, y, C) or (N, x, y, z, C) with "
                f"N >= 1, got shape {img.shape}."
            )
        if not np.issubdtype(img.dtype, np.number) or np.issubdtype(img.dtype, np.complexfloating):
            raise DataError(f"img_data must be a real numeric array, got dtype {img.dtype}.")
        if not np.all(np.isfinite(img)):
            raise DataError("img_data holds NaN or Inf values; augmentation would spread them.")
        dim = img.ndim - 2
        n = img.shape[0]
        spatial = img.shape[1:-1]

        cfg = self._checked_config(dim)
        n_cycles = self.cycles if cycles is None else int(cycles)
        if n_cycles < 1:
            raise ConfigurationError(f"cycles must be a positive int, got {cycles!r}.")
        if seg_data is not None and not self.seg_augmentation:
            seg_pass = np.asarray(seg_data)
            if seg_pass.ndim == 0 or seg_pass.shape[0] != n:
                raise ShapeMismatchError(
                    f"seg_data must hold one item per image ({n}), got shape {seg_pass.shape}."
                )
            seg_out_passthrough: np.ndarray | None = np.concatenate([seg_pass] * n_cycles)
            seg_data = None
        else:
            seg_out_passthrough = None

        seg_labels, seg_kind, seg_dtype, n_classes = self._prepare_seg(seg_data, img)
        if patch_shape is not None:
            out_shape = self._checked_shape("patch_shape", patch_shape, dim)
            random_crop = False
        elif self.cropping:
            if self.cropping_patch_shape is None:
                raise ConfigurationError(
                    "cropping=True needs cropping_patch_shape (spatial patch size), got None."
                )
            out_shape = self._checked_shape("cropping_patch_shape", self.cropping_patch_shape, dim)
            random_crop = True
        else:
            out_shape = tuple(spatial)
            random_crop = False
        spatial_needed = (
            self.rotations or self.scaling or self.elastic_deform or out_shape != tuple(spatial)
        )

        # Channel-first working copies, one block per cycle (the transforms work in place).
        data = np.moveaxis(img, -1, 1).astype(np.float32)
        data = np.ascontiguousarray(np.concatenate([data] * n_cycles))
        seg = None
        if seg_labels is not None:
            seg = np.concatenate([seg_labels[:, None].astype(np.float32)] * n_cycles)
        data, seg = self._pad_to(data, seg, out_shape, cfg)

        transforms = self._build_transforms(cfg, dim, out_shape, random_crop, spatial_needed)

        def apply() -> dict[str, Any]:
            from batchgenerators.transforms.abstract_transforms import Compose

            batch = {"data": data} if seg is None else {"data": data, "seg": seg}
            return Compose(transforms)(**batch)

        result = self._call_seeded(apply, seed)
        img_aug = np.moveaxis(result["data"], 1, -1).astype(np.float32, copy=False)
        img_aug = np.ascontiguousarray(img_aug)

        if seg_out_passthrough is not None:
            return img_aug, seg_out_passthrough
        if seg_labels is None:
            return img_aug, None
        labels = np.rint(result["seg"][:, 0])
        if seg_kind == "labels":
            seg_aug = labels.astype(seg_dtype)[..., None]
        else:
            seg_aug = np.eye(n_classes, dtype=seg_dtype)[labels.astype(np.intp)]
        return img_aug, seg_aug

    def run_infaug(self, data: np.ndarray) -> np.ndarray:
        """Flip a batch for inference-time augmentation (self-inverse).

        The flip axis is ``infaug_flip_current``. When it is ``None`` and ``infaug`` is on,
        every spatial axis is flipped (MIScnn flipped every array axis there, batch and
        channel axes included, which reordered the input channels and the output classes).
        With ``infaug`` off and no axis set, the batch is returned unchanged.

        Args:
            data: Channels-last batch ``(N, x, y[, z], C)``: images before prediction or
                predictions afterwards (flipping twice restores the orientation).

        Returns:
            The flipped batch (a new array), or ``data`` itself when nothing is flipped.

        Example:
            >>> aug = Data_Augmentation()
            >>> aug.infaug_flip_current = 1
            >>> x = np.arange(4).reshape(1, 2, 2, 1)
            >>> bool((aug.run_infaug(aug.run_infaug(x)) == x).all())
            True
        """
        data_ndim = np.ndim(data)
        axes = self.infaug_axes(max(data_ndim - 2, 0))
        if not axes:
            return data
        return np.flip(np.asarray(data), axis=axes).copy()

    def infaug_axes(self, spatial_dims: int) -> tuple[int, ...]:
        """Batch axes that :meth:`run_infaug` flips for data with ``spatial_dims`` spatial axes.

        Args:
            spatial_dims: 2 or 3.

        Returns:
            ``(infaug_flip_current,)`` when set; all spatial axes ``(1, ..., spatial_dims)``
            when it is ``None`` and ``infaug`` is on; ``()`` otherwise.

        Raises:
            ConfigurationError: ``infaug_flip_current`` is not a spatial batch axis.
        """
        axis = self.infaug_flip_current
        spatial_axes = list(range(1, spatial_dims + 1))
        if axis is None:
            return tuple(spatial_axes) if self.infaug else ()
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) or (
            int(axis) not in spatial_axes
        ):
            raise ConfigurationError(
                f"infaug_flip_current must be None or a spatial batch axis {spatial_axes} for "
                f"{spatial_dims}D data, got {axis!r}."
            )
        return (int(axis),)

    # ------------------------------------------------------------------ internals

    def _call_seeded(self, fn: Any, seed: int | None = None) -> Any:
        with _GLOBAL_RANDOM_STATE_LOCK:
            seed = int(self._rng.integers(0, 2**32)) if seed is None else int(seed) % 2**32
            np_state = np.random.get_state()
            py_state = random.getstate()
            try:
                np.random.seed(seed)
                random.seed(seed)
                return fn()
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)

    @staticmethod
    def _prepare_seg(
        seg_data: np.ndarray | None, img: np.ndarray
    ) -> tuple[np.ndarray | None, str, np.dtype | None, int]:
        """Validate the segmentation and turn it into an ``(N, ...)`` label array."""
        if seg_data is None:
            return None, "none", None, 0
        seg = np.asarray(seg_data)
        if seg.ndim != img.ndim or seg.shape[:-1] != img.shape[:-1]:
            raise ShapeMismatchError(
                f"seg_data shape {seg.shape} does not match img_data shape {img.shape} "
                "(same N and spatial shape, channels last)."
            )
        if seg.dtype == np.bool_:
            seg_num = seg.astype(np.uint8)
        elif np.issubdtype(seg.dtype, np.number) and not np.issubdtype(
            seg.dtype, np.complexfloating
        ):
            seg_num = seg
        else:
            raise LabelError(f"seg_data must be numeric, got dtype {seg.dtype}.")
        if np.issubdtype(seg_num.dtype, np.floating):
            if not np.all(np.isfinite(seg_num)):
                raise LabelError("seg_data holds NaN or Inf values.")
        if seg.shape[-1] == 1:
            if np.issubdtype(seg_num.dtype, np.floating) and np.any(seg_num != np.rint(seg_num)):
                raise LabelError(
                    "seg_data with one channel must be an integer label map, but it holds "
                    "non-integer values."
                )
            if np.abs(seg_num).max(initial=0) > 2**24:
                raise LabelError("seg_data labels must lie within +-2**24.")
            return seg_num[..., 0], "labels", seg.dtype, 0
        n_classes = seg.shape[-1]
        if not np.all((seg_num == 0) | (seg_num == 1)) or not np.all(seg_num.sum(axis=-1) == 1):
            raise LabelError(
                f"seg_data with {n_classes} channels must be one-hot (exactly one 1 per voxel); "
                "pass an integer label map (..., 1) otherwise."
            )
        return np.argmax(seg_num, axis=-1), "onehot", seg.dtype, n_classes

    @staticmethod
    def _checked_shape(name: str, value: Any, dim: int) -> tuple[int, ...]:
        try:
            shape = tuple(int(v) for v in value)
            ok = len(shape) == dim and all(
                s > 0 and float(v) == s for s, v in zip(shape, value)
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigurationError(
                f"{name} must be {dim} positive ints (spatial shape of the {dim}D data), "
                f"got {value!r}."
            )
        return shape

    @staticmethod
    def _checked_range(
        name: str, value: Any, low: float | None = None, low_open: bool = False
    ) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in value)
            ok = math.isfinite(lo) and math.isfinite(hi) and lo <= hi
        except (TypeError, ValueError):
            ok = False
        if ok and low is not None:
            ok = lo > low if low_open else lo >= low
        if not ok:
            bound = "" if low is None else f" with lower bound {'>' if low_open else '>='} {low}"
            raise ConfigurationError(
                f"{name} must be a (low, high) pair of finite numbers, low <= high{bound}; "
                f"got {value!r}."
            )
        return lo, hi

    @staticmethod
    def _checked_probability(name: str, value: Any) -> float:
        try:
            p = float(value)
            ok = 0.0 <= p <= 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigurationError(f"{name} must be a probability in [0, 1], got {value!r}.")
        return p

    def _checked_config(self, dim: int) -> dict[str, Any]:
        """Validate the (user-settable) configuration attributes for data of ``dim`` dims."""
        cycles = self.cycles
        if isinstance(cycles, (bool, np.bool_)) or not isinstance(cycles, (int, np.integer)) or (
            cycles < 1
        ):
            raise ConfigurationError(f"cycles must be a positive int, got {cycles!r}.")
        r = self._checked_range
        cfg: dict[str, Any] = {
            "p": self._checked_probability("config_p_per_sample", self.config_p_per_sample),
            "mirror_p": self._checked_probability("config_mirror_p", self.config_mirror_p),
            "contrast": r("config_contrast_range", self.config_contrast_range, 0.0),
            "brightness": r("config_brightness_range", self.config_brightness_range),
            "gamma": r("config_gamma_range", self.config_gamma_range, 0.0, low_open=True),
            "noise": r("config_gaussian_noise_range", self.config_gaussian_noise_range, 0.0),
            "alpha": r("config_elastic_deform_alpha", self.config_elastic_deform_alpha, 0.0),
            "sigma": r("config_elastic_deform_sigma", self.config_elastic_deform_sigma, 0.0, True),
            "angle_x": r("config_rotations_angleX", self.config_rotations_angleX),
            "angle_y": r("config_rotations_angleY", self.config_rotations_angleY),
            "angle_z": r("config_rotations_angleZ", self.config_rotations_angleZ),
            "scale": r("config_scaling_range", self.config_scaling_range, 0.0, low_open=True),
            "per_channel": bool(self.coloraug_per_channel),
            "preserve_range": bool(self.config_contrast_preserverange),
        }
        axes = self.config_mirror_axes
        try:
            axes = tuple(int(a) for a in axes)
            ok = all(a in (0, 1, 2) for a in axes)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigurationError(
                "config_mirror_axes must be spatial axes among (0, 1, 2), got "
                f"{self.config_mirror_axes!r}."
            )
        cfg["mirror_axes"] = tuple(sorted({a for a in axes if a < dim}))
        mode = self.config_border_mode_data
        if mode not in _SCIPY_BORDER_MODES:
            raise ConfigurationError(
                f"config_border_mode_data must be one of {sorted(_SCIPY_BORDER_MODES)}, "
                f"got {mode!r}."
            )
        try:
            cval = float(self.config_border_cval_data)
            ok = math.isfinite(cval)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigurationError(
                "config_border_cval_data must be a finite number, got "
                f"{self.config_border_cval_data!r}."
            )
        cfg["border_mode"] = mode
        cfg["border_cval"] = cval
        return cfg

    @staticmethod
    def _pad_to(
        data: np.ndarray, seg: np.ndarray | None, out_shape: tuple[int, ...], cfg: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Pad (centred) so every spatial axis is at least ``out_shape``.

        batchgenerators' crop path pads with constant 0 when a patch exceeds the image; padding
        here with the data border mode keeps both paths consistent with ``map_coordinates``.
        """
        spatial = data.shape[2:]
        if all(s >= o for s, o in zip(spatial, out_shape)):
            return data, seg
        widths = [(0, 0), (0, 0)]
        for s, o in zip(spatial, out_shape):
            extra = max(o - s, 0)
            widths.append((extra // 2, extra - extra // 2))
        np_mode = _SCIPY_BORDER_MODES[cfg["border_mode"]]
        kwargs = {"constant_values": cfg["border_cval"]} if np_mode == "constant" else {}
        data = np.pad(data, widths, mode=np_mode, **kwargs)
        if seg is not None:
            seg = np.pad(seg, widths, mode="constant", constant_values=0)
        return data, seg

    def _build_transforms(
        self,
        cfg: dict[str, Any],
        dim: int,
        out_shape: tuple[int, ...],
        random_crop: bool,
        spatial_needed: bool,
    ) -> list[Any]:
        # Built per call: constructing these objects only stores parameters (a few
        # microseconds), far below one transform pass, and it always reflects the current
        # attributes and the data's dimensionality.
        from batchgenerators.transforms.color_transforms import (
            BrightnessMultiplicativeTransform,
            ContrastAugmentationTransform,
            GammaTransform,
        )
        from batchgenerators.transforms.noise_transforms import GaussianNoiseTransform
        from batchgenerators.transforms.spatial_transforms import SpatialTransform

        p = cfg["p"]
        transforms: list[Any] = []
        if self.mirror and cfg["mirror_axes"]:
            transforms.append(_AxisMirror(cfg["mirror_axes"], cfg["mirror_p"]))
        if self.contrast:
            transforms.append(
                ContrastAugmentationTransform(
                    contrast_range=cfg["contrast"],
                    preserve_range=cfg["preserve_range"],
                    per_channel=cfg["per_channel"],
                    p_per_sample=p,
                )
            )
        if self.brightness:
            transforms.append(
                BrightnessMultiplicativeTransform(
                    multiplier_range=cfg["brightness"],
                    per_channel=cfg["per_channel"],
                    p_per_sample=p,
                )
            )
        if self.gamma:
            transforms.append(
                GammaTransform(
                    gamma_range=cfg["gamma"],
                    invert_image=False,
                    per_channel=cfg["per_channel"],
                    retain_stats=True,
                    p_per_sample=p,
                )
            )
        if self.gaussian_noise:
            transforms.append(GaussianNoiseTransform(noise_variance=cfg["noise"], p_per_sample=p))
        if spatial_needed:
            transforms.append(
                SpatialTransform(
                    patch_size=out_shape,
                    patch_center_dist_from_border=[s // 2 for s in out_shape],
                    do_elastic_deform=self.elastic_deform,
                    alpha=cfg["alpha"],
                    sigma=cfg["sigma"],
                    do_rotation=self.rotations,
                    angle_x=cfg["angle_x"],
                    angle_y=cfg["angle_y"],
                    angle_z=cfg["angle_z"],
                    do_scale=self.scaling,
                    scale=cfg["scale"],
                    border_mode_data=cfg["border_mode"],
                    border_cval_data=cfg["border_cval"],
                    order_data=3,
                    border_mode_seg="constant",
                    border_cval_seg=0,
                    order_seg=0,
                    random_crop=random_crop,
                    p_el_per_sample=p,
                    p_scale_per_sample=p,
                    p_rot_per_sample=p,
                )
            )
        return transforms
