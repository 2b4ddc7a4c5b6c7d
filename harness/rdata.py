"""Data through R: ``.rds`` files, and the datasets R packages ship (the gallery's data).

Both run ``Rscript harness/rdata.R`` in a subprocess (R is never embedded here), with every
path and name passed as a command-line argument, never as R code:

* :func:`read_rds` reads the data frame saved in an ``.rds`` file, factor columns as pandas
  categoricals in R's level order (so ``mode`` of lme4's VerbAgg keeps ``want`` before ``do``);
* :func:`export_dataset` writes ``data(<name>, package = <package>)`` as a CSV file, the way
  the gallery's datasets (data/gallery.yaml) are made on a machine with R; their SHA-256 is then
  checked like any downloaded file's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

RDATA_R = Path(__file__).with_name("rdata.R")
TIMEOUT_S = 300.0
_R_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._]*$")


class RDataError(Exception):
    """R is missing, or R could not read or export the data; the message says what to do."""


def rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        raise RDataError("R is not installed (Rscript is not on PATH); install R "
                         "(apt-get install r-base-core) or convert the file to .csv/.parquet")
    return found


def _run(*args: str) -> None:
    try:
        done = subprocess.run([rscript(), str(RDATA_R), *args], capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise RDataError(f"R took more than {TIMEOUT_S:.0f} s for: rdata.R {' '.join(args)}"
                         ) from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RDataError("R: " + " ".join(said[-3:]) if said else
                         f"R failed (exit {done.returncode})")


def read_rds(path: Path) -> pd.DataFrame:
    """The data frame in ``path`` (an .rds file), factors as ordered-as-R categoricals."""
    with tempfile.TemporaryDirectory(prefix="mlmh-rds-") as tmp:
        data, levels = Path(tmp) / "data.csv", Path(tmp) / "levels.csv"
        _run("rds", str(path), str(data), str(levels))
        order = {column: list(rows["level"]) for column, rows in
                 pd.read_csv(levels, dtype=str, keep_default_na=False
                             ).groupby("column", sort=False)}
        # factor labels stay text ("01" is not 1); "NA" is R's missing value
        frame = pd.read_csv(data, dtype={c: str for c in order}, keep_default_na=False,
                            na_values=["NA"])
    for column, categories in order.items():
        frame[column] = pd.Categorical(frame[column], categories=categories)
    return frame


def export_dataset(package: str, name: str, out: Path) -> None:
    """Write R's ``data(name, package = package)`` to ``out`` as CSV (R's write.csv)."""
    for what, value in (("package", package), ("dataset", name)):
        if not _R_NAME.match(value):
            raise RDataError(f"R {what} name {value!r} is not a plain R name")
    _run("export", package, name, str(out))
