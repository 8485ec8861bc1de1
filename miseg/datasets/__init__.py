"""Phantom and template data sets for demos, examples, tests and benchmarks.

* :func:`make_kits_phantom` / :func:`write_kits_dataset`: KiTS19-like CT volumes with kidney
  and tumour labels, in the ``NIFTI_interface`` layout.
* :func:`make_2d_phantom` / :func:`write_image_dataset`: 2D cell images with cell and nucleus
  labels, in the ``Image_interface`` layout.
* :func:`make_nuclei_phantom` / :func:`write_nuclei_dataset`: 2D fluorescence-like nuclei,
  many touching, with instance ground truth (:func:`load_nuclei_instances`);
  :func:`load_stardist_nuclei`: the real nuclei image of the stardist wheel (fetched).
* :func:`load_mni152` / :func:`write_mni152_dataset`: the real MNI152 brain template shipped
  with nilearn, as one NIfTI case with CSF/GM/WM labels.

Every generator takes a ``seed`` and is deterministic for it.
"""

from miseg.datasets.images2d import CELL_CLASSES, make_2d_phantom, write_image_dataset
from miseg.datasets.kits import KITS_CLASSES, make_kits_phantom, write_kits_dataset
from miseg.datasets.mni152 import MNI152_CLASSES, MNI152_FILES, load_mni152, write_mni152_dataset
from miseg.datasets.nuclei import (
    NUCLEI_CLASSES,
    load_nuclei_instances,
    load_stardist_nuclei,
    make_nuclei_phantom,
    write_nuclei_dataset,
    write_stardist_nuclei_dataset,
)

__all__ = [
    "make_kits_phantom",
    "write_kits_dataset",
    "KITS_CLASSES",
    "make_2d_phantom",
    "write_image_dataset",
    "CELL_CLASSES",
    "make_nuclei_phantom",
    "write_nuclei_dataset",
    "load_nuclei_instances",
    "load_stardist_nuclei",
    "write_stardist_nuclei_dataset",
    "NUCLEI_CLASSES",
    "load_mni152",
    "write_mni152_dataset",
    "MNI152_CLASSES",
    "MNI152_FILES",
]
