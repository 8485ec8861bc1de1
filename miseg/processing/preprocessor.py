"""Preprocessor: samples become training batches and prediction patches, and back.

Stages, in the order data travels (DESIGN.md):

1. ``load_sample``: Data_IO loads a case; the subfunctions run in list order. With
   ``prepare_subfunctions`` the result is cached on disk (npz + JSON) and reused across runs
   while the data files and the subfunction settings are unchanged.
2. Training items: ``patchwise-crop`` cuts ``patches_per_sample`` patches per loaded volume,
   a ``foreground_oversampling`` fraction of them centred on a foreground voxel (nnU-Net
   uses 1/3); ``patchwise-grid`` takes every patch of the grid (``patchwise_overlap``, 0 by
   default) once per epoch; ``fullimage`` uses the whole image. Augmentation runs on label
   maps (so out-of-image voxels stay valid background), then segmentations are one-hot
   encoded, which is where labels outside ``0..classes-1`` raise ``LabelError``.
3. Prediction: the image is padded up to the patch size when smaller, cut into grid
   patches with ``patchwise_overlap`` (default: half a patch), and the patch predictions are
   merged with Gaussian importance weighting (``merge_weighting="gaussian"``, sigma = 1/8 of
   the patch) or plain averaging (``"constant"``).
4. ``postprocessing``: merged probabilities are cropped back, turned into labels (unless
   activation output is asked for), and the subfunctions are undone in reverse order.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np

from miseg.data_loading.data_io import check_label_range
from miseg.data_loading.sample import Sample
from miseg.data_loading.serialization import load_sample, save_sample
from miseg.errors import ConfigurationError, DataError
from miseg.processing.sampling import choose_center, class_locations, extract_region
from miseg.processing.subfunctions.abstract_subfunction import call_postprocessing
from miseg.utils.fileio import safe_filename
from miseg.utils.patch_operations import PatchAccumulator, grid_positions

__all__ = ["Preprocessor", "PredictionPlan"]

ANALYSIS_MODES = ("patchwise-crop", "patchwise-grid", "fullimage")
_DEFAULT_AUGMENTATION = object()


class PredictionPlan:
    """How one preprocessed sample is cut into prediction patches and merged back.

    Attributes:
        image: The (padded) image, ``(*spatial, C)``.
        positions: Patch start coordinates in grid order (one zero tuple for fullimage).
        window: Patch spatial shape (the padded image shape for fullimage).
        crop: Slices that remove the padding again.
    """

    def __init__(self, image: np.ndarray, positions: list[tuple[int, ...]], window: tuple[int, ...],
                 crop: tuple[slice, ...]) -> None:
        self.image = image
        self.positions = positions
        self.window = window
        self.crop = crop

    def patches(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Stack the patches ``positions[start:stop]`` into a batch ``(n, *window, C)``."""
        chosen = self.positions[start:stop]
        return np.stack(
            [self.image[tuple(slice(p, p + w) for p, w in zip(pos, self.window))] for pos in chosen]
        ).astype(np.float32, copy=False)

    def __len__(self) -> int:
        return len(self.positions)


