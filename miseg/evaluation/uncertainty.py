"""Prediction uncertainty: voxel maps, per-case scores, a review flag and its calibration.

A prediction with ``uncertainty=True`` compares several probability maps of one case, its
*members*: the mirrored test-time predictions of a single ``Neural_Network`` (the
un-mirrored input and one mirror per spatial axis), or the member models of a
``Model_Group`` / ``CrossValidationGroup``. From them it computes

* the voxel-wise predictive entropy of the members' mean probabilities, divided by
  ``log(classes)`` so it lies in [0, 1] for any number of classes
  (``<case>.entropy.nii.gz`` for NIfTI),
* the voxel-wise variance over the members of the foreground probability
  ``1 - p(background)`` (``<case>.variance.nii.gz``),

and per case (one row of ``<output_path>/uncertainty.tsv``):

* ``mean_entropy_foreground``: mean entropy inside the predicted foreground (NaN when
  nothing is predicted),
* ``uncertain_fraction``: the fraction of voxels with entropy above ``entropy_threshold``
  among the voxels any member (or the ensemble) calls foreground (0 when there are none),
* ``member_dice``: the members' mean pairwise Dice (per pair the mean over the foreground
  classes either member predicts; 1 when neither predicts any; NaN for a single member),
* ``review``: the quality flag of a :class:`ReviewRule`.

:func:`calibrate_review_threshold` picks the rule's threshold from validation cases (see
its docstring for the rule) and :func:`write_calibration` / :func:`load_review_rule` store
and read it (``uncertainty_calibration.json``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from miseg.errors import (
    ConfigurationError,
    CorruptFileError,
    DataError,
    DataNotFoundError,
)
from miseg.utils.fileio import atomic_path, safe_join

__all__ = [
    "UNCERTAINTY_FILE",
    "CALIBRATION_FILE",
    "SCORES",
    "CaseUncertainty",
    "ReviewRule",
    "DEFAULT_REVIEW_RULE",
    "voxel_uncertainty",
    "member_dice",
    "case_uncertainty",
    "save_float_map",
    "UncertaintyRecorder",
    "load_review_rule",
    "calibrate_review_threshold",
    "write_calibration",
    "calibrate_from_tables",
]

UNCERTAINTY_FILE = "uncertainty.tsv"
CALIBRATION_FILE = "uncertainty_calibration.json"
DETAILED_UNCERTAINTY_FILE = "detailed_validation.uncertainty.tsv"

SCORES: dict[str, str] = {
    "member_dice": "below",
    "mean_entropy_foreground": "above",
    "uncertain_fraction": "above",
}
"""The per-case scores and the side on which a case is flagged for review."""

COLUMNS = ("case", "mean_entropy_foreground", "uncertain_fraction", "member_dice", "n_members", "review")


@dataclasses.dataclass(frozen=True)
class ReviewRule:
    """Flag a case for review when ``score`` lies below/above ``threshold``.

    Args:
        score: One of :data:`SCORES`.
        threshold: The threshold.
        direction: ``"below"`` (flag when ``score < threshold``) or ``"above"``
            (``score > threshold``); default: the score's side in :data:`SCORES`.

    A NaN score (e.g. no predicted foreground) is never flagged.
    """

    score: str = "member_dice"
    threshold: float = 0.9
    direction: str | None = None

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ConfigurationError(f"Unknown uncertainty score {self.score!r}; use one of {sorted(SCORES)}.")
        if self.direction is None:
            object.__setattr__(self, "direction", SCORES[self.score])
        if self.direction not in ("below", "above"):
            raise ConfigurationError(f"direction={self.direction!r} must be 'below' or 'above'.")
        if not math.isfinite(float(self.threshold)):
            raise ConfigurationError(f"The review threshold must be finite, got {self.threshold!r}.")
        object.__setattr__(self, "threshold", float(self.threshold))

    def flag(self, scores: Mapping[str, float]) -> bool:
        """Whether a case with these scores needs review."""
        value = float(scores[self.score])
        if math.isnan(value):
            return False
        return value < self.threshold if self.direction == "below" else value > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "threshold": self.threshold, "direction": self.direction}


DEFAULT_REVIEW_RULE = ReviewRule("member_dice", 0.9, "below")
"""The uncalibrated default: review when the members agree with a mean Dice below 0.9."""


@dataclasses.dataclass
class CaseUncertainty:
    """Uncertainty of one predicted case.

    Attributes:
        entropy: Normalised predictive entropy per voxel (float32, original image space).
        variance: Variance of the foreground probability over the members (float32).
        scores: ``mean_entropy_foreground``, ``uncertain_fraction``, ``member_dice`` and
            ``n_members``.
        review: The review flag (set by the rule in use).
    """

    entropy: np.ndarray
    variance: np.ndarray
    scores: dict[str, float]
    review: bool = False


def _stack(members: Sequence[np.ndarray]) -> np.ndarray:
    if not members:
        raise DataError("Uncertainty needs at least one probability map.")
    stacked = np.stack([np.asarray(m, dtype=np.float32) for m in members])
    if stacked.ndim < 3 or stacked.shape[-1] < 2:
        raise DataError(f"Uncertainty needs probability maps (*spatial, classes>=2), got {stacked.shape[1:]}.")
    return stacked


def voxel_uncertainty(members: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised entropy of the mean probabilities and variance of the foreground probability.

    Args:
        members: Probability maps ``(*spatial, classes)`` of one case.

    Returns:
        ``(entropy, variance)``, both float32 of the spatial shape; entropy in [0, 1].
    """
    stacked = _stack(members)
    mean = stacked.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(mean > 0, mean * np.log(np.clip(mean, 1e-12, None)), 0.0)
    entropy = np.clip(-terms.sum(axis=-1) / math.log(stacked.shape[-1]), 0.0, 1.0)
    variance = (1.0 - stacked[..., 0]).var(axis=0)
    return entropy.astype(np.float32), variance.astype(np.float32)


