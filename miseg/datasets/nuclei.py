"""2D fluorescence-like nuclei with touching neighbours, with instance ground truth.

Also a loader for the real nuclei image shipped in the stardist 0.9.2 wheel (fetched on
demand into the fixture cache, see :mod:`miseg.datasets.fixtures`).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from miseg.errors import ConfigurationError, DataNotFoundError

__all__ = [
    "NUCLEI_CLASSES",
    "make_nuclei_phantom",
    "write_nuclei_dataset",
    "load_nuclei_instances",
    "load_stardist_nuclei",
    "write_stardist_nuclei_dataset",
]

#: Class names of the nuclei label maps.
NUCLEI_CLASSES = ("background", "nucleus")

_FORMATS = ("png", "tif", "tiff")
_INSTANCE_STEM = "instances"


def _check_shape(shape: Sequence[int]) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 32 for s in shape):
        raise ConfigurationError(f"shape must be 2 integers >= 32, got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _place_nuclei(rng: np.random.Generator, shape: tuple[int, int], n: int, radius: tuple[float, float],
                  touching: float) -> list[tuple[float, float, float, float, float]]:
    """Nucleus ellipses ``(row, col, a, b, angle)``; a ``touching`` share overlaps a neighbour."""
    nuclei: list[tuple[float, float, float, float, float]] = []
    margin = radius[1] + 2
    for _ in range(n * 20):
        if len(nuclei) == n:
            break
        a = rng.uniform(*radius)
        b = a * rng.uniform(0.7, 1.0)
        angle = rng.uniform(0, np.pi)
        if nuclei and rng.random() < touching:
            r0, c0, a0, b0, _ = nuclei[int(rng.integers(len(nuclei)))]
            direction = rng.uniform(0, 2 * np.pi)
            gap = (0.5 * (a0 + b0) + 0.5 * (a + b)) * rng.uniform(0.7, 0.85)
            centre = (r0 + gap * np.sin(direction), c0 + gap * np.cos(direction))
            min_gap = 0.6
        else:
            centre = (rng.uniform(margin, shape[0] - margin), rng.uniform(margin, shape[1] - margin))
            min_gap = 1.05
        if not (margin <= centre[0] <= shape[0] - margin and margin <= centre[1] <= shape[1] - margin):
            continue
        if all(np.hypot(centre[0] - r, centre[1] - c) >= min_gap * (max(a, b) + max(aa, bb))
               for r, c, aa, bb, _ in nuclei):
            nuclei.append((centre[0], centre[1], a, b, angle))
    return nuclei


def _rasterise(shape: tuple[int, int], nuclei: Sequence[tuple[float, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Instance map (a pixel goes to the nucleus of smallest elliptic radius) and that radius."""
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :]
    best = np.full(shape, np.inf)
    owner = np.zeros(shape, dtype=np.uint16)
    for k, (r0, c0, a, b, angle) in enumerate(nuclei, start=1):
        dr, dc = rows - r0, cols - c0
        u = np.cos(angle) * dr + np.sin(angle) * dc
        v = -np.sin(angle) * dr + np.cos(angle) * dc
        radial = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        closer = radial < best
        best[closer] = radial[closer]
        owner[closer] = k
    owner[best > 1.0] = 0
    return owner, best


