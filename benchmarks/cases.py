"""The gaussian course models, defined once for the native-vs-lme4 tests and the benchmark.

Each case names a Stata file of the SGSSS 2025 course data, derived columns (as expressions
valid both in pandas ``DataFrame.eval`` and R's ``with(d, ...)``) and the lme4 formula.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    id: str
    dataset: str
    formula: str
    reml: bool
    derive: tuple[tuple[str, str], ...] = ()
    factors: tuple[str, ...] = ()


_CENSUS = (("c_age", "10 * agegpt - 40"), ("c_age2", "c_age ** 2 - 1600"))

CASES: tuple[Case, ...] = (
    Case("gcse_ri_ml", "gcse", "gcse ~ lrt + girl + factor(schgend) + (1 | school)", False),
    Case("gcse_ri_reml", "gcse", "gcse ~ lrt + girl + factor(schgend) + (1 | school)", True),
    Case("gcse_rs_ml", "gcse", "gcse ~ lrt + girl + factor(schgend) + (1 + lrt | school)", False),
    Case("gcse_rs_reml", "gcse", "gcse ~ lrt + girl + factor(schgend) + (1 + lrt | school)",
         True),
    Case("gcse_rs_indep_reml", "gcse",
         "gcse ~ lrt + girl + factor(schgend) + (1 | school) + (0 + lrt | school)", True),
    Case("popular_rs_reml", "popular2",
         "popular ~ sex + extrav + texp + ext_exp + (1 + extrav | class)", True,
         derive=(("ext_exp", "extrav * texp"),)),
    Case("popular_rs_ml", "popular2",
         "popular ~ sex + extrav + texp + ext_exp + (1 + extrav | class)", False,
         derive=(("ext_exp", "extrav * texp"),)),
    Case("nurses_3l_ml", "nurses",
         "stress ~ expcon + age + gender + experien + wardtype + hospsize + (1 | hospital) "
         "+ (1 | wardid)", False),
    Case("nurses_3l_rs_ml", "nurses",
         "stress ~ expcon + age + gender + experien + wardtype + hospsize + experhs "
         "+ (1 + expcon | hospital) + (1 | wardid)", False,
         derive=(("experhs", "expcon * hospsize"),)),
    Case("pupcross_reml", "pupcross", "achiev ~ 1 + (1 | pschool) + (1 | sschool)", True),
    # Census (lab 1 Stata ex 1.5): occupation-by-industry groups crossed with
    # religion-ethnicity groups, and ethnic groups nested in occupation-by-industry groups.
    Case("census_crossed_ml", "censusmicroteaching11s",
         "health1 ~ c_age + c_age2 + (1 | rel_eth_gp) + (1 | indus1ts:occupat1t)", False,
         derive=_CENSUS + (("rel_eth_gp", "100 * cofbt + 10 * eths1t + relgs1t"),)),
    Case("census_nested_ml", "censusmicroteaching11s",
         "health1 ~ c_age + c_age2 + (1 | indus1ts:occupat1t) "
         "+ (1 | indus1ts:occupat1t:eths1t)", False, derive=_CENSUS),
)


def data_dir() -> Path:
    """The course data folder: the first of $MLM_HARNESS_DATA and the user cache (where
    ``mlm-harness data fetch`` puts them) that holds every case's file; else the first of the two
    that is set, so a missing file's error names the place the user chose."""
    from harness.datasets import ENV_VAR, cache_dir, folder_with

    found = folder_with(f"{c.dataset}.dta" for c in CASES)
    env = os.environ.get(ENV_VAR)
    return found or (Path(env) if env else cache_dir())


def dataset_path(name: str) -> Path:
    return data_dir() / f"{name}.dta"


def load_case_data(case: Case) -> pd.DataFrame:
    import pyreadstat

    df, _ = pyreadstat.read_dta(str(dataset_path(case.dataset)), apply_value_formats=False)
    for name, expr in case.derive:
        df[name] = df.eval(expr)
    return df
