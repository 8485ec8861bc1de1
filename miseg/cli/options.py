"""Command-line options shared by ``miseg train``/``evaluate``/``predict`` and their mapping
onto the run config.

Defaults shown in ``--help`` come from :func:`miseg.cli.config.default_config`, so the help,
the config file and the code agree. A run's effective config is built as
``defaults <- config file <- flags given on the command line``: only flags that were typed
override the file (see :class:`ArgumentBuilder` for how "typed" is detected).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable, Iterable

from miseg.cli.config import ARCHITECTURE_NAMES, INTERFACE_NAMES, architecture_spec, default_config, split_spec
from miseg.errors import ConfigurationError

__all__ = ["ArgumentBuilder", "ShapeAction", "add_data_options", "add_pipeline_options", "apply_flags"]

_NORMALIZATION_MODES = ("z-score", "minmax", "grayscale", "none")
_ANALYSES = ("patchwise-crop", "patchwise-grid", "fullimage")


class ArgumentBuilder:
    """Adds arguments, optionally with every default replaced by ``argparse.SUPPRESS``.

    Parsing the same command line with an ``explicit_only`` parser yields a namespace that
    holds only the options actually typed; that set decides which flags override a config
    file. The normal parser (with real defaults) serves ``--help`` and the values.
    """

    def __init__(self, explicit_only: bool = False) -> None:
        self.explicit_only = explicit_only

    def add(self, container: Any, *flags: str, **kwargs: Any) -> argparse.Action:
        """``container.add_argument(*flags, **kwargs)``, defaults suppressed when explicit-only."""
        optional = flags[0].startswith("-") or kwargs.get("nargs") in ("?", "*")
        if self.explicit_only and optional and not kwargs.get("required"):
            kwargs["default"] = argparse.SUPPRESS
        return container.add_argument(*flags, **kwargs)


# ------------------------------------------------------------------------------ value types
def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def patch_size(text: str) -> str | int:
    """argparse type: ``auto`` or a positive patch edge."""
    return "auto" if text == "auto" else positive_int(text)


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0 (voxel spacings)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (overlaps)."""
    return _int_at_least(text, 0)


_SHAPE_SEPARATOR = re.compile(r"[,xX]")


class ShapeAction(argparse.Action):
    """Per-axis values typed as ``16 32 32``, ``16,32,32`` or ``16x32x32`` (or a mix).

    Use with ``nargs="+"`` and ``element_type`` (the argparse type of one value); the
    option's value is the flat list of converted values. A bad value is a usage error that
    names the option and the value.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument("--shape", nargs="+", action=ShapeAction, element_type=int)
        >>> parser.parse_args(["--shape", "16x32x32"]).shape
        [16, 32, 32]
    """

    def __init__(self, option_strings: list[str], dest: str, element_type: Callable[[str], Any] = int,
                 **kwargs: Any) -> None:
        if kwargs.get("type") is not None:
            raise ValueError("ShapeAction converts the values itself: pass element_type, not type")
        self.element_type = element_type
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        tokens = [values] if isinstance(values, str) else list(values)
        out = []
        for token in tokens:
            pieces = _SHAPE_SEPARATOR.split(token.strip().strip(","))
            for piece in pieces:
                piece = piece.strip()
                if not piece:
                    raise argparse.ArgumentError(
                        self, f"{token!r}: empty value; write the values as 16 32 32, 16,32,32 or 16x32x32")
                try:
                    out.append(self.element_type(piece))
                except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                    why = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else "invalid value"
                    raise argparse.ArgumentError(self, f"{piece!r} in {token!r}: {why}") from None
        setattr(namespace, self.dest, out)


def key_value(text: str) -> tuple[str, int]:
    """argparse type: ``NAME=INT`` (structure names and label mappings)."""
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form NAME=LABEL")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the label after '=' must be an integer") from None


