"""The study format: validation errors name the key and the fix; cells and seeds are stable."""

from __future__ import annotations

import numpy as np
import pytest

from harness.simulate.study import Cell, StudyError, expand_cells, fit_spec, parse_study

from .studies import study


def problems(**changes) -> str:
    with pytest.raises(StudyError) as e:
        parse_study(study(**changes), "s.yaml")
    return str(e.value)


def test_unknown_key_and_bad_estimator_are_named():
    assert "unknown key 'replicatons'" in problems(replicatons=3)
    msg = problems(fits=[{"label": "a", "engine": "native", "estimator": "REMLish"}])
    assert "fits.0.estimator" in msg and "REMLish" in msg


def test_fit_that_cannot_run_in_a_family_is_an_error():
    msg = problems(design={"clusters": [5], "cluster_size": [5], "family": ["binomial"]})
    assert "fits[native] in binomial cells" in msg and "ML" in msg


def test_family_with_no_fit_is_an_error():
    fits = [{"label": "n", "engine": "native", "estimator": {"gaussian": "REML"}}]
    msg = problems(fits=fits, design={"clusters": [5], "cluster_size": [5],
                                      "family": ["gaussian", "binomial"]})
    assert "no fit runs in the binomial cells" in msg


def test_spec_only_dimensions_are_refused_for_synthetic_data():
    assert "cases and outcome apply to a spec's data" in problems(
        design={"clusters": [5], "cluster_size": [5], "cases": [10]})


def test_yaml_null_key_is_not_silently_a_null():
    msg = problems(tests=[{"key": "fixed/w", None: 0}])
    assert "tests.0" in msg


def test_cells_union_of_grids_each_once_in_order():
    loaded = parse_study(study(design=[{"clusters": [5, 10], "cluster_size": [4]},
                                       {"clusters": [10, 20], "cluster_size": [4]}]))
    assert [c.id for c in loaded.cells] == [
        "family=gaussian clusters=5 cluster_size=4", "family=gaussian clusters=10 cluster_size=4",
        "family=gaussian clusters=20 cluster_size=4"]


def test_effects_are_dimensions_and_fit_specs_follow_the_family():
    loaded = parse_study(study(design={"clusters": [5], "cluster_size": [4],
                                       "effects": {"fixed/w": [0.0, 0.5]}}))
    assert [c.get("fixed/w") for c in loaded.cells] == [0.0, 0.5]
    spec = fit_spec(loaded, loaded.study.fits[1], "gaussian")
    assert spec.model.method == "OLS" and spec.model.formula == "y ~ x + w"


def test_seed_depends_on_seed_cell_and_replication_only():
    cell = Cell((("clusters", 5), ("cluster_size", 4)))
    same = Cell((("clusters", 5), ("cluster_size", 4)))
    other = Cell((("clusters", 10), ("cluster_size", 4)))

    def draw(c: Cell, seed: int, rep: int) -> float:
        return float(np.random.default_rng(c.seed_sequence(seed, rep)).random())

    assert draw(cell, 1, 0) == draw(same, 1, 0)
    assert len({draw(cell, 1, 0), draw(cell, 1, 1), draw(other, 1, 0), draw(cell, 2, 0)}) == 4


def test_fingerprint_ignores_replications_and_design_but_not_truth():
    a = parse_study(study()).study
    assert a.fingerprint() == parse_study(study(replications=99, design={
        "clusters": [50], "cluster_size": [5]})).study.fingerprint()
    truth = {**study()["truth"], "fixed/w": 0.4}
    assert a.fingerprint() != parse_study(study(truth=truth)).study.fingerprint()
    assert expand_cells(a)
