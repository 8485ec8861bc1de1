"""``miseg predict``: segment cases with a model trained by ``miseg train``."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from miseg.cli.common import config_from_args, model_file, select_cases
from miseg.cli.config import build_pipeline, model_config_path, resolve_data_section
from miseg.errors import ConfigurationError, DataNotFoundError

__all__ = ["run_predict", "load_model_run", "apply_output_format", "instance_segmenter"]


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
    pipeline.network.load(path)
    return pipeline


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
    if "tta" in explicit:
        network.tta = bool(args.tta)
    if "keep_largest_component" in explicit:
        network.keep_largest_component = bool(args.keep_largest_component)
    cases = select_cases(pipeline.data_io, args.cases, labelled=False)
    segmenter = instance_segmenter(args)
    print(f"Predicting {len(cases)} case(s) of {pipeline.data_io.input_path} into {args.output}")
    network.predict(cases, instances=segmenter or False)
    extra = " with instance maps and tables" if segmenter is not None else ""
    print(f"Wrote {len(cases)} prediction(s){extra} to {args.output}")
    return 0


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