def _pair_dice(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    scores = []
    for c in range(1, classes):
        in_a, in_b = a == c, b == c
        total = int(in_a.sum()) + int(in_b.sum())
        if total:
            scores.append(2.0 * int(np.logical_and(in_a, in_b).sum()) / total)
    return float(np.mean(scores)) if scores else 1.0


def member_dice(labels: Sequence[np.ndarray], classes: int) -> float:
    """Mean pairwise Dice of label maps (foreground classes; NaN for fewer than two maps)."""
    if len(labels) < 2:
        return float("nan")
    return float(np.mean([_pair_dice(a, b, classes) for a, b in itertools.combinations(labels, 2)]))


def case_uncertainty(members: Sequence[np.ndarray], prediction: np.ndarray | None = None, *,
                     entropy_threshold: float = 0.5) -> CaseUncertainty:
    """Voxel maps and per-case scores of one case from its members' probability maps.

    Args:
        members: Probability maps ``(*spatial, classes)`` (mirrored predictions or models).
        prediction: The final label map (default: argmax of the members' mean).
        entropy_threshold: Normalised entropy above which a voxel counts as uncertain.

    Returns:
        A :class:`CaseUncertainty` (``review`` not yet set).
    """
    stacked = _stack(members)
    classes = stacked.shape[-1]
    entropy, variance = voxel_uncertainty(list(stacked))
    labels = [np.argmax(m, axis=-1) for m in stacked]
    if prediction is None:
        prediction = np.argmax(stacked.mean(axis=0), axis=-1)
    prediction = np.asarray(prediction).reshape(entropy.shape)
    foreground = prediction != 0
    region = foreground | np.any(np.stack(labels) != 0, axis=0)
    scores = {
        "mean_entropy_foreground": float(entropy[foreground].mean()) if foreground.any() else float("nan"),
        "uncertain_fraction": float((entropy[region] > entropy_threshold).mean()) if region.any() else 0.0,
        "member_dice": member_dice(labels, classes),
        "n_members": float(len(labels)),
    }
    return CaseUncertainty(entropy, variance, scores)


# ------------------------------------------------------------------------------ output
def save_float_map(data_io: Any, sample: Any, values: np.ndarray, kind: str) -> str | None:
    """Write a float voxel map of ``sample`` beside its prediction, atomically.

    NIfTI data get ``<output_path>/<index>.<kind>.nii.gz`` with the prediction's geometry;
    in-memory interfaces (with a ``predictions`` dict) keep it under ``"<index>.<kind>"``;
    any other interface gets ``<index>.<kind>.npy`` (the float format of the image and
    slicer interfaces).

    Returns:
        The written path (``None`` for in-memory interfaces).
    """
    interface = data_io.interface
    values = np.asarray(values, dtype=np.float32)
    from miseg.data_loading.interfaces.nifti_io import NIFTI_interface, write_nifti

    if isinstance(interface, NIFTI_interface):
        data = values if interface.three_dim else values[:, :, np.newaxis]
        path = safe_join(data_io.output_path, sample.index, f".{kind}.nii.gz")
        write_nifti(path, data, interface._prediction_geometry(sample, values.shape))
        return path
    store = getattr(interface, "predictions", None)
    if isinstance(store, dict):
        store[f"{sample.index}.{kind}"] = values.copy()
        return None
    path = safe_join(data_io.output_path, sample.index, f".{kind}.npy")
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, values, allow_pickle=False)
    return path


