"""Write and execute the example notebooks (``quickstart.ipynb``, ``cross_validation.ipynb``).

The notebooks are generated from the cells below with nbformat and executed with nbclient,
so their stored outputs (text and figures) always come from the current code. Execution
uses the tiny settings (``MISEG_TINY=1``; seconds on a CPU) in a temporary folder, so no
data lands in ``examples/``. Run from the repository root::

    python examples/_make_notebooks.py            # rewrite and execute both notebooks
    python examples/_make_notebooks.py --no-run   # only rewrite the cells
    python examples/_make_notebooks.py cross_validation.ipynb   # only this notebook
"""

import argparse
import os
import tempfile

import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))

TINY_NOTE = (
    "> **Stored outputs come from the tiny settings.** This notebook reads `MISEG_TINY`: with "
    "`MISEG_TINY=1` (how it was executed before saving, and how the tests run it) the data, network "
    "and schedule are tiny and everything finishes in seconds on a CPU, so the numbers and figures "
    "below show the *workflow*, not a trained model. Unset it for the full settings (a GPU is recommended)."
)

QUICKSTART = [
    ("md", "# miseg quickstart: kidney tumour segmentation\n\n"
           "MIScnn's README pipeline on miseg: a KiTS19-like CT data set (generated phantoms with kidneys "
           "and tumours), the NIfTI interface, augmentation, preprocessing subfunctions (resampling, "
           "clipping, normalisation), patch-wise training of a U-Net and prediction.\n\n" + TINY_NOTE),
    ("code", "%matplotlib inline\n"
             "import os\n\n"
             "import matplotlib.pyplot as plt\n"
             "import numpy as np\n\n"
             "TINY = os.environ.get(\"MISEG_TINY\") == \"1\"\n"
             "if TINY:\n"
             "    N_CASES, SHAPE, PATCH, FILTERS, DEPTH, EPOCHS, ITERATIONS, WORKERS = 5, (16, 32, 32), (16, 16, 16), 4, 2, 2, 2, 0\n"
             "else:\n"
             "    N_CASES, SHAPE, PATCH, FILTERS, DEPTH, EPOCHS, ITERATIONS, WORKERS = 24, (64, 128, 128), (32, 64, 64), 32, 4, 50, 100, 2\n"
             "WORKDIR = \"quickstart_output\"\n"
             "print(\"tiny settings\" if TINY else \"full settings\")"),
    ("md", "## Data\n\nThe phantoms use the KiTS19 layout `case_XXXXX/imaging.nii.gz` + "
           "`segmentation.nii.gz`; the last case has no segmentation, like a new patient."),
    ("code", "from miseg import Data_IO\n"
             "from miseg.data_loading.interfaces import NIFTI_interface\n"
             "from miseg.datasets import write_kits_dataset\n\n"
             "data_path = os.path.join(WORKDIR, \"kits_phantom\")\n"
             "write_kits_dataset(data_path, n_cases=N_CASES, shape=SHAPE, spacing=(3.0, 0.8, 0.8), seed=0, unlabeled=1)\n"
             "interface = NIFTI_interface(pattern=\"case_[0-9]+\", channels=1, classes=3)\n"
             "data_io = Data_IO(interface, data_path, output_path=os.path.join(WORKDIR, \"predictions\"),\n"
             "                  batch_path=os.path.join(WORKDIR, \"batches\"), seed=0)\n"
             "cases = data_io.get_indiceslist()\n"
             "labelled = [c for c in cases if data_io.has_segmentation(c)]\n"
             "print(cases, \"labelled:\", len(labelled))"),
    ("md", "`miseg explore` (here its library function) summarises the data set and lists problems."),
    ("code", "from miseg.cli.explore import explore_dataset\n\n"
             "report = explore_dataset(data_path, classes=3)\n"
             "print(report.summary())"),
    ("code", "sample = data_io.sample_loader(labelled[0], load_seg=True)\n"
             "image, labels = sample.img_data[..., 0], sample.seg_data[..., 0]\n"
             "z = int(np.argmax((labels > 0).sum(axis=(1, 2))))  # the slice with most kidney\n"
             "fig, axes = plt.subplots(1, 2, figsize=(8, 4))\n"
             "axes[0].imshow(image[z], cmap=\"gray\", vmin=-200, vmax=300); axes[0].set_title(f\"{labelled[0]}, slice {z}\")\n"
             "axes[1].imshow(labels[z], cmap=\"viridis\", vmin=0, vmax=2); axes[1].set_title(\"kidney (1), tumour (2)\")\n"
             "for ax in axes: ax.axis(\"off\")"),
    ("md", "## Pipeline\n\nAugmentation, subfunctions and a patch-wise preprocessor: training patches "
           "are random crops, a third of them centred on foreground; prediction uses overlapping grid "
           "patches merged with Gaussian weights."),
    ("code", "from miseg import Data_Augmentation, Neural_Network, Preprocessor\n"
             "from miseg.neural_network.architecture.unet import UNet_standard\n"
             "from miseg.neural_network.metrics import dice_crossentropy, dice_soft, tversky_loss\n"
             "from miseg.processing.subfunctions import Clipping, Normalization, Resampling\n\n"
             "data_aug = Data_Augmentation(cycles=2, scaling=True, rotations=True, elastic_deform=not TINY, mirror=True,\n"
             "                             brightness=True, contrast=True, gamma=True, gaussian_noise=True, seed=0)\n"
             "subfunctions = [Resampling((3.0, 1.6, 1.6)), Clipping(min=-79, max=304), Normalization(mode=\"z-score\")]\n"
             "pp = Preprocessor(data_io, data_aug=data_aug, batch_size=2, subfunctions=subfunctions,\n"
             "                  analysis=\"patchwise-crop\", patch_shape=PATCH, seed=0)\n"
             "model = Neural_Network(preprocessor=pp, architecture=UNet_standard(n_filters=FILTERS, depth=DEPTH),\n"
             "                       loss=tversky_loss, metrics=[dice_soft, dice_crossentropy], learning_rate=1e-4,\n"
             "                       workers=WORKERS)\n"
             "model.model.count_params()"),
    ("code", "train_ids, test_ids = labelled[:-1], labelled[-1:]\n"
             "history = model.train(train_ids, epochs=EPOCHS, iterations=ITERATIONS)\n"
             "model.dump(os.path.join(WORKDIR, \"model.keras\"))\n"
             "fig, ax = plt.subplots(figsize=(5, 3))\n"
             "ax.plot(range(1, EPOCHS + 1), history.history[\"loss\"], marker=\"o\", label=\"Tversky loss\")\n"
             "ax.plot(range(1, EPOCHS + 1), history.history[\"dice_soft\"], marker=\"o\", label=\"soft Dice\")\n"
             "ax.set_xlabel(\"epoch\")\n"
             "ax.legend();"),
    ("md", "## Prediction\n\nPredictions come back on the original grid (subfunctions are undone in "
           "reverse order); without `return_output` they are written as NIfTI with the source geometry."),
    ("code", "from miseg.evaluation.metrics import compute_dice\n\n"
             "prediction = model.predict(test_ids, return_output=True)[0]\n"
             "truth = data_io.sample_loader(test_ids[0], load_seg=True)\n"
             "dice = compute_dice(truth.seg_data[..., 0], prediction, classes=3)\n"
             "print(f\"Dice on {test_ids[0]}: kidney {dice[1]:.3f}, tumour {dice[2]:.3f}\")\n"
             "z = int(np.argmax((truth.seg_data[..., 0] > 0).sum(axis=(1, 2))))\n"
             "fig, axes = plt.subplots(1, 2, figsize=(8, 4))\n"
             "axes[0].imshow(truth.seg_data[z, ..., 0], vmin=0, vmax=2); axes[0].set_title(\"truth\")\n"
             "axes[1].imshow(prediction[z], vmin=0, vmax=2); axes[1].set_title(\"prediction\")\n"
             "for ax in axes: ax.axis(\"off\")"),
    ("code", "new_cases = [c for c in cases if c not in labelled]\n"
             "model.predict(new_cases)\n"
             "sorted(os.listdir(data_io.output_path))"),
    ("md", "## The same from the command line\n\n"
           "```bash\n"
           "miseg explore quickstart_output/kits_phantom --classes 3 --plots explore_plots\n"
           "miseg train quickstart_output/kits_phantom --classes 3 --resample 3 1.6 1.6 --clip -79 304 \\\n"
           "    --patch-shape 32 64 64 --epochs 50 --iterations 100 --aug-mirror -o run/model.keras\n"
           "miseg predict quickstart_output/kits_phantom -m run/model.keras -o predictions\n"
           "```\n\n"
           "`run/model.config.yaml` records the whole run; `miseg train --config run/model.config.yaml` repeats it."),
]

