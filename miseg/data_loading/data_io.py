"""Data_IO: the bridge between a data interface and the pipeline.

The interface only reads and writes its format. Data_IO adds what every format needs:
validation of image and segmentation content (with errors that name the case), optional
label remapping, file names that cannot escape their directory, atomic writes, and safe
(pickle-free) backups of batches and preprocessed samples.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any, Mapping, Sequence

import numpy as np

from miseg.data_loading.interfaces.abstract_io import Abstract_IO
from miseg.data_loading.sample import Sample
from miseg.data_loading.serialization import load_sample, save_sample
from miseg.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    LabelError,
    MissingSegmentationError,
    ShapeMismatchError,
)
from miseg.utils.fileio import atomic_path, safe_filename, safe_join

__all__ = ["Data_IO", "backup_history", "backup_evaluation", "create_directories", "check_label_range"]


def check_label_range(index: Any, seg: np.ndarray, classes: int) -> None:
    """Raise ``LabelError`` when a label map holds values outside ``0..classes-1``.

    Loading accepts any integer labels (as MIScnn does); this check runs where the class
    count matters: one-hot encoding of training/validation batches and evaluation.

    Args:
        index: Case index, named in the error (``None`` when unknown).
        seg: Label map (any shape, integer values).
        classes: Number of classes, background included.

    Raises:
        LabelError: naming the case, the offending values and ``classes``.
    """
    seg = np.asarray(seg)
    if seg.size == 0:
        return
    lo, hi = seg.min(), seg.max()
    if lo >= 0 and hi < classes:
        return
    values = np.unique(seg)
    bad = values[(values < 0) | (values >= classes)][:10].tolist()
    where = f"Case {index!r}: segmentation" if index is not None else "Segmentation"
    raise LabelError(
        f"{where} values {bad} are outside 0..{classes - 1} (classes={classes}). Set "
        f"classes, or pass label_mapping (e.g. {{0: 0, 255: 1}})."
    )


class Data_IO:
    """Loads cases through an interface into validated :class:`Sample` objects.

    Args:
        interface: A data interface (subclass of ``Abstract_IO``).
        input_path: Folder the interface scans for cases.
        output_path: Folder for predictions (created on first save).
        batch_path: Folder for prepared batches and sample backups.
        delete_batchDir: Remove ``batch_path`` on cleanup, but only when it is then empty
            (files that Data_IO did not write are never deleted).
        seed: Seed of this instance (batch file prefix and the source of per-run random
            streams). Drawn from the OS when ``None``; each instance has its own.
        label_mapping: Optional explicit remapping of segmentation values on load, e.g.
            ``{0: 0, 255: 1}``. Values not in the mapping are an error.
        check_data: Validate image and segmentation content on load (NaN/Inf, integer
            labels, shapes). Leave on unless the data set is known to be clean and loading
            is the bottleneck. Labels outside ``0..classes-1`` load fine (as in MIScnn); they
            raise ``LabelError`` where the class count matters: when training/validation
            batches are one-hot encoded and when cases are evaluated
            (:func:`check_label_range`).

    Example:
        >>> from miseg.data_loading.interfaces import NIFTI_interface
        >>> dio = Data_IO(NIFTI_interface(classes=3), "data/kits")
        >>> sample = dio.sample_loader(dio.get_indiceslist()[0])
        >>> sample.shape, sample.spacing
    """

    def __init__(
        self,
        interface: Abstract_IO,
        input_path: str,
        output_path: str = "predictions",
        batch_path: str = "batches",
        delete_batchDir: bool = True,
        seed: int | None = None,
        label_mapping: Mapping[Any, int] | None = None,
        check_data: bool = True,
    ) -> None:
        self.interface = interface
        self.input_path = input_path
        self.output_path = output_path
        self.batch_path = batch_path
        self.delete_batchDir = delete_batchDir
        self.seed = int(seed) if seed is not None else secrets.randbelow(100_000_000)
        self.label_mapping = dict(label_mapping) if label_mapping is not None else None
        self.check_data = check_data
        if self.label_mapping is not None:
            classes = getattr(interface, "classes", None)
            bad = [v for v in self.label_mapping.values() if classes is not None and not 0 <= int(v) < classes]
            if bad:
                raise ConfigurationError(
                    f"label_mapping={self.label_mapping} maps to {bad}, outside the "
                    f"interface's classes 0..{classes - 1}."
                )
        self.indices_list = list(interface.initialize(input_path))

    # ------------------------------------------------------------------ loading
    def get_indiceslist(self) -> list:
        """A copy of the case indices found by the interface."""
        return list(self.indices_list)

    def sample_loader(
        self, index: Any, load_seg: bool = True, load_pred: bool = False, backup: bool = False
    ) -> Sample:
        """Load one case as a validated Sample.

        Args:
            index: Case index from :meth:`get_indiceslist`.
            load_seg: Also load the segmentation (raises ``MissingSegmentationError`` for a
                prediction-only case).
            load_pred: Also load a prediction previously saved to ``output_path``.
            backup: Return the sample stored by :meth:`backup_sample` instead.

        Returns:
            The Sample, channels-last, with geometry in ``sample.extended``.
        """
        if backup:
            return self.load_sample_pickle(index)
        image, extended = self.interface.load_image(index)
        image = np.asarray(image)
        if self.check_data:
            self._check_image(index, image)
        sample = Sample(
            index,
            image,
            self.interface.channels,
            self.interface.classes,
            extended,
            three_dim=getattr(self.interface, "three_dim", None),
        )
        if load_seg:
            sample.add_segmentation(self.load_segmentation(index, sample.spatial_shape))
        if load_pred:
            pred = self.interface.load_prediction(index, self.output_path)
            if pred is None:
                raise DataNotFoundError(f"Case {index!r}: no prediction in {self.output_path!r}.")
            pred = np.asarray(pred)
            activation = pred.ndim == len(sample.spatial_shape) + 1 and pred.shape[-1] == sample.classes > 1
            sample.add_prediction(pred, activation_output=activation)
        return sample

    def load_segmentation(self, index: Any, spatial_shape: Sequence[int] | None = None) -> np.ndarray:
        """Load, remap and validate the label map of a case (no trailing channel axis)."""
        seg = self.interface.load_segmentation(index)
        if seg is None:
            raise MissingSegmentationError(
                f"Case {index!r} has no segmentation: it can be predicted, but not used for "
                f"training or evaluation."
            )
        seg = np.asarray(seg)
        if spatial_shape is not None and seg.ndim == len(spatial_shape) + 1 and seg.shape[-1] == 1:
            seg = seg[..., 0]
        if spatial_shape is not None and tuple(seg.shape) != tuple(spatial_shape):
            raise ShapeMismatchError(
                f"Case {index!r}: segmentation shape {tuple(seg.shape)} differs from image "
                f"shape {tuple(spatial_shape)}."
            )
        if self.label_mapping is not None:
            seg = self._remap(index, seg)
        if self.check_data:
            seg = self._check_labels(index, seg)
        return seg

    def has_segmentation(self, index: Any) -> bool:
        """Whether a case has a segmentation (prediction-only cases do not)."""
        return self.interface.has_segmentation(index)

    def get_samples(self, load_seg: bool = False, load_pred: bool = False) -> list[Sample]:
        """All cases as Samples, in index order."""
        return [self.sample_loader(i, load_seg=load_seg, load_pred=load_pred) for i in self.indices_list]

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_image(index: Any, image: np.ndarray) -> None:
        if image.dtype.kind not in "biuf":
            raise DataError(f"Case {index!r}: image dtype {image.dtype} is not numeric.")
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            n_nan = int(np.isnan(image).sum())
            n_inf = int(np.isinf(image).sum())
            raise DataError(
                f"Case {index!r}: image contains {n_nan} NaN and {n_inf} Inf values; clean the "
                f"file or replace them (e.g. np.nan_to_num) before training."
            )

    def _remap(self, index: Any, seg: np.ndarray) -> np.ndarray:
        values = np.unique(seg)
        unknown = [v.item() for v in values if v.item() not in self.label_mapping]
        if unknown:
            raise LabelError(
                f"Case {index!r}: segmentation values {unknown[:10]} are not in "
                f"label_mapping {self.label_mapping}."
            )
        out = np.zeros(seg.shape, dtype=np.uint8 if self.interface.classes <= 256 else np.int32)
        for source, target in self.label_mapping.items():
            out[seg == source] = target
        return out

    def _check_labels(self, index: Any, seg: np.ndarray) -> np.ndarray:
        if seg.dtype.kind == "b":
            seg = seg.astype(np.uint8)
        if seg.dtype.kind == "f":
            if not np.isfinite(seg).all():
                raise LabelError(f"Case {index!r}: segmentation contains NaN or Inf values.")
            if not np.array_equal(seg, np.round(seg)):
                sample_vals = np.unique(seg[seg != np.round(seg)])[:5].tolist()
                raise LabelError(
                    f"Case {index!r}: segmentation is not integer-valued (e.g. {sample_vals}); "
                    f"a label map must hold class numbers 0..{self.interface.classes - 1}."
                )
        elif seg.dtype.kind not in "iu":
            raise LabelError(f"Case {index!r}: segmentation dtype {seg.dtype} is not numeric.")
        # The label range is checked where the class count matters (one-hot encoding,
        # evaluation: check_label_range), so out-of-range cases can still be loaded and looked at.
        lo, hi = int(seg.min(initial=0)), int(seg.max(initial=0))
        dtype = np.uint8 if 0 <= lo and hi < 256 else (np.int32 if -(2**31) <= lo and hi < 2**31 else np.int64)
        return seg.astype(dtype, copy=False)

    # ------------------------------------------------------------------ predictions
    def save_prediction(self, sample: Sample) -> None:
        """Write ``sample.pred_data`` through the interface into ``output_path``."""
        safe_filename(sample.index)
        os.makedirs(self.output_path, exist_ok=True)
        self.interface.save_prediction(sample, self.output_path)

    # ------------------------------------------------------------------ batches and backups
    def _batch_file(self, kind: str, pointer: Any) -> str:
        return safe_join(self.batch_path, f"{self.seed}.{kind}.{safe_filename(pointer)}", ".npz")

    def backup_batches(self, batch_img: np.ndarray | None, batch_seg: np.ndarray | None, pointer: Any) -> None:
        """Store one batch as ``<seed>.batch_img.<pointer>.npz`` / ``<seed>.batch_seg.<pointer>.npz``."""
        os.makedirs(self.batch_path, exist_ok=True)
        for kind, array, save in (("batch_img", batch_img, np.savez), ("batch_seg", batch_seg, np.savez_compressed)):
            if array is None:
                continue
            with atomic_path(self._batch_file(kind, pointer), suffix=".npz") as tmp:
                with open(tmp, "wb") as handle:
                    save(handle, data=array)

    def batch_load(self, pointer: Any, img: bool = True) -> np.ndarray:
        """Load a batch stored by :meth:`backup_batches`."""
        path = self._batch_file("batch_img" if img else "batch_seg", pointer)
        if not os.path.exists(path):
            raise DataNotFoundError(f"No stored batch {pointer!r} at {path}.")
        with np.load(path, allow_pickle=False) as data:
            return data["data"]

    def batch_cleanup(self, pointer: Any = None) -> None:
        """Remove stored batches and sample backups written by this instance.

        With ``pointer``, only that batch. Without, every file this instance wrote (names
        starting with ``<seed>.``, exactly this seed), then the folder itself when
        ``delete_batchDir`` is set and nothing else is left in it.
        """
        if pointer is not None:
            for kind in ("batch_img", "batch_seg"):
                path = self._batch_file(kind, pointer)
                if os.path.exists(path):
                    os.remove(path)
            return
        if not os.path.isdir(self.batch_path):
            return
        own = re.compile(re.escape(f"{self.seed}.") + r".*\.(npz|json)$")
        for name in os.listdir(self.batch_path):
            if own.match(name):
                os.remove(os.path.join(self.batch_path, name))
        if self.delete_batchDir and not os.listdir(self.batch_path):
            os.rmdir(self.batch_path)

    def _sample_prefix(self, index: Any) -> str:
        return safe_join(self.batch_path, f"{self.seed}.{safe_filename(index)}")

    def backup_sample(self, sample: Sample) -> None:
        """Store a (preprocessed) sample as ``<seed>.<index>.npz`` + ``.json`` (no pickle)."""
        os.makedirs(self.batch_path, exist_ok=True)
        save_sample(sample, self._sample_prefix(sample.index))

    def load_sample_pickle(self, index: Any) -> Sample:
        """Load a sample stored by :meth:`backup_sample` (MIScnn's name; no pickle involved)."""
        return load_sample(self._sample_prefix(index))


# ---------------------------------------------------------------------- module helpers
def backup_history(history: Mapping[str, Sequence[Any]], evaluation_path: str) -> str:
    """Write a Keras history as ``<evaluation_path>/history.tsv`` (epoch, then one column per key).

    Returns:
        The path written.
    """
    os.makedirs(evaluation_path, exist_ok=True)
    keys = list(history.keys())
    n_rows = len(history["loss"]) if "loss" in history else max((len(v) for v in history.values()), default=0)
    lines = ["\t".join(["epoch", *keys])]
    for epoch in range(n_rows):
        row = [str(epoch + 1)] + [str(history[k][epoch]) if epoch < len(history[k]) else "" for k in keys]
        lines.append("\t".join(row))
    path = os.path.join(evaluation_path, "history.tsv")
    with atomic_path(path, suffix=".tsv") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
    return path


def backup_evaluation(data: Sequence[Any], evaluation_path: str, start: bool = False) -> str:
    """Append one tab-joined row to ``<evaluation_path>/detailed_validation.tsv``.

    With ``start=True`` the file is started anew (the folder is created when missing).
    """
    os.makedirs(evaluation_path, exist_ok=True)
    path = os.path.join(evaluation_path, "detailed_validation.tsv")
    with open(path, "w" if start else "a", encoding="utf-8") as handle:
        handle.write("\t".join(str(v) for v in data) + "\n")
    return path


def create_directories(eval_path: str, subeval_path: str | None = None) -> str:
    """Create ``eval_path`` (and ``eval_path/subeval_path``); return the deepest one."""
    path = eval_path if subeval_path is None else os.path.join(eval_path, subeval_path)
    os.makedirs(path, exist_ok=True)
    return path
