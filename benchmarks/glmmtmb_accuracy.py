"""How closely glmmTMB's reported numbers match native's evidence at glmmTMB's own estimates.

    MLM_HARNESS_DATA=... python -m benchmarks.glmmtmb_accuracy specs/gcse specs/popular2

For every spec the glmmtmb backend fits, native's likelihood (backends/native/evidence.py) is
evaluated at glmmTMB's estimates: the relative difference of the log-likelihoods (the allowance
GLMMTMB_LOGLIK_RELATIVE in harness/evidence.py), and the relative difference of every standard
error glmmTMB reports (fixed effects: joint inverse Hessian; variance parameters: its delta
method from the log-sd scale) against native's observed-information SE at the same point. These
are the measured numbers written beside the glmmTMB constants.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from backends.native.evidence import EvidenceModel, estimates_of
from harness.runner import fit_one, prepare_data
from harness.spec import load_spec


def measure(spec_path: Path) -> tuple[str, float | None, float | None, str] | None:
    spec = load_spec(spec_path)
    if "optional" in spec.tags:  # e.g. the 4-million-row GCSE refits, as `run` leaves them out
        return None
    data = prepare_data(spec)
    result = fit_one(spec, "glmmtmb", data)
    if result.status != "ok":
        return None
    model = spec.model_for("glmmtmb")
    ev = EvidenceModel.build(model, data.frame, spec.factor_columns(),
                             contrasts=spec.contrasts())
    est = estimates_of(result)
    at = ev.loglik(est, result.estimator)
    ll = result.statistics.loglik
    rel_ll = None if at.loglik is None or ll is None else abs(ll - at.loglik) / abs(at.loglik)
    try:
        cov = ev.covariance(est, result.estimator)
    except Exception as e:  # noqa: BLE001 - report it and measure the other specs
        return spec.id, rel_ll, None, f"(no native SEs: {type(e).__name__}: {e})"
    worst, where = None, ""
    for p in result.parameters:
        native = cov.std_errors.get(p.key)
        if p.std_error is None or native is None or not math.isfinite(native) or native == 0:
            continue
        d = abs(p.std_error - native) / abs(native)
        if worst is None or d > worst:
            worst, where = d, p.key
    return spec.id, rel_ll, worst, where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args(argv)
    paths = sorted(p for f in args.folders for p in (f.glob("*.yaml") if f.is_dir() else [f]))
    worst_ll = worst_se = 0.0
    for path in paths:
        row = measure(path)
        if row is None:
            continue
        sid, rel_ll, rel_se, where = row
        print(f"{sid:45s} loglik {rel_ll if rel_ll is not None else float('nan'):9.2e}  "
              f"max SE rel diff {rel_se if rel_se is not None else float('nan'):9.2e} {where}")
        worst_ll = max(worst_ll, rel_ll or 0.0)
        worst_se = max(worst_se, rel_se or 0.0)
    print(f"largest: loglik {worst_ll:.2e}, SE {worst_se:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
