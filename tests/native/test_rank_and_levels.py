"""Rank-deficient X and unidentifiable grouping factors, handled in every native path as lme4 does.

Before: exactly collinear x and x2 gave native x = -477,281 and x2 = 477,281.5 with theta stuck at
its start and no warning (or a LinAlgError), and groups of size 1 gave native ``converged=True``
while lme4 refused the model.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from backends.base import FitJob, get_backend
from backends.native import lmm, ols
from backends.native.design import DesignError, build_design
from backends.native.glm import glm
from backends.native.glmm.fit import fit_glmm
from backends.native.levels import refusal
from backends.native.rank import RANK_TOL, drop_aliased, kept_columns
from harness.spec import parse_spec


def data(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), n // 20)
    x = rng.normal(size=n)
    y = 1 + 0.8 * x + rng.normal(size=20)[g] + rng.normal(size=n)
    return pd.DataFrame({"g": g, "x": x, "x2": 2 * x + 1e-10 * rng.normal(size=n),
                         "x3": 2 * x + 1e-4 * rng.normal(size=n), "y": y,
                         "b": (y > 1).astype(float), "cnt": rng.poisson(np.exp(0.3 * x)),
                         "k": rng.integers(1, 4, size=n).astype(float), "id": np.arange(n),
                         "c": rng.integers(0, 3, size=n)})


# ---- the rule -------------------------------------------------------------------------------

def test_the_first_of_collinear_columns_is_kept() -> None:
    d = data()
    one = np.ones(len(d))
    X = np.column_stack([one, d.x, d.x2, d.x3, np.zeros(len(d)), d.x + 3 * one])
    # x2 is 2x up to 1e-10 relative: negligible; x3 differs by 1e-4: kept; the zero column and
    # x + 3 (a combination of the intercept and x) are aliased.
    assert kept_columns(X) == [0, 1, 3]
    X2, names, dropped = drop_aliased(X, ["(Intercept)", "x", "x2", "x3", "zero", "x+3"])
    assert names == ["(Intercept)", "x", "x3"] and dropped == ["x2", "zero", "x+3"]
    assert X2.shape == (len(d), 3)


def test_a_full_set_of_dummies_with_an_intercept_drops_the_last_as_lm_does() -> None:
    c = data().c.to_numpy()
    X = np.column_stack([np.ones(c.size)] + [(c == k).astype(float) for k in range(3)])
    assert kept_columns(X) == [0, 1, 2]


@pytest.mark.needs_r
def test_kept_columns_match_r_qr_with_lme4s_tolerance(tmp_path) -> None:
    """Against R itself: qr(X, tol = 1e-7, LAPACK = FALSE)$pivot[seq_len(rank)] (lme4's rule)."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not on PATH")
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(25):
        n, p = int(rng.integers(5, 40)), int(rng.integers(2, 9))
        X = rng.normal(size=(n, p))
        for j in rng.choice(p, size=int(rng.integers(0, p)), replace=False):  # aliased columns
            a = rng.normal(size=p) * (rng.random(p) < 0.5)
            a[j:] = 0
            noise = rng.choice([0.0, 1e-12, 1e-9, 1e-6, 1e-3])
            X[:, j] = X @ a + noise * rng.normal(size=n)
        cases.append(X)
    (tmp_path / "x.json").write_text(json.dumps([X.tolist() for X in cases]))
    script = ("X <- jsonlite::fromJSON('x.json', simplifyVector = FALSE); "
              "cat(jsonlite::toJSON(lapply(X, function(m) { m <- do.call(rbind, lapply(m, unlist)); "
              f"q <- qr(m, tol = {RANK_TOL}, LAPACK = FALSE); q$pivot[seq_len(q$rank)] - 1 }})))")
    done = subprocess.run(["Rscript", "-e", script], cwd=tmp_path, capture_output=True, text=True)
    if done.returncode != 0 and "jsonlite" in done.stderr:
        pytest.skip("R package jsonlite not installed")
    assert done.returncode == 0, done.stderr
    for X, want in zip(cases, json.loads(done.stdout)):
        assert kept_columns(X) == sorted(want)  # kept columns stay in their order


# ---- every native path drops the aliased column and says so ---------------------------------

WARNING = "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient: x2"


def _fixed(result) -> dict[str, float]:
    return {p.term: p.estimate for p in result.parameters if p.effect == "fixed"}


def test_lmm_drops_x2_and_matches_the_fit_without_it() -> None:
    d = data()
    with_x2 = lmm("y ~ x + x2 + (1 | g)", d, reml=False).to_fit_result("t")
    without = lmm("y ~ x + (1 | g)", d, reml=False).to_fit_result("t")
    assert set(_fixed(with_x2)) == {"(Intercept)", "x"}
    for k, v in _fixed(without).items():
        assert _fixed(with_x2)[k] == pytest.approx(v, rel=1e-8)
    assert any(w.startswith(WARNING) for w in with_x2.diagnostics.warnings)
    assert with_x2.diagnostics.converged


@pytest.mark.parametrize("fit", [
    lambda d: ols("y ~ x + x2", d).to_fit_result("t"),
    lambda d: ols("y ~ x + x2", d, cluster="g").to_fit_result("t"),
    lambda d: glm("b ~ x + x2", d, family="binomial").to_fit_result("t"),
    lambda d: glm("cnt ~ x + x2", d, family="poisson").to_fit_result("t"),
    lambda d: glm("k ~ x + x2", d, family="ordinal").to_fit_result("t"),
])
def test_single_level_paths_drop_x2_and_say_so(fit) -> None:
    r = fit(data())
    assert "x2" not in _fixed(r) and "x" in _fixed(r)
    assert any(w.startswith(WARNING) for w in r.diagnostics.warnings), r.diagnostics.warnings


@pytest.mark.parametrize("family,formula", [("binomial", "b ~ x + x2 + (1 | g)"),
                                            ("poisson", "cnt ~ x + x2 + (1 | g)"),
                                            ("ordinal", "k ~ x + x2 + (1 | g)")])
def test_glmm_paths_drop_x2_and_say_so(family, formula) -> None:
    fit = fit_glmm(formula, data(), family=family)
    assert fit.x_names == ["(Intercept)", "x"] if family != "ordinal" else fit.x_names == ["x"]
    assert any(w.startswith(WARNING) for w in fit.warnings), fit.warnings


def test_ordinal_thresholds_take_the_intercepts_place() -> None:
    """All three dummies of c and no intercept: the thresholds span the constant, so one dummy
    is aliased, as clm says ('design is column rank deficient so dropping 1 coef')."""
    r = glm("k ~ 0 + C(c) + x", data(), family="ordinal").to_fit_result("t")
    assert len([t for t in _fixed(r) if t.startswith("factor(c)")]) == 2
    assert any("dropping 1 column" in w for w in r.diagnostics.warnings)


def test_the_backend_shows_the_warning_in_the_result() -> None:
    spec = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "x.csv",
                       "model": {"formula": "y ~ x + x2 + (1 | g)", "method": "ML"}})
    r = get_backend("native").fit(FitJob(spec=spec, model=spec.model, data=data()))
    assert r.status == "ok" and any(w.startswith(WARNING) for w in r.diagnostics.warnings)