class Preprocessor:
    """Turns cases into batches for training and into patches for prediction.

    Args:
        data_io: The Data_IO serving the cases.
        batch_size: Items per batch.
        subfunctions: Preprocessing steps (``miseg.processing.subfunctions``), in order.
        data_aug: A ``Data_Augmentation``; ``None`` disables augmentation. By default each
            Preprocessor gets its own fresh ``Data_Augmentation()`` (never a shared one).
        prepare_subfunctions: Cache preprocessed samples on disk under
            ``<batch_path>/preprocessed/`` and reuse them while data and settings are unchanged.
        prepare_batches: Precompute all batches to disk (MIScnn's mode; freezes augmentation,
            so the on-the-fly pipeline is usually the better choice).
        analysis: ``"patchwise-crop"`` (random patches), ``"patchwise-grid"`` or ``"fullimage"``.
        patch_shape: Spatial patch size (tuple of 2 or 3 ints) for the patchwise modes.
        use_multiprocessing: Run ``run_subfunctions`` in a process pool of ``mp_threads``.
        patchwise_overlap: Grid overlap in voxels. ``None``: half a patch at prediction and
            no overlap for grid training.
        patchwise_skip_blanks: Training only: avoid patches that hold only
            ``patchwise_skip_class`` (crops are redrawn up to 10 times; blank grid patches are
            left out unless all of a case's are blank; never a crash).
        patchwise_skip_class: The class treated as blank.
        patches_per_sample: Random crops per loaded volume (``patchwise-crop`` training;
            augmented copies for ``fullimage``). ``None`` uses the augmentation's ``cycles``
            (MIScnn's count). ``patchwise-grid`` training always uses every grid patch.
        foreground_oversampling: Fraction of training patches centred on a foreground voxel.
        merge_weighting: ``"gaussian"`` or ``"constant"`` merging of overlapping predictions.
        sample_cache_size: Preprocessed samples kept in memory for reuse across batches.
        seed: Seed of the patch sampling; defaults to ``data_io.seed``.

    Example:
        >>> pp = Preprocessor(data_io, batch_size=2, subfunctions=[Normalization()],
        ...                   analysis="patchwise-crop", patch_shape=(32, 64, 64),
        ...                   patches_per_sample=4)
        >>> pp.patchwise_overlap = (16, 32, 32)
    """

    def __init__(
        self,
        data_io: Any,
        batch_size: int,
        subfunctions: Sequence[Any] | None = None,
        data_aug: Any = _DEFAULT_AUGMENTATION,
        prepare_subfunctions: bool = False,
        prepare_batches: bool = False,
        analysis: str = "patchwise-crop",
        patch_shape: tuple[int, ...] | None = None,
        use_multiprocessing: bool = False,
        *,
        patchwise_overlap: Sequence[int] | None = None,
        patchwise_skip_blanks: bool = False,
        patchwise_skip_class: int = 0,
        patches_per_sample: int | None = None,
        foreground_oversampling: float = 1 / 3,
        merge_weighting: str = "gaussian",
        sample_cache_size: int = 4,
        seed: int | None = None,
    ) -> None:
        from miseg.processing.data_augmentation import Data_Augmentation

        self.data_io = data_io
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.batch_size = int(batch_size)
        self.subfunctions = list(subfunctions) if subfunctions is not None else []
        if data_aug is _DEFAULT_AUGMENTATION:
            data_aug = Data_Augmentation()
        self.data_augmentation = data_aug if isinstance(data_aug, Data_Augmentation) else None
        self.prepare_subfunctions = prepare_subfunctions
        self.prepare_batches = prepare_batches
        if analysis not in ANALYSIS_MODES:
            raise ConfigurationError(
                f"analysis={analysis!r} is unknown; choose one of {', '.join(ANALYSIS_MODES)}."
            )
        self.analysis = analysis
        self.patch_shape = self._check_patch_shape(patch_shape) if analysis != "fullimage" else (
            tuple(patch_shape) if patch_shape is not None else None)
        self.use_multiprocessing = use_multiprocessing
        self.mp_threads = 5
        self.patchwise_skip_blanks = patchwise_skip_blanks
        self.patchwise_skip_class = patchwise_skip_class
        self.patchwise_overlap = patchwise_overlap
        valid_count = isinstance(patches_per_sample, (int, np.integer)) and patches_per_sample >= 1
        if patches_per_sample is not None and not valid_count:
            raise ConfigurationError(f"patches_per_sample must be a positive int, got {patches_per_sample!r}.")
        self._patches_per_sample = patches_per_sample
        if not 0.0 <= foreground_oversampling <= 1.0:
            raise ConfigurationError(
                f"foreground_oversampling must be within [0, 1], got {foreground_oversampling!r}."
            )
        self.foreground_oversampling = float(foreground_oversampling)
        if merge_weighting not in ("gaussian", "constant", "mean"):
            raise ConfigurationError(
                f"merge_weighting={merge_weighting!r} is unknown; use 'gaussian' or 'constant'."
            )
        self.merge_weighting = merge_weighting
        self.sample_cache_size = int(sample_cache_size)
        self.seed = int(seed) if seed is not None else int(getattr(data_io, "seed", 0))
        self.cache: dict[Any, Any] = {}
        self._memory: OrderedDict[Any, tuple[Sample, dict]] = OrderedDict()
        self._grid_layouts: dict[tuple, list[tuple[int, ...]]] = {}
        self._analysis_rng: np.random.Generator | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ configuration
    @property
    def three_dim(self) -> bool:
        return bool(self.data_io.interface.three_dim)

    @property
    def spatial_dims(self) -> int:
        return 3 if self.three_dim else 2

    def _check_patch_shape(self, patch_shape: Any) -> tuple[int, ...]:
        dims = 3 if self.data_io.interface.three_dim else 2
        if not isinstance(patch_shape, (tuple, list)):
            raise ConfigurationError(
                f"patch_shape={patch_shape!r}: the patchwise analyses need a tuple of {dims} "
                f"spatial sizes, e.g. {(64,) * dims}."
            )
        if len(patch_shape) != dims or not all(isinstance(p, (int, np.integer)) and p > 0 for p in patch_shape):
            raise ConfigurationError(
                f"patch_shape={tuple(patch_shape)!r} must hold {dims} positive ints for "
                f"{'3D' if dims == 3 else '2D'} data."
            )
        return tuple(int(p) for p in patch_shape)

    @property
    def patchwise_overlap(self) -> tuple[int, ...] | None:
        """Grid overlap in voxels (``None``: half a patch for prediction, 0 for grid training)."""
        return self._overlap

    @patchwise_overlap.setter
    def patchwise_overlap(self, value: Sequence[int] | None) -> None:
        if value is None:
            self._overlap = None
            return
        dims = self.spatial_dims
        value = tuple(int(v) for v in value)
        if len(value) < dims:
            raise ConfigurationError(f"patchwise_overlap={value!r} needs {dims} entries.")
        value = value[:dims]  # MIScnn users pass 3 values for 2D data
        if any(v < 0 for v in value):
            raise ConfigurationError(f"patchwise_overlap={value!r} must not be negative.")
        if self.patch_shape is not None and any(o >= p for o, p in zip(value, self.patch_shape)):
            raise ConfigurationError(
                f"patchwise_overlap={value!r} must be smaller than patch_shape="
                f"{self.patch_shape!r} on every axis."
            )
        self._overlap = value

    def prediction_overlap(self) -> tuple[int, ...]:
        """The overlap used for prediction grids."""
        if self._overlap is not None:
            return self._overlap
        return tuple(p // 2 for p in self.patch_shape)

    @property
    def patches_per_sample(self) -> int:
        """Training patches drawn per loaded volume."""
        if self._patches_per_sample is not None:
            return self._patches_per_sample
        return self.data_augmentation.cycles if self.data_augmentation is not None else 1

    @patches_per_sample.setter
    def patches_per_sample(self, value: int | None) -> None:
        self._patches_per_sample = value

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_memory"] = OrderedDict()
        state["cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading
    def _cache_dir(self) -> str:
        """Folder of the on-disk preprocessing cache, keyed by the subfunction settings."""
        parts = [type(self.data_io.interface).__name__, str(self.data_io.interface.channels),
                 str(self.data_io.interface.classes), str(self.data_io.interface.three_dim)]
        for sf in self.subfunctions:
            config = sf.get_config() if hasattr(sf, "get_config") else repr(sf)
            parts.append(type(sf).__name__ + json.dumps(config, sort_keys=True, default=str))
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
        return os.path.join(self.data_io.batch_path, "preprocessed", digest)

    def _data_signature(self, index: Any) -> str:
        """Sizes and modification times of the case's files, so edited data invalidates the cache."""
        root = getattr(self.data_io, "input_path", None)
        case = str(index).split(":#:")[0]
        entries: list[str] = []
        if isinstance(root, (str, os.PathLike)):
            path = os.path.join(root, case)
            if os.path.isdir(path):
                for base, _, files in sorted(os.walk(path)):
                    for name in sorted(files):
                        st = os.stat(os.path.join(base, name))
                        entries.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256("|".join(entries).encode()).hexdigest()[:16] if entries else ""

    def _preprocess(self, index: Any, training: bool) -> Sample:
        sample = self.data_io.sample_loader(index, load_seg=training)
        for sf in self.subfunctions:
            sf.preprocessing(sample, training=training)
        sample.img_data = np.asarray(sample.img_data, dtype=np.float32)
        if sample.seg_data is not None:
            sample.seg_data = _as_labels(sample.seg_data)
        return sample

    def load_sample(self, index: Any, training: bool = True) -> Sample:
        """A preprocessed sample (subfunctions applied), from the disk cache when prepared."""
        if not self.prepare_subfunctions:
            return self._preprocess(index, training)
        signature = self._data_signature(index)
        if not signature:
            # No files to fingerprint (in-memory data): a disk cache could go stale unnoticed.
            return self._preprocess(index, training)
        prefix = os.path.join(self._cache_dir(), f"{'train' if training else 'pred'}.{safe_filename(index)}")
        meta_path = prefix + ".json"
        if os.path.exists(meta_path) and os.path.exists(prefix + ".npz"):
            sample = load_sample(prefix)
            if sample.extended.get("_miseg_signature") == signature:
                sample.extended.pop("_miseg_signature", None)
                return sample
        sample = self._preprocess(index, training)
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        sample.extended["_miseg_signature"] = signature
        save_sample(sample, prefix)
        sample.extended.pop("_miseg_signature", None)
        return sample

    def run_subfunctions(self, indices_list: Sequence[Any], training: bool = True, backup: bool = True) -> None:
        """Preprocess cases into the on-disk cache (in ``mp_threads`` processes when enabled).

        Args:
            indices_list: Case indices.
            training: Preprocess with segmentations (training) or without (prediction).
            backup: Also store each preprocessed case as MIScnn did, with
                ``data_io.backup_sample`` (``<batch_path>/<seed>.<index>.npz/.json``, the batch
                folder is created when missing), so ``data_io.sample_loader(index,
                backup=True)`` returns it. ``data_io.batch_cleanup()`` removes these copies.
                The DataGenerator reads the cache instead and passes ``False``.
        """
        if not self.prepare_subfunctions:
            return
        if self.use_multiprocessing and training and len(indices_list) > 1:
            # spawn, not fork: the parent may hold TensorFlow's threads, which fork does not survive
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=self.mp_threads, mp_context=context) as pool:
                list(pool.map(_prepare_one, [(self, i, training, backup) for i in indices_list]))
        else:
            for index in indices_list:
                _prepare_one((self, index, training, backup))

    def _training_sample(self, index: Any) -> tuple[Sample, dict]:
        """Preprocessed training sample plus its foreground locations, memoised in memory."""
        key = ("train", index)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        sample = self.load_sample(index, training=True)
        seg = sample.seg_data[..., 0]
        check_label_range(index, seg, sample.classes)
        locations = class_locations(seg, sample.classes, rng=np.random.default_rng(self.seed))
        entry = (sample, locations)
        if self.sample_cache_size > 0:
            with self._lock:
                self._memory[key] = entry
                while len(self._memory) > self.sample_cache_size:
                    self._memory.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ training items
    def _pad_value(self, image: np.ndarray) -> np.ndarray:
        """Per-channel minimum: the background of CT/MR after any intensity transform."""
        return image.reshape(-1, image.shape[-1]).min(axis=0)

    def _spatial_augmentation(self) -> bool:
        aug = self.data_augmentation
        return aug is not None and bool(aug.rotations or aug.scaling or aug.elastic_deform)

    def _augment(self, img: np.ndarray, seg: np.ndarray, rng: np.random.Generator,
                 patch_shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
        aug = self.data_augmentation
        seed = int(rng.integers(0, 2**31 - 1))
        out_img, out_seg = aug.run(img[np.newaxis], seg[np.newaxis], patch_shape=patch_shape, seed=seed, cycles=1)
        return out_img[0], out_seg[0]

    def training_items(self, index: Any, n: int, rng: np.random.Generator,
                       augment: bool = True, divisor: Sequence[int] | None = None
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``n`` training items ``(image, label map)`` from one case.

        In ``patchwise-grid`` mode the ``n`` patches are drawn at random grid positions; the
        DataGenerator and :meth:`run` use every grid position instead
        (:meth:`grid_layout`, :meth:`grid_items`).

        Args:
            index: Case index.
            n: Number of items (patches, or augmented copies for fullimage).
            rng: Generator deciding crop positions and augmentation draws.
            augment: Apply data augmentation (off for validation).
            divisor: fullimage only: pad images up to a multiple of this per axis (the
                network's total downsampling), so any image size fits the network.
        """
        sample, locations = self._training_sample(index)
        img, seg = sample.img_data, sample.seg_data
        if self.analysis == "patchwise-grid":
            positions = self._grid_positions(img, seg)
            chosen = [positions[int(rng.integers(len(positions)))] for _ in range(n)]
            return self._grid_items(img, seg, chosen, rng, augment)
        return self._sample_items(img, seg, locations, n, rng, augment, divisor)

    def _sample_items(self, img: np.ndarray, seg: np.ndarray, locations: dict | None, n: int,
                      rng: np.random.Generator, augment: bool, divisor: Sequence[int] | None = None
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """fullimage copies or random crops of a preprocessed image and its label map."""
        augment = augment and self.data_augmentation is not None
        items = []
        if self.analysis == "fullimage":
            if divisor is not None:
                target = _round_up(img.shape[:-1], divisor)
                img, _ = _pad_centered(img, target, self._pad_value(img))
                seg, _ = _pad_centered(seg, target, 0)
            for _ in range(n):
                items.append(self._augment(img, seg, rng, None) if augment else (img, seg))
            return items
        pad = self._pad_value(img)
        for _ in range(n):
            for attempt in range(10):
                force = rng.random() < self.foreground_oversampling
                center = choose_center(img.shape[:-1], self.patch_shape, locations, force, rng)
                img_r, seg_r = self._cut_patch(img, seg, center, pad, rng, augment)
                blank = self.patchwise_skip_blanks and np.all(seg_r == self.patchwise_skip_class)
                if not blank or attempt == 9:
                    break
            items.append((img_r, seg_r))
        return items

    def _cut_patch(self, img: np.ndarray, seg: np.ndarray, center: Sequence[int], pad: np.ndarray,
                   rng: np.random.Generator, augment: bool) -> tuple[np.ndarray, np.ndarray]:
        """One (augmented) patch around ``center``; a margin feeds rotations and zooms."""
        spatial_aug = augment and self._spatial_augmentation()
        region = tuple(int(math.ceil(p * 1.25)) for p in self.patch_shape) if spatial_aug else self.patch_shape
        img_r = extract_region(img, center, region, pad)
        seg_r = extract_region(seg, center, region, 0)
        if augment:
            img_r, seg_r = self._augment(img_r, seg_r, rng, self.patch_shape)
        return img_r, seg_r

    # ------------------------------------------------------------------ grid training
    def _training_overlap(self) -> tuple[int, ...]:
        return self._overlap if self._overlap is not None else (0,) * self.spatial_dims

    def _grid_positions(self, img: np.ndarray, seg: np.ndarray | None) -> list[tuple[int, ...]]:
        """Training grid of a preprocessed image, blank patches dropped with skip-blanks.

        When every patch is blank the full grid is kept (training never crashes on it).
        """
        positions = grid_positions(img.shape[:-1], self.patch_shape, self._training_overlap())
        if not self.patchwise_skip_blanks or seg is None:
            return positions
        seg = seg[..., 0]
        kept = [p for p in positions
                if not np.all(seg[tuple(slice(s, s + w) for s, w in zip(p, self.patch_shape))]
                              == self.patchwise_skip_class)]
        return kept or positions

    def grid_layout(self, index: Any) -> list[tuple[int, ...]]:
        """Start coordinates of every ``patchwise-grid`` training patch of a case, in grid order.

        Uses ``patchwise_overlap`` (0 when unset) and, with ``patchwise_skip_blanks``, leaves
        out blank patches. The first call per case loads the preprocessed case; the result is
        remembered (only the coordinates) for later epochs and generators.

        Args:
            index: Case index.

        Returns:
            A list of start tuples (x-major, z fastest).
        """
        key = (index, self.patch_shape, self._training_overlap(), self.patchwise_skip_blanks,
               self.patchwise_skip_class)
        layout = self._grid_layouts.get(key)
        if layout is None:
            sample = self._training_sample(index)[0]
            layout = self._grid_positions(sample.img_data, sample.seg_data)
            self._grid_layouts[key] = layout
        return layout

    def grid_items(self, index: Any, positions: Sequence[Sequence[int]], rng: np.random.Generator,
                   augment: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
        """Training items ``(image, label map)`` of the grid patches at ``positions`` of a case.

        Args:
            index: Case index.
            positions: Patch start coordinates (from :meth:`grid_layout`).
            rng: Generator of the augmentation draws.
            augment: Apply data augmentation (off for validation).
        """
        sample = self._training_sample(index)[0]
        return self._grid_items(sample.img_data, sample.seg_data, positions, rng, augment)

    def _grid_items(self, img: np.ndarray, seg: np.ndarray, positions: Sequence[Sequence[int]],
                    rng: np.random.Generator, augment: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        augment = augment and self.data_augmentation is not None
        pad = self._pad_value(img)
        items = []
        for start in positions:
            center = [int(s) + p // 2 for s, p in zip(start, self.patch_shape)]
            items.append(self._cut_patch(img, seg, center, pad, rng, augment))
        return items

    def to_batch(self, items: Sequence[tuple[np.ndarray, np.ndarray]], classes: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Stack items into ``(img float32, one-hot seg float32)``."""
        classes = classes or self.data_io.interface.classes
        shapes = {it[0].shape for it in items}
        if len(shapes) > 1:
            raise DataError(
                f"Cannot batch images of different shapes {sorted(shapes)} in fullimage mode; "
                f"add a Resize or Padding subfunction, or use batch_size=1."
            )
        img = np.stack([np.asarray(it[0], np.float32) for it in items])
        labels = np.stack([np.asarray(it[1])[..., 0] for it in items]).astype(np.int64)
        check_label_range(None, labels, classes)
        seg = np.eye(classes, dtype=np.float32)[labels]
        return img, seg

    # ------------------------------------------------------------------ MIScnn's run
    def run(self, indices_list: Sequence[Any], training: bool = True, validation: bool = False) -> Any:
        """Build batches for a list of cases (MIScnn API).

        Training returns ``[(img, one-hot seg), ...]`` (``patchwise-grid``: every grid patch of
        every case, in grid order); prediction returns ``[(img, None), ...]`` (prediction
        batches never span cases). With ``prepare_batches`` the batches are stored
        through Data_IO and the last batch pointer is returned (-1 when there was none).
        """
        batches: list[tuple[np.ndarray, np.ndarray | None]] = []
        if training:
            items: list[tuple[np.ndarray, np.ndarray]] = []
            for k, index in enumerate(indices_list):
                tag = 1 if validation else 0
                rng = np.random.default_rng([self.seed, tag, k])
                if self.analysis == "patchwise-grid":
                    items.extend(self.grid_items(index, self.grid_layout(index), rng, augment=not validation))
                else:
                    items.extend(self.training_items(index, self.patches_per_sample, rng, augment=not validation))
            for start in range(0, len(items), self.batch_size):
                batches.append(self.to_batch(items[start:start + self.batch_size]))
        else:
            for index in indices_list:
                sample = self.load_sample(index, training=False)
                plan = self.prediction_plan(sample)
                self.cache[index] = sample
                self.cache[f"plan_{index}"] = plan
                for start in range(0, len(plan), self.batch_size):
                    batch = plan.patches(start, start + self.batch_size)
                    aug = self.data_augmentation
                    if aug is not None and getattr(aug, "infaug", False):
                        batch = aug.run_infaug(batch)
                    batches.append((batch, None))
        if not self.prepare_batches:
            return batches
        kind = "validation" if validation else ("training" if training else "prediction")
        for n, (img, seg) in enumerate(batches):
            self.data_io.backup_batches(img, seg, f"{kind}.{n}")
        return len(batches) - 1

    # ------------------------------------------------------------------ MIScnn's analysis methods
    def _adapter_rng(self) -> np.random.Generator:
        """Generator of the analysis_* adapters (per instance, seeded from ``seed``)."""
        if self._analysis_rng is None:
            self._analysis_rng = np.random.default_rng([self.seed, 13])
        return self._analysis_rng

    def _adapter_labels(self, sample: Sample) -> np.ndarray:
        """The sample's segmentation as a checked label map ``(*spatial, 1)``.

        Accepts a label map with or without the trailing axis, or a one-hot ``(..., classes)``
        array (what MIScnn's ``run`` passed on).
        """
        if sample.seg_data is None:
            raise DataError(f"Case {sample.index!r}: training items need a segmentation (seg_data is None).")
        seg = np.asarray(sample.seg_data)
        spatial = tuple(sample.img_data.shape[:-1])
        if seg.shape == spatial:
            seg = seg[..., np.newaxis]
        if seg.shape[:-1] != spatial or seg.shape[-1] not in (1, sample.classes):
            raise DataError(
                f"Case {sample.index!r}: seg_data of shape {seg.shape} is neither a label map "
                f"{spatial + (1,)} nor one-hot {spatial + (sample.classes,)}."
            )
        if seg.shape[-1] != 1:
            seg = np.argmax(seg, axis=-1)[..., np.newaxis]
        check_label_range(sample.index, seg, sample.classes)
        return _as_labels(seg)

    def _one_hot_items(self, items: list, classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
        eye = np.eye(classes, dtype=np.float32)
        return [(np.asarray(img, np.float32), eye[np.asarray(seg)[..., 0].astype(np.intp)]) for img, seg in items]

    def _prediction_items(self, batch: np.ndarray, data_aug: Any) -> list[tuple[np.ndarray]]:
        aug = self.data_augmentation
        if data_aug and aug is not None and aug.infaug:
            batch = aug.run_infaug(batch)
        return [(item,) for item in batch]

    def analysis_fullimage(self, sample: Sample, training: bool, data_aug: Any) -> list[tuple[np.ndarray, ...]]:
        """MIScnn API: the whole preprocessed sample as batch items.

        Args:
            sample: A preprocessed Sample; ``seg_data`` (training) a label map or one-hot.
            training: Return ``(img, seg)`` items; else ``(img,)`` items.
            data_aug: Augment. Training: ``patches_per_sample`` augmented copies (default: the
                augmentation's ``cycles``); prediction: the inference flip when ``infaug`` is on.

        Returns:
            Tuples without batch axis: ``(img (*spatial, C), one-hot seg (*spatial, classes))``
            (float32) for training, ``(img,)`` for prediction.
        """
        img = np.asarray(sample.img_data, np.float32)
        if not training:
            return self._prediction_items(img[np.newaxis], data_aug)
        augment = bool(data_aug) and self.data_augmentation is not None
        labels = self._adapter_labels(sample)
        n = self.patches_per_sample if augment else 1
        items = self._sample_items(img, labels, None, n, self._adapter_rng(), augment)
        return self._one_hot_items(items, sample.classes)

    def analysis_patchwise_crop(self, sample: Sample, data_aug: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        """MIScnn API (training only): ``patches_per_sample`` random crops of a sample.

        Crops follow this Preprocessor's settings (``foreground_oversampling``,
        ``patchwise_skip_blanks``); the user's Data_Augmentation is never modified.

        Args:
            sample: A preprocessed Sample with ``seg_data`` (label map or one-hot).
            data_aug: Augment the crops.

        Returns:
            ``[(img (*patch_shape, C), one-hot seg (*patch_shape, classes)), ...]``, float32.
        """
        img = np.asarray(sample.img_data, np.float32)
        labels = self._adapter_labels(sample)
        rng = self._adapter_rng()
        locations = class_locations(labels[..., 0], sample.classes, rng=np.random.default_rng(self.seed))
        augment = bool(data_aug) and self.data_augmentation is not None
        items = self._sample_items(img, labels, locations, self.patches_per_sample, rng, augment)
        return self._one_hot_items(items, sample.classes)

    def analysis_patchwise_grid(self, sample: Sample, training: bool, data_aug: Any) -> list[tuple[np.ndarray, ...]]:
        """MIScnn API: every grid patch of a sample, in grid order (x-major, z fastest).

        Training uses ``patchwise_overlap`` (0 when unset) and drops blank patches with
        ``patchwise_skip_blanks``; prediction lays out the prediction grid (half-patch
        overlap by default), which :meth:`postprocessing` merges back. Images smaller than
        the patch are padded.

        Args:
            sample: A preprocessed Sample (with ``seg_data`` for training).
            training: Return ``(img, seg)`` items; else ``(img,)`` items.
            data_aug: Augment (training) or apply the inference flip (prediction, ``infaug``).

        Returns:
            Tuples without batch axis: ``(img (*patch_shape, C), one-hot seg (*patch_shape,
            classes))`` (float32) for training, ``(img,)`` for prediction.
        """
        if not training:
            plan = self.prediction_plan(sample)
            self.cache[f"plan_{sample.index}"] = plan
            return self._prediction_items(plan.patches(), data_aug)
        img = np.asarray(sample.img_data, np.float32)
        labels = self._adapter_labels(sample)
        augment = bool(data_aug) and self.data_augmentation is not None
        positions = self._grid_positions(img, labels)
        items = self._grid_items(img, labels, positions, self._adapter_rng(), augment)
        return self._one_hot_items(items, sample.classes)

    # ------------------------------------------------------------------ prediction
    def prediction_plan(self, sample: Sample, divisor: Sequence[int] | None = None) -> PredictionPlan:
        """Pad the sample up to the patch size where needed and lay out the grid.

        Args:
            sample: A preprocessed sample.
            divisor: fullimage only: pad up to a multiple of this per axis (the network's
                total downsampling); the padding is cropped off the merged prediction.
        """
        img = np.asarray(sample.img_data, dtype=np.float32)
        spatial = img.shape[:-1]
        if self.analysis == "fullimage":
            target = _round_up(spatial, divisor) if divisor is not None else spatial
            img, crop = _pad_centered(img, target, self._pad_value(img))
            return PredictionPlan(img, [(0,) * len(spatial)], tuple(target), crop)
        window = self.patch_shape
        target = tuple(max(s, w) for s, w in zip(spatial, window))
        img, crop = _pad_centered(img, target, self._pad_value(img))
        positions = grid_positions(target, window, self.prediction_overlap())
        return PredictionPlan(img, positions, window, crop)

    def merge(self, plan: PredictionPlan, predictions: Iterator[np.ndarray] | np.ndarray) -> np.ndarray:
        """Merge patch predictions (in plan order) into the sample's probability map."""
        accumulator = None
        k = 0
        for batch in predictions if not isinstance(predictions, np.ndarray) else [predictions]:
            batch = np.asarray(batch)
            if accumulator is None:
                weighting = "constant" if self.analysis == "fullimage" else self.merge_weighting
                accumulator = PatchAccumulator(plan.image.shape[:-1], batch.shape[-1], plan.window,
                                               weighting=weighting)
            accumulator.add_batch(batch, plan.positions[k:k + len(batch)])
            k += len(batch)
        if accumulator is None or k != len(plan):
            raise DataError(f"Expected {len(plan)} patch predictions, got {k}.")
        return accumulator.result(copy=False)[plan.crop]

    def finish_prediction(self, sample: Sample | Any, probabilities: np.ndarray,
                          activation_output: bool = False) -> np.ndarray:
        """Labels (or probabilities) in the original image space: argmax, then subfunctions undone."""
        prediction = probabilities if activation_output else np.argmax(probabilities, axis=-1)
        for sf in reversed(self.subfunctions):
            prediction = call_postprocessing(sf, sample, prediction, activation_output)
        return prediction

    def postprocessing(self, sample: Sample | Any, prediction: np.ndarray,
                       activation_output: bool = False) -> np.ndarray:
        """MIScnn API: merge the stacked model output of one case and map it back.

        Args:
            sample: The preprocessed Sample from ``run(..., training=False)`` (or its index).
            prediction: Model output for all of the case's patches, ``(N, *window, C)``.
            activation_output: Return probabilities ``(..., C)`` instead of labels.
        """
        index = sample.index if isinstance(sample, Sample) else sample
        aug = self.data_augmentation
        if aug is not None and getattr(aug, "infaug", False):
            prediction = aug.run_infaug(prediction)
        plan = self.cache.pop(f"plan_{index}", None)
        if plan is None:
            if not isinstance(sample, Sample):
                raise DataError(f"No prediction plan for case {index!r}; call run(..., training=False) first.")
            plan = self.prediction_plan(sample)
        probabilities = self.merge(plan, prediction)
        if not isinstance(sample, Sample):
            sample = self.cache.get(index, sample)
        return self.finish_prediction(sample, probabilities, activation_output)


def _as_labels(seg: np.ndarray) -> np.ndarray:
    """An integer label map in the smallest of uint8/int32/int64 that holds its values."""
    seg = np.asarray(seg)
    if seg.size == 0:
        return seg.astype(np.uint8)
    lo, hi = int(seg.min()), int(seg.max())
    dtype = np.uint8 if 0 <= lo and hi < 256 else (np.int32 if -(2**31) <= lo and hi < 2**31 else np.int64)
    return seg.astype(dtype, copy=False)


def _round_up(shape: Sequence[int], divisor: Sequence[int] | int) -> tuple[int, ...]:
    divisor = (divisor,) * len(shape) if isinstance(divisor, (int, np.integer)) else tuple(divisor)
    return tuple(int(math.ceil(s / d) * d) for s, d in zip(shape, divisor))


def _pad_centered(array: np.ndarray, target: Sequence[int], value: Any) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Pad the spatial axes of a channels-last array up to ``target`` (floor before, rest after).

    Returns the padded array (the input itself when nothing is needed) and the slices that
    cut the original back out.
    """
    spatial = array.shape[:-1]
    target = tuple(int(t) for t in target)
    before = [(t - s) // 2 for s, t in zip(spatial, target)]
    crop = tuple(slice(b, b + s) for b, s in zip(before, spatial))
    if target == tuple(spatial):
        return array, crop
    padded = np.empty(target + array.shape[-1:], dtype=array.dtype)
    padded[...] = value
    padded[crop] = array
    return padded, crop


def _prepare_one(args: tuple[Preprocessor, Any, bool, bool]) -> None:
    preprocessor, index, training, backup = args
    sample = preprocessor.load_sample(index, training)
    if backup:
        preprocessor.data_io.backup_sample(sample)
