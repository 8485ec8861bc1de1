"""Make ``docs/images/report.png``: a small cross-validation, its report, a headless-Chromium screenshot.

    python docs/make_report_screenshot.py [--output docs/images/report.png] [--keep DIR]

A tiny 2D U-Net is cross-validated (3 folds, a few epochs, seeded) on generated discs with
``draw_figures=True``, which writes ``report.html``; the page is then opened in Debian's
``chromium`` through playwright (``miseg.report.browser``) and photographed. Needs the test
extras (playwright) and ``apt-get install -y chromium``. Takes about a minute on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("MISEG_QUIET", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def disc_cases(n: int = 12, size: int = 32, seed: int = 0) -> dict:
    """2D discs (label 1) with a bright core (label 2) on noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cases = {}
    for k in range(n):
        cy, cx, r = rng.integers(10, size - 10), rng.integers(10, size - 10), rng.integers(5, 9)
        distance = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        seg = (distance <= r).astype(np.uint8) + (distance <= r / 2)
        image = (seg + 0.35 * rng.standard_normal((size, size))).astype(np.float32)
        cases[f"case_{k:02d}"] = (image, seg.astype(np.uint8), None, {"spacing": (1.0, 1.0)})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "images", "report.png"))
    parser.add_argument("--keep", default=None, help="evaluation folder to keep (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()

    import keras

    from miseg.data_loading.data_io import Data_IO
    from miseg.data_loading.interfaces import Dictionary_interface
    from miseg.evaluation import cross_validation
    from miseg.neural_network.architecture.unet.standard import Architecture
    from miseg.neural_network.model import Neural_Network
    from miseg.processing.preprocessor import Preprocessor
    from miseg.report.browser import inspect_report

    keras.utils.set_random_seed(0)
    cases = disc_cases()
    interface = Dictionary_interface(cases, channels=1, classes=3, three_dim=False)
    pp = Preprocessor(Data_IO(interface, "unused", seed=0), batch_size=2, data_aug=None, analysis="fullimage")
    model = Neural_Network(pp, architecture=Architecture(n_filters=8, depth=2), workers=0,
                           use_multiprocessing=False, learning_rate=0.01)
    folder = args.keep or os.path.join(tempfile.mkdtemp(), "evaluation")
    cross_validation(list(cases), model, k_fold=3, epochs=args.epochs, evaluation_path=folder,
                     draw_figures=True, run_detailed_evaluation=True, seed=0)
    check = inspect_report(os.path.join(folder, "report.html"), screenshot=args.output, height=1800)
    print(f"{args.output} (console errors: {len(check.console_errors)}, report in {folder})")


if __name__ == "__main__":
    main()
