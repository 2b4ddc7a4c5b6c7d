"""The folder a run writes its report into: reserved, locked, written aside, swapped in whole.

What can go wrong with a report folder, and what this module does about it:

* **Two runs into one folder** (two CI jobs, or a second ``--overwrite`` while the first is
  still fitting) would mix their files. A run holds an exclusive ``flock`` on
  ``<out>/.mlm-harness-lock`` from start to finish; a second run fails at once, naming the pid
  that holds it. The kernel releases the lock when the holder exits, however it exits (kill -9
  included), so a stale lock never blocks the next run.
* **Two runs started in the same second** would pick the same default ``reports/<date-time>``;
  the default folder is created with an exclusive ``mkdir`` and, if that name is taken, gets a
  ``-2``, ``-3``, ... suffix.
* **An interrupted run** must not leave something that looks like a finished report. Everything
  is written into ``<out>/.incomplete-<pid>/`` and moved into place only when the whole report
  has been written (:meth:`ReportFolder.commit`), ``summary.json`` and ``index.html`` last; an
  earlier report is replaced only then (and only with ``--overwrite``), its ``summary.json`` and
  ``index.html`` removed first. A run that stops before that leaves at most a hidden
  ``.incomplete-*`` folder, which the next run into the folder removes.
* **A folder this tool did not write** is never touched (the ``.mlm-harness-report`` marker
  says which folders are ours).
"""

from __future__ import annotations

import fcntl
import os
import shutil
from datetime import datetime
from pathlib import Path

MARKER = ".mlm-harness-report"
LOCK = ".mlm-harness-lock"
STAGING_PREFIX = ".incomplete-"
COMPLETE = ("summary.json", "index.html")  # their presence means a finished report; moved last
_MAX_SUFFIX = 1000


class ReportFolderError(ValueError):
    """The report cannot be written there; the message says why and what to do."""


class ReportFolder:
    """A locked report folder with a staging area; use :func:`open_report_folder`."""

    def __init__(self, path: Path, created: bool, lock_fd: int):
        self.path = path
        self.created = created
        self._lock_fd: int | None = lock_fd
        self.staging = path / f"{STAGING_PREFIX}{os.getpid()}"
        self.committed = False

    def commit(self) -> None:
        """Move the staged report into place (replacing an earlier one) and release the lock."""
        for name in COMPLETE:  # first, so a crash below never leaves an old-looking-complete mix
            _remove(self.path / name)
        for entry in list(self.path.iterdir()):
            if entry.name not in (MARKER, LOCK) and entry != self.staging:
                _remove(entry)
        last = {name: i + 1 for i, name in enumerate(COMPLETE)}
        for entry in sorted(self.staging.iterdir(), key=lambda e: last.get(e.name, 0)):
            entry.rename(self.path / entry.name)
        self.staging.rmdir()
        self.committed = True
        self.close()

    def close(self) -> None:
        """Release the lock; if nothing was committed, remove what this run staged (and the
        folder itself when this run created it and it holds nothing else)."""
        if not self.committed:
            _remove(self.staging)
            if self.created:
                leftovers = [e for e in self.path.iterdir() if e.name not in (MARKER, LOCK)]
                if not leftovers:
                    shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def default_path(root: Path) -> Path:
    """A new ``root/<date-time>`` folder, created here so no other run can take the name."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, _MAX_SUFFIX + 1):
        candidate = root / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ReportFolderError(f"{root}: {_MAX_SUFFIX} report folders named {stamp}* already "
                            "exist; choose a folder with --out")


def _lock(path: Path) -> int:
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise ReportFolderError(f"{path} is being written by another mlm-harness run "
                                f"({holder}); wait for it to finish or choose another folder "
                                "with --out (nothing was written)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}, started {datetime.now().isoformat(timespec='seconds')}"
             .encode())
    return fd


def open_report_folder(out: Path | None, overwrite: bool, default_root: Path) -> ReportFolder:
    """Reserve and lock the folder for a run; the report is then written to ``.staging``.

    Refuses a folder that holds files this tool did not write, and an earlier finished report
    unless ``overwrite``. Raises :class:`ReportFolderError` naming the folder and the fix.
    """
    created = out is None
    path = default_path(default_root) if out is None else out
    if not created:
        if path.exists() and not path.is_dir():
            raise ReportFolderError(f"{path} is a file, not a folder; choose a folder with --out")
        if path.is_dir() and any(path.iterdir()) and not (path / MARKER).exists():
            raise ReportFolderError(f"{path} exists and is not empty; choose a new folder with "
                                    "--out (nothing was written)")
        try:
            path.mkdir(parents=True)
            created = True
        except FileExistsError:
            pass
    (path / MARKER).write_text("written by mlm-harness; safe to replace with --overwrite\n")
    folder = ReportFolder(path, created, _lock(path))
    if not overwrite and any((path / name).exists() for name in COMPLETE):
        folder.close()
        raise ReportFolderError(f"{path} holds an earlier report; pass --overwrite to replace "
                                "it, or choose a new folder with --out")
    for stale in path.glob(f"{STAGING_PREFIX}*"):  # left by a run that was killed
        _remove(stale)
    folder.staging.mkdir()
    return folder
