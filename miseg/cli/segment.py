"""``miseg segment``: segment cases with a classical method (and ``miseg evaluate --method``).

``miseg segment DATA --method NAME`` writes predictions like ``miseg predict``. Methods that
learn (thresholds, intensity models) are fitted first on DATA's labelled cases (``--fit``)
or read from a saved classical model (``--model``); seeds, a seed mask or a box make
interactive use of one case possible. ``miseg evaluate DATA --method NAME`` cross-validates
the method with the same folders, tables and figures as a U-Net.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from miseg.cli.common import config_from_args, format_summary, select_cases
from miseg.cli.options import ArgumentBuilder, add_data_options
from miseg.errors import ConfigurationError, CorruptFileError, DataNotFoundError

__all__ = ["add_segment_parser", "add_method_options", "method_choices", "run_segment",
           "run_classical_evaluation", "method_config_from_args"]

_NORMALIZATION_MODES = ("z-score", "minmax", "grayscale", "none")


def method_choices() -> list[str]:
    """The registered classical method names (``--method`` choices)."""
    from miseg.classical import method_names

    return method_names()


def _option(text: str) -> tuple[str, Any]:
    """argparse type: ``KEY=VALUE`` with a YAML value (numbers, lists, mappings, null)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form KEY=VALUE")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML ({exc})") from None


def add_method_options(group: Any, b: ArgumentBuilder) -> None:
    """``--method-option KEY=VALUE`` (the ``--method`` flag itself is added by the caller)."""
    b.add(group, "--method-option", type=_option, action="append", metavar="KEY=VALUE", default=None,
          help="argument of the classical method, value in YAML (repeat), e.g. criterion=confidence_connected "
               "or windows=[100,300]")


def add_segment_parser(subparsers: Any, b: ArgumentBuilder, make_subparser: Callable[..., Any]) -> None:
    """Register ``miseg segment`` (``make_subparser`` is the command line's subparser factory)."""
    p = make_subparser(
        subparsers, "segment", "segment cases with a classical method (threshold, watershed, graph cut, ...)",
        "Segment every (or each --cases) case of DATA with a classical method and write the predictions like "
        "'miseg predict'. Methods that learn (thresholds, intensity models) are fitted on DATA's labelled cases "
        "with --fit, or read from --model (a model.json of 'miseg evaluate --method' or --save-model). "
        "--seed-point/--seed-mask/--box give interactive seeds or scribbles for one case.",
    )
    b.add(p, "data", metavar="DATA", help="data folder (one sub-folder per case)")
    group = p.add_argument_group("method")
    b.add(group, "--method", choices=method_choices(), default=None,
          help="classical method (required unless --model is given)")
    add_method_options(group, b)
    b.add(group, "--model", metavar="FILE", default=None, help="a saved classical model (model.json)")
    b.add(group, "--fit", action="store_true", default=False, help="fit the method on DATA's labelled cases first")
    b.add(group, "--save-model", metavar="FILE", default=None, help="write the (fitted) method to FILE (.json)")
    group = p.add_argument_group("seeds (one case)")
    b.add(group, "--seed-point", type=int, nargs="+", action="append", metavar="I", default=None,
          help="a seed voxel of class 1 as array indices (x y [z]) of the preprocessed image (repeat)")
    b.add(group, "--seed-mask", metavar="FILE", default=None,
          help="seed/scribble label map (.nii/.nii.gz/.npy): c marks class c, the class count marks background")
    b.add(group, "--box", type=int, nargs="+", metavar="I", default=None,
          help="graph cut: box start and stop indices (x0 y0 [z0] x1 y1 [z1]); outside is background")
    group = p.add_argument_group("preprocessing")
    b.add(group, "--resample", type=float, nargs="+", metavar="MM", default=None,
          help="resample to this voxel spacing first (one value per axis, or one for all)")
    b.add(group, "--clip", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
          help="clip intensities to [MIN, MAX] first")
    b.add(group, "--normalization", choices=_NORMALIZATION_MODES, default="none",
          help="intensity normalization (none: thresholds are in the image's own units, e.g. HU)")
    group = p.add_argument_group("output")
    b.add(group, "-o", "--output", metavar="DIR", default="predictions", help="prediction folder")
    b.add(group, "--format", choices=["auto", "nifti", "seg", "rtstruct"], default="auto",
          help="DICOM output: DICOM SEG, RTSTRUCT or NIfTI")
    b.add(group, "--cases", nargs="+", metavar="ID", default=None, help="segment only these cases")
    add_data_options(p, b)
    p.set_defaults(handler="segment")


