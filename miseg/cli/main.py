"""The ``miseg`` command: argument parsing, dispatch, exit codes and error reporting.

``main(argv)`` never raises for expected failures; it returns the exit code:

* ``0``: success,
* ``1``: runtime or data error (missing or unreadable files, invalid data, model errors,
  ``verify`` found problems),
* ``2``: usage error (unknown flag, invalid option value, invalid config file).

Errors are one line on stderr (``miseg <command>: error: ...``); ``--debug`` adds the
traceback. Heavy modules (TensorFlow) are only imported by the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
import traceback
import warnings
from typing import Any, Callable, Iterator, Sequence

from miseg.cli import export, segment
from miseg.cli import report as report_command
from miseg.cli.options import (
    ArgumentBuilder,
    add_data_options,
    add_pipeline_options,
    fraction,
    positive_float,
    positive_int,
)
from miseg.errors import ConfigurationError, MisegError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0  success
  1  runtime or data error (missing or unreadable files, invalid data, model errors;
     'verify' found problems)
  2  usage error (unknown flag, invalid option value, invalid config file)
Errors are printed as one line on stderr; add --debug for the full traceback.
"""

_DESCRIPTION = """\
miseg: 2D/3D medical image segmentation (MIScnn-compatible, TensorFlow/Keras 3).

  miseg explore DATA                       summarise a data set and list its problems
  miseg train DATA --classes 3 ...         train a U-Net; writes model.keras + model.config.yaml
  miseg predict DATA -m model.keras        segment new cases (NIfTI, images, DICOM SEG/RTSTRUCT)
  miseg evaluate DATA --classes 3 ...      k-fold cross-validation with metric tables and figures
  miseg segment DATA --method otsu         segment with a classical method (threshold, watershed, ...)
  miseg export MODEL --format onnx         export a model (SavedModel, ONNX, .keras) with its preprocessing plan
  miseg report EVALUATION_DIR              one self-contained report.html of an evaluation folder
  miseg <command> --help                   every option of a command, with its default
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the description's and epilog's line breaks."""


# ---------------------------------------------------------------------------------- parser
def _subparser(subparsers: Any, name: str, help_text: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name, help=help_text, description=textwrap.fill(description, width=90), epilog=EPILOG,
        formatter_class=_Formatter, **kwargs
    )


def _add_global_options(parser: argparse.ArgumentParser, b: ArgumentBuilder) -> None:
    from miseg import __version__

    parser.add_argument("--version", action="version", version=f"miseg {__version__}")
    b.add(parser, "--debug", action="store_true", default=False,
          help="show tracebacks and warnings' origins")
    b.add(parser, "-q", "--quiet", action="store_true", default=False,
          help="no progress bars or Keras output (also: environment variable MISEG_QUIET=1)")
    b.add(parser, "-v", "--verbose", action="store_true", default=False,
          help="accepted for MIScnn compatibility (no effect)")
    b.add(parser, "--data_dir", default=None, metavar="DIR",
          help="MIScnn compatibility: data folder of verify and data_exp when DATA is not given")


def _add_explore(subparsers: Any, b: ArgumentBuilder) -> None:
    p = _subparser(
        subparsers, "explore", "summarise a data set: shapes, spacings, intensities, classes, problems",
        "Load every case and report shapes, spacings, orientations, intensity statistics (overall and "
        "inside each label), class frequencies and the problems found (unreadable files, label values, "
        "shape or geometry mismatches, NaNs). Broken cases are listed, not fatal.",
    )
    b.add(p, "data", metavar="DATA", help="data folder (one sub-folder per case)")
    add_data_options(p, b, infer_classes=True)
    group = p.add_argument_group("output")
    b.add(group, "--csv", metavar="PATH", default=None, help="write the per-case table as CSV")
    b.add(group, "--plots", metavar="DIR", default=None,
          help="write intensity_histogram.png and class_frequencies.png into DIR")
    b.add(group, "--max-cases", type=positive_int, metavar="N", default=None, help="explore only the first N cases")
    b.add(group, "--strict", action="store_true", default=False, help="exit with 1 when problems are found")
    p.set_defaults(handler="explore")


