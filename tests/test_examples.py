"""Every example script runs with --tiny, and both notebooks execute with MISEG_TINY=1.

The runs are end to end (minutes on 2 cores), so they carry the ``slow`` marker: ``.ci/run``
runs them after the default suite (``make test-slow``).

The scripts run as subprocesses (two at a time, started by a module fixture) in a temporary
working directory; each test then checks its script's exit code, output and files.
"""

import concurrent.futures
import copy
import glob
import importlib.util
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

# script -> (files that must exist below the working directory, text that must be printed)
EXPECTED = {
    "quickstart_kits.py": (["quickstart_kits_output/model.keras",
                            "quickstart_kits_output/predictions/case_00003.nii.gz"],
                           "Dice on case_00002"),
    "image_folder_2d.py": (["image_folder_2d_output/model.keras", "image_folder_2d_output/overlay.png",
                            "image_folder_2d_output/predictions/case_00003.png"], "Dice on case_00003"),
    "dicom_rtstruct.py": (["dicom_rtstruct_output/predictions/patient_002.seg.dcm",
                           "dicom_rtstruct_output/dicom/patient_000/rtstruct.dcm"], "segments ['Kidney', 'Tumor']"),
    "cross_validation.py": (["cross_validation_output/evaluation/validation.folds.png",
                             "cross_validation_output/evaluation/detailed_validation.boxplots.png",
                             "cross_validation_output/evaluation/detailed_validation.summary.tsv",
                             "cross_validation_output/evaluation/fold_1/history.tsv"], "Dice per class"),
    "custom_interface.py": (["custom_interface_output/predictions/scan02.npy"], "scan02: prediction (16, 32, 32)"),
    "custom_subfunction.py": ([], "outside the body box set to background"),
    "custom_architecture.py": (["custom_architecture_output/model.keras"], "reloaded"),
    "brain_mni152.py": (["brain_mni152_output/predictions/mni152.nii.gz"], "white_matter: Dice"),
    "classical_vs_unet.py": (["classical_vs_unet_output/comparison.tsv",
                              "classical_vs_unet_output/evaluation/unet/fold_1/detailed_validation.tsv"],
                             "object F1 (IoU 0.5)"),
}


def _env():
    env = dict(os.environ)
    env.update(MISEG_QUIET="1", MISEG_TINY="1", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg",
               PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _run_script(name, cwd):
    os.makedirs(cwd, exist_ok=True)
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), "--tiny"], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory):
    """Start every example (two at a time); map name -> (future of CompletedProcess, cwd)."""
    root = tmp_path_factory.mktemp("examples")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    runs = {name: (pool.submit(_run_script, name, str(root / name[:-3])), root / name[:-3]) for name in EXPECTED}
    yield runs
    pool.shutdown(wait=True)


def test_every_example_script_is_tested():
    scripts = {os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.py"))}
    assert {s for s in scripts if not s.startswith("_")} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_tiny(name, script_runs):
    future, cwd = script_runs[name]
    result = future.result()
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    files, text = EXPECTED[name]
    assert text in result.stdout, result.stdout
    for path in files:
        assert (cwd / path).is_file(), f"{name} did not write {path}"


# ------------------------------------------------------------------------------ notebooks
def _notebook_builder():
    spec = importlib.util.spec_from_file_location("make_notebooks", os.path.join(EXAMPLES, "_make_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["quickstart.ipynb", "cross_validation.ipynb"])
def test_committed_notebook_matches_its_source_and_stores_figures(name):
    committed = nbformat.read(os.path.join(EXAMPLES, name), as_version=4)
    cells = _notebook_builder().NOTEBOOKS[name]
    assert [c.source for c in committed.cells] == [source for _, source in cells], \
        "regenerate with: python examples/_make_notebooks.py"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "the committed notebook is not executed"
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the committed notebook stores no figure"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "cross_validation.ipynb"])
def test_notebook_executes_with_tiny_settings(name, tmp_path, monkeypatch):
    for key, value in _env().items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment
    nb = copy.deepcopy(nbformat.read(os.path.join(EXAMPLES, name), as_version=4))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "tiny settings" in text
    if name == "quickstart.ipynb":
        assert (tmp_path / "quickstart_output" / "model.keras").is_file()
        assert (tmp_path / "quickstart_output" / "predictions" / "case_00004.nii.gz").is_file()
    else:
        assert (tmp_path / "cross_validation_output" / "evaluation" / "detailed_validation.summary.tsv").is_file()
