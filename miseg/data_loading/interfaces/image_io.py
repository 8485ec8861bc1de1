"""Image interface: 2D images (PNG, JPEG, TIFF, BMP, GIF) in one folder per case."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from miseg.data_loading.interfaces._cases import (
    check_cases_have_file,
    compile_pattern,
    find_case_file,
    list_case_folders,
    prediction_array,
)
from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataError,
    DataNotFoundError,
    LabelError,
    MissingSegmentationError,
)
from miseg.utils.fileio import atomic_path, safe_filename, safe_join

__all__ = ["Image_interface"]

IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff")
IMAGE_TYPES = {"grayscale": 1, "rgb": 3}
# Formats that store label maps losslessly; other formats fall back to these.
_LOSSLESS_LABEL_FORMATS = ("png", "tif", "tiff")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _open(path: str, case: Any) -> Image.Image:
    """Open and decode an image file; multi-frame files are rejected."""
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow raises these on bad files
        raise CorruptFileError(f"Case {case!r}: cannot read image file {path!r}: {exc}") from exc
    if getattr(img, "n_frames", 1) > 1:
        raise DataError(
            f"Case {case!r}: {path!r} holds {img.n_frames} frames; Image_interface reads single "
            f"2D images (use a 3D interface for stacks)."
        )
    return img


def _native(array: np.ndarray) -> np.ndarray:
    """Copy an array into native byte order (Pillow's I;16B gives big-endian arrays)."""
    return np.array(array, dtype=array.dtype.newbyteorder("="))


def _image_array(img: Image.Image, img_type: str) -> np.ndarray:
    """Pixel array of an image: 2D for grayscale (luminance of colour images), 3 channels for rgb."""
    mode = img.mode
    high_depth = mode in _SIXTEEN_BIT_MODES or mode in ("I", "F")
    if img_type == "grayscale":
        if high_depth or mode == "L":
            return _native(np.asarray(img))
        return np.asarray(img.convert("L"))  # ITU-R 601-2 luma for RGB/P/CMYK...
    if high_depth:  # grey with more than 8 bits: replicate, keeping the values
        gray = _native(np.asarray(img))
        return np.repeat(gray[..., np.newaxis], 3, axis=-1)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img).copy()


def _label_array(img: Image.Image, path: str, case: Any) -> np.ndarray:
    """Label values of a mask image, with no colour conversion of the stored values."""
    mode = img.mode
    if mode == "P":
        return np.asarray(img).copy()  # palette indices are the labels
    if mode == "1":
        return np.asarray(img).astype(np.uint8)
    if mode in ("L", "I", "F") or mode in _SIXTEEN_BIT_MODES:
        return _native(np.asarray(img))
    if mode in ("LA", "La", "PA"):
        return np.asarray(img)[..., 0].copy()
    if mode in ("RGB", "RGBA", "RGBX"):
        rgb = np.asarray(img)[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].copy()
        colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
        raise LabelError(
            f"Case {case!r}: segmentation {path!r} is a colour-coded {mode} image "
            f"({colours} distinct colours); store labels as a single-channel (L, 16-bit or "
            f"palette) image whose values are the class numbers."
        )
    raise LabelError(f"Case {case!r}: segmentation {path!r} has unsupported image mode {mode!r}.")