# ---- grouping factors ----------------------------------------------------------------------

def test_groups_of_one_are_refused_with_lme4s_words() -> None:
    with pytest.raises(DesignError, match=r"number of levels of each grouping factor must be < "
                                          r"number of observations \(problems: id\)"):
        lmm("y ~ x + (1 | id)", data(), reml=False)


def test_the_rules_differ_between_lmer_glmer_and_clmm() -> None:
    d = data()
    per_row = build_design("b ~ x + (1 | id)", d)
    assert refusal(per_row, "lmer") is not None
    assert refusal(per_row, "glmer") is None  # glmer allows nlev == n (binomial trials)
    slopes = build_design("y ~ x + (1 + x | half)", d.assign(half=d.id // 2))
    assert refusal(slopes, "lmer") == (
        "number of observations (=200) <= number of random effects (=200) for term "
        "(1 + x | half); the random-effects parameters and the residual variance (or scale "
        "parameter) are probably unidentifiable")
    assert refusal(slopes, "glmer") is None  # n < q is glmer's rule; here n == q
    one = build_design("y ~ x + (1 | c)", d.assign(c=1))
    assert refusal(one, "lmer") == "grouping factors must have > 1 sampled level"
    two = build_design("k ~ x + (1 | c)", d.assign(c=d.id % 2))
    assert "more than 2" in refusal(two, "clmm")


@pytest.mark.needs_r
def test_native_and_lme4_refuse_with_the_same_message(lme4_backend) -> None:
    d = data()
    d["half"] = d.id // 2
    for formula in ("y ~ x + (1 | id)", "y ~ x + (1 + x | half)"):
        spec = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "x.csv",
                           "model": {"formula": formula, "method": "ML"}})
        job = FitJob(spec=spec, model=spec.model, data=d)
        native, r = get_backend("native").fit(job), lme4_backend.fit(job)
        assert native.status == r.status == "error"
        assert native.message.removeprefix("DesignError: ") in r.message
