"""How far glmmTMB's estimates are from native's and lme4's in a run folder, by quantity class.

    mlm-harness run specs/gcse specs/popular2 --backends native,lme4,glmmtmb --out /tmp/L-run
    python -m benchmarks.glmmtmb_agreement /tmp/L-run

Reads ``results/<spec>/<backend>.json`` and prints, for each other engine, model class (LMM:
gaussian, GLMM: other families with random effects) and quantity class (harness/tolerances.py),
the largest relative difference of the same canonical key (and its absolute difference) and the
spec it comes from, counting
only pairs that fitted the same estimator. These are the numbers written beside the engine
tolerances for glmmTMB.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from harness.keys import ParamKey
from harness.results import FitResult
from harness.tolerances import quantity_class


def _values(r: FitResult) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for p in r.parameters:
        out[(p.key, "estimate")] = p.estimate
        if p.std_error is not None:
            out[(p.key, "std_error")] = p.std_error
    if r.statistics.loglik is not None:
        out[("stat/loglik", "estimate")] = r.statistics.loglik
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    args = ap.parse_args(argv)
    worst: dict[tuple[str, str, str], tuple[float, float, str]] = \
        defaultdict(lambda: (0.0, 0.0, ""))
    for folder in sorted((args.run / "results").iterdir()):
        path = folder / "glmmtmb.json"
        if not path.exists():
            continue
        mine = FitResult.from_dict(json.loads(path.read_text()))
        if mine.status != "ok" or mine.estimator is None:
            continue
        cls = "LMM" if mine.estimator.integration == "none" else "GLMM"
        for other in ("native", "lme4"):
            p = folder / f"{other}.json"
            if not p.exists():
                continue
            theirs = FitResult.from_dict(json.loads(p.read_text()))
            if theirs.status != "ok" or theirs.estimator is None or \
                    not theirs.estimator.same_estimates(mine.estimator):
                continue
            tv = _values(theirs)
            for (key, q), v in _values(mine).items():
                if (key, q) not in tv:
                    continue
                qc = quantity_class(ParamKey.parse(key), q)
                w = tv[(key, q)]
                rel = abs(v - w) / max(abs(w), 1e-12)
                if rel > worst[(other, cls, qc)][0]:
                    worst[(other, cls, qc)] = (rel, abs(v - w), f"{folder.name} {key}")
    for (other, cls, qc), (rel, diff, where) in sorted(worst.items()):
        print(f"glmmtmb vs {other:6s} {cls:4s} {qc:15s} rel {rel:9.2e} abs {diff:9.2e}  {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
