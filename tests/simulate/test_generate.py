"""The generator: truths from the ICC, reproducible draws, and data that recover the truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from backends.native import lmm
from harness.simulate.generate import build_population, cell_truth
from harness.simulate.study import StudyError, load_study, parse_study
from tests.conftest import REPO_ROOT

from .studies import study


def _population(**changes):
    loaded = parse_study(study(**changes))
    return loaded, build_population(loaded)


def test_icc_sets_the_intercept_sd_on_each_scale():
    loaded, pop = _population(design={"clusters": [5], "cluster_size": [4], "icc": [0.2],
                                      "family": ["gaussian", "binomial"]},
                              fits=[{"label": "n", "engine": "native",
                                     "estimator": {"gaussian": "REML", "binomial": "Laplace"}}])
    gauss, logit = (cell_truth(pop, c) for c in loaded.cells)
    assert gauss.values["ran_pars/g/sd__(Intercept)"] == pytest.approx(math.sqrt(0.25))
    assert logit.values["ran_pars/g/sd__(Intercept)"] == pytest.approx(
        math.sqrt(0.25 * math.pi ** 2 / 3))
    assert gauss.all_values()["stat/icc"] == pytest.approx(0.2)
    assert "ran_pars/Residual/sd__Observation" not in logit.values


def test_missing_truth_and_unknown_covariate_are_errors():
    truth = dict(study()["truth"])
    del truth["fixed/w"]
    with pytest.raises(StudyError, match="no true value for fixed/w"):
        _population(truth=truth)
    with pytest.raises(StudyError, match="the formula uses w"):
        _population(covariates={"x": {}})


def test_draws_are_a_function_of_the_seed_sequence():
    loaded, pop = _population()
    cell = loaded.cells[0]
    truth = cell_truth(pop, cell)

    def draw(rep: int) -> pd.DataFrame:
        return pop.draw(cell, truth, np.random.default_rng(cell.seed_sequence(7, rep)))

    pd.testing.assert_frame_equal(draw(3), draw(3))
    assert not draw(3).equals(draw(4))
    d = draw(0)
    assert d["g"].nunique() == 6 and len(d) == 24
    assert d.groupby("g")["w"].nunique().max() == 1  # a cluster-level covariate


def test_one_large_draw_recovers_the_truth():
    """A generator bug in the random part (scale, sharing across clusters) fails here."""
    loaded, pop = _population(design={"clusters": [400], "cluster_size": [20], "icc": [0.3]},
                              truth={**study()["truth"],
                                     "ran_pars/Residual/sd__Observation": 2.0})
    cell = loaded.cells[0]
    truth = cell_truth(pop, cell)
    data = pop.draw(cell, truth, np.random.default_rng(cell.seed_sequence(1, 0)))
    fit = lmm("y ~ x + w + (1 | g)", data, reml=True)
    for term in ("x", "w"):
        assert abs(fit.fixef[term] - truth.values[f"fixed/{term}"]) < 4 * fit.std_errors[term]
    sd_u = next(p.estimate for p in fit.parameters() if p.term == "sd__(Intercept)")
    sd_true = truth.values["ran_pars/g/sd__(Intercept)"]
    assert abs(sd_u - sd_true) < 0.1 * sd_true  # SE of sd_u here is about 3 % of it
    sigma = next(p.estimate for p in fit.parameters() if p.term == "sd__Observation")
    assert sigma == pytest.approx(2.0, rel=0.03)


def test_spec_data_subsamples_clusters_and_caps_sizes(data_dir, tmp_path):
    path = tmp_path / "lab2.yaml"
    path.write_text(yaml.safe_dump({
        "id": "sub", "title": "t", "source": "t", "claim": "t", "seed": 3, "replications": 2,
        "model": {"spec": str(REPO_ROOT / "specs/gcse/lab1.ex1.1.mlm1a.yaml")},
        "truth_from": "native",
        "design": [{"clusters": [5]}, {"cluster_size": [3]}, {"cases": [100]}],
        "fits": [{"label": "native", "engine": "native", "estimator": "REML"}]}))
    loaded = load_study(path)
    pop = build_population(loaded, data_dir)
    sizes = {}
    for cell in loaded.cells:
        truth = cell_truth(pop, cell)
        d = pop.draw(cell, truth, np.random.default_rng(cell.seed_sequence(3, 0)))
        sizes[cell.id] = (d["school"].nunique(), len(d), d.groupby("school").size().max())
    assert sizes["clusters=5 cluster_size=all outcome=simulated"][0] == 5
    assert sizes["clusters=all cluster_size=3 outcome=simulated"][0] == 65
    assert sizes["clusters=all cluster_size=3 outcome=simulated"][2] == 3
    assert sizes["clusters=all cluster_size=all cases=100 outcome=simulated"][1] == 100
