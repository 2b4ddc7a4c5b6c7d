"""Cost of the evidence engine (backends/native/evidence.py) on course specs.

Run as ``python -m benchmarks.evidence [--points N] [SPEC.yaml ...]`` with ``MLM_HARNESS_DATA``
set. Per spec: native fits the model (not timed here), then the table gives the one-off
``EvidenceModel.build`` time, the first ``loglik`` call (for binomial/Poisson GLMMs it runs
glmer's nAGQ = 0 stage once), the median of N calls at *distinct* points (native's estimates
with every value moved by a random 1e-3 relative, so no factorisation or mode is reused as is),
and one ``covariance`` call with its number of likelihood evaluations.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from backends.base import FitJob, get_backend
from backends.native.evidence import EvidenceModel, estimates_of
from harness.runner import prepare_data
from harness.spec import load_spec
from tests.conftest import course_data_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["specs/census/lab1.stata1.4.cen_lin_ri__health1.yaml",
           "specs/census/lab1.stata1.5.cross.yaml",
           "specs/gcse/lab1.stata1.1.rs_ml.yaml",
           "specs/gcse/lab1.spss1.3b.bin_rs.yaml",
           "specs/census/lab1.stata1.4.cen_logit_rs__ip7.yaml",
           "specs/census/lab1.stata1.4.cen_ologit_ri.yaml"]


def measure(path: Path, points: int, rng: np.random.Generator) -> str:
    spec = load_spec(path)
    data = prepare_data(spec, course_data_dir())
    model = spec.model_for("native")
    job = FitJob(spec=spec, model=model, data=data.frame, data_path=data.path,
                 data_sha256=data.sha256)
    result = get_backend("native").fit(job)
    if result.status != "ok":
        return f"{spec.id}: native {result.status}: {result.message}"
    t0 = time.perf_counter()
    ev = EvidenceModel.build(model, data.frame, spec.factor_columns(),
                             contrasts=spec.contrasts())
    build = time.perf_counter() - t0
    est = {k: v for k, v in estimates_of(result).items() if k in ev.keys()}
    t0 = time.perf_counter()
    ev.loglik(est, result.estimator)
    first = time.perf_counter() - t0
    times = []
    for _ in range(points):
        moved = {k: v * (1 + 1e-3 * rng.standard_normal()) for k, v in est.items()}
        t0 = time.perf_counter()
        at = ev.loglik(moved, result.estimator)
        times.append(time.perf_counter() - t0)
        assert at.loglik is not None, at.reason
    t0 = time.perf_counter()
    cov = ev.covariance(est, result.estimator)
    cov_s = time.perf_counter() - t0
    return (f"{spec.id:36s} {result.estimator.label():10s} n={result.statistics.nobs:6d} "
            f"build {build * 1e3:7.1f} ms  first {first * 1e3:7.1f} ms  "
            f"median {statistics.median(times) * 1e3:7.2f} ms  covariance {cov_s:6.2f} s "
            f"({cov.evaluations} evaluations)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("specs", nargs="*", default=DEFAULT)
    ap.add_argument("--points", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(2025)
    for s in args.specs:
        print(measure(REPO / s if not Path(s).is_absolute() else Path(s), args.points, rng),
              flush=True)


if __name__ == "__main__":
    main()
