"""Folders selbench writes into (results, reports, sweeps): proven writable before any work.

A run that trains for an hour and then dies with a ``PermissionError`` traceback on its first
record has wasted the hour; :func:`ensure_writable` creates the folder and writes (then removes)
a probe file in it, so the command stops at once with one line naming the folder and the fix.
Torch-free.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FolderError(Exception):
    """A folder selbench must write into cannot be written. One line: the option, the folder,
    why and the fix; the CLI prints it and exits 2."""


def refuse_file(folder: Path, option: str) -> Path:
    """``folder`` unless it, or a folder above it, is a file (then :class:`FolderError`).

    Creates nothing: commands that only read (a dry run, a plan) check this much before they
    look inside the folder.
    """
    folder = Path(folder).expanduser()
    fix = f"give a folder you can write to ({option} DIR)"
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{option} {folder}: this is a file, not a folder; {fix}")
    blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise FolderError(f"{option} {folder}: {blocker} is a file, so no folder can be made "
                          f"below it; {fix}")
    return folder


def ensure_writable(folder: Path, option: str) -> Path:
    """``folder`` created if missing and shown to take a new file, else :class:`FolderError`.

    ``option`` is how the user gave the folder (``--results``, ``--out``), named in the message.
    The probe is a real file, not ``os.access``: access bits say nothing of read-only mounts,
    full disks or root squashing.
    """
    folder = refuse_file(folder, option)
    fix = f"give a folder you can write to ({option} DIR)"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".selbench-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise FolderError(f"{option} {folder}: cannot write there ({reason.lower()}); {fix}, "
                          "or make this one writable") from None
    return folder
