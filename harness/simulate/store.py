"""Replications on disk: one Parquet file per finished batch, so a killed study resumes.

Layout of a study folder::

    study.json                 the manifest: study id, fingerprint, each fit's fingerprint
    parts/<cell>__<reps>__<fits>.parquet   one finished batch (written atomically)
    replications.parquet, summary.csv, ... written at the end (harness/simulate/engine.py)

A batch file is written under a temporary name and renamed into place, so a file in ``parts/``
is always whole: a study killed at any moment loses at most the batches still running. Which
(cell, replication, fit) triples are done is read from the files themselves, never from a
separate log that could disagree with them. The manifest refuses to mix studies: the same
folder with a changed seed, truth or model (the study fingerprint), or a fit label now meaning
another engine, estimator or formula, is an error unless the caller starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd

from .study import LoadedStudy

MARKER = ".mlm-harness-simulation"
MANIFEST = "study.json"
PARTS = "parts"
KEY_COLUMNS = ["cell", "rep", "fit", "key"]


class StoreError(ValueError):
    """The folder cannot hold this study's results; the message says what to do."""


def _slug(text: str, limit: int = 60) -> str:
    safe = re.sub(r"[^A-Za-z0-9.=_-]+", "_", text)[:limit]
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class ResultStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.parts = self.folder / PARTS

    # ---- opening ------------------------------------------------------------------------
    def open(self, loaded: LoadedStudy, fresh: bool = False) -> None:
        """Create the folder, or check that it holds this study's results (``fresh``: delete
        them and start again)."""
        folder = self.folder
        if folder.exists() and any(folder.iterdir()):
            if not (folder / MARKER).exists():
                raise StoreError(f"{folder} exists, is not empty and was not written by "
                                 "mlm-harness simulate; choose another folder with --out")
            if fresh:
                shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).touch()
        self.parts.mkdir(exist_ok=True)
        for tmp in self.parts.glob(".*.tmp"):  # a batch that a killed run was still writing
            tmp.unlink()
        study = loaded.study
        wanted = {"study": study.id, "fingerprint": study.fingerprint(),
                  "fits": {f.label: f.fingerprint() for f in study.fits}}
        path = folder / MANIFEST
        if path.exists():
            have = json.loads(path.read_text())
            problems = []
            if have.get("study") != wanted["study"] or \
                    have.get("fingerprint") != wanted["fingerprint"]:
                problems.append(f"the stored replications belong to study {have.get('study')!r} "
                                "with another seed, truth, model, covariates or level")
            changed = [label for label, fp in have.get("fits", {}).items()
                       if label in wanted["fits"] and wanted["fits"][label] != fp]
            if changed:
                problems.append(f"fit(s) {', '.join(changed)} now name another engine, "
                                "estimator or formula than the stored ones")
            if problems:
                raise StoreError(f"{folder}: " + "; ".join(problems) + ". Resume with the "
                                 "study as it was, or pass --fresh to delete the stored "
                                 "replications, or choose another --out")
            wanted["fits"] = {**have.get("fits", {}), **wanted["fits"]}
        path.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")

    # ---- reading ------------------------------------------------------------------------
    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob("*.parquet")) if self.parts.exists() else []

    def load(self) -> pd.DataFrame:
        """Every stored row, each (cell, rep, fit, key) once, sorted."""
        files = self.part_files()
        if not files:
            return pd.DataFrame(columns=KEY_COLUMNS)
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame = frame[frame["status"] != "unavailable"]
        frame = frame.drop_duplicates(KEY_COLUMNS, keep="first")
        return frame.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)

    def done(self) -> set[tuple[str, int, str]]:
        """The (cell, rep, fit) triples already stored; a fit whose engine was unavailable
        is not done (a later run where it is available fits it)."""
        files = self.part_files()
        if not files:
            return set()
        frame = pd.concat([pd.read_parquet(f, columns=["cell", "rep", "fit", "status"])
                           for f in files])
        frame = frame[frame["status"] != "unavailable"]
        return set(zip(frame["cell"], frame["rep"].astype(int), frame["fit"]))

    # ---- writing ------------------------------------------------------------------------
    def write(self, frame: pd.DataFrame, cell: str, reps: list[int], fits: list[str]) -> Path:
        """Store one finished batch atomically (temporary file, then rename)."""
        name = (f"{_slug(cell)}__r{min(reps):07d}-{max(reps):07d}__"
                f"{hashlib.sha256(','.join(sorted(fits)).encode()).hexdigest()[:8]}.parquet")
        target = self.parts / name
        tmp = self.parts / f".{name}.{os.getpid()}.tmp"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        return target
