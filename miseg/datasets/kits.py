"""KiTS19-like abdominal CT phantoms: kidneys (label 1) and kidney tumours (label 2)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from miseg.errors import ConfigurationError

__all__ = ["make_kits_phantom", "write_kits_dataset", "KITS_CLASSES"]

#: Class names of the KiTS19 label maps.
KITS_CLASSES = ("background", "kidney", "tumor")


def _check_geometry(shape: Sequence[int], spacing: Sequence[float]) -> tuple[tuple[int, ...], np.ndarray]:
    shape = tuple(shape)
    if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 8 for s in shape):
        raise ConfigurationError(f"shape must be 3 integers >= 8, got {shape!r}.")
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    if spacing_arr.shape != (3,) or not np.all(np.isfinite(spacing_arr)) or np.any(spacing_arr <= 0):
        raise ConfigurationError(f"spacing must be 3 positive numbers, got {spacing!r}.")
    return tuple(int(s) for s in shape), spacing_arr


def _rotation(rng: np.random.Generator, max_tilt_deg: float, max_turn_deg: float) -> np.ndarray:
    """Rotation: a tilt in the (axis 0, axis 2) plane, then a turn in the (axis 1, axis 2) plane."""
    tilt = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg))
    turn = np.deg2rad(rng.uniform(-max_turn_deg, max_turn_deg))
    ct, st, cu, su = np.cos(tilt), np.sin(tilt), np.cos(turn), np.sin(turn)
    tilt_m = np.array([[ct, 0.0, -st], [0.0, 1.0, 0.0], [st, 0.0, ct]])
    turn_m = np.array([[1.0, 0.0, 0.0], [0.0, cu, -su], [0.0, su, cu]])
    return turn_m @ tilt_m


def _ellipsoid(grid: Sequence[np.ndarray], centre: np.ndarray, semi_axes: np.ndarray,
               rotation: np.ndarray) -> np.ndarray:
    """Normalised radius ``q`` (``q <= 1`` inside) of a rotated ellipsoid on a broadcast mm grid."""
    d = [g - c for g, c in zip(grid, centre)]
    q = np.zeros(np.broadcast_shapes(*(x.shape for x in d)), dtype=np.float32)
    for row, a in zip(rotation, semi_axes):  # coordinate along each ellipsoid axis
        u = row[0] * d[0] + row[1] * d[1] + row[2] * d[2]
        q += (u / a) ** 2
    return q


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], n_terms: int = 3) -> np.ndarray:
    """Low-frequency field in [-1, 1] (sum of separable cosines with random phases)."""
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(n_terms):
        parts = []
        for axis, n in enumerate(shape):
            t = np.linspace(0.0, 1.0, n, dtype=np.float32)
            part = np.cos(2 * np.pi * rng.uniform(0.2, 1.2) * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
            view = [1, 1, 1]
            view[axis] = n
            parts.append(part.reshape(view))
        field += parts[0] * parts[1] * parts[2]
    return field / n_terms


def make_kits_phantom(
    shape: Sequence[int] = (64, 128, 128),
    spacing: Sequence[float] = (3.0, 0.8, 0.8),
    seed: Any = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate a KiTS19-like contrast CT volume with kidney and tumour labels.

    Axis 0 is the (coarse) cranio-caudal slice axis, axis 1 runs anterior to posterior and
    axis 2 left to right, as in the KiTS19 volumes. The body is an elliptic cylinder of soft
    tissue (~40 HU) with a subcutaneous fat rim (~-100 HU) in air (-1000 HU), with a spine
    (vertebrae ~700 HU, discs ~90 HU), a liver (~60 HU), and two kidneys (medulla ~35 HU,
    enhanced cortex 150-200 HU, label 1). One or both kidneys carry a tumour (70-110 HU,
    large ones with a necrotic core, label 2) at a random place on the kidney. Sizes,
    positions and orientations vary with the seed. Partial-volume blur, a smooth intensity
    inhomogeneity (up to ~15 HU) and Gaussian noise (10-20 HU) are added.

    Args:
        shape: Volume shape ``(slices, rows, cols)``.
        spacing: Voxel size in mm per axis.
        seed: Anything ``np.random.default_rng`` accepts (int, SeedSequence, Generator).

    Returns:
        ``(image, labels, affine)``: float32 HU volume, uint8 labels in {0, 1, 2}, and the
        4x4 affine ``diag(spacing)`` with the volume centred on the world origin.

    Example:
        >>> image, labels, affine = make_kits_phantom((32, 64, 64), seed=1)
        >>> image.dtype, labels.dtype, sorted(np.unique(labels).tolist())
        (dtype('float32'), dtype('uint8'), [0, 1, 2])
    """
    shape, spacing_arr = _check_geometry(shape, spacing)
    rng = np.random.default_rng(seed)
    axes = [((np.arange(n) - (n - 1) / 2.0) * s).astype(np.float32) for n, s in zip(shape, spacing_arr)]
    z, y, x = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    extent = np.asarray(shape) * spacing_arr

    # body: elliptic cylinder along axis 0 with a fat rim
    body_y, body_x = 0.40 * extent[1] * rng.uniform(0.9, 1.0), 0.46 * extent[2] * rng.uniform(0.92, 1.0)
    body_q = (y / body_y) ** 2 + (x / body_x) ** 2
    fat = rng.uniform(0.08, 0.14)
    body = np.broadcast_to(body_q <= 1.0, shape)
    inner = np.broadcast_to(body_q <= (1.0 - fat) ** 2, shape)
    image = np.full(shape, -1000.0, dtype=np.float32)
    image[body] = rng.uniform(-110, -90)
    image[inner] = rng.uniform(35, 45)

    # liver: large ellipsoid on one side of the upper abdomen
    side = rng.choice([-1.0, 1.0])
    liver_c = np.array([0.3 * extent[0], -0.1 * body_y, side * 0.45 * body_x])
    liver_a = np.array([0.35 * extent[0], 0.55 * body_y, 0.45 * body_x]) * rng.uniform(0.9, 1.1, 3)
    liver = (_ellipsoid((z, y, x), liver_c, liver_a, _rotation(rng, 10, 20)) <= 1.0) & inner
    image[liver] = rng.uniform(55, 65)

    # spine: posterior cylinder of vertebrae separated by discs
    spine_r = 0.15 * body_y * rng.uniform(0.9, 1.1)
    spine = np.broadcast_to((y - 0.62 * body_y) ** 2 + x**2 <= spine_r**2, shape)
    period = rng.uniform(22.0, 28.0)
    disc = np.broadcast_to(((z + rng.uniform(0, period)) % period) < 0.2 * period, shape)
    image[spine & ~disc] = rng.uniform(650, 750)
    image[spine & disc] = rng.uniform(80, 100)

    labels = np.zeros(shape, dtype=np.uint8)
    tumour_flags = rng.permutation([True, rng.random() < 0.35])
    for sign, has_tumour in zip((-1.0, 1.0), tumour_flags):
        semi = np.array([0.17 * extent[0], 0.22 * body_y, 0.17 * body_x]) * rng.uniform(0.85, 1.15, 3)
        centre = np.array(
            [
                rng.uniform(-0.12, 0.12) * extent[0],
                0.30 * body_y + rng.uniform(-0.05, 0.05) * body_y,
                sign * (spine_r + semi[2] * 1.4 + rng.uniform(0.0, 0.08) * body_x),
            ]
        )
        rotation = _rotation(rng, 15, 30)
        q = _ellipsoid((z, y, x), centre, semi, rotation)
        kidney = (q <= 1.0) & inner & (labels != 2)
        cortex = kidney & (q > rng.uniform(0.45, 0.6))
        image[kidney] = rng.uniform(30, 40)
        image[cortex] = rng.uniform(150, 200)
        labels[kidney] = 1
        if has_tumour:
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            # place the centre at 60-100 % of the way to the kidney surface, in kidney axes
            t_centre = centre + rotation.T @ (direction * semi * rng.uniform(0.6, 1.0))
            radius = rng.uniform(0.5, 0.9) * float(np.cbrt(np.prod(semi)))
            t_semi = np.maximum(radius * rng.uniform(0.8, 1.2, 3), spacing_arr)
            tq = _ellipsoid((z, y, x), t_centre, t_semi, _rotation(rng, 30, 30))
            tumour = (tq <= 1.0) & inner
            image[tumour] = rng.uniform(70, 110)
            if radius > 9.0:
                image[tumour & (tq <= 0.16)] = rng.uniform(20, 35)  # necrotic core
            labels[tumour] = 2

    # acquisition: partial-volume blur (0.7 mm), smooth inhomogeneity, noise
    image = ndimage.gaussian_filter(image, sigma=0.7 / spacing_arr, truncate=3.0)
    image += np.where(body, np.float32(rng.uniform(8, 15)) * _smooth_field(rng, shape), np.float32(0))
    image += rng.standard_normal(shape, dtype=np.float32) * np.float32(rng.uniform(10, 20))
    np.clip(image, -1024, 3071, out=image)

    affine = np.diag(np.append(spacing_arr, 1.0))
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2.0 * spacing_arr
    return image.astype(np.float32, copy=False), labels, affine


