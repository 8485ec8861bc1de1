"""``miseg export``: a trained model as a SavedModel, ONNX or .keras file with its preprocessing plan."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, NamedTuple

from miseg.cli.options import ArgumentBuilder, positive_int

__all__ = ["add_export_parser", "default_output", "run_export"]

_FORMATS = ("savedmodel", "onnx", "keras")


def add_export_parser(subparsers: Any, b: ArgumentBuilder, make_subparser: Callable[..., Any]) -> None:
    """Register ``miseg export`` (``make_subparser`` is the command line's subparser factory)."""
    p = make_subparser(
        subparsers, "export", "export a trained model for serving (SavedModel, ONNX, .keras)",
        "Export a model written by 'miseg train' as a TensorFlow SavedModel (TF Serving), an ONNX file "
        "(converted with tf2onnx, checked with onnxruntime) or a .keras file, with the preprocessing plan "
        "(subfunctions, patch shape, overlap, classes, activation) as JSON beside it, so predictions can be "
        "reproduced outside miseg. The data is not needed. Nothing but the export files is written.",
    )
    b.add(p, "model", metavar="MODEL", help="model file written by 'miseg train' (.keras)")
    b.add(p, "--format", choices=_FORMATS, default="savedmodel", help="export format")
    b.add(p, "-o", "--output", metavar="PATH", default=None,
          help="SavedModel folder or .onnx/.keras file (None: <model>_export[.onnx|.keras] beside MODEL)")
    b.add(p, "--config", metavar="PATH", default=None, help="run config (None: <model>.config.yaml)")
    b.add(p, "--opset", type=positive_int, metavar="N", default=None, help="ONNX opset (None: tf2onnx's default)")
    b.add(p, "--overwrite", action="store_true", default=False, help="replace an earlier export at --output")
    b.add(p, "--verify", action=argparse.BooleanOptionalAction, default=True,
          help="compare the exported model with Keras on a random patch")
    p.set_defaults(handler="export")


def default_output(model: str, fmt: str) -> str:
    """``run/model.keras`` -> ``run/model_export`` (a folder, or ``.onnx``/``.keras`` appended).

    Example:
        >>> default_output("run/model.keras", "onnx")
        'run/model_export.onnx'
    """
    stem = os.path.splitext(os.fspath(model))[0]
    return stem + "_export" + {"savedmodel": "", "onnx": ".onnx", "keras": ".keras"}[fmt]


class _ModelOnlyIO(NamedTuple):
    """What an export needs of a Data_IO (interface, label mapping), without the data folder."""

    interface: Any
    input_path: Any
    label_mapping: Any
    seed: int
    batch_path: str = "batches"
    output_path: str = "predictions"


def _resolved(config: dict[str, Any]) -> bool:
    data, pre = config["data"], config["preprocessing"]
    return data.get("interface") not in (None, "auto") and data.get("three_dim") is not None \
        and pre.get("patch_shape") != "auto"


def _network(model: str, config_path: str) -> Any:
    """The trained Neural_Network of ``model``, rebuilt from its run config (data only if unresolved)."""
    from miseg.cli.config import build_interface, build_network, build_pipeline, build_preprocessor, load_config

    config = load_config(config_path)
    config["augmentation"]["enabled"] = False
    if _resolved(config):
        interface = build_interface(config["data"])
        data_io = _ModelOnlyIO(interface, config["data"].get("path"), config["data"].get("label_mapping"),
                               int(config["training"].get("seed") or 0))
        network = build_network(config, build_preprocessor(config, data_io, training=False))
    else:  # a hand-written config with 'auto' entries: resolve them from the data
        network = build_pipeline(config, training=False).network
    network.load(model)
    return network


def run_export(args: argparse.Namespace, explicit: set[str]) -> int:
    """Export ``MODEL`` in ``--format`` to ``--output`` with its preprocessing plan."""
    from miseg.cli.config import model_config_path
    from miseg.errors import DataNotFoundError

    if not os.path.isfile(args.model):
        raise DataNotFoundError(f"No model file at {args.model!r}; train one with 'miseg train'.")
    config_path = args.config or model_config_path(args.model)
    if not os.path.isfile(config_path):
        raise DataNotFoundError(
            f"No run config at {config_path!r} next to the model; pass the training run's config with --config."
        )
    output = args.output or default_output(args.model, args.format)
    network = _network(args.model, config_path)
    result = network.export(output, args.format, overwrite=args.overwrite, opset=args.opset, verify=args.verify)
    print(f"Exported {args.model} as {args.format} to {result.model_path}")
    print(f"Preprocessing plan: {result.plan_path}")
    return 0