def method_config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``{key: value}`` of the typed ``--method-option`` flags (a repeated key is an error)."""
    config: dict[str, Any] = {}
    for key, value in getattr(args, "method_option", None) or []:
        if key in config:
            raise ConfigurationError(f"--method-option {key}= is given twice.")
        config[key] = value
    return config


def _pipeline(args: argparse.Namespace, explicit: set[str], output_path: str, with_defaults: bool) -> Any:
    from miseg.cli.config import build_pipeline
    from miseg.cli.predict import apply_output_format

    config = config_from_args(args, explicit)
    if not with_defaults:
        config["preprocessing"]["subfunctions"] = []  # segment: no normalization unless asked for
    config["preprocessing"]["analysis"] = "fullimage"  # classical methods see whole images
    config["preprocessing"]["patch_shape"] = None
    if getattr(args, "format", "auto") != "auto":
        apply_output_format(config, args.format)
    return build_pipeline(config, training=False, output_path=output_path, with_network=False)


def _read_mask(path: str) -> Any:
    import numpy as np

    if not os.path.isfile(path):
        raise DataNotFoundError(f"No seed mask at {path!r}.")
    try:
        if path.lower().endswith(".npy"):
            return np.load(path, allow_pickle=False)
        if path.lower().endswith((".nii", ".nii.gz")):
            import nibabel as nib

            return np.asarray(nib.load(path).dataobj)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"Seed mask {path!r} cannot be read: {exc}") from exc
    raise ConfigurationError(f"--seed-mask {path!r}: use a .nii, .nii.gz or .npy file.")


def _seeds(args: argparse.Namespace, cases: list[Any]) -> dict[Any, Any] | None:
    """The interactive seeds of the one selected case, or None."""
    given = [name for name in ("seed_point", "seed_mask", "box") if getattr(args, name, None)]
    if not given:
        return None
    if len(given) > 1:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigurationError(f"Give one of --seed-point, --seed-mask and --box, not {flags}.")
    if len(cases) != 1:
        raise ConfigurationError(
            f"Seeds are voxel indices of one case, but {len(cases)} cases are selected; choose one with --cases."
        )
    if args.box:
        from miseg.classical import Box

        if len(args.box) % 2:
            raise ConfigurationError(f"--box needs start and stop indices (an even count), got {args.box}.")
        half = len(args.box) // 2
        return {cases[0]: Box(tuple(args.box[:half]), tuple(args.box[half:]))}
    if args.seed_mask:
        return {cases[0]: _read_mask(args.seed_mask)}
    return {cases[0]: [tuple(point) for point in args.seed_point]}


def run_segment(args: argparse.Namespace, explicit: set[str]) -> int:
    """Fit (or load) the method, then segment the selected cases into ``--output``."""
    from miseg.classical import ClassicalModel

    if not args.method and not args.model:
        raise ConfigurationError("Choose a classical method with --method NAME (or a saved one with --model).")
    pipeline = _pipeline(args, explicit, args.output, with_defaults=False)
    options = method_config_from_args(args)
    if args.model:
        if args.method or options:
            raise ConfigurationError("--model brings its own method; drop --method/--method-option.")
        model = ClassicalModel.from_file(args.model, pipeline.preprocessor)
    else:
        model = ClassicalModel(pipeline.preprocessor, args.method, options, score_training=False)
    cases = select_cases(pipeline.data_io, args.cases, labelled=False)
    seeds = _seeds(args, cases)
    if args.fit:
        training = select_cases(pipeline.data_io, None, labelled=True)
        print(f"Fitting {model.method.method_name} on {len(training)} labelled case(s)")
        model.train(training)
    if args.save_model:
        print(f"Wrote the method to {model.dump(args.save_model)}")
    print(f"Segmenting {len(cases)} case(s) of {pipeline.data_io.input_path} with {model.method.method_name} "
          f"into {args.output}")
    model.predict(cases, seeds=seeds)
    print(f"Wrote {len(cases)} prediction(s) to {args.output}")
    return 0


def run_classical_evaluation(args: argparse.Namespace, explicit: set[str]) -> int:
    """``miseg evaluate --method NAME``: k-fold cross-validation of a classical method."""
    from miseg.classical import ClassicalModel
    from miseg.cli.config import save_config
    from miseg.evaluation import cross_validation

    pipeline = _pipeline(args, explicit, "predictions", with_defaults=True)
    config = pipeline.config
    training, evaluation = config["training"], config["evaluation"]
    model = ClassicalModel(pipeline.preprocessor, args.method, method_config_from_args(args))
    cases = select_cases(pipeline.data_io, training.get("cases"), labelled=True)
    os.makedirs(args.output, exist_ok=True)
    save_config(config, os.path.join(args.output, "run.config.yaml"))
    print(f"{evaluation['k_fold']}-fold cross-validation of {args.method} on {len(cases)} case(s), "
          f"results in {args.output}")
    cross_validation(
        cases, model, k_fold=int(evaluation["k_fold"]), epochs=1, evaluation_path=args.output,
        draw_figures=bool(evaluation["draw_figures"]), run_detailed_evaluation=bool(evaluation["detailed"]),
        save_models=True, seed=int(training["seed"]), metrics=evaluation.get("metrics"),
    )
    long_table = os.path.join(args.output, "detailed_validation.long.tsv")
    if os.path.isfile(long_table):
        from miseg.evaluation.reports import read_table

        metrics = list(evaluation.get("metrics") or [])
        print(f"Cross-validation (mean ± std over cases), tables in {args.output}:")
        print(format_summary(read_table(long_table), ["dice", *[m for m in metrics if m != "dice"]]))
    return 0
