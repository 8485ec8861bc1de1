"""Export a Neural_Network for inference outside miseg, with its preprocessing plan.

Three formats:

* ``"savedmodel"``: a TensorFlow SavedModel folder for TF Serving. Its ``serving_default``
  signature takes ``image`` (``float32``, ``(batch, *patch, channels)``) and returns
  ``probabilities`` (``(batch, *patch, classes)``).
* ``"onnx"``: an ONNX file converted with ``tf2onnx`` (input ``image``, output
  ``probabilities``), checked with ``onnxruntime`` against Keras before it is written.
* ``"keras"``: a Keras 3 ``.keras`` file.

Beside every export lies the *preprocessing plan*, a JSON file with what a prediction needs
besides the network (``model.onnx`` -> ``model.preprocessing.json``; a SavedModel folder holds
``preprocessing.json``). Schema (``plan_version`` 1)::

    plan_version      1
    miseg_version     the miseg version that wrote it
    model             file, format, input_name, output_name, input_shape, output_shape
                      (batch axis first, channels last, null = any size), dtype,
                      activation ("softmax" or "sigmoid"; the output is already activated),
                      architecture, trained (false only for allow_untrained exports),
                      opset (ONNX) or signature (SavedModel)
    data              three_dim, channels, classes, interface, label_mapping
                      ({original label: class} applied when reading segmentations, or null)
    preprocessing     subfunctions: [{"class_name", "config"}] applied in order (miseg's
                      run-config form; ``miseg.cli.config.build_subfunctions`` rebuilds them),
                      analysis, patch_shape, prediction_overlap, merge_weighting,
                      merge_sigma_scale, pad_to_multiple_of (fullimage), padding
    postprocessing    flips (spatial axes of the batch to mirror, averaged: test-time
                      augmentation), output ("argmax" of the last axis for labels),
                      keep_largest_component

To reproduce a prediction of an image ``(*spatial, channels)``: apply the subfunctions in
order (e.g. ``Normalization`` z-score: ``(image - image.mean()) / (image.std() + smooth)``
over all voxels and channels); pad each axis smaller than the patch up to it with the
per-channel minimum (centred, floor before); cut patches of ``patch_shape`` starting every
``patch_shape - prediction_overlap`` voxels per axis, the last one flush with the image end;
run the network on them (averaging the mirrored inputs of ``flips``, mirrored back); merge
overlapping patches weighted by a Gaussian (sigma = ``merge_sigma_scale`` * patch size per
axis, centred on the patch) or uniformly (``"constant"``); crop the padding off, take the
argmax, and undo the subfunctions in reverse order (e.g. resample back). An image that fits
one patch is one network call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from typing import Any, Iterator, NamedTuple

import numpy as np

from miseg.errors import ConfigurationError, ModelError

__all__ = [
    "FORMATS",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "PLAN_VERSION",
    "ExportResult",
    "export_network",
    "export_paths",
    "is_untrained",
    "preprocessing_plan",
]

#: Export formats accepted by :func:`export_network`.
FORMATS = ("savedmodel", "onnx", "keras")
#: Name of the exported input (SavedModel signature key, ONNX input).
INPUT_NAME = "image"
#: Name of the exported output (SavedModel signature key, ONNX output).
OUTPUT_NAME = "probabilities"
#: Version of the preprocessing plan's schema (see the module docstring).
PLAN_VERSION = 1
_SUFFIXES = {"onnx": ".onnx", "keras": ".keras"}
_SAVEDMODEL_PLAN = "preprocessing.json"
# What a SavedModel export folder holds; overwrite replaces no folder with anything else.
_SAVEDMODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets", "assets.extra",
                       "fingerprint.pb", _SAVEDMODEL_PLAN}


class ExportResult(NamedTuple):
    """The files written by :func:`export_network`."""

    model_path: str
    plan_path: str
    format: str


def export_paths(path: str | os.PathLike, format: str) -> tuple[str, str]:
    """Where an export of ``format`` at ``path`` puts the model and its plan.

    ``.onnx``/``.keras`` are appended when missing; a SavedModel is a folder holding
    ``preprocessing.json``.

    Example:
        >>> export_paths("out/model", "onnx")
        ('out/model.onnx', 'out/model.preprocessing.json')
        >>> export_paths("out/serving", "savedmodel")
        ('out/serving', 'out/serving/preprocessing.json')
    """
    _check_format(format)
    path = os.fspath(path)
    if format == "savedmodel":
        folder = path.rstrip("/\\") or path
        return folder, os.path.join(folder, _SAVEDMODEL_PLAN)
    suffix = _SUFFIXES[format]
    model_path = path if path.lower().endswith(suffix) else path + suffix
    return model_path, model_path[: -len(suffix)] + ".preprocessing.json"


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ConfigurationError(f"Export format {format!r} is unknown; choose one of {', '.join(FORMATS)}.")


def is_untrained(network: Any) -> bool:
    """Whether a Neural_Network was never trained and never loaded (weights as initialised)."""
    if getattr(network, "_loaded_from", None):
        return False
    initial = getattr(network, "initialization_weights", None)
    if initial is None:
        return False
    current = network.model.get_weights()
    return len(current) == len(initial) and all(np.array_equal(a, b) for a, b in zip(current, initial))


def export_network(network: Any, path: str | os.PathLike, format: str = "savedmodel", *,
                   allow_untrained: bool = False, overwrite: bool = False, opset: int | None = None,
                   verify: bool = True, atol: float = 1e-4) -> ExportResult:
    """Export a Neural_Network's model with its preprocessing plan.

    Nothing but the export files is written: the network is not modified, and on any error
    no file is left behind.

    Args:
        network: A trained (or loaded) ``Neural_Network``.
        path: Target: a SavedModel folder, or an ``.onnx``/``.keras`` file (suffix added
            when missing); see :func:`export_paths`.
        format: ``"savedmodel"``, ``"onnx"`` or ``"keras"``.
        allow_untrained: Export a network that was never trained or loaded (its random
            initial weights) instead of refusing.
        overwrite: Replace an existing export at ``path`` (a folder is replaced only when it
            is a SavedModel).
        opset: ONNX opset (default: tf2onnx's default).
        verify: Reload the SavedModel / run the ONNX file with onnxruntime on a seeded
            random patch and compare it with Keras.
        atol: Largest absolute difference accepted by ``verify``.

    Returns:
        An :class:`ExportResult` with the model and plan paths.

    Raises:
        ConfigurationError: for an unknown format or an existing target without ``overwrite``.
        ModelError: for an untrained network, a layer the converter cannot export (named in
            the message), a missing converter package, or a failed verification.
    """
    _check_format(format)
    model_path, plan_path = export_paths(path, format)
    _check_targets(model_path, plan_path, format, overwrite)
    untrained = is_untrained(network)
    if untrained and not allow_untrained:
        raise ModelError(
            f"The network ({_class_name(network.architecture, _unet())}) was never trained or loaded: its "
            f"weights are the random initialisation, so an export to {model_path!r} would predict "
            f"noise. Train it or load a model first, or pass allow_untrained=True."
        )
    extra: dict[str, Any] = {}
    with _staging(model_path) as folder:
        staged = os.path.join(folder, os.path.basename(model_path))
        if format == "savedmodel":
            _write_savedmodel(network.model, staged, verify, atol)
            extra["signature"] = "serving_default"
            staged_plan = os.path.join(staged, _SAVEDMODEL_PLAN)
        else:
            if format == "onnx":
                extra["opset"] = _write_onnx(network.model, staged, opset, verify, atol)
            else:
                network.model.save(staged)
            staged_plan = os.path.join(folder, os.path.basename(plan_path))
        plan = preprocessing_plan(network, model_path, format, trained=not untrained, **extra)
        with open(staged_plan, "w", encoding="utf-8") as handle:
            json.dump(plan, handle, indent=2)
            handle.write("\n")
        _publish(staged, model_path, format)
        if format != "savedmodel":
            os.replace(staged_plan, plan_path)
    return ExportResult(model_path, plan_path, format)


# ---------------------------------------------------------------------------------- files
def _check_targets(model_path: str, plan_path: str, format: str, overwrite: bool) -> None:
    existing = [p for p in (model_path, plan_path) if os.path.lexists(p)]
    if format == "savedmodel" and os.path.isdir(model_path) and not os.listdir(model_path):
        existing = [p for p in existing if p != model_path]  # an empty folder is fine
    if not existing:
        return
    if not overwrite:
        raise ConfigurationError(
            f"Cannot export to {existing[0]!r}: it exists. Choose another path or pass overwrite=True."
        )
    if format == "savedmodel" and os.path.isdir(model_path):
        foreign = sorted(set(os.listdir(model_path)) - _SAVEDMODEL_ENTRIES)
        if foreign or not os.path.isfile(os.path.join(model_path, "saved_model.pb")):
            why = (f"it holds files that are no part of a SavedModel export ({', '.join(foreign[:3])})"
                   if foreign else "it holds no SavedModel (saved_model.pb)")
            raise ConfigurationError(
                f"Cannot overwrite the folder {model_path!r}: {why}; only earlier exports are replaced."
            )
    if os.path.isdir(model_path) != (format == "savedmodel") and os.path.lexists(model_path):
        kind = "a folder" if os.path.isdir(model_path) else "a file"
        raise ConfigurationError(f"Cannot export {format} to {model_path!r}: it is {kind}.")


@contextlib.contextmanager
def _staging(model_path: str) -> Iterator[str]:
    """A temporary folder beside ``model_path``, removed afterwards with whatever is left in it."""
    parent = os.path.dirname(os.path.abspath(model_path))
    created = []  # the folders this export creates, deepest first
    missing = parent
    while not os.path.isdir(missing):
        created.append(missing)
        missing = os.path.dirname(missing)
    os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f".{os.path.basename(model_path)}.", dir=parent)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        for path in created:  # a failed export leaves no folders behind
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish(staged: str, model_path: str, format: str) -> None:
    """Move the staged export onto ``model_path`` (replacing an earlier export)."""
    if format != "savedmodel":
        os.replace(staged, model_path)
        return
    old = None
    if os.path.isdir(model_path):
        if os.listdir(model_path):
            old = staged + ".old"  # inside the staging folder, removed with it
            os.replace(model_path, old)
        else:
            os.rmdir(model_path)
    try:
        os.replace(staged, model_path)
    except BaseException:
        if old is not None:
            os.replace(old, model_path)  # put the earlier export back
        raise


# ---------------------------------------------------------------------------------- formats
def _input_spec(model: Any) -> Any:
    import tensorflow as tf

    return tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_NAME)


def _probe(model: Any) -> np.ndarray:
    """A seeded random batch of one patch (free spatial sizes: twice the downsampling)."""
    from miseg.neural_network.model import downsampling_factors

    factors = downsampling_factors(model)
    spatial = [s if s is not None else 2 * f for s, f in zip(model.input_shape[1:-1], factors)]
    rng = np.random.default_rng(0)
    return rng.standard_normal((1, *spatial, model.input_shape[-1])).astype(np.float32)


def _compare(expected: np.ndarray, got: np.ndarray, what: str, atol: float) -> None:
    got = np.asarray(got)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        raise ModelError(f"{what} gives output {got.shape}, but Keras gives {expected.shape}.")
    diff = float(np.max(np.abs(got - expected)))
    if diff > atol:
        raise ModelError(f"{what} differs from Keras by up to {diff:.3g} (> {atol:g}).")


def _write_savedmodel(model: Any, target: str, verify: bool, atol: float) -> None:
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve", lambda image: {OUTPUT_NAME: model(image, training=False)}, input_signature=[_input_spec(model)]
    )
    archive.write_out(target, verbose=False)
    if verify:
        x = _probe(model)
        loaded = tf.saved_model.load(target)
        out = loaded.signatures["serving_default"](**{INPUT_NAME: tf.constant(x)})[OUTPUT_NAME]
        _compare(np.asarray(model(x, training=False)), out.numpy(), "The reloaded SavedModel", atol)


def _write_onnx(model: Any, target: str, opset: int | None, verify: bool, atol: float) -> int:
    """Convert with tf2onnx, reject unconvertible layers, verify with onnxruntime; the opset."""
    try:
        import onnx
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise ModelError(
            f"ONNX export needs the packages tf2onnx and onnx ({exc}); install them with "
            f"pip install 'miseg[export]'."
        ) from exc
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its np.object probe warns on numpy 2
        from keras.src.export.tf2onnx_lib import patch_tf2onnx  # Keras' numpy-2 fixes for tf2onnx

        patch_tf2onnx()
    spec = _input_spec(model)
    function = tf.function(lambda image: model(image, training=False), input_signature=[spec])
    with _quiet("tf2onnx"):
        try:
            proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
        except Exception as exc:  # noqa: BLE001 - any converter failure is reported with its layer
            raise ModelError(_conversion_message(model, str(exc), [])) from exc
    unsupported = [node for node in proto.graph.node
                   if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type, node.domain)]
    if unsupported:
        raise ModelError(_conversion_message(model, "", unsupported))
    _rename_output(proto, OUTPUT_NAME)
    data = proto.SerializeToString()
    if verify:
        _verify_onnx(model, data, atol)
    with open(target, "wb") as handle:
        handle.write(data)
    return int(next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset or 0))


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence a library logger below ERROR for the duration (its unsupported-op lines are ours now)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _rename_output(proto: Any, name: str) -> None:
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        for i, value in enumerate(node.output):
            if value == old:
                node.output[i] = name
        for i, value in enumerate(node.input):
            if value == old:
                node.input[i] = name
    proto.graph.output[0].name = name


def _verify_onnx(model: Any, data: bytes, atol: float) -> None:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelError(
            "Verifying the ONNX export needs onnxruntime; install it with pip install 'miseg[export]' "
            "or pass verify=False."
        ) from exc
    x = _probe(model)
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot run the converted model: {exc}") from exc
    _compare(np.asarray(model(x, training=False)), out, "The ONNX model (onnxruntime)", atol)


def _layer_of_node(model: Any, node_name: str) -> Any:
    """The innermost layer whose name scope appears in a TensorFlow node name, or None.

    TensorFlow may add ``_<n>`` to scope names, so ``odd_1`` also matches a layer ``odd``.
    """
    layers = {layer.name: layer for layer in model._flatten_layers(include_self=False, recursive=True)}
    for part in reversed(node_name.split("/")[:-1]):
        if part in layers:
            return layers[part]
        base = re.sub(r"_\d+$", "", part)
        if base in layers:
            return layers[base]
    return None


def _conversion_message(model: Any, error: str, nodes: list) -> str:
    """Name the layer(s) and ops that tf2onnx could not convert."""
    found: dict[str, set[str]] = {}
    names = [(n.name, n.op_type) for n in nodes]
    if not names:
        names = [(m, "") for m in re.findall(r"[\w.\-]+(?:/[\w.\-]+)+", error)]
    for node_name, op in names:
        layer = _layer_of_node(model, node_name)
        if layer is None and not op:
            continue  # a path-like part of an error message that names no layer
        key = f"layer {layer.name!r} ({type(layer).__name__})" if layer is not None else f"node {node_name!r}"
        found.setdefault(key, set()).update({op} if op else set())
    if found:
        parts = [f"{key}" + (f" uses TensorFlow op(s) {', '.join(sorted(ops))}" if ops else "")
                 for key, ops in found.items()]
        what = "; ".join(parts)
    else:
        what = "a layer of the model"
    detail = f": {error.strip().splitlines()[0]}" if error.strip() else ""
    return (f"ONNX export failed: tf2onnx cannot convert {what}{detail}. Replace the layer by standard "
            f"Keras layers/ops, or export with format='savedmodel' or 'keras' instead.")


# ---------------------------------------------------------------------------------- plan
def _subfunction_spec(subfunction: Any) -> dict[str, Any]:
    from miseg.processing import subfunctions

    name = _class_name(subfunction, subfunctions)
    config = subfunction.get_config() if hasattr(subfunction, "get_config") else None
    spec: dict[str, Any] = {"class_name": name, "config": config}
    if config is None:
        spec["repr"] = repr(subfunction)
    return spec


def _class_name(obj: Any, package: Any) -> str:
    """The name ``package`` exports ``type(obj)`` under, else its import path."""
    cls = type(obj)
    for name in getattr(package, "__all__", ()):
        if getattr(package, name, None) is cls:
            return name
    return f"{cls.__module__}.{cls.__qualname__}"


def _unet() -> Any:
    from miseg.neural_network.architecture import unet

    return unet


def _activation(network: Any) -> str | None:
    activation = getattr(network.architecture, "activation", None)
    if activation is None:
        activation = getattr(network.model.layers[-1], "activation", None)
    if activation is None:
        return None
    return activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))


def _shape(shape: Any) -> list:
    return [None if s is None else int(s) for s in shape]


def preprocessing_plan(network: Any, model_path: str, format: str, trained: bool = True,
                       **model_extra: Any) -> dict[str, Any]:
    """The JSON-ready preprocessing plan of a network (schema: see the module docstring).

    Args:
        network: The Neural_Network.
        model_path: The exported model (its base name is recorded).
        format: The export format.
        trained: Whether the weights were trained or loaded.
        **model_extra: More entries of the ``model`` section (``opset``, ``signature``).
    """
    from miseg import __version__
    from miseg.neural_network.model import downsampling_factors

    unet = _unet()
    pp = network.preprocessor
    interface = pp.data_io.interface
    mapping = getattr(pp.data_io, "label_mapping", None)
    patchwise = pp.analysis != "fullimage"
    return _jsonable({
        "plan_version": PLAN_VERSION,
        "miseg_version": __version__,
        "model": {
            "file": os.path.basename(model_path), "format": format, "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME, "input_shape": _shape((None, *network.model.input_shape[1:])),
            "output_shape": _shape((None, *network.model.output_shape[1:])), "dtype": "float32",
            "activation": _activation(network), "architecture": _class_name(network.architecture, unet),
            "trained": bool(trained), **model_extra,
        },
        "data": {
            "three_dim": bool(network.three_dim), "channels": int(network.channels),
            "classes": int(network.classes), "interface": type(interface).__name__,
            "label_mapping": {str(k): int(v) for k, v in mapping.items()} if mapping else None,
        },
        "preprocessing": {
            "subfunctions": [_subfunction_spec(sf) for sf in pp.subfunctions],
            "analysis": pp.analysis,
            "patch_shape": list(pp.patch_shape) if patchwise else None,
            "prediction_overlap": list(pp.prediction_overlap()) if patchwise else None,
            "merge_weighting": pp.merge_weighting if patchwise else "constant",
            "merge_sigma_scale": 0.125,
            "pad_to_multiple_of": None if patchwise else list(downsampling_factors(network.model)),
            "padding": "centred (floor before), with the per-channel minimum, up to the patch shape "
                       "or (fullimage) up to a multiple of pad_to_multiple_of",
        },
        "postprocessing": {
            "flips": [list(f) for f in network._flips(network.tta)],
            "output": "argmax",
            "keep_largest_component": bool(network.keep_largest_component),
        },
    })


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
