"""``miseg cleanup``: delete the batch and cache files miseg wrote, and nothing else.

miseg writes three kinds of files into a batch folder (``Data_IO(batch_path=...)``):

* prepared batches ``<seed>.batch_img.<n>.npz`` / ``<seed>.batch_seg.<n>.npz``,
* sample backups ``<seed>.<case>.npz`` with their ``<seed>.<case>.json``,
* the preprocessing cache ``preprocessed/<16 hex digits>/{train,pred}.<case>.{npz,json}``.

Only files of exactly these forms are deleted; folders are removed only when empty
afterwards. Data, predictions and evaluations are never touched (MIScnn's ``cleanup``
emptied whole folders, including ``prediction/`` and ``evaluation/``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from miseg.errors import ConfigurationError

__all__ = ["miseg_files", "run_cleanup"]

_BATCH = re.compile(r"\d+\.batch_(img|seg)\..+\.npz")
_BACKUP = re.compile(r"(\d+\..+)\.(npz|json)")
_CACHE_DIR = re.compile(r"[0-9a-f]{16}")
_CACHE_FILE = re.compile(r"(train|pred)\..+\.(npz|json)")


def miseg_files(batch_dir: str) -> tuple[list[str], list[str]]:
    """Files miseg wrote below ``batch_dir`` and folders that may become empty.

    Returns:
        ``(files, folders)``: deletable files, and cache folders (deepest first) to remove
        when nothing else is left in them.
    """
    files: list[str] = []
    folders: list[str] = []
    if not os.path.isdir(batch_dir):
        return files, folders
    names = set(os.listdir(batch_dir))
    for name in sorted(names):
        path = os.path.join(batch_dir, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if _BATCH.fullmatch(name):
            files.append(path)
            continue
        match = _BACKUP.fullmatch(name)
        if match:  # a sample backup is always an npz + json pair
            partner = match.group(1) + (".json" if match.group(2) == "npz" else ".npz")
            if partner in names:
                files.append(path)
    cache = os.path.join(batch_dir, "preprocessed")
    if os.path.isdir(cache) and not os.path.islink(cache):
        for sub in sorted(os.listdir(cache)):
            sub_path = os.path.join(cache, sub)
            if not _CACHE_DIR.fullmatch(sub) or not os.path.isdir(sub_path) or os.path.islink(sub_path):
                continue
            for name in sorted(os.listdir(sub_path)):
                path = os.path.join(sub_path, name)
                if _CACHE_FILE.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
                    files.append(path)
            folders.append(sub_path)
        folders.append(cache)
    folders.append(batch_dir)
    return files, folders


def _confirm(count: int, size: float, batch_dir: str) -> bool:
    answer = input(f"Delete {count} miseg file(s) ({size:.1f} MB) in {batch_dir}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def run_cleanup(args: argparse.Namespace, explicit: set[str]) -> int:
    """List, confirm and delete miseg's own files in ``BATCH_DIR``."""
    if args.evaluation or args.prediction:
        raise ConfigurationError(
            "cleanup never deletes evaluation results or predictions (-e/-p); delete them yourself if "
            "you are sure."
        )
    batch_dir = args.batch_dir
    files, folders = miseg_files(batch_dir)
    if not files:
        print(f"Nothing to clean in {batch_dir}: no batch or cache files written by miseg.")
        return 0
    size = sum(os.path.getsize(f) for f in files) / 1e6
    if args.dry_run:
        for path in files:
            print(path)
        print(f"{len(files)} file(s), {size:.1f} MB would be deleted (dry run).")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                f"refusing to delete {len(files)} file(s) in {batch_dir!r} without confirmation; pass --yes "
                f"(or --dry-run to list them)."
            )
        if not _confirm(len(files), size, batch_dir):
            print("Nothing deleted.")
            return 0
    for path in files:
        os.remove(path)
    removed = 0
    for folder in folders:
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
            removed += 1
    print(f"Deleted {len(files)} file(s) ({size:.1f} MB) and {removed} empty folder(s) in {batch_dir}.")
    return 0
