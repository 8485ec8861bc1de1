"""``import miseg`` registers miseg's Keras objects once Keras is imported, lazily.

The main scenario (``import miseg; import keras; keras.models.load_model(path)``) is
tested with real model files in ``test_metrics.py`` (round trip in a fresh process) and
``test_model.py`` (``import miseg, tensorflow, keras``). Here: the import stays free of
TensorFlow, the hook is installed once, and the other import orders.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import miseg

ROOT = str(Path(miseg.__file__).resolve().parents[1])


def run_python(code: str) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": ROOT}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_miseg_stays_lazy_and_installs_one_finder():
    out = run_python(
        """
        import importlib, sys
        import miseg
        heavy = [m for m in ("keras", "tensorflow", "miseg.neural_network.metrics")
                 if m in sys.modules]
        assert not heavy, heavy
        finders = [f for f in sys.meta_path if getattr(f, "is_miseg_keras_finder", False)]
        assert len(finders) == 1 and sys.meta_path[0] is finders[0]
        importlib.reload(miseg)  # installing again adds no second finder
        assert sum(getattr(f, "is_miseg_keras_finder", False) for f in sys.meta_path) == 1
        assert finders[0].find_spec("json") is None  # other imports are not touched
        assert callable(miseg.register_keras_objects)
        print("LAZY-OK")
        """
    )
    assert "LAZY-OK" in out


_REGISTERED = """
    import sys
    from keras.saving import get_registered_object
    names = ("miseg>tversky_loss", "miseg>focal_tversky_loss", "miseg>TverskyLoss",
             "miseg>InstanceNormalization")
    missing = [n for n in names if get_registered_object(n) is None]
    assert not missing, missing
    assert not [f for f in sys.meta_path if getattr(f, "is_miseg_keras_finder", False)]
    assert type(sys.modules["keras"].__spec__.loader).__name__ != "_RegisterAfterExec"
    print("REGISTERED-OK")
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "imports",
    ["import miseg\nimport keras", "import keras\nimport miseg", "import miseg\nimport tensorflow"],
)
def test_objects_are_registered_in_every_import_order(imports):
    assert "REGISTERED-OK" in run_python(imports + textwrap.dedent(_REGISTERED))


@pytest.mark.slow
def test_without_miseg_keras_cannot_find_the_objects():
    """Control: the registration above really comes from ``import miseg``."""
    out = run_python(
        """
        from keras.saving import get_registered_object
        print("FOUND" if get_registered_object("miseg>tversky_loss") else "NOT-FOUND")
        """
    )
    assert "NOT-FOUND" in out