class UncertaintyRecorder:
    """Collects the uncertainty of the cases of one ``predict`` call and writes its outputs.

    Args:
        data_io: The Data_IO predictions go through.
        review: Anything :func:`load_review_rule` takes.
        entropy_threshold: See :func:`case_uncertainty`.
    """

    def __init__(self, data_io: Any, review: Any = None, entropy_threshold: float = 0.5) -> None:
        self.data_io = data_io
        self.rule = load_review_rule(review)
        if not 0.0 <= float(entropy_threshold) <= 1.0:
            raise ConfigurationError(f"entropy_threshold={entropy_threshold!r} must lie in [0, 1].")
        self.entropy_threshold = float(entropy_threshold)
        self.rows: list[dict[str, Any]] = []

    def measure(self, index: Any, members: Sequence[np.ndarray], prediction: np.ndarray | None) -> CaseUncertainty:
        """The case's :class:`CaseUncertainty` with its review flag; its row is kept."""
        result = case_uncertainty(members, prediction, entropy_threshold=self.entropy_threshold)
        result.review = self.rule.flag(result.scores)
        self.rows.append({"case": str(index), **result.scores, "review": result.review})
        return result

    def save_maps(self, sample: Any, result: CaseUncertainty) -> None:
        """Write the entropy and variance maps of ``sample``."""
        save_float_map(self.data_io, sample, result.entropy, "entropy")
        save_float_map(self.data_io, sample, result.variance, "variance")

    def write_table(self) -> str:
        """Write (or update) ``<output_path>/uncertainty.tsv``; rows of other cases are kept."""
        import pandas as pd

        from miseg.evaluation.reports import read_table, write_table

        path = os.path.join(self.data_io.output_path, UNCERTAINTY_FILE)
        table = pd.DataFrame(self.rows, columns=list(COLUMNS))
        table["n_members"] = table["n_members"].astype(int)
        table["review"] = table["review"].map(lambda v: "true" if v else "false")
        if os.path.isfile(path):
            old = read_table(path)
            if "case" in old.columns:
                old = old[~old["case"].astype(str).isin(set(table["case"]))].copy()
                if "review" in old.columns:
                    old["review"] = old["review"].map(lambda v: "true" if str(v).lower() == "true" else "false")
                table = pd.concat([old, table], ignore_index=True)
        return write_table(table, path)


# ------------------------------------------------------------------------------ calibration
def load_review_rule(review: Any = None) -> ReviewRule:
    """Resolve the ``review_threshold`` argument of ``predict``.

    Args:
        review: ``None`` (:data:`DEFAULT_REVIEW_RULE`), a float (threshold on
            ``member_dice``), a :class:`ReviewRule`, a dict with ``score``/``threshold``
            (and ``direction``), or the path of a calibration JSON
            (:func:`write_calibration`; a folder means its ``uncertainty_calibration.json``).

    Raises:
        DataNotFoundError: when the calibration file is missing.
        CorruptFileError: when it cannot be read as a rule.
    """
    if review is None:
        return DEFAULT_REVIEW_RULE
    if isinstance(review, ReviewRule):
        return review
    if isinstance(review, (int, float)) and not isinstance(review, bool):
        return ReviewRule("member_dice", float(review))
    if isinstance(review, Mapping):
        return ReviewRule(str(review.get("score", "member_dice")), review.get("threshold", float("nan")),
                          review.get("direction"))
    if isinstance(review, (str, os.PathLike)):
        path = os.fspath(review)
        if os.path.isdir(path):
            path = os.path.join(path, CALIBRATION_FILE)
        if not os.path.isfile(path):
            raise DataNotFoundError(f"No uncertainty calibration file at {path!r}.")
        try:
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle)
            return ReviewRule(str(stored["score"]), stored["threshold"], stored.get("direction"))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"{path!r} is not an uncertainty calibration: {exc}") from exc
    raise ConfigurationError(
        f"review_threshold={review!r}: expected None, a number, a ReviewRule, a dict or a calibration file."
    )


def _youden(values: np.ndarray, poor: np.ndarray, direction: str) -> tuple[float, float]:
    """Best ``(J, threshold)`` over the midpoints between sorted distinct values."""
    distinct = np.unique(values)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[1:] + distinct[:-1]) / 2, [distinct[-1] + 1e-6]])
    best = (-np.inf, float(candidates[0]))
    for threshold in candidates:
        flagged = values < threshold if direction == "below" else values > threshold
        j = flagged[poor].mean() - flagged[~poor].mean()
        if j > best[0] + 1e-12:
            best = (float(j), float(threshold))
    return best


