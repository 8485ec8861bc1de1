"""Run configurations of the ``miseg`` command: one nested dict that records a whole run.

A run config has six sections (YAML or JSON on disk)::

    miseg_version: 0.1.0
    data:           {path, interface, channels, classes, three_dim, pattern, options, label_mapping}
    preprocessing:  {subfunctions, analysis, patch_shape, batch_size, patchwise_overlap, ...}
    augmentation:   {enabled, cycles, scaling, rotations, elastic_deform, mirror, ...}
    model:          {architecture, loss, metrics, learning_rate, tta, keep_largest_component, ...}
    training:       {epochs, iterations, validation_fraction, seed, workers, batch_queue_size, cases}
    evaluation:     {k_fold, draw_figures, detailed, metrics}

Subfunctions, the architecture and the loss are stored Keras-style as
``{"class_name": NAME, "config": {...}}``; ``NAME`` is a miseg class or function
(``"Clipping"``, ``"UNet_standard"``, ``"tversky_loss"``) or a dotted import path of your
own (``"mypackage.module.MySubfunction"``; importing it runs that module, so only use
config files you trust). A bare string means "no arguments".

Everything here builds plain miseg objects; no TensorFlow is imported until a network is
built (:func:`build_network`).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import os
from typing import Any, Mapping, NamedTuple, Sequence

from miseg.errors import ConfigurationError, DataError, DataNotFoundError, MisegError

__all__ = [
    "INTERFACE_NAMES",
    "ARCHITECTURE_NAMES",
    "ARCHITECTURE_FLAGS",
    "PERMISSIVE_CLASSES",
    "default_config",
    "merge_config",
    "validate_config",
    "load_config",
    "save_config",
    "dump_config",
    "model_config_path",
    "split_spec",
    "detect_interface",
    "interface_name",
    "resolve_data_section",
    "build_interface",
    "build_data_io",
    "build_subfunctions",
    "build_augmentation",
    "build_preprocessor",
    "build_architecture",
    "architecture_spec",
    "build_loss",
    "build_metrics",
    "build_network",
    "resolve_patch_shape",
    "Pipeline",
    "build_pipeline",
    "split_fraction",
    "describe_error",
]

#: CLI interface names -> class names in ``miseg.data_loading.interfaces``.
INTERFACE_NAMES = {
    "nifti": "NIFTI_interface",
    "nifti_slicer": "NIFTIslicer_interface",
    "image": "Image_interface",
    "dicom": "DICOM_interface",
}
# MIScnn's short names (``-t NIFTI`` in ``python -m miscnn.cli``).
_MISCNN_TYPES = {"NIFTI": "nifti", "NIFTI_S": "nifti_slicer", "IMG": "image", "DICOM": "dicom"}

#: Short architecture names accepted by ``--architecture`` -> class names in ``unet``.
ARCHITECTURE_NAMES = {
    "standard": "UNet_standard",
    "plain": "UNet_plain",
    "residual": "UNet_residual",
    "dense": "UNet_dense",
    "multiRes": "UNet_multiRes",
    "compact": "UNet_compact",
    "attention": "UNet_attention",
    "attention_residual": "UNet_attention_residual",
}

#: Which of the flag-settable arguments (``--filters``, ``--depth``) each U-Net takes; UNet_plain
#: is configured by ``feature_maps`` and ``pooling`` instead (set them in a config file).
ARCHITECTURE_FLAGS = {
    name: (() if name == "UNet_plain" else ("n_filters", "depth")) for name in ARCHITECTURE_NAMES.values()
}

# Keys whose mapping values replace, rather than merge into, the base config's.
_REPLACED_KEYS = ("architecture", "loss", "label_mapping")
# Largest automatic patch edge (voxels) for 3D and 2D data.
_AUTO_PATCH_CAP = {3: 128, 2: 256}
# Class count used by exploration when the user gave none (any uint8 label passes).
PERMISSIVE_CLASSES = 256


def default_config() -> dict[str, Any]:
    """A fresh copy of the default run config (see the module docstring for the layout)."""
    from miseg import __version__

    return {
        "miseg_version": __version__,
        "data": {
            "path": None,
            "interface": "auto",
            "channels": 1,
            "classes": 2,
            "three_dim": None,
            "pattern": None,
            "options": {},
            "label_mapping": None,
        },
        "preprocessing": {
            "subfunctions": [{"class_name": "Normalization", "config": {"mode": "z-score"}}],
            "analysis": "patchwise-crop",
            "patch_shape": "auto",
            "batch_size": 2,
            "patchwise_overlap": None,
            "patches_per_sample": None,
            "foreground_oversampling": round(1 / 3, 6),
            "merge_weighting": "gaussian",
            "prepare_subfunctions": False,
        },
        "augmentation": {
            "enabled": True,
            "cycles": 1,
            "scaling": True,
            "rotations": True,
            "elastic_deform": False,
            "mirror": False,
            "brightness": True,
            "contrast": True,
            "gamma": True,
            "gaussian_noise": True,
        },
        "model": {
            "architecture": {"class_name": "UNet_standard", "config": {"n_filters": 32, "depth": 4}},
            "loss": "tversky_loss",
            "metrics": ["dice_soft"],
            "learning_rate": 1e-4,
            "tta": False,
            "keep_largest_component": False,
            "mixed_precision": False,
        },
        "training": {
            "epochs": 20,
            "iterations": None,
            "validation_fraction": 0.0,
            "seed": None,
            "workers": 1,
            "batch_queue_size": 2,
            "cases": None,
        },
        "evaluation": {
            "k_fold": 3,
            "draw_figures": True,
            "detailed": True,
            "metrics": ["dice", "iou", "hd95"],
        },
    }


# ------------------------------------------------------------------------------ dict helpers
def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (dicts merge, other values replace).

    Class specs (``architecture``, ``loss``) and ``label_mapping`` are replaced as a whole:
    merging the arguments of two different classes would make no sense.

    Example:
        >>> merge_config({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
        {'a': {'b': 1, 'c': 3}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in _REPLACED_KEYS:
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Reject unknown sections and keys, so typos in config files are not silently ignored.

    Raises:
        ConfigurationError: naming the unknown key and the valid ones.
    """
    reference = default_config()
    for section, values in config.items():
        if section not in reference:
            raise ConfigurationError(
                f"{source}: unknown section {section!r}; valid sections: {', '.join(reference)}."
            )
        if isinstance(reference[section], dict):
            if not isinstance(values, Mapping):
                raise ConfigurationError(f"{source}: section {section!r} must be a mapping, got {values!r}.")
            unknown = [k for k in values if k not in reference[section]]
            if unknown:
                raise ConfigurationError(
                    f"{source}: unknown key(s) {unknown} in section {section!r}; valid keys: "
                    f"{', '.join(reference[section])}."
                )


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a run config (YAML, or JSON for ``.json``) and merge it onto the defaults.

    Raises:
        DataNotFoundError: when the file does not exist.
        ConfigurationError: when it cannot be parsed or holds unknown sections/keys.
    """
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"Config file {path!r} does not exist.")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        loaded = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(f"Config file {path!r} cannot be parsed: {first}") from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, Mapping):
        raise ConfigurationError(f"Config file {path!r} must hold a mapping of sections, got {type(loaded).__name__}.")
    validate_config(loaded, source=f"config file {path!r}")
    return merge_config(default_config(), loaded)


def _plain(value: Any) -> Any:
    """Tuples -> lists and numpy scalars -> Python scalars, recursively (YAML/JSON-safe)."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, int) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def dump_config(config: Mapping[str, Any], fmt: str = "yaml") -> str:
    """The text of a config file (``fmt`` ``"yaml"`` or ``"json"``), sections in fixed order."""
    import yaml

    data = _plain(config)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    class Dumper(yaml.SafeDumper):
        """Block-style mappings; lists of plain values on one line (``[16, 16, 16]``)."""

    def represent_list(dumper: yaml.SafeDumper, value: list) -> Any:
        flat = all(not isinstance(v, (dict, list)) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)

    Dumper.add_representer(list, represent_list)
    header = "# miseg run configuration; repeat the run with: miseg train --config <this file>\n"
    return header + yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