CROSS_VALIDATION = [
    ("md", "# Cross-validation with miseg\n\n"
           "k-fold cross-validation on a KiTS19-like phantom data set: one model per fold from the same "
           "initial weights, training curves, per-case and per-class metrics (Dice, IoU, HD95, ASSD; "
           "spacing-aware) with bootstrap confidence intervals, and figures.\n\n" + TINY_NOTE),
    ("code", "%matplotlib inline\n"
             "import os\n\n"
             "import pandas as pd\n"
             "from IPython.display import Image, display\n\n"
             "TINY = os.environ.get(\"MISEG_TINY\") == \"1\"\n"
             "if TINY:\n"
             "    N_CASES, SHAPE, PATCH, FILTERS, DEPTH, K_FOLD, EPOCHS, ITERATIONS, WORKERS = 4, (16, 32, 32), (16, 16, 16), 4, 2, 2, 2, 1, 0\n"
             "else:\n"
             "    N_CASES, SHAPE, PATCH, FILTERS, DEPTH, K_FOLD, EPOCHS, ITERATIONS, WORKERS = 30, (64, 128, 128), (32, 64, 64), 32, 4, 5, 50, 100, 2\n"
             "WORKDIR = \"cross_validation_output\"\n"
             "print(\"tiny settings\" if TINY else \"full settings\")"),
    ("code", "from miseg import Data_Augmentation, Data_IO, Neural_Network, Preprocessor\n"
             "from miseg.data_loading.interfaces import NIFTI_interface\n"
             "from miseg.datasets import write_kits_dataset\n"
             "from miseg.neural_network.architecture.unet import UNet_standard\n"
             "from miseg.neural_network.metrics import dice_soft, tversky_crossentropy\n"
             "from miseg.processing.subfunctions import Clipping, Normalization, Resampling\n\n"
             "data_path = os.path.join(WORKDIR, \"kits_phantom\")\n"
             "write_kits_dataset(data_path, n_cases=N_CASES, shape=SHAPE, seed=1)\n"
             "data_io = Data_IO(NIFTI_interface(classes=3), data_path, batch_path=os.path.join(WORKDIR, \"batches\"), seed=0)\n"
             "pp = Preprocessor(data_io, batch_size=2, data_aug=Data_Augmentation(mirror=True, seed=0),\n"
             "                  subfunctions=[Resampling((3.0, 1.6, 1.6)), Clipping(min=-79, max=304), Normalization()],\n"
             "                  analysis=\"patchwise-crop\", patch_shape=PATCH, seed=0)\n"
             "model = Neural_Network(pp, architecture=UNet_standard(n_filters=FILTERS, depth=DEPTH),\n"
             "                       loss=tversky_crossentropy, metrics=[dice_soft], workers=WORKERS)"),
    ("md", "## Run the folds\n\nThe split is seeded and stored in `cross_validation.json`; calling "
           "`cross_validation` again on the same folder resumes and skips finished folds. Pass "
           "`executor=` (a process pool or a Dask client's executor) to train folds in parallel."),
    ("code", "from miseg.evaluation import cross_validation\n\n"
             "evaluation = os.path.join(WORKDIR, \"evaluation\")\n"
             "histories = cross_validation(data_io.get_indiceslist(), model, k_fold=K_FOLD, epochs=EPOCHS,\n"
             "                             iterations=ITERATIONS, evaluation_path=evaluation, draw_figures=True,\n"
             "                             run_detailed_evaluation=True, return_output=True, seed=0,\n"
             "                             metrics=[\"dice\", \"iou\", \"hd95\", \"assd\"])\n"
             "sorted(os.listdir(evaluation))"),
    ("md", "## Results\n\nPer class and metric over all validation cases: mean, median and a 95% "
           "bootstrap interval of the mean (NaN distances, e.g. of a missed structure, are counted out)."),
    ("code", "summary = pd.read_csv(os.path.join(evaluation, \"detailed_validation.summary.tsv\"), sep=\"\\t\")\n"
             "summary.pivot(index=\"class\", columns=\"metric\", values=\"mean\").round(3)"),
    ("code", "per_case = pd.read_csv(os.path.join(evaluation, \"detailed_validation.long.tsv\"), sep=\"\\t\")\n"
             "per_case.head(6)"),
    ("code", "display(Image(os.path.join(evaluation, \"validation.folds.png\")))\n"
             "display(Image(os.path.join(evaluation, \"detailed_validation.boxplots.png\")))"),
    ("code", "fold_0 = os.path.join(evaluation, \"fold_0\")\n"
             "overlays = sorted(f for f in os.listdir(fold_0) if f.startswith(\"overlay.\"))\n"
             "print(overlays)\n"
             "display(Image(os.path.join(fold_0, overlays[0])))"),
    ("md", "The command line runs the same evaluation: "
           "`miseg evaluate DATA --classes 3 --k-fold 5 --resample 3 1.6 1.6 --clip -79 304 -o evaluation`."),
    ("md", "## Classical methods on the same folds\n\n"
           "A `ClassicalModel` (here a learned intensity window per class, and a graph cut) goes through the "
           "same `cross_validation` as the network: the same seed gives the same folds, and the same tables "
           "come out. Classical methods need no training beyond a few learned numbers, so they are the "
           "baseline a network has to beat. `benchmarks/classical_vs_unet.py` runs the full comparison "
           "(touching nuclei with instance metrics, and these phantoms with region growing)."),
    ("code", "from miseg.classical import ClassicalModel\n\n"
             "def mean_dice(path):\n"
             "    table = pd.read_csv(os.path.join(path, \"detailed_validation.summary.tsv\"), sep=\"\\t\")\n"
             "    return table[table[\"metric\"] == \"dice\"].set_index(\"class\")[\"mean\"]\n\n"
             "dice = {\"U-Net\": mean_dice(evaluation)}\n"
             "for method in [\"threshold\", \"graph_cut\"]:\n"
             "    path = os.path.join(WORKDIR, f\"evaluation_{method}\")\n"
             "    cross_validation(data_io.get_indiceslist(), ClassicalModel(pp, method), k_fold=K_FOLD,\n"
             "                     evaluation_path=path, run_detailed_evaluation=True, seed=0, metrics=[\"dice\"])\n"
             "    dice[method] = mean_dice(path)\n"
             "print(\"mean Dice per class over the validation cases:\")\n"
             "pd.DataFrame(dice).round(3)"),
]

