"""The MNI152 2009 brain template (T1 + GM/WM probability maps) bundled with nilearn."""

from __future__ import annotations

import importlib.util
import os
import pathlib
from typing import Any

import numpy as np

from miseg.errors import ConfigurationError, DataNotFoundError

__all__ = ["load_mni152", "write_mni152_dataset", "MNI152_CLASSES", "MNI152_FILES"]

#: Class names of the MNI152 tissue label map.
MNI152_CLASSES = ("background", "csf", "gray_matter", "white_matter")
#: File names of the 1 mm templates inside ``nilearn/datasets/data``.
MNI152_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def _nilearn_data_dir() -> pathlib.Path | None:
    # find_spec locates the package without importing it (nilearn pulls in pandas, sklearn)
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def load_mni152(cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Open the 1 mm MNI152 2009 T1, GM and WM templates (lazily, with nibabel).

    The files are looked up in ``cache_dir`` first (same file names as in nilearn), then in
    the installed nilearn package, which is located without being imported.

    Args:
        cache_dir: Optional directory holding the three template files.

    Returns:
        ``{"t1": img, "gm": img, "wm": img}`` of ``nibabel.Nifti1Image`` (197x233x189,
        1 mm, uint8; GM/WM are probabilities x 255).

    Raises:
        DataNotFoundError: when the files are in neither place (install them with
            ``pip install --no-deps nilearn==0.14.1``).

    Example:
        >>> images = load_mni152()                       # doctest: +SKIP
        >>> images["t1"].shape
        (197, 233, 189)
    """
    import nibabel as nib

    places = [pathlib.Path(cache_dir)] if cache_dir is not None else []
    data_dir = _nilearn_data_dir()
    if data_dir is not None:
        places.append(data_dir)
    for place in places:
        paths = {key: place / name for key, name in MNI152_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return {key: nib.load(str(p)) for key, p in paths.items()}
    searched = ", ".join(repr(str(p)) for p in places) or "nowhere (nilearn is not installed)"
    raise DataNotFoundError(
        f"MNI152 template files {sorted(MNI152_FILES.values())} not found (searched {searched}). "
        f"Install them with 'pip install --no-deps nilearn==0.14.1' or pass cache_dir=."
    )


def write_mni152_dataset(
    path: str | os.PathLike, downsample: int = 4, cache_dir: str | os.PathLike | None = None
) -> list[str]:
    """Write the MNI152 brain as one ``NIFTI_interface`` case ``path/mni152/``.

    ``imaging.nii.gz`` is the T1 (float32, 0-255, Gaussian anti-aliased before subsampling)
    and ``segmentation.nii.gz`` the uint8 tissue map: inside the brain (T1 > 0) the argmax
    of {CSF := 1 - GM - WM, GM, WM} gives 1 CSF, 2 GM, 3 WM; outside it is 0. Both are taken
    at every ``downsample``-th voxel, so the affine keeps the template's origin and its
    3x3 part is scaled by ``downsample``.

    Args:
        path: Output directory (created when missing).
        downsample: Integer subsampling factor (1 keeps the 1 mm grid).
        cache_dir: Passed to :func:`load_mni152`.

    Returns:
        ``["mni152"]``.

    Example:
        >>> write_mni152_dataset("data/brain", downsample=4)   # doctest: +SKIP
        ['mni152']
    """
    from scipy import ndimage

    from miseg.data_loading.interfaces.nifti_io import header_geometry, write_nifti

    if isinstance(downsample, bool) or not isinstance(downsample, (int, np.integer)) or downsample < 1:
        raise ConfigurationError(f"downsample must be a positive integer, got {downsample!r}.")
    f = int(downsample)
    images = load_mni152(cache_dir)
    step = (slice(None, None, f),) * 3
    t1_full = images["t1"].get_fdata(dtype=np.float32)
    brain = t1_full[step] > 0
    if f > 1:  # anti-aliasing as in skimage.transform.rescale: sigma = (factor - 1) / 2
        t1_full = ndimage.gaussian_filter(t1_full, sigma=(f - 1) / 2.0)
    t1 = np.ascontiguousarray(t1_full[step])
    gm = np.asarray(images["gm"].dataobj)[step].astype(np.float32) / 255.0
    wm = np.asarray(images["wm"].dataobj)[step].astype(np.float32) / 255.0
    tissue = np.argmax(np.stack([1.0 - gm - wm, gm, wm]), axis=0).astype(np.uint8) + 1
    labels = np.where(brain, tissue, 0).astype(np.uint8)

    geometry = header_geometry(images["t1"])
    scale = np.diag([f, f, f, 1.0])
    for key in ("affine", "qform", "sform"):
        geometry[key] = geometry[key] @ scale  # voxel i -> source voxel f*i: origin unchanged
    case_dir = os.path.join(os.fspath(path), "mni152")
    write_nifti(os.path.join(case_dir, "imaging.nii.gz"), t1, geometry)
    write_nifti(os.path.join(case_dir, "segmentation.nii.gz"), labels, geometry)
    return ["mni152"]