def write_kits_dataset(
    path: str,
    n_cases: int = 10,
    shape: Sequence[int] = (64, 128, 128),
    spacing: Sequence[float] = (3.0, 0.8, 0.8),
    seed: Any = 0,
    with_segmentation: bool = True,
    unlabeled: int = 0,
) -> list[str]:
    """Write a phantom data set in the KiTS19 / ``NIFTI_interface`` layout.

    Each case ``path/case_XXXXX/`` gets ``imaging.nii.gz`` (int16 HU, like KiTS) and
    ``segmentation.nii.gz`` (uint8). Case ``i`` is ``make_kits_phantom(seed=child_i)`` with
    ``child_i = np.random.SeedSequence(seed).spawn(n_cases)[i]``.

    Args:
        path: Output directory (created when missing).
        n_cases: Number of cases.
        shape: Volume shape per case.
        spacing: Voxel size in mm.
        seed: Data set seed (int or SeedSequence).
        with_segmentation: Write segmentations at all.
        unlabeled: Number of cases at the end written without segmentation
            (prediction-only cases).

    Returns:
        The case ids, in order.

    Example:
        >>> cases = write_kits_dataset("data/kits_phantom", n_cases=4, unlabeled=1)  # doctest: +SKIP
        >>> cases                                                                   # doctest: +SKIP
        ['case_00000', 'case_00001', 'case_00002', 'case_00003']
    """
    from miseg.data_loading.interfaces.nifti_io import write_nifti

    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise ConfigurationError(f"n_cases must be a positive integer, got {n_cases!r}.")
    if isinstance(unlabeled, bool) or not isinstance(unlabeled, (int, np.integer)) or not 0 <= unlabeled <= n_cases:
        raise ConfigurationError(f"unlabeled must be an integer in [0, n_cases={n_cases}], got {unlabeled!r}.")
    _check_geometry(shape, spacing)
    seed_seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    cases = []
    for i, child in enumerate(seed_seq.spawn(int(n_cases))):
        image, labels, affine = make_kits_phantom(shape, spacing, seed=child)
        case = f"case_{i:05d}"
        case_dir = os.path.join(path, case)
        geometry = {"affine": affine, "qform_code": 1, "sform_code": 1}
        hu = np.clip(np.rint(image), -32768, 32767).astype(np.int16)
        write_nifti(os.path.join(case_dir, "imaging.nii.gz"), hu, geometry)
        if with_segmentation and i < n_cases - unlabeled:
            write_nifti(os.path.join(case_dir, "segmentation.nii.gz"), labels, geometry)
        cases.append(case)
    return cases
