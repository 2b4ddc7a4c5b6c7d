"""Course data for the GLMM tests, derived exactly as the course (and the specs) derive them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import skip_without_data


def _read(name: str) -> pd.DataFrame:
    import pyreadstat

    d = skip_without_data()
    df, _ = pyreadstat.read_dta(str(Path(d) / f"{name}.dta"), apply_value_formats=False)
    return df


@cache
def gcse() -> pd.DataFrame:
    df = _read("gcse")
    df["hi_gcse"] = (df.gcse >= 10) * 1.0
    df["sch_2"] = (df.schgend == 2) * 1.0
    df["sch_3"] = (df.schgend == 3) * 1.0
    return df


@cache
def popular2() -> pd.DataFrame:
    df = _read("popular2")
    p = df.popular
    df["pop2"] = (p > 5) * 1.0
    df["pop7"] = sum((p > c) * 1.0 for c in (5, 6, 6.5, 7, 7.5, 8))
    df["pop3"] = 1.0 + (p > 5) + (p > 7)
    return df


@cache
def census() -> pd.DataFrame:
    """occ_ind_gp: one id per observed (indus1ts, occupat1t) pair, numbered in sorted order."""
    df = _read("censusmicroteaching11s")
    pairs = (df[["indus1ts", "occupat1t"]].drop_duplicates()
             .sort_values(["indus1ts", "occupat1t"]).reset_index(drop=True))
    pairs["occ_ind_gp"] = np.arange(1, len(pairs) + 1, dtype=float)
    df = df.merge(pairs, on=["indus1ts", "occupat1t"], how="left")
    df["good_health"] = df.health1.isin([1, 2]) * 1.0
    df["poor_health"] = (df.health1 >= 4) * 1.0
    df["female"] = (df.sex == 2) * 1.0
    df["c_age"] = 10 * df.agegpt - 40
    df["age_fem"] = df.c_age * df.female
    return df