def save_config(config: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Write a config atomically as YAML (JSON for ``.json`` names). Returns the path."""
    from miseg.utils.fileio import atomic_path

    path = os.fspath(path)
    fmt = "json" if path.lower().endswith(".json") else "yaml"
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(dump_config(config, fmt))
    return path


def model_config_path(model_path: str | os.PathLike) -> str:
    """The config file stored next to a model: ``run/model.keras`` -> ``run/model.config.yaml``.

    Example:
        >>> model_config_path("run/model.keras")
        'run/model.config.yaml'
    """
    from miseg.utils.fileio import sidecar_path

    return sidecar_path(model_path, ".config.yaml")


# ------------------------------------------------------------------------------ name lookup
def _import_object(name: str, what: str) -> Any:
    """Import ``package.module.attr`` (or ``package.module:attr``)."""
    module_name, sep, attr = name.replace(":", ".").rpartition(".")
    if not sep or not module_name:
        raise ConfigurationError(f"{what} {name!r} is unknown and is not a dotted import path.")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{what} {name!r} cannot be imported: {exc}") from exc


def split_spec(spec: Any, what: str) -> tuple[str, dict[str, Any]]:
    """``"Name"`` / ``{"class_name": Name, "config": {...}}`` / ``{Name: {...}}`` -> (name, kwargs).

    Raises:
        ConfigurationError: for any other form (``what`` names the entry in the message).
    """
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        if "class_name" in spec:
            extra = set(spec) - {"class_name", "config"}
            if extra:
                raise ConfigurationError(f"{what} {dict(spec)!r}: unexpected key(s) {sorted(extra)}.")
            config = spec.get("config") or {}
            if not isinstance(config, Mapping):
                raise ConfigurationError(f"{what} {dict(spec)!r}: 'config' must be a mapping.")
            return str(spec["class_name"]), dict(config)
        if len(spec) == 1:
            (name, config), = spec.items()
            if config is None:
                config = {}
            if not isinstance(config, Mapping):
                raise ConfigurationError(f"{what} {dict(spec)!r}: the arguments must be a mapping.")
            return str(name), dict(config)
    raise ConfigurationError(
        f"{what} {spec!r} must be a name or {{'class_name': NAME, 'config': {{...}}}}."
    )


def _construct(factory: Any, kwargs: Mapping[str, Any], what: str) -> Any:
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"{what}: invalid arguments {dict(kwargs)!r}: {exc}") from exc


# ------------------------------------------------------------------------------ interfaces
def _file_endings(name: str) -> list[str]:
    lower = name.lower()
    endings = []
    if lower.endswith(".nii.gz"):
        endings.append(".nii.gz")
    ext = os.path.splitext(lower)[1]
    if ext and ext not in endings:
        endings.append(ext)
    return endings


def _is_dicom(path: str) -> bool:
    """Whether a file carries the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def detect_interface(data_path: str, max_files: int = 500) -> tuple[str, dict[str, Any]]:
    """Guess the interface of a data folder from its file endings (MIScnn's ``Unknown`` type).

    The endings of up to ``max_files`` files below ``data_path`` are mapped with
    ``get_data_interface_from_file_term``; the interface claiming most files wins (NIfTI
    before the slicer for ``.nii.gz``, as in MIScnn). Files without an ending count as DICOM
    when they carry the DICOM preamble.

    Returns:
        ``(name, options)``: a key of :data:`INTERFACE_NAMES` and interface arguments that
        follow from the files (``img_format`` for images).

    Raises:
        DataNotFoundError: when ``data_path`` is not a directory.
        DataError: when no file ending belongs to a known interface.
    """
    from miseg.data_loading.interfaces import get_data_interface_from_file_term

    if not os.path.isdir(data_path):
        raise DataNotFoundError(f"Data directory {data_path!r} does not exist or is not a directory.")
    counts: dict[str, int] = {}
    endings_seen: dict[str, int] = {}
    cache: dict[str, Any] = {}
    seen = 0
    for root, dirs, files in os.walk(data_path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            seen += 1
            if not _file_endings(name) and _is_dicom(os.path.join(root, name)):
                counts["DICOM_interface"] = counts.get("DICOM_interface", 0) + 1  # PACS exports: no suffix
                continue
            for ending in _file_endings(name):
                if ending not in cache:
                    cache[ending] = get_data_interface_from_file_term(ending)
                cls = cache[ending]
                if cls is not None:
                    counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
                    endings_seen[ending] = endings_seen.get(ending, 0) + 1
                    break
            if seen >= max_files:
                break
        if seen >= max_files:
            break
    by_class = {v: k for k, v in INTERFACE_NAMES.items()}
    known = {k: v for k, v in counts.items() if k in by_class}
    if not known:
        raise DataError(
            f"Cannot detect the data format of {data_path!r}: no NIfTI, image or DICOM files "
            f"found ({seen} files looked at). Pass --interface nifti|image|dicom."
        )
    winner = max(known, key=lambda k: (known[k], k == "NIFTI_interface"))
    name = by_class[winner]
    options: dict[str, Any] = {}
    if name == "image":
        from miseg.data_loading.interfaces.image_io import IMAGE_FORMATS

        formats = {e: n for e, n in endings_seen.items() if e.lstrip(".") in IMAGE_FORMATS}
        options["img_format"] = max(formats, key=formats.get).lstrip(".")
    return name, options


def interface_name(name: str) -> str:
    """Normalise an interface name (CLI name, class name or MIScnn type) to a CLI name."""
    if name in INTERFACE_NAMES:
        return name
    if name in _MISCNN_TYPES:
        return _MISCNN_TYPES[name]
    by_class = {v: k for k, v in INTERFACE_NAMES.items()}
    if name in by_class:
        return by_class[name]
    raise ConfigurationError(
        f"interface={name!r} is unknown; choose one of {', '.join(INTERFACE_NAMES)} or 'auto'."
    )


def build_interface(data: Mapping[str, Any], classes: int | None = None) -> Any:
    """Create the data interface of a config's ``data`` section.

    ``interface`` must be resolved already (not ``"auto"``, see :func:`resolve_data_section`).
    Only the arguments the interface accepts are passed (``channels`` and ``three_dim`` do not
    apply to images, for example); ``options`` holds interface-specific arguments such as
    ``img_type``, ``structure_dict`` or ``output_format``.

    Args:
        data: The ``data`` section.
        classes: Overrides ``data["classes"]`` (exploration without a known class count).
    """
    from miseg.data_loading import interfaces

    name = interface_name(str(data["interface"]))
    cls = getattr(interfaces, INTERFACE_NAMES[name])
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    for key in ("channels", "classes", "three_dim", "pattern"):
        value = classes if key == "classes" and classes is not None else data.get(key)
        if key in params and value is not None:
            kwargs[key] = value
    options = dict(data.get("options") or {})
    unknown = [k for k in options if k not in params or k == "self"]
    if unknown:
        valid = [p for p in params if p != "self"]
        raise ConfigurationError(
            f"data.options {unknown} are not arguments of {cls.__name__}; valid: {', '.join(valid)}."
        )
    kwargs.update(options)
    return _construct(cls, kwargs, cls.__name__)


def resolve_data_section(config: dict[str, Any]) -> dict[str, Any]:
    """Fill ``data.interface`` (auto-detection) and ``data.three_dim`` in place; return ``config``.

    Raises:
        ConfigurationError: when ``data.path`` is missing.
    """
    data = config["data"]
    if not data.get("path"):
        raise ConfigurationError("No data directory given: pass DATA or set data.path in the config file.")
    if data.get("interface") in (None, "auto"):
        name, options = detect_interface(str(data["path"]))
        data["interface"] = name
        data["options"] = {**options, **dict(data.get("options") or {})}
    else:
        data["interface"] = interface_name(str(data["interface"]))
    if data.get("three_dim") is None:
        data["three_dim"] = data["interface"] in ("nifti", "dicom")
    return config


def build_data_io(config: Mapping[str, Any], interface: Any, output_path: str = "predictions",
                  batch_path: str = "batches") -> Any:
    """``Data_IO`` over ``config["data"]["path"]`` with the config's seed and label mapping."""
    from miseg.data_loading.data_io import Data_IO

    data = config["data"]
    mapping = data.get("label_mapping")
    if mapping is not None:
        mapping = {_number(k): int(v) for k, v in dict(mapping).items()}
    return Data_IO(
        interface, str(data["path"]), output_path=output_path, batch_path=batch_path,
        seed=config["training"].get("seed"), label_mapping=mapping,
    )


def _number(value: Any) -> Any:
    """YAML/JSON mapping keys may arrive as strings: ``"255"`` -> 255, ``"0.5"`` -> 0.5."""
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                continue
    return value


# ------------------------------------------------------------------------------ processing
def build_subfunctions(specs: Sequence[Any] | None) -> list[Any]:
    """Subfunction instances from ``preprocessing.subfunctions`` specs."""
    from miseg.processing import subfunctions as module

    result = []
    for spec in specs or []:
        name, kwargs = split_spec(spec, "subfunction")
        if name in module.__all__ and inspect.isclass(getattr(module, name)):
            cls = getattr(module, name)
        else:
            cls = _import_object(name, "subfunction")
        result.append(_construct(cls, kwargs, f"subfunction {name}"))
    return result


def build_augmentation(section: Mapping[str, Any], seed: int | None) -> Any:
    """A ``Data_Augmentation`` from the ``augmentation`` section, or ``None`` when disabled."""
    from miseg.processing.data_augmentation import Data_Augmentation

    if not section.get("enabled", True):
        return None
    kwargs = {k: v for k, v in section.items() if k != "enabled"}
    return _construct(lambda **kw: Data_Augmentation(**kw, seed=seed), kwargs, "augmentation")


def resolve_patch_shape(config: dict[str, Any], data_io: Any) -> dict[str, Any]:
    """Replace ``preprocessing.patch_shape: auto`` by a concrete shape, in place.

    The shape follows the first case: its spatial shape (rescaled to the target spacing of a
    ``Resampling`` subfunction), capped at 128 (3D) or 256 (2D) voxels per axis and rounded
    down to a multiple of ``2**depth`` of the U-Net (at least ``2**depth``). The resolved
    shape is what the saved config records, so a repeated run uses the same patches.
    """
    pre = config["preprocessing"]
    _, arch_kwargs = split_spec(config["model"]["architecture"], "architecture")
    if "depth" in arch_kwargs:
        depth = int(arch_kwargs["depth"])
    elif "feature_maps" in arch_kwargs:
        depth = len(arch_kwargs["feature_maps"]) - 1
    else:
        depth = 4
    factor = 2**depth
    if pre.get("patch_shape") != "auto":
        if pre.get("patch_shape") is not None:
            pre["patch_shape"] = [int(p) for p in pre["patch_shape"]]
            bad = [p for p in pre["patch_shape"] if p % factor]
            if "depth" in arch_kwargs and bad:
                raise ConfigurationError(
                    f"patch_shape={pre['patch_shape']}: sizes {bad} are not divisible by 2**depth = {factor} "
                    f"(depth={depth}); choose multiples of {factor} or a smaller depth."
                )
        return config
    if pre.get("analysis") == "fullimage":
        pre["patch_shape"] = None
        return config
    indices = data_io.get_indiceslist()
    if not indices:
        raise DataError(f"No cases in {data_io.input_path!r} to choose a patch shape from.")
    image, extended = data_io.interface.load_image(indices[0])
    dims = 3 if data_io.interface.three_dim else 2
    shape = [float(s) for s in list(getattr(image, "shape", ()))[:dims]]
    spacing = (extended or {}).get("spacing")
    for spec in pre.get("subfunctions") or []:
        name, kwargs = split_spec(spec, "subfunction")
        if name == "Resampling" and spacing is not None:
            target = kwargs.get("new_spacing", (1, 1, 1))
            target = [float(target)] * dims if isinstance(target, (int, float)) else [float(t) for t in target]
            shape = [s * float(sp) / t for s, sp, t in zip(shape, spacing, target)]
    cap = _AUTO_PATCH_CAP[dims]
    pre["patch_shape"] = [max(factor, int(min(s, cap)) // factor * factor) for s in shape]
    return config


def build_preprocessor(config: Mapping[str, Any], data_io: Any, training: bool = True) -> Any:
    """A ``Preprocessor`` from the ``preprocessing`` section (augmentation only for training)."""
    from miseg.processing.preprocessor import Preprocessor

    pre = config["preprocessing"]
    seed = config["training"].get("seed")
    patch = pre.get("patch_shape")
    if patch == "auto":
        raise ConfigurationError("preprocessing.patch_shape is still 'auto'; call resolve_patch_shape first.")
    overlap = pre.get("patchwise_overlap")
    return Preprocessor(
        data_io,
        batch_size=int(pre["batch_size"]),
        subfunctions=build_subfunctions(pre.get("subfunctions")),
        data_aug=build_augmentation(config["augmentation"], seed) if training else None,
        prepare_subfunctions=bool(pre.get("prepare_subfunctions", False)),
        analysis=pre["analysis"],
        patch_shape=tuple(int(p) for p in patch) if patch is not None else None,
        patchwise_overlap=tuple(int(o) for o in overlap) if overlap is not None else None,
        patches_per_sample=pre.get("patches_per_sample"),
        foreground_oversampling=float(pre["foreground_oversampling"]),
        merge_weighting=pre["merge_weighting"],
        seed=seed,
    )


# ------------------------------------------------------------------------------ network
def build_architecture(spec: Any) -> Any:
    """An architecture from ``model.architecture`` (short name, ``UNet_*`` name or import path).

    Arguments the class does not take (e.g. ``depth`` for ``UNet_plain``) raise a
    ConfigurationError naming them.
    """
    from miseg.neural_network.architecture import unet

    name, kwargs = split_spec(spec, "architecture")
    class_name = ARCHITECTURE_NAMES.get(name, name)
    if class_name in unet.__all__:
        cls = getattr(unet, class_name)
    else:
        cls = _import_object(name, "architecture")
    return _construct(cls, kwargs, f"architecture {name}")


def architecture_spec(name: str, n_filters: int | None, depth: int | None) -> dict[str, Any]:
    """Architecture spec from CLI flags, keeping only the arguments the class accepts.

    Uses :data:`ARCHITECTURE_FLAGS` for miseg's U-Nets, so no Keras import is needed.
    """
    class_name = ARCHITECTURE_NAMES.get(name, name)
    if class_name not in ARCHITECTURE_FLAGS:
        raise ConfigurationError(
            f"architecture={name!r} is unknown; choose one of {', '.join(ARCHITECTURE_NAMES)} (or set "
            f"model.architecture in a config file for your own class)."
        )
    accepted = ARCHITECTURE_FLAGS[class_name]
    config = {k: v for k, v in (("n_filters", n_filters), ("depth", depth)) if v is not None and k in accepted}
    return {"class_name": class_name, "config": config}


def _loss_like(name: str, kwargs: Mapping[str, Any], what: str) -> Any:
    from miseg.neural_network import metrics as module

    if name in module.__all__:
        obj = getattr(module, name)
    else:
        obj = _import_object(name, what)
    if inspect.isclass(obj):
        return _construct(obj, kwargs, f"{what} {name}")
    try:
        first = next(iter(inspect.signature(obj).parameters), "")
    except (TypeError, ValueError):
        first = "y_true"
    if first in ("y_true", "y_truth"):  # a loss/metric function itself
        if kwargs:
            raise ConfigurationError(
                f"{what} {name!r} is a function of (y_true, y_pred) and takes no config {dict(kwargs)!r}; "
                f"use its class form (e.g. 'TverskyLoss') to set arguments."
            )
        return obj
    return _construct(obj, kwargs, f"{what} {name}")  # a factory such as focal_tversky_loss


def build_loss(spec: Any) -> Any:
    """A loss from ``model.loss``: a function name (``"tversky_loss"``), a loss class with
    arguments (``{"class_name": "TverskyLoss", "config": {"alpha": 0.3}}``), a factory
    (``"focal_tversky_loss"``) or an import path."""
    name, kwargs = split_spec(spec, "loss")
    return _loss_like(name, kwargs, "loss")


def build_metrics(specs: Sequence[Any] | None) -> list[Any]:
    """Training metrics from ``model.metrics`` (names in ``miseg.neural_network.metrics``)."""
    result = []
    for spec in specs or []:
        name, kwargs = split_spec(spec, "metric")
        result.append(_loss_like(name, kwargs, "metric"))
    return result


def build_network(config: Mapping[str, Any], preprocessor: Any) -> Any:
    """A ``Neural_Network`` from the ``model`` and ``training`` sections (imports TensorFlow).

    With ``training.seed`` set, Keras' random state is seeded first
    (``keras.utils.set_random_seed``), so weight initialisation repeats too.
    """
    import keras

    from miseg.neural_network.model import Neural_Network

    model = config["model"]
    training = config["training"]
    if training.get("seed") is not None:
        keras.utils.set_random_seed(int(training["seed"]))
    workers = int(training.get("workers", 1))
    return Neural_Network(
        preprocessor,
        architecture=build_architecture(model["architecture"]),
        loss=build_loss(model["loss"]),
        metrics=build_metrics(model.get("metrics")),
        learning_rate=float(model["learning_rate"]),
        batch_queue_size=int(training.get("batch_queue_size", 2)),
        workers=workers,
        use_multiprocessing=workers > 1,
        mixed_precision=bool(model.get("mixed_precision", False)),
        tta=bool(model.get("tta", False)),
        keep_largest_component=bool(model.get("keep_largest_component", False)),
    )


class Pipeline(NamedTuple):
    """The objects of one run, built from a config by :func:`build_pipeline`."""

    config: dict[str, Any]
    interface: Any
    data_io: Any
    preprocessor: Any
    network: Any


def build_pipeline(config: Mapping[str, Any], training: bool = True, output_path: str = "predictions",
                   batch_path: str = "batches", with_network: bool = True) -> Pipeline:
    """Resolve a config (interface, patch shape, seed) and build interface to network.

    The returned ``Pipeline.config`` is the effective config: what a repeated run needs.

    Args:
        config: A run config (e.g. from :func:`load_config`).
        training: Build the preprocessor with augmentation.
        output_path: Prediction folder of the Data_IO.
        batch_path: Batch/cache folder of the Data_IO.
        with_network: Build the Neural_Network too (imports TensorFlow).
    """
    config = merge_config(default_config(), config)
    validate_config(config)
    config["miseg_version"] = default_config()["miseg_version"]  # the version that runs it
    resolve_data_section(config)
    if config["training"].get("seed") is None:
        import secrets

        config["training"]["seed"] = secrets.randbelow(2**31)
    interface = build_interface(config["data"])
    data_io = build_data_io(config, interface, output_path=output_path, batch_path=batch_path)
    resolve_patch_shape(config, data_io)
    preprocessor = build_preprocessor(config, data_io, training=training)
    network = build_network(config, preprocessor) if with_network else None
    return Pipeline(config, interface, data_io, preprocessor, network)


def split_fraction(cases: Sequence[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Deterministic (seeded) split of ``cases`` into ``(training, validation)``.

    ``fraction`` of the cases (rounded up, at least one, never all) go to validation; 0
    gives no validation cases.
    """
    import numpy as np

    if not 0.0 <= fraction < 1.0:
        raise ConfigurationError(f"validation_fraction must be in [0, 1), got {fraction!r}.")
    cases = list(cases)
    if fraction == 0.0 or len(cases) < 2:
        return cases, []
    n_val = min(len(cases) - 1, max(1, math.ceil(fraction * len(cases))))
    order = np.random.default_rng(seed).permutation(len(cases))
    val = sorted(order[:n_val].tolist())
    return [c for i, c in enumerate(cases) if i not in val], [cases[i] for i in val]


def describe_error(exc: BaseException) -> str:
    """One line describing an error: its message's first line (with the type for non-miseg errors)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, MisegError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
