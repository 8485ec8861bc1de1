"""2D microscopy-like phantoms: cells (label 1) with nuclei (label 2) on a textured background."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from miseg.errors import ConfigurationError

__all__ = ["make_2d_phantom", "write_image_dataset", "CELL_CLASSES"]

#: Class names of the 2D phantom label maps.
CELL_CLASSES = ("background", "cell", "nucleus")

_GRAY_LEVELS = np.array([0.15, 0.45, 0.8], dtype=np.float32)
# H&E-like colours: pale pink background, pink cytoplasm, purple nuclei
_RGB_LEVELS = np.array([[0.93, 0.88, 0.92], [0.86, 0.55, 0.72], [0.36, 0.22, 0.56]], dtype=np.float32)
_IMAGE_FORMATS = ("png", "tif", "tiff", "bmp", "jpg", "jpeg", "gif")
_LOSSLESS_MASK_FORMATS = ("png", "tif", "tiff")


def make_2d_phantom(
    shape: Sequence[int] = (128, 128), seed: Any = 0, rgb: bool = False, bits: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a 2D cell image with its label map.

    Random elliptic cells (label 1) with an off-centre nucleus (label 2) lie on a smooth
    textured background; the image is blurred slightly and carries Gaussian noise.

    Args:
        shape: Image shape ``(rows, cols)``.
        seed: Anything ``np.random.default_rng`` accepts.
        rgb: Return an H&E-like colour image ``(rows, cols, 3)`` instead of grayscale.
        bits: 8 (uint8) or 16 (uint16, using the full 16-bit range).

    Returns:
        ``(image, mask)``: the image (uint8 or uint16) and the uint8 label map in {0, 1, 2}.

    Example:
        >>> image, mask = make_2d_phantom((64, 64), seed=3, bits=16)
        >>> image.dtype, mask.dtype, image.shape == mask.shape
        (dtype('uint16'), dtype('uint8'), True)
    """
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 16 for s in shape):
        raise ConfigurationError(f"shape must be 2 integers >= 16, got {shape!r}.")
    if bits not in (8, 16):
        raise ConfigurationError(f"bits must be 8 or 16, got {bits!r}.")
    rng = np.random.default_rng(seed)
    h, w = shape
    scale = min(shape) / 128.0
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]

    mask = np.zeros(shape, dtype=np.uint8)
    for _ in range(int(rng.integers(4, 9))):
        centre = rng.uniform(0.12, 0.88, 2) * (h, w)
        a = rng.uniform(7.0, 14.0) * scale
        b = a * rng.uniform(0.6, 1.0)
        theta = rng.uniform(0, np.pi)
        cos_t, sin_t = np.cos(theta), np.sin(theta)
        dr, dc = rows - centre[0], cols - centre[1]
        u, v = cos_t * dr + sin_t * dc, -sin_t * dr + cos_t * dc
        cell = (u / a) ** 2 + (v / b) ** 2 <= 1.0
        mask[cell & (mask != 2)] = 1
        shift = rng.uniform(-0.25, 0.25, 2) * (a, b)
        na, nb = a * rng.uniform(0.4, 0.55), b * rng.uniform(0.4, 0.55)
        nucleus = ((u - shift[0]) / na) ** 2 + ((v - shift[1]) / nb) ** 2 <= 1.0
        mask[nucleus & cell] = 2

    texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 3.0 * scale)
    texture /= texture.std() + 1e-6
    if rgb:
        image = _RGB_LEVELS[mask] + 0.03 * texture[..., None]
        image = ndimage.gaussian_filter(image, sigma=(0.8, 0.8, 0.0))
        image += rng.normal(0.0, 0.02, image.shape).astype(np.float32)
    else:
        image = _GRAY_LEVELS[mask] + 0.04 * texture
        image = ndimage.gaussian_filter(image, sigma=0.8)
        image += rng.normal(0.0, 0.03, image.shape).astype(np.float32)
    image = np.clip(image, 0.0, 1.0)
    top, dtype = (255, np.uint8) if bits == 8 else (65535, np.uint16)
    return np.rint(image * top).astype(dtype), mask


def write_image_dataset(
    path: str,
    n_cases: int = 10,
    shape: Sequence[int] = (128, 128),
    seed: Any = 0,
    img_format: str = "png",
    rgb: bool = False,
    bits: int = 8,
) -> list[str]:
    """Write 2D phantoms in the ``Image_interface`` layout.

    Each case ``path/case_XXXXX/`` gets ``imaging.<img_format>`` and a single-channel label
    image ``segmentation.<img_format>``; for formats that would alter labels (JPEG, BMP,
    GIF) the mask is written as ``segmentation.png``, which ``Image_interface`` finds.
    Case ``i`` uses ``np.random.SeedSequence(seed).spawn(n_cases)[i]``.

    Args:
        path: Output directory (created when missing).
        n_cases: Number of cases.
        shape: Image shape ``(rows, cols)``.
        seed: Data set seed (int or SeedSequence).
        img_format: png, tif, tiff, bmp, jpg, jpeg or gif.
        rgb: Colour images.
        bits: 8, or 16 (grayscale PNG/TIFF only).

    Returns:
        The case ids, in order.

    Example:
        >>> write_image_dataset("data/cells", n_cases=5, bits=16)  # doctest: +SKIP
        ['case_00000', 'case_00001', 'case_00002', 'case_00003', 'case_00004']
    """
    from PIL import Image

    fmt = img_format.lower().lstrip(".") if isinstance(img_format, str) else img_format
    if fmt not in _IMAGE_FORMATS:
        raise ConfigurationError(f"img_format must be one of {list(_IMAGE_FORMATS)}, got {img_format!r}.")
    if bits == 16 and (rgb or fmt not in _LOSSLESS_MASK_FORMATS):
        raise ConfigurationError(
            f"bits=16 needs grayscale PNG or TIFF (Pillow cannot write 16-bit colour or "
            f"{fmt} files), got img_format={img_format!r}, rgb={rgb!r}."
        )
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 1:
        raise ConfigurationError(f"n_cases must be a positive integer, got {n_cases!r}.")
    seed_seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    mask_fmt = fmt if fmt in _LOSSLESS_MASK_FORMATS else "png"
    cases = []
    for i, child in enumerate(seed_seq.spawn(int(n_cases))):
        image, mask = make_2d_phantom(shape, seed=child, rgb=rgb, bits=bits)
        case = f"case_{i:05d}"
        case_dir = os.path.join(path, case)
        os.makedirs(case_dir, exist_ok=True)
        Image.fromarray(image).save(os.path.join(case_dir, f"imaging.{fmt}"))
        Image.fromarray(mask).save(os.path.join(case_dir, f"segmentation.{mask_fmt}"))
        cases.append(case)
    return cases
