"""Tiny study files for the simulate tests (a few replications, small clusters: seconds)."""

from __future__ import annotations

from pathlib import Path

import yaml

BASE = {
    "id": "tiny",
    "title": "tiny",
    "source": "tests",
    "claim": "a test",
    "seed": 7,
    "replications": 4,
    "model": {"formula": "y ~ x + w + (1 | g)"},
    "truth": {"fixed/(Intercept)": 0.0, "fixed/x": 0.5, "fixed/w": 0.3,
              "ran_pars/Residual/sd__Observation": 1.0},
    "covariates": {"x": {"cluster_share": 0.2}, "w": {"level": "cluster"}},
    "design": {"clusters": [6, 12], "cluster_size": [4], "icc": [0.2]},
    "fits": [{"label": "native", "engine": "native", "estimator": "REML"},
             {"label": "ols", "engine": "native", "estimator": "OLS", "formula": "y ~ x + w"}],
    "tests": [{"key": "fixed/w", "h0": 0}],
}


def study(**changes) -> dict:
    data = {**BASE, **changes}
    return yaml.safe_load(yaml.safe_dump(data))  # a deep copy, as read from a file


def write(folder: Path, name: str = "tiny.yaml", **changes) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(study(**changes), sort_keys=False))
    return path