def fraction(text: str) -> float:
    """argparse type: a float in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in [0, 1]")
    return value


# ------------------------------------------------------------------------------ option groups
def add_data_options(parser: argparse.ArgumentParser, b: ArgumentBuilder, *, with_classes: bool = True,
                     infer_classes: bool = False) -> None:
    """``--interface``, ``--channels``, ``--classes``, ``--pattern`` and format options.

    Args:
        with_classes: Add the options that must match a trained model (classes, channels,
            dimensionality, label mapping, DICOM structures); ``predict`` takes them from
            the model's config.
        infer_classes: ``--classes`` defaults to None (exploration infers the count).
    """
    d = default_config()["data"]
    group = parser.add_argument_group("data")
    b.add(group, "--interface", choices=["auto", *INTERFACE_NAMES], default=d["interface"],
          help="data format; 'auto' detects it from the file endings")
    if with_classes:
        if infer_classes:
            b.add(group, "--classes", metavar="N", type=positive_int, default=None,
                  help="declared classes: labels outside 0..N-1 are problems (None: inferred from the labels)")
        else:
            b.add(group, "--classes", metavar="N", type=positive_int, default=d["classes"],
                  help="number of classes, background included")
        b.add(group, "--channels", metavar="N", type=positive_int, default=d["channels"],
              help="image channels (NIfTI/DICOM; images: see --image-type)")
        b.add(group, "--three-dim", action=argparse.BooleanOptionalAction, default=d["three_dim"],
              help="3D volumes or 2D images (None: 3D for nifti and dicom, 2D otherwise)")
        b.add(group, "--label-map", type=key_value, action="append", metavar="VALUE=CLASS",
              default=d["label_mapping"],
              help="remap a label value of the files to a class on loading, e.g. 255=1 (repeat)")
        b.add(group, "--structure", type=key_value, action="append", metavar="NAME=LABEL", default=None,
              help="DICOM: RTSTRUCT ROI / SEG segment name -> class (repeat); default: ROI numbers")
    b.add(group, "--pattern", default=d["pattern"], metavar="REGEX",
          help="only use case folders whose name fully matches REGEX")
    b.add(group, "--image-type", choices=["grayscale", "rgb"], default=None,
          help="image interface: grayscale (1 channel) or rgb (3 channels) (None: grayscale)")


def add_pipeline_options(parser: argparse.ArgumentParser, b: ArgumentBuilder) -> None:
    """Preprocessing, augmentation, model and training options of ``train`` and ``evaluate``."""
    cfg = default_config()
    pre, aug, model, training = cfg["preprocessing"], cfg["augmentation"], cfg["model"], cfg["training"]
    arch = model["architecture"]["config"]

    group = parser.add_argument_group("preprocessing")
    b.add(group, "--resample", action=ShapeAction, element_type=positive_float, nargs="+", metavar="MM",
          default=None, help="resample to this voxel spacing (one value per axis, or one for all; "
                             "3 1 1, 3,1,1 or 3x1x1)")
    b.add(group, "--clip", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
          help="clip intensities to [MIN, MAX] (e.g. -100 300 for abdominal CT)")
    b.add(group, "--normalization", choices=_NORMALIZATION_MODES, default="z-score",
          help="intensity normalization after clipping")
    b.add(group, "--analysis", choices=_ANALYSES, default=pre["analysis"],
          help="random patches, a patch grid, or whole images")
    b.add(group, "--patch-shape", action=ShapeAction, element_type=patch_size, nargs="+", metavar="N",
          default=pre["patch_shape"],
          help="patch size per axis (16 32 32, 16,32,32 or 16x32x32); 'auto' derives it from the first "
               "case and the U-Net depth")
    b.add(group, "--batch-size", metavar="N", type=positive_int, default=pre["batch_size"], help="patches per batch")
    b.add(group, "--overlap", action=ShapeAction, element_type=non_negative_int, nargs="+", metavar="N",
          default=pre["patchwise_overlap"],
          help="patch overlap in voxels per axis at prediction (8 16 16, 8,16,16 or 8x16x16; None: half a patch)")
    b.add(group, "--patches-per-sample", metavar="N", type=positive_int, default=pre["patches_per_sample"],
          help="training patches cut per loaded case (None: the augmentation cycles)")
    b.add(group, "--foreground-oversampling", metavar="F", type=fraction, default=pre["foreground_oversampling"],
          help="fraction of training patches centred on a foreground voxel")
    b.add(group, "--cache", action=argparse.BooleanOptionalAction, default=pre["prepare_subfunctions"],
          help="cache preprocessed cases on disk (under ./batches/preprocessed)")

    group = parser.add_argument_group("augmentation")
    b.add(group, "--augment", action=argparse.BooleanOptionalAction, default=aug["enabled"],
          help="augment training patches (scaling, rotation, brightness, contrast, gamma, noise)")
    b.add(group, "--aug-cycles", metavar="N", type=positive_int, default=aug["cycles"],
          help="augmented copies per loaded case")
    b.add(group, "--aug-mirror", action=argparse.BooleanOptionalAction, default=aug["mirror"],
          help="random mirroring")
    b.add(group, "--aug-elastic", action=argparse.BooleanOptionalAction, default=aug["elastic_deform"],
          help="elastic deformation (slow)")

    group = parser.add_argument_group("model")
    b.add(group, "--architecture", choices=list(ARCHITECTURE_NAMES), default="standard",
          help="U-Net variant")
    b.add(group, "--filters", metavar="N", type=positive_int, default=arch["n_filters"],
          help="filters of the first U-Net level (doubled per level)")
    b.add(group, "--depth", metavar="N", type=positive_int, default=arch["depth"],
          help="U-Net poolings; patch sizes must be divisible by 2**depth")
    b.add(group, "--loss", metavar="NAME", default=model["loss"],
          help="loss from miseg.neural_network.metrics (e.g. dice_crossentropy, TverskyLoss)")
    b.add(group, "--metrics", nargs="+", metavar="NAME", default=model["metrics"],
          help="training metrics from miseg.neural_network.metrics")
    b.add(group, "--learning-rate", metavar="LR", type=float, default=model["learning_rate"], help="Adam learning rate")
    b.add(group, "--mixed-precision", action=argparse.BooleanOptionalAction, default=model["mixed_precision"],
          help="train in mixed_float16 (GPUs with tensor cores)")

    group = parser.add_argument_group("training")
    b.add(group, "--epochs", metavar="N", type=positive_int, default=training["epochs"], help="training epochs")
    b.add(group, "--iterations", metavar="N", type=positive_int, default=training["iterations"],
          help="batches per epoch (None: every training case once)")
    b.add(group, "--seed", metavar="N", type=int, default=training["seed"],
          help="seed of sampling, augmentation and weights (None: drawn and recorded in the config)")
    b.add(group, "--workers", metavar="N", type=int, default=training["workers"],
          help="processes preparing batches in parallel with training (0: none)")
    b.add(group, "--cases", nargs="+", metavar="ID", default=None,
          help="use only these cases (default: every case with a segmentation)")


# ------------------------------------------------------------------------------ flags -> config
def _subfunction_index(specs: list[Any], name: str) -> int | None:
    for i, spec in enumerate(specs):
        if split_spec(spec, "subfunction")[0] == name:
            return i
    return None


def _set_subfunction(specs: list[Any], name: str, config: dict[str, Any] | None, before: Iterable[str] = ()) -> None:
    """Replace the ``name`` spec, insert it before the first of ``before``, or remove it (None)."""
    index = _subfunction_index(specs, name)
    if config is None:
        if index is not None:
            del specs[index]
        return
    spec = {"class_name": name, "config": config}
    if index is not None:
        specs[index] = spec
        return
    positions = [i for i in (_subfunction_index(specs, b) for b in before) if i is not None]
    specs.insert(min(positions) if positions else len(specs), spec)


def apply_flags(config: dict[str, Any], args: argparse.Namespace, explicit: set[str]) -> dict[str, Any]:
    """Write the options typed on the command line (``explicit``) into ``config``, in place.

    Subfunction flags edit the config's list: ``--resample`` and ``--clip`` replace an
    existing ``Resampling``/``Clipping`` entry or insert one before ``Normalization``;
    ``--normalization none`` removes ``Normalization``. ``--filters``/``--depth`` change the
    current architecture's arguments; ``--architecture`` picks another class.

    Returns:
        ``config``.
    """
    def given(dest: str) -> bool:
        return dest in explicit

    data, pre = config["data"], config["preprocessing"]

    if given("data") and args.data is not None:
        data["path"] = args.data
    for dest in ("interface", "classes", "channels", "three_dim", "pattern"):
        if given(dest):
            data[dest] = getattr(args, dest)
    options = dict(data.get("options") or {})
    if given("image_type"):
        options["img_type"] = args.image_type
    if given("structure"):
        options["structure_dict"] = {name: label for name, label in args.structure}
    if options != (data.get("options") or {}):
        data["options"] = options
    if given("label_map"):
        data["label_mapping"] = {_label_key(k): v for k, v in args.label_map}

    specs = list(pre.get("subfunctions") or [])
    if given("resample"):
        spacing = args.resample[0] if len(args.resample) == 1 else list(args.resample)
        _set_subfunction(specs, "Resampling", {"new_spacing": spacing},
                         before=("Clipping", "Normalization", "TransformHU"))
    if given("clip"):
        low, high = args.clip
        _set_subfunction(specs, "Clipping", {"min": low, "max": high}, before=("Normalization",))
    if given("normalization"):
        mode = args.normalization
        index = _subfunction_index(specs, "Normalization")
        kept = split_spec(specs[index], "subfunction")[1] if index is not None else {}  # e.g. foreground_only
        _set_subfunction(specs, "Normalization", None if mode == "none" else {**kept, "mode": mode})
    pre["subfunctions"] = specs
    simple = {
        "analysis": ("preprocessing", "analysis"),
        "batch_size": ("preprocessing", "batch_size"),
        "overlap": ("preprocessing", "patchwise_overlap"),
        "patches_per_sample": ("preprocessing", "patches_per_sample"),
        "foreground_oversampling": ("preprocessing", "foreground_oversampling"),
        "cache": ("preprocessing", "prepare_subfunctions"),
        "augment": ("augmentation", "enabled"),
        "aug_cycles": ("augmentation", "cycles"),
        "aug_mirror": ("augmentation", "mirror"),
        "aug_elastic": ("augmentation", "elastic_deform"),
        "loss": ("model", "loss"),
        "metrics": ("model", "metrics"),
        "learning_rate": ("model", "learning_rate"),
        "mixed_precision": ("model", "mixed_precision"),
        "tta": ("model", "tta"),
        "keep_largest_component": ("model", "keep_largest_component"),
        "epochs": ("training", "epochs"),
        "iterations": ("training", "iterations"),
        "validation_fraction": ("training", "validation_fraction"),
        "seed": ("training", "seed"),
        "workers": ("training", "workers"),
        "cases": ("training", "cases"),
        "k_fold": ("evaluation", "k_fold"),
        "figures": ("evaluation", "draw_figures"),
        "detailed": ("evaluation", "detailed"),
        "score_metrics": ("evaluation", "metrics"),
    }
    for dest, (section, key) in simple.items():
        if given(dest):
            config[section][key] = getattr(args, dest)
    if given("patch_shape"):
        shape = args.patch_shape
        if "auto" in shape:
            if len(shape) != 1:
                raise ConfigurationError(f"--patch-shape {' '.join(map(str, shape))}: use 'auto' alone.")
            pre["patch_shape"] = "auto"
        else:
            pre["patch_shape"] = [int(s) for s in shape]
    _apply_architecture(config["model"], args, given)
    return config


def _apply_architecture(model: dict[str, Any], args: argparse.Namespace, given: Any) -> None:
    filters = args.filters if given("filters") else None
    depth = args.depth if given("depth") else None
    current = model.get("architecture")
    if isinstance(current, str):
        current = {"class_name": current, "config": {}}
    if not given("architecture") and filters is None and depth is None:
        return
    old = dict(current.get("config") or {})
    if given("architecture"):
        name, base = args.architecture, {}
        keep = {k: old[k] for k in ("n_filters", "depth") if k in old}  # carried over when accepted
    else:
        name, base, keep = current["class_name"], old, {}
    spec = architecture_spec(
        name,
        filters if filters is not None else keep.get("n_filters"),
        depth if depth is not None else keep.get("depth"),
    )
    dropped = [flag for flag, value, key in (("--filters", filters, "n_filters"), ("--depth", depth, "depth"))
               if value is not None and key not in spec["config"]]
    if dropped:
        raise ConfigurationError(
            f"{' and '.join(dropped)} do(es) not apply to architecture {spec['class_name']!r}; set its "
            f"arguments in a config file (model.architecture.config)."
        )
    model["architecture"] = {"class_name": spec["class_name"], "config": {**base, **spec["config"]}}


def _label_key(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text
