"""``miseg predict``: segment cases with a model trained by ``miseg train``."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from miseg.cli.common import config_from_args, model_file, select_cases
from miseg.cli.config import build_pipeline, load_config, model_config_path, resolve_data_section
from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError, ModelError

__all__ = ["run_predict", "load_model_run", "check_model_matches_data", "apply_output_format",
           "instance_segmenter", "uncertainty_options"]


def load_model_run(args: argparse.Namespace, explicit: set[str], model: str, output_path: str = "predictions",
                   adjust: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Rebuild a trained run for inference.

    The config is the one next to ``model`` (or ``--config``) with the typed flags on top;
    ``adjust(config)`` may edit it further. The pipeline has no augmentation, and the model's
    weights are loaded.

    Returns:
        The :class:`~miseg.cli.config.Pipeline`.

    Raises:
        DataNotFoundError: when the model file or its config is missing.
    """
    path = model if os.path.isfile(model) else model_file(model)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"No model file at {model!r}; train one with 'miseg train' or pass --model.")
    config_path = getattr(args, "config", None) or model_config_path(path)
    if not os.path.isfile(config_path):
        raise DataNotFoundError(
            f"No run config at {config_path!r} next to the model; pass the training run's config with --config."
        )
    config = config_from_args(args, explicit, config_path=config_path)
    if adjust is not None:
        adjust(config)
    pipeline = build_pipeline(config, training=False, output_path=output_path)
    if hasattr(args, "ignore_manifest"):  # commands that offer the override check the model first
        check_model_matches_data(path, pipeline.interface, ignore=bool(args.ignore_manifest))
    pipeline.network.load(path)
    return pipeline


def check_model_matches_data(model_path: str, interface: Any, ignore: bool = False) -> None:
    """Refuse a model whose manifest (or, without one, saved config) names another class or
    channel count than the data's interface.

    Args:
        model_path: The model file (``<model>.manifest.json`` / ``<model>.config.yaml`` beside it).
        interface: The interface serving the data to predict.
        ignore: Only warn (``--ignore-manifest``).

    Raises:
        ModelError: on a mismatch, naming both values and ``--ignore-manifest``.
    """
    import warnings

    from miseg.utils.manifest import check_model_data, model_manifest_path, read_manifest

    source = model_manifest_path(model_path)
    try:
        recorded = read_manifest(source)
    except (DataNotFoundError, CorruptFileError):
        source = model_config_path(model_path)
        try:
            recorded = load_config(source) if os.path.isfile(source) else {}
        except ConfigurationError:
            recorded = {}
    problems = check_model_data(recorded, interface)
    if not problems:
        return
    message = (f"the model {model_path!r} does not fit the data ({'; '.join(problems)}, "
               f"according to {os.path.basename(source)})")
    if ignore:
        warnings.warn(f"{message}; predicting anyway (--ignore-manifest).", UserWarning, stacklevel=2)
        return
    raise ModelError(f"Refusing to predict: {message}. Pass --ignore-manifest to predict anyway.")


def apply_output_format(config: dict[str, Any], fmt: str) -> None:
    """Set the DICOM interface's ``output_format`` from ``--format`` (in place).

    Raises:
        ConfigurationError: for ``seg``/``rtstruct`` (or ``nifti``) on data that is not DICOM
            (NIfTI data is always written as NIfTI).
    """
    if fmt == "auto":
        return
    resolve_data_section(config)
    name = config["data"]["interface"]
    if name == "dicom":
        config["data"]["options"] = {**dict(config["data"].get("options") or {}), "output_format": fmt}
    elif not (fmt == "nifti" and name in ("nifti", "nifti_slicer")):
        raise ConfigurationError(
            f"--format {fmt} needs DICOM data, but the run reads {name!r} data; predictions are "
            f"written in the data's own format (omit --format)."
        )


def run_predict(args: argparse.Namespace, explicit: set[str]) -> int:
    """Predict every (or each ``--cases``) case of DATA into ``--output``."""
    pipeline = load_model_run(args, explicit, args.model, output_path=args.output,
                              adjust=lambda config: apply_output_format(config, args.format))
    network = pipeline.network
    network.run_config = pipeline.config  # recorded in <output>/manifest.json
    network.hash_inputs = bool(getattr(args, "hash_inputs", False))
    if "tta" in explicit:
        network.tta = bool(args.tta)
    if "keep_largest_component" in explicit:
        network.keep_largest_component = bool(args.keep_largest_component)
    cases = select_cases(pipeline.data_io, args.cases, labelled=False)
    segmenter = instance_segmenter(args)
    print(f"Predicting {len(cases)} case(s) of {pipeline.data_io.input_path} into {args.output}")
    network.predict(cases, instances=segmenter or False, **uncertainty_options(args))
    extra = " with instance maps and tables" if segmenter is not None else ""
    extra += " with uncertainty maps and uncertainty.tsv" if getattr(args, "uncertainty", False) else ""
    print(f"Wrote {len(cases)} prediction(s){extra} to {args.output}")
    return 0


def uncertainty_options(args: argparse.Namespace) -> dict[str, Any]:
    """``predict`` keywords of ``--uncertainty`` / ``--review-threshold`` (empty without them).

    Raises:
        ConfigurationError: ``--review-threshold`` without ``--uncertainty``.
    """
    review = getattr(args, "review_threshold", None)
    if not getattr(args, "uncertainty", False):
        if review is not None:
            raise ConfigurationError("--review-threshold needs --uncertainty.")
        return {}
    if review is not None:
        try:
            review = float(review)
        except ValueError:
            pass  # a calibration file or folder
    return {"uncertainty": True, "review_threshold": review}


def instance_segmenter(args: argparse.Namespace) -> Any:
    """The ``InstanceSegmenter`` of ``--instances`` and its options (``None`` without it)."""
    if not getattr(args, "instances", False):
        return None
    from miseg.processing.instances import InstanceSegmenter

    split = getattr(args, "instance_split", "none")
    return InstanceSegmenter(
        connectivity=getattr(args, "connectivity", None),
        min_volume=getattr(args, "min_instance_volume", 0.0),
        split=None if split == "none" else split,
        seed_distance=getattr(args, "seed_distance", 5.0),
    )
