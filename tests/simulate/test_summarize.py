"""Metrics and their Monte Carlo SEs, checked against direct formulas on made-up replications."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.simulate.study import parse_study
from harness.simulate.summarize import estimate_metrics, summarize

from .studies import study


def test_estimate_metrics_match_the_formulas():
    rng = np.random.default_rng(0)
    est = 1.0 + 0.2 + rng.standard_normal(400) * 0.5
    se = np.full(400, 0.25)
    m = {name: (v, mc) for name, v, mc in estimate_metrics(est, 1.0, se)}
    emp = est.std(ddof=1)
    assert m["bias"][0] == pytest.approx(est.mean() - 1.0)
    assert m["bias"][1] == pytest.approx(emp / 20)
    assert m["empirical_se"] == pytest.approx((emp, emp / math.sqrt(2 * 399)))
    assert m["rmse"][0] == pytest.approx(math.sqrt(np.mean((est - 1) ** 2)))
    assert m["se_ratio"][0] == pytest.approx(0.25 / emp)  # SEs half the real spread: ~0.5
    assert 0.4 < m["se_ratio"][0] < 0.6


def _rows(n: int, cover: int, fit: str = "native", engine: str = "native", shift: float = 0.0):
    """n replications of fixed/w (truth 0.3); the first ``cover`` intervals cover it."""
    out = []
    for rep in range(n):
        est = 0.3 + shift + (0.0 if rep < cover else 1.0)
        out.append({"cell": "family=gaussian clusters=6 cluster_size=4 icc=0.2", "rep": rep,
                    "fit": fit, "engine": engine, "estimator": "REML", "status": "ok",
                    "converged": True, "singular": rep == 0, "near_singular": "",
                    "seconds": 0.1, "loglik": -10.0, "key": "fixed/w", "truth": 0.3,
                    "estimate": est, "std_error": 0.1, "se_source": "engine",
                    "wald_lower": est - 0.196, "wald_upper": est + 0.196,
                    "wald_log_lower": None, "wald_log_upper": None})
    return out


def test_coverage_rejection_and_rates_from_rows():
    loaded = parse_study(study(design={"clusters": [6], "cluster_size": [4], "icc": [0.2]}))
    s = summarize(pd.DataFrame(_rows(10, 8)), loaded)

    def get(metric: str, key: str = "fixed/w") -> pd.Series:
        return s[(s["metric"] == metric) & (s["key"] == key) & (s["fit"] == "native")].iloc[0]

    cov = get("coverage")
    assert cov["value"] == pytest.approx(0.8) and cov["interval"] == "wald"
    assert cov["mcse"] == pytest.approx(math.sqrt(0.8 * 0.2 / 10))
    assert get("rejection")["value"] == pytest.approx(1.0)  # |0.3| / 0.1 > 1.96 every time
    assert get("singular_rate", "")["value"] == pytest.approx(0.1)
    assert s["clusters"].dtype.kind in "iu" or str(s["clusters"].dtype) == "Int64"


def test_engine_disagreement_counts_replications_beyond_tolerance():
    fits = [{"label": "native", "engine": "native", "estimator": "REML"},
            {"label": "lme4", "engine": "lme4", "estimator": "REML"}]
    loaded = parse_study(study(fits=fits, design={"clusters": [6], "cluster_size": [4],
                                                  "icc": [0.2]}))
    a = _rows(10, 10)
    b = _rows(10, 10, "lme4", "lme4")
    b[3]["estimate"] += 1e-3   # 1e-2 SEs: far beyond the LMM engine tolerance (1e-5 rel / SE)
    b[5]["estimate"] += 1e-9   # within it
    s = summarize(pd.DataFrame(a + b), loaded)
    d = s[(s["metric"] == "disagreement") & (s["key"] == "")].iloc[0]
    assert d["fit"] == "lme4 vs native" and d["value"] == pytest.approx(0.1) and d["n"] == 10


def test_interval_types_on_their_scales():
    from harness.keys import ParamKey
    from harness.simulate.intervals import interval_columns

    sd = ParamKey.parse("ran_pars/g/sd__(Intercept)")
    cols = interval_columns(sd, 0.5, 0.1, 1.96)
    assert cols["wald_lower"] == pytest.approx(0.5 - 0.196)
    assert cols["wald_log_lower"] * cols["wald_log_upper"] == pytest.approx(0.25)
    tiny = interval_columns(sd, 1e-12, 0.3, 1.96)  # an sd next to its boundary
    assert tiny["wald_log_upper"] == math.inf and tiny["wald_log_lower"] == 0.0
    assert interval_columns(ParamKey.parse("fixed/x"), 1.0, 0.1, 1.96)["wald_log_lower"] is None
    cor = interval_columns(ParamKey.parse("ran_pars/g/cor__(Intercept).x"), 0.5, 0.1, 1.96)
    assert -1 < cor["wald_log_lower"] < 0.5 < cor["wald_log_upper"] < 1
    assert interval_columns(sd, 0.5, None, 1.96)["wald_lower"] is None
