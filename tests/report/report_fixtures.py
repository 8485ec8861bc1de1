"""Shared constants and helpers of the report tests (imported by conftest and the tests)."""

import hashlib
import os

import numpy as np

# Non-ASCII case names; the folder path has spaces and an umlaut.
CASES = ["Fall_ü_0", "case 1", "Ärztin_2", "case_3", "naïve_4", "case_5"]
FLAGGED = "case 1"


def disc_cases(size=16, seed=0):
    """2D discs (label 1) on noise; Otsu finds them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cases = {}
    for name in CASES:
        cy, cx, r = rng.integers(6, 10), rng.integers(6, 10), rng.integers(3, 5)
        seg = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.uint8)
        image = (seg + 0.2 * rng.standard_normal((size, size))).astype(np.float32)
        cases[name] = (image, seg, None, {"spacing": (1.0, 1.0)})
    return cases


def file_hashes(folder):
    """``{relative path: sha256}`` of every file below ``folder``."""
    hashes = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return hashes