def make_nuclei_phantom(
    shape: Sequence[int] = (128, 128),
    seed: Any = 0,
    n_nuclei: int | None = None,
    radius: tuple[float, float] = (6.0, 10.0),
    touching: float = 0.5,
    bits: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate a fluorescence-like image of nuclei, many touching, with instance truth.

    Nuclei are ellipses; a ``touching`` share of them is placed overlapping an earlier one,
    and overlapping pixels go to the nucleus whose (elliptic) centre is closer, so touching
    nuclei share a border without a gap. The image has per-nucleus brightness, chromatin
    texture, a dimmer rim (faint dark line where two nuclei touch), blur and noise.

    Args:
        shape: Image shape ``(rows, cols)``, each >= 32.
        seed: Anything ``np.random.default_rng`` accepts.
        n_nuclei: Nuclei to place (default: about 14 per 128x128).
        radius: Range of the long semi-axis in pixels.
        touching: Probability that a nucleus is placed touching an earlier one.
        bits: 8 (uint8 image) or 16 (uint16).

    Returns:
        ``(image, semantic, instances)``: the image, the uint8 label map (0 background,
        1 nucleus) and the uint16 instance map (0 background, nuclei ``1..n``).

    Example:
        >>> image, semantic, instances = make_nuclei_phantom((64, 64), seed=1)
        >>> bool(((instances > 0) == (semantic == 1)).all())
        True
    """
    shape = _check_shape(shape)
    if bits not in (8, 16):
        raise ConfigurationError(f"bits must be 8 or 16, got {bits!r}.")
    if not 0.0 <= float(touching) <= 1.0:
        raise ConfigurationError(f"touching={touching!r} must be a probability in [0, 1].")
    if len(radius) != 2 or not 2.0 <= radius[0] <= radius[1]:
        raise ConfigurationError(f"radius={radius!r} must be (low, high) with 2 <= low <= high.")
    rng = np.random.default_rng(seed)
    if n_nuclei is None:
        n_nuclei = max(2, int(round(14 * shape[0] * shape[1] / 128 ** 2)))
    nuclei = _place_nuclei(rng, shape, int(n_nuclei), (float(radius[0]), float(radius[1])), float(touching))
    owner, radial = _rasterise(shape, nuclei)
    present = np.unique(owner[owner > 0])
    lut = np.zeros(len(nuclei) + 1, dtype=np.uint16)
    lut[present] = np.arange(1, present.size + 1)
    instances = lut[owner]

    brightness = np.concatenate([[0.08], rng.uniform(0.5, 0.9, present.size)]).astype(np.float32)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    texture /= texture.std() + 1e-6
    image = brightness[instances] * (1.0 - 0.3 * np.clip(radial, 0, 1) ** 4)
    image = image * np.where(instances > 0, 1.0 + 0.08 * texture, 1.0)
    image = np.where(_borders(instances), image * 0.8, image)
    image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0.0, 0.025, shape)
    image = np.clip(image, 0.0, 1.0)
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    semantic = (instances > 0).astype(np.uint8)
    return np.rint(image * top).astype(dtype), semantic, instances


def _borders(instances: np.ndarray) -> np.ndarray:
    """Pixels of a nucleus that touch another nucleus (4-neighbourhood)."""
    out = np.zeros(instances.shape, dtype=bool)
    for axis in (0, 1):
        a = np.take(instances, np.arange(instances.shape[axis] - 1), axis=axis)
        b = np.take(instances, np.arange(1, instances.shape[axis]), axis=axis)
        touch = (a > 0) & (b > 0) & (a != b)
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        out[tuple(lo)] |= touch
        out[tuple(hi)] |= touch
    return out


def _save(array: np.ndarray, path: str) -> None:
    from PIL import Image

    from miseg.utils.fileio import atomic_path

    ext = os.path.splitext(path)[1]
    with atomic_path(path, suffix=ext) as tmp:
        Image.fromarray(array).save(tmp, format="TIFF" if ext in (".tif", ".tiff") else "PNG")


def write_nuclei_dataset(
    path: str,
    n_cases: int = 8,
    shape: Sequence[int] = (128, 128),
    seed: Any = 0,
    img_format: str = "png",
    bits: int = 8,
    touching: float = 0.5,
) -> list[str]:
    """Write nuclei phantoms in the ``Image_interface`` layout, plus instance truth.

    Each case ``path/case_XXXXX/`` gets ``imaging.<fmt>``, ``segmentation.<fmt>`` (0/1,
    ``Image_interface(classes=2)``) and ``instances.<fmt>`` (16-bit instance ids, read with
    :func:`load_nuclei_instances`). Case ``i`` uses ``SeedSequence(seed).spawn(n_cases)[i]``.

    Args:
        path: Output folder (created when missing).
        n_cases: Number of cases.
        shape: Image shape.
        seed: Data set seed.
        img_format: png, tif or tiff (lossless, 16-bit capable).
        bits: 8 or 16 bit images.
        touching: See :func:`make_nuclei_phantom`.

    Returns:
        The case ids.

    Example:
        >>> cases = write_nuclei_dataset("data/nuclei", n_cases=4)          # doctest: +SKIP
        >>> truth = load_nuclei_instances("data/nuclei", cases[0])          # doctest: +SKIP
    """
    fmt = img_format.lower().lstrip(".") if isinstance(img_format, str) else img_format
    if fmt not in _FORMATS:
        raise ConfigurationError(f"img_format must be one of {list(_FORMATS)}, got {img_format!r}.")
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise ConfigurationError(f"n_cases must be a positive integer, got {n_cases!r}.")
    seed_seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    cases = []
    for i, child in enumerate(seed_seq.spawn(int(n_cases))):
        image, semantic, instances = make_nuclei_phantom(shape, seed=child, bits=bits, touching=touching)
        case = f"case_{i:05d}"
        _write_case(os.path.join(path, case), fmt, image, semantic, instances)
        cases.append(case)
    return cases


def _write_case(case_dir: str, fmt: str, image: np.ndarray, semantic: np.ndarray, instances: np.ndarray) -> None:
    os.makedirs(case_dir, exist_ok=True)
    _save(image, os.path.join(case_dir, f"imaging.{fmt}"))
    _save(semantic, os.path.join(case_dir, f"segmentation.{fmt}"))
    _save(instances.astype(np.uint16), os.path.join(case_dir, f"{_INSTANCE_STEM}.{fmt}"))


def load_nuclei_instances(path: str, case: Any) -> np.ndarray:
    """The instance truth of a case written by :func:`write_nuclei_dataset` (uint16 ids).

    Raises:
        DataNotFoundError: when the case has no ``instances.<png|tif|tiff>``.
    """
    from PIL import Image

    from miseg.utils.fileio import safe_filename

    case_dir = os.path.join(path, safe_filename(case))
    for fmt in _FORMATS:
        file = os.path.join(case_dir, f"{_INSTANCE_STEM}.{fmt}")
        if os.path.isfile(file):
            with Image.open(file) as img:
                array = np.asarray(img)
            return np.array(array, dtype=array.dtype.newbyteorder("="))
    raise DataNotFoundError(f"Case {case!r}: no instances.png/.tif/.tiff in {case_dir!r}.")


def load_stardist_nuclei(cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The real 2D nuclei image of the stardist 0.9.2 wheel and its 125-instance mask.

    ``img2d.tif`` / ``mask2d.tif`` (512x512 uint16, fluorescence from the Kaggle Data Science
    Bowl 2018 / BBBC038, CC0) are fetched once into the fixture cache (``pip download``,
    no install).

    Returns:
        ``(image, instances)``, both ``(512, 512)`` uint16.

    Raises:
        FixtureUnavailableError: when the wheel cannot be downloaded.
    """
    from PIL import Image

    from miseg.datasets.fixtures import fetch_fixture

    arrays = []
    for name in ("stardist/img2d.tif", "stardist/mask2d.tif"):
        with Image.open(fetch_fixture(name, cache_dir)) as img:
            array = np.asarray(img)
        arrays.append(np.array(array, dtype=array.dtype.newbyteorder("=")))
    return arrays[0], arrays[1]


def write_stardist_nuclei_dataset(path: str, tile: int = 128,
                                  cache_dir: str | os.PathLike | None = None) -> list[str]:
    """Tile the stardist nuclei image into cases in the :func:`write_nuclei_dataset` layout.

    The 512x512 image gives ``(512 // tile) ** 2`` cases of ``tile x tile`` pixels (16-bit
    PNG images, 0/1 segmentations, 16-bit instance maps renumbered per tile).

    Returns:
        The case ids.
    """
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not 32 <= tile <= 512:
        raise ConfigurationError(f"tile must be an integer in [32, 512], got {tile!r}.")
    image, instances = load_stardist_nuclei(cache_dir)
    cases = []
    for r in range(0, image.shape[0] - tile + 1, tile):
        for c in range(0, image.shape[1] - tile + 1, tile):
            crop = instances[r:r + tile, c:c + tile]
            ids = np.unique(crop[crop > 0])
            lut = np.zeros(int(instances.max()) + 1, dtype=np.uint16)
            lut[ids] = np.arange(1, ids.size + 1)
            case = f"case_{len(cases):05d}"
            _write_case(os.path.join(path, case), "png", image[r:r + tile, c:c + tile],
                        (crop > 0).astype(np.uint8), lut[crop])
            cases.append(case)
    return cases