NOTEBOOKS = {"quickstart.ipynb": QUICKSTART, "cross_validation.ipynb": CROSS_VALIDATION}


def build(cells):
    """A notebook object from ``(kind, source)`` pairs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    return nb


def execute(nb, workdir, timeout=600):
    """Run a notebook in ``workdir`` with the tiny settings; the outputs are stored in ``nb``."""
    os.environ["MISEG_TINY"] = "1"
    os.environ.setdefault("MISEG_QUIET", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": workdir}})
    client.execute()
    return nb


# stderr lines from library start-up (TensorFlow/absl logging, tqdm's notebook hint): not content
_NOISE = ("I0000 ", "E0000 ", "W0000 ", "WARNING: All log messages before absl", "TqdmWarning", "autonotebook",
          "To enable the following instructions")


def strip_noise(nb):
    """Remove start-up log lines from stored stderr outputs (they hold timestamps and PIDs)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                lines = [line for line in output.text.splitlines(keepends=True)
                         if not any(token in line for token in _NOISE)]
                if not "".join(lines).strip():
                    continue
                output.text = "".join(lines)
            kept.append(output)
        cell.outputs = kept
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="write the cells without executing them")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"notebooks to write (default: all of {', '.join(NOTEBOOKS)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NOTEBOOKS))
    if unknown:
        parser.error(f"unknown notebook(s) {unknown}; choose from {', '.join(NOTEBOOKS)}")
    for name, cells in NOTEBOOKS.items():
        if args.names and name not in args.names:
            continue
        nb = build(cells)
        if not args.no_run:
            with tempfile.TemporaryDirectory() as workdir:
                strip_noise(execute(nb, workdir))
        nbformat.write(nb, os.path.join(HERE, name))
        print(f"wrote {os.path.join(HERE, name)}")


if __name__ == "__main__":
    main()