def _add_train(subparsers: Any, b: ArgumentBuilder) -> None:
    p = _subparser(
        subparsers, "train", "train a segmentation model",
        "Train a U-Net on the cases of DATA that have a segmentation. The effective run config "
        "(interface, subfunctions, augmentation, architecture, loss, schedule, seed) is written next to "
        "the model (model.keras -> model.config.yaml), so 'miseg train --config model.config.yaml' "
        "repeats the run and 'miseg predict' rebuilds the same preprocessing.",
    )
    b.add(p, "data", metavar="DATA", nargs="?", default=None,
          help="data folder (None: data.path of --config)")
    b.add(p, "--config", metavar="PATH", default=None,
          help="run config (YAML or JSON); flags given on the command line override it")
    add_data_options(p, b)
    add_pipeline_options(p, b)
    group = p.add_argument_group("output")
    b.add(group, "--validation-fraction", type=fraction, metavar="F", default=0.0,
          help="fraction of the cases held out and scored after every epoch")
    b.add(group, "-o", "--output", metavar="MODEL", default="model.keras",
          help="model file (.keras); its config goes next to it as <name>.config.yaml")
    b.add(group, "--save-config", metavar="PATH", default=None,
          help="also write the effective config to PATH (YAML, or JSON for .json)")
    b.add(group, "--dry-run", action="store_true", default=False,
          help="resolve and print the config (and --save-config it) without training")
    _add_hash_inputs(group, b)
    p.set_defaults(handler="train")


def _add_hash_inputs(group: Any, b: ArgumentBuilder) -> None:
    b.add(group, "--hash-inputs", action="store_true", default=False,
          help="record the SHA-256 of every input file in manifest.json (default: size and modification time)")


