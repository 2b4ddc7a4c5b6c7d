"""Verdicts are derived from the summary: change the numbers and the words change."""

from __future__ import annotations

import pandas as pd

from harness.simulate.study import parse_study
from harness.simulate.verdicts import verdict

from .studies import study


def _cov(cells: dict[tuple[int, int], float], n: int = 1000) -> pd.DataFrame:
    rows = []
    for (k, size), value in cells.items():
        for fit in ("native", "lme4"):
            base = {"cell": f"k={k} n={size}", "family": "gaussian", "clusters": k,
                    "cluster_size": size, "fit": fit, "n": n}
            rows.append({**base, "key": "fixed/x", "metric": "coverage", "interval": "wald",
                         "value": value, "mcse": 0.007})
            rows.append({**base, "key": "ran_pars/g/sd__(Intercept)", "metric": "coverage",
                         "interval": "wald_log", "value": value, "mcse": 0.007})
    return pd.DataFrame(rows)


def _loaded(**verdict_):
    return parse_study(study(verdict=verdict_))


def test_sample_size_rule_holds_only_when_its_cell_is_nominal():
    loaded = _loaded(kind="sample_size", rule={"gaussian": [25, 25]})
    good = " ".join(verdict(loaded, _cov({(5, 25): 0.85, (30, 25): 0.949})))
    assert "Verdict: the rule holds" in good and "n = 25: k ≥ 30" in good
    bad = " ".join(verdict(loaded, _cov({(5, 25): 0.85, (30, 25): 0.90})))
    assert "Verdict: the rule does not hold" in bad and "furthest" in bad


def test_ignore_clustering_separates_coefficients_from_standard_errors():
    loaded = _loaded(kind="ignore_clustering", threshold=0.05, naive=["ols"])
    rows = []
    for fit, ratio, cov in (("ols", 0.6, 0.80), ("native", 1.0, 0.95)):
        base = {"cell": "icc=0.05", "icc": 0.05, "cluster_size": 50, "fit": fit,
                "key": "fixed/w", "n": 1000, "interval": ""}
        rows += [{**base, "metric": "bias", "value": 0.001, "mcse": 0.003},
                 {**base, "metric": "se_ratio", "value": ratio, "mcse": 0.02},
                 {**base, "metric": "coverage", "interval": "wald", "value": cov,
                  "mcse": 0.01}]
    text = " ".join(verdict(loaded, pd.DataFrame(rows)))
    assert "0 have a bias beyond two Monte Carlo SEs" in text
    assert "ols w: SE ratio 0.60" in text
    assert "holds for the coefficients but not for their standard errors" in text