class Image_interface(Abstract_IO):
    """Reads 2D images laid out as ``input_path/<case>/imaging.<img_format>`` (+ ``segmentation``).

    Arrays follow Pillow: ``(rows, cols)`` (``(rows, cols, 3)`` for RGB), which miseg calls
    ``(x, y)``. 8-bit and 16-bit images keep their values (uint8 / uint16). Grayscale
    interfaces take the luminance of colour files.

    Segmentations are read without colour conversion: palette PNGs give their palette
    indices, L / 16-bit images their values. A colour (RGB) mask is accepted only when its
    three channels are equal. Label files may use the image format or, for lossy or palette
    image formats, ``segmentation.png`` / ``.tif`` / ``.tiff``.

    Predictions are written as label map images (8-bit, 16-bit when ``classes > 255``) to
    ``output_path/<index>.<ext>``, where ``ext`` is ``img_format`` for PNG/TIFF and ``png``
    otherwise (JPEG would corrupt labels). Activation (probability) maps cannot be stored as
    images and go to ``output_path/<index>.npy`` (float32).

    Args:
        classes: Number of segmentation classes, background included.
        img_type: ``"grayscale"`` (1 channel) or ``"rgb"`` (3 channels).
        img_format: File ending of the images: png, jpg, jpeg, bmp, gif, tif or tiff.
        pattern: Regex; only case folders whose name ``re.fullmatch``-es it are used.

    Example:
        >>> interface = Image_interface(classes=3, img_type="rgb", img_format="png")
        >>> indices = interface.initialize("data/cells")       # doctest: +SKIP
        >>> image, extended = interface.load_image(indices[0])  # doctest: +SKIP
        >>> image.shape, extended["spacing"]                    # doctest: +SKIP
        ((128, 128, 3), (1.0, 1.0))
    """

    def __init__(
        self, classes: int = 2, img_type: str = "grayscale", img_format: str = "png", pattern: str | None = None
    ) -> None:
        if img_type not in IMAGE_TYPES:
            raise ConfigurationError(
                f"Image_interface: img_type must be one of {sorted(IMAGE_TYPES)}, got {img_type!r}."
            )
        fmt = img_format.lower().lstrip(".") if isinstance(img_format, str) else img_format
        if fmt not in IMAGE_FORMATS:
            raise ConfigurationError(
                f"Image_interface: img_format must be one of {list(IMAGE_FORMATS)}, got {img_format!r}."
            )
        super().__init__(channels=IMAGE_TYPES[img_type], classes=classes, three_dim=False)
        self.img_type = img_type
        self.img_format = fmt
        self.pattern = pattern
        self._regex = compile_pattern(pattern, type(self).__name__)
        self.input_path: str | None = None

    @property
    def prediction_format(self) -> str:
        """File ending of label-map predictions (lossless: png or tif/tiff)."""
        return self.img_format if self.img_format in _LOSSLESS_LABEL_FORMATS else "png"

    # ------------------------------------------------------------------ paths
    def _case_dir(self, index: Any) -> str:
        if self.input_path is None:
            raise ConfigurationError(
                "Image_interface: input_path is None; call initialize(input_path) first."
            )
        case_dir = os.path.join(self.input_path, safe_filename(index))
        if not os.path.isdir(case_dir):
            raise DataNotFoundError(f"Case {index!r}: case folder {case_dir!r} does not exist.")
        return case_dir

    def _segmentation_path(self, index: Any) -> str | None:
        case_dir = self._case_dir(index)
        own = find_case_file(case_dir, "segmentation", ("." + self.img_format,))
        if own is not None:
            return own
        fallbacks = tuple("." + f for f in _LOSSLESS_LABEL_FORMATS if f != self.img_format)
        return find_case_file(case_dir, "segmentation", fallbacks)

    # ------------------------------------------------------------------ Abstract_IO
    def initialize(self, input_path: str) -> list[str]:
        """Scan ``input_path`` and return the case folder names, naturally sorted.

        Raises:
            DataNotFoundError: when the directory is missing, no case folder (matching
                ``pattern``) exists, or case folders lack ``imaging.<img_format>``.
        """
        owner = type(self).__name__
        cases = list_case_folders(input_path, self._regex, owner)
        check_cases_have_file(input_path, cases, "imaging", ("." + self.img_format,), owner)
        self.input_path = input_path
        return cases

    def load_image(self, index: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Return ``(image, {"type": "image", "spacing": (1.0, 1.0)})``."""
        path = os.path.join(self._case_dir(index), f"imaging.{self.img_format}")
        if not os.path.isfile(path):
            raise DataNotFoundError(f"Case {index!r}: image file {path!r} does not exist.")
        with _open(path, index) as img:
            array = _image_array(img, self.img_type)
        return array, {"type": "image", "spacing": (1.0, 1.0)}

    def has_segmentation(self, index: Any) -> bool:
        """Whether the case folder holds a segmentation image (no data is read)."""
        return self._segmentation_path(index) is not None

    def load_segmentation(self, index: Any) -> np.ndarray:
        """Return the label map of a case (values as stored, see the class docstring).

        Raises:
            MissingSegmentationError: when the case has no segmentation image.
            LabelError: for colour-coded masks.
        """
        path = self._segmentation_path(index)
        if path is None:
            raise MissingSegmentationError(
                f"Case {index!r}: no segmentation.{self.img_format} in {self._case_dir(index)!r} "
                f"(prediction-only case)."
            )
        with _open(path, index) as img:
            return _label_array(img, path, index)

    def save_prediction(self, sample: Any, output_path: str) -> None:
        """Write the label map (or an activation map as ``.npy``) of ``sample`` atomically."""
        data, is_label = prediction_array(sample.pred_data, 2, self.classes, sample.index)
        image_path = safe_join(output_path, sample.index, f".{self.prediction_format}")
        npy_path = safe_join(output_path, sample.index, ".npy")
        if is_label:
            pil_format = "TIFF" if self.prediction_format in ("tif", "tiff") else "PNG"
            with atomic_path(image_path, suffix=f".{self.prediction_format}") as tmp:
                Image.fromarray(data).save(tmp, format=pil_format)
            stale = npy_path
        else:
            with atomic_path(npy_path, suffix=".npy") as tmp:
                np.save(tmp, data, allow_pickle=False)
            stale = image_path
        if os.path.isfile(stale):  # an older prediction of the other kind would shadow this one
            os.remove(stale)

    #: Instance maps are 16-bit PNG/TIFF images.
    max_instances = int(np.iinfo(np.uint16).max)

    def save_instances(self, sample: Any, instances: Any, output_path: str) -> None:
        """Write ``output_path/<index>.instances.<png|tif>`` (16-bit ids) and its ``.tsv`` table.

        Raises:
            LabelError: more than 65535 instances (the 16-bit limit); nothing is written.
        """
        from miseg.processing.instances import check_instance_capacity, write_instance_table

        check_instance_capacity(self, instances, sample.index)
        ext = self.prediction_format
        path = safe_join(output_path, sample.index, f".instances.{ext}")
        with atomic_path(path, suffix=f".{ext}") as tmp:
            Image.fromarray(np.asarray(instances.labels).astype(np.uint16)).save(
                tmp, format="TIFF" if ext in ("tif", "tiff") else "PNG"
            )
        if instances.table is not None:
            write_instance_table(instances.table, output_path, sample.index)

    def load_prediction(self, index: Any, output_path: str) -> np.ndarray:
        """Read a prediction written by :meth:`save_prediction` (label image or ``.npy``)."""
        image_path = safe_join(output_path, index, f".{self.prediction_format}")
        if os.path.isfile(image_path):
            with _open(image_path, index) as img:
                return _label_array(img, image_path, index)
        npy_path = safe_join(output_path, index, ".npy")
        if os.path.isfile(npy_path):
            return np.load(npy_path, allow_pickle=False)
        raise DataNotFoundError(
            f"Case {index!r}: no prediction file {image_path!r} (or {os.path.basename(npy_path)})."
        )

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        """True for .png, .jpg, .jpeg, .bmp, .gif, .tif and .tiff."""
        return termination.lower().lstrip(".") in IMAGE_FORMATS and termination.startswith(".")