def _non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (minimum volumes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _add_predict(subparsers: Any, b: ArgumentBuilder) -> None:
    p = _subparser(
        subparsers, "predict", "segment cases with a trained model",
        "Predict every case of DATA (segmentations are not needed) with a model written by "
        "'miseg train'. The preprocessing is rebuilt from the config next to the model.",
    )
    b.add(p, "data", metavar="DATA", nargs="?", default=None,
          help="data folder (None: data.path of the model's config)")
    b.add(p, "-m", "--model", metavar="MODEL", default="model.keras", help="model file")
    b.add(p, "--config", metavar="PATH", default=None, help="run config (None: <model>.config.yaml)")
    b.add(p, "-o", "--output", metavar="DIR", default="predictions", help="prediction folder")
    b.add(p, "--format", choices=["auto", "nifti", "seg", "rtstruct"], default="auto",
          help="DICOM output: DICOM SEG, RTSTRUCT or NIfTI (auto: SEG for DICOM, the data's format otherwise)")
    b.add(p, "--cases", nargs="+", metavar="ID", default=None, help="predict only these cases")
    b.add(p, "--tta", action=argparse.BooleanOptionalAction, default=None,
          help="average mirrored predictions (None: the config's model.tta)")
    b.add(p, "--keep-largest-component", action=argparse.BooleanOptionalAction, default=None,
          help="keep the largest connected component per class (None: the config's setting)")
    b.add(p, "--ignore-manifest", action="store_true", default=False,
          help="predict although the model's manifest (or config) names another class or channel count "
               "than the data")
    _add_hash_inputs(p, b)
    group = p.add_argument_group("instances")
    b.add(group, "--instances", action="store_true", default=False,
          help="also write instance label maps (<case>.instances.<ext>) and per-instance tables "
               "(<case>.instances.tsv)")
    b.add(group, "--instance-split", choices=["none", "distance", "probability"], default="none",
          help="split touching objects by a watershed on the distance map or the class probability")
    b.add(group, "--seed-distance", type=positive_float, metavar="MM", default=5.0,
          help="minimum distance between watershed seeds in mm")
    b.add(group, "--min-instance-volume", type=_non_negative_float, metavar="MM3", default=0.0,
          help="drop objects smaller than this volume (mm^3; mm^2 for 2D)")
    b.add(group, "--connectivity", type=int, choices=[4, 8, 6, 18, 26], default=None,
          help="neighbourhood of a connected object (None: full, 8 in 2D / 26 in 3D)")
    group = p.add_argument_group("uncertainty")
    b.add(group, "--uncertainty", action="store_true", default=False,
          help="also write <case>.entropy / <case>.variance maps (from the mirrored predictions) and "
               "uncertainty.tsv with per-case scores and a review flag")
    b.add(group, "--review-threshold", metavar="VALUE|FILE", default=None,
          help="review rule of --uncertainty: a threshold on member_dice or an uncertainty_calibration.json "
               "(or the folder holding it); None: review when member_dice < 0.9")
    add_data_options(p, b, with_classes=False)
    p.set_defaults(handler="predict")


def _add_evaluate(subparsers: Any, b: ArgumentBuilder) -> None:
    p = _subparser(
        subparsers, "evaluate", "cross-validate, or score a model or predictions",
        "Without --model/--predictions: k-fold cross-validation (train on k-1 folds, score the held-out "
        "fold) with per-fold histories, metric tables and figures in --output. With --model: score a "
        "trained model on the labelled cases of DATA. With --predictions: score saved prediction files.",
    )
    b.add(p, "data", metavar="DATA", nargs="?", default=None,
          help="data folder (None: data.path of --config)")
    b.add(p, "--config", metavar="PATH", default=None,
          help="run config (YAML or JSON); flags given on the command line override it")
    add_data_options(p, b)
    add_pipeline_options(p, b)
    group = p.add_argument_group("evaluation")
    b.add(group, "-o", "--output", metavar="DIR", default="evaluation", help="evaluation folder")
    b.add(group, "--k-fold", type=int, metavar="K", default=3, help="number of folds")
    b.add(group, "--figures", action=argparse.BooleanOptionalAction, default=True,
          help="training curves, metric box plots and best/median/worst overlays")
    b.add(group, "--detailed", action=argparse.BooleanOptionalAction, default=True,
          help="predict every validation case and write per-case metric tables")
    _add_hash_inputs(group, b)
    b.add(group, "--score-metrics", nargs="+", metavar="NAME", default=["dice", "iou", "hd95"],
          help="metrics of the tables (miseg.evaluation.metrics names: dice iou precision recall hd hd95 "
               "assd nsd ...)")
    mode = group.add_mutually_exclusive_group()
    b.add(mode, "--model", metavar="MODEL", default=None,
          help="score this trained model instead of cross-validating (config: <model>.config.yaml)")
    b.add(mode, "--predictions", metavar="DIR", default=None,
          help="score the prediction files in DIR instead of cross-validating")
    b.add(mode, "--method", choices=segment.method_choices(), default=None,
          help="cross-validate this classical method (miseg.classical) instead of a U-Net")
    segment.add_method_options(group, b)
    p.set_defaults(handler="evaluate")


def _add_miscnn_commands(subparsers: Any, b: ArgumentBuilder) -> None:
    types = ["NIFTI", "DICOM", "IMG"]
    p = _subparser(
        subparsers, "verify", "MIScnn: load every case and report the ones that fail",
        "Load every image and segmentation of DATA through the interface and list the problems. "
        "Exit code 1 when a problem is found.",
    )
    b.add(p, "data", metavar="DATA", nargs="?", default=None, help="data folder (None: --data_dir)")
    b.add(p, "-t", "--type", choices=[*types, "Unknown"], default="Unknown",
          help="MIScnn interface type (Unknown: detect from the file endings)")
    b.add(p, "--classes", type=positive_int, default=None, help="declared classes (None: inferred)")
    p.set_defaults(handler="verify")

    p = _subparser(
        subparsers, "data_exp", "MIScnn: alias of 'explore'",
        "MIScnn's data exploration, answered by 'miseg explore' (which always computes every "
        "analysis). The analysis switches are accepted and ignored.",
    )
    b.add(p, "data", metavar="DATA", nargs="?", default=None, help="data folder (None: --data_dir)")
    b.add(p, "-t", "--type", choices=[*types, "Unknown"], default="Unknown",
          help="MIScnn interface type (Unknown: detect from the file endings)")
    b.add(p, "-e", "--export", metavar="CSVPATH", default=None, help="write the per-case table as CSV")
    for short, long in (("-cn", "--counts"), ("-cl", "--classes"), ("-mem", "--memory"), ("-s", "--structure"),
                        ("-m", "--minmax"), ("-mS", "--minmax_seg"), ("-r", "--ratio")):
        b.add(p, short, long, action="store_true", default=False, help="accepted; always reported")
    b.add(p, "-b", "--binning", type=int, default=None, help="accepted; see 'explore --plots'")
    b.add(p, "-bS", "--binning_seg", type=int, default=None, help="accepted; see 'explore --plots'")
    p.set_defaults(handler="data_exp")

    p = _subparser(
        subparsers, "cleanup", "delete miseg's own batch and cache files",
        "Delete the batch files, sample backups and preprocessing cache that miseg wrote into a batch "
        "folder (default ./batches). Other files are never touched, and neither are data, predictions "
        "or evaluations. Asks for confirmation, or needs --yes when not run interactively.",
    )
    b.add(p, "batch_dir", metavar="BATCH_DIR", nargs="?", default="batches", help="batch folder")
    b.add(p, "-y", "--yes", action="store_true", default=False, help="delete without asking")
    b.add(p, "--dry-run", action="store_true", default=False, help="only list what would be deleted")
    b.add(p, "-b", "--batches", action="store_true", default=False,
          help="MIScnn compatibility (batches are what cleanup deletes)")
    b.add(p, "-e", "--evaluation", action="store_true", default=False,
          help="MIScnn compatibility: refused, evaluation results are never deleted")
    b.add(p, "-p", "--prediction", action="store_true", default=False,
          help="MIScnn compatibility: refused, predictions are never deleted")
    p.set_defaults(handler="cleanup")


def build_parser(explicit_only: bool = False) -> argparse.ArgumentParser:
    """The ``miseg`` argument parser.

    Args:
        explicit_only: Build a parser whose options have no defaults, so parsing yields only
            the options typed (used to let flags override a config file).
    """
    b = ArgumentBuilder(explicit_only)
    parser = argparse.ArgumentParser(
        prog="miseg", description=_DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter,
    )
    _add_global_options(parser, b)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    _add_explore(subparsers, b)
    _add_train(subparsers, b)
    _add_predict(subparsers, b)
    _add_evaluate(subparsers, b)
    segment.add_segment_parser(subparsers, b, _subparser)
    export.add_export_parser(subparsers, b, _subparser)
    report_command.add_report_parser(subparsers, b, _subparser)
    _add_miscnn_commands(subparsers, b)
    return parser


# ---------------------------------------------------------------------------------- running
def _handlers() -> dict[str, Callable[[argparse.Namespace, set[str]], int]]:
    from miseg.cli import cleanup, evaluate, explore, predict, train

    return {
        "explore": explore.run_explore,
        "data_exp": explore.run_data_exp,
        "verify": explore.run_verify,
        "train": train.run_train,
        "predict": predict.run_predict,
        "evaluate": evaluate.run_evaluate,
        "segment": segment.run_segment,
        "cleanup": cleanup.run_cleanup,
        "export": export.run_export,
        "report": report_command.run_report,
    }


@contextlib.contextmanager
def _environment(args: argparse.Namespace) -> Iterator[None]:
    """Quiet TensorFlow's C++ logs, honour --quiet, and print warnings as one line each."""
    saved = {k: os.environ.get(k) for k in ("TF_CPP_MIN_LOG_LEVEL", "MISEG_QUIET")}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.quiet:
        os.environ["MISEG_QUIET"] = "1"

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = " ".join(str(message).split())
        where = f" ({filename}:{lineno})" if args.debug else ""
        print(f"miseg: warning: {text}{where}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _one_line(exc: BaseException) -> str:
    from miseg.cli.config import describe_error

    text = describe_error(exc)
    more = len(str(exc).strip().splitlines()) > 1
    return text + (" (more with --debug)" if more else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``miseg`` command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ok, 1 runtime/data error, 2 usage error.

    Example:
        >>> main(["explore", "data/kits", "--classes", "3", "--csv", "kits.csv"])  # doctest: +SKIP
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    explicit = set(vars(build_parser(explicit_only=True).parse_args(argv)))
    command = f"miseg {args.command}"
    try:
        with _environment(args):
            return _handlers()[args.handler](args, explicit)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except ConfigurationError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (MisegError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the command line reports every failure as one line
        if args.debug:
            traceback.print_exc()
        from miseg.cli.config import describe_error

        print(f"{command}: error: unexpected {describe_error(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