def calibrate_review_threshold(table: Any, *, score: str = "auto", quality: float | None = None,
                               dice_column: str = "dice") -> dict[str, Any]:
    """Pick the review threshold on validation cases.

    Rule: a case is *poor* when its Dice is below ``quality`` (default: the median Dice of
    the cases). For a score, the threshold is the midpoint between two neighbouring
    observed values that maximises Youden's J (rate of flagged poor cases minus rate of
    flagged good cases), flagging on the score's side in :data:`SCORES`; the first best
    (most conservative) threshold wins ties. With ``score="auto"`` the score with the
    highest J is used (ties: ``member_dice``, then the entropy scores).

    Args:
        table: Per-case table (pandas DataFrame or mapping of columns) with ``dice_column``
            and the score columns.
        score: A name of :data:`SCORES` or ``"auto"``.
        quality: The Dice below which a case is poor.
        dice_column: The column holding each case's Dice (mean over foreground classes).

    Returns:
        The calibration: ``score``, ``threshold``, ``direction``, ``quality``, ``youden_j``,
        ``n_cases``, ``n_poor`` and ``rule`` (a one-line description).

    Raises:
        ConfigurationError: unknown score, or fewer than one poor and one good case.
    """
    import pandas as pd

    frame = pd.DataFrame(table)
    names = list(SCORES) if score == "auto" else [score]
    for name in names:
        if name not in SCORES:
            raise ConfigurationError(f"Unknown uncertainty score {name!r}; use 'auto' or one of {sorted(SCORES)}.")
    missing = [c for c in [dice_column, *names] if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"The calibration table lacks the columns {missing}.")
    dice = frame[dice_column].to_numpy(dtype=float)
    quality = float(np.nanmedian(dice)) if quality is None else float(quality)
    best: dict[str, Any] | None = None
    for name in names:
        values = frame[name].to_numpy(dtype=float)
        keep = np.isfinite(values) & np.isfinite(dice)
        poor = dice[keep] < quality
        if poor.all() or not poor.any():
            continue
        j, threshold = _youden(values[keep], poor, SCORES[name])
        if best is None or j > best["youden_j"] + 1e-12:
            best = {"score": name, "threshold": threshold, "direction": SCORES[name], "quality": quality,
                    "youden_j": j, "n_cases": int(keep.sum()), "n_poor": int(poor.sum())}
    if best is None:
        raise ConfigurationError(
            f"Cannot calibrate the review threshold: the {len(frame)} validation cases need at least "
            f"one with Dice below quality={quality:.4g} and one at or above it (with finite scores)."
        )
    best["rule"] = (f"review when {best['score']} is {best['direction']} {best['threshold']:.6g} "
                    f"(Youden-optimal for Dice < {quality:.4g} on {best['n_cases']} validation cases)")
    return best


def write_calibration(calibration: Mapping[str, Any], path: str) -> str:
    """Write a calibration atomically as JSON (a folder gets ``uncertainty_calibration.json``)."""
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".json"):
        path = os.path.join(path, CALIBRATION_FILE)
    with atomic_path(path, suffix=".json") as tmp, open(tmp, "w", encoding="utf-8") as handle:
        json.dump(dict(calibration), handle, indent=2)
    return path


def calibrate_from_tables(evaluation_paths: Iterable[str], output: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Calibrate from ``detailed_validation.uncertainty.tsv`` tables (e.g. of every fold).

    Args:
        evaluation_paths: Folders of ``detailed_validation(..., uncertainty=True)`` runs.
        output: Where to write the JSON (default: the first folder's
            ``uncertainty_calibration.json``).
        **kwargs: Passed to :func:`calibrate_review_threshold`.

    Returns:
        The calibration (also written).
    """
    import pandas as pd

    from miseg.evaluation.reports import read_table

    paths = [os.fspath(p) for p in evaluation_paths]
    tables = []
    for folder in paths:
        file = os.path.join(folder, DETAILED_UNCERTAINTY_FILE)
        if not os.path.isfile(file):
            raise DataNotFoundError(
                f"No {DETAILED_UNCERTAINTY_FILE} in {folder!r}; run detailed_validation(..., uncertainty=True)."
            )
        tables.append(read_table(file))
    if not tables:
        raise ConfigurationError("calibrate_from_tables needs at least one evaluation folder.")
    calibration = calibrate_review_threshold(pd.concat(tables, ignore_index=True), **kwargs)
    write_calibration(calibration, output or paths[0])
    return calibration
