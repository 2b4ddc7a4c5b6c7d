"""How close statsmodels' MixedLM comes to native and lme4: the measurement behind the
``statsmodels`` rows of harness/tolerances.py and the SM1 bound (harness/known_differences.py).

Reads a run's results folder (``mlm-harness run ... --backends native,lme4,statsmodels --out
RUN``) and prints, per other engine, estimator and quantity class, the largest difference with
the spec and key where it occurs, statsmodels' statuses, and each backend's summed fit time::

    python -m benchmarks.statsmodels_agreement RUN [SPEC_ID_TO_LEAVE_OUT ...]

Differences are relative (fixed effects: to the larger of |estimate| and its SE, as the policy's
SE floor does), absolute for correlations and the log-likelihood.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from harness.keys import ParamKey
from harness.tolerances import quantity_class

ENGINES = ("native", "lme4")


def _difference(cls: str, mine: dict, theirs: dict, quantity: str) -> float:
    a, b = theirs[quantity], mine[quantity]
    if cls == "correlation":
        return abs(a - b)
    scale = max(abs(a), abs(b))
    if cls == "fixed":
        scale = max(scale, theirs.get("std_error") or 0.0, mine.get("std_error") or 0.0)
    return abs(a - b) / scale if scale > 0 else 0.0


def measure(run: Path, leave_out: set[str]) -> tuple[dict, Counter, dict]:
    worst: dict[tuple[str, str, str], tuple[float, str]] = defaultdict(lambda: (0.0, ""))
    statuses: Counter = Counter()
    seconds: dict[str, float] = defaultdict(float)
    for folder in sorted((run / "results").iterdir()):
        results = {b: json.loads((folder / f"{b}.json").read_text())
                   for b in (*ENGINES, "statsmodels") if (folder / f"{b}.json").exists()}
        for b, r in results.items():
            if r["status"] == "ok":
                seconds[b] += r.get("timings", {}).get("total", 0.0)
        sm = results.get("statsmodels")
        if sm is None:
            continue
        statuses[sm["status"]] += 1
        if sm["status"] != "ok" or folder.name in leave_out:
            continue
        method = sm["estimator"]["criterion"]
        mine = {(p["effect"], p["group"], p["term"]): p for p in sm["parameters"]}
        for other in ENGINES:
            o = results.get(other)
            if not o or o["status"] != "ok":
                continue
            for p in o["parameters"]:
                q = mine.get((p["effect"], p["group"], p["term"]))
                if q is None:
                    continue
                key = ParamKey(p["effect"], p["group"] if p["effect"] == "ran_pars" else None,
                               p["term"])
                for quantity in ("estimate", "std_error"):
                    if p.get(quantity) is None or q.get(quantity) is None:
                        continue
                    cls = quantity_class(key, quantity)
                    d = _difference(cls, q, p, quantity)
                    if d > worst[(other, method, cls)][0]:
                        worst[(other, method, cls)] = (d, f"{folder.name} {key}")
            la, lb = o["statistics"].get("loglik"), sm["statistics"].get("loglik")
            if la is not None and lb is not None and abs(la - lb) > worst[(other, method,
                                                                              "loglik")][0]:
                worst[(other, method, "loglik")] = (abs(la - lb), folder.name)
    return dict(worst), statuses, dict(seconds)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    worst, statuses, seconds = measure(Path(argv[0]), set(argv[1:]))
    for (other, method, cls), (d, where) in sorted(worst.items()):
        print(f"vs {other:<7} {method:<5} {cls:<15} {d:.3g}  {where}")
    print("statsmodels statuses:", dict(statuses))
    print("summed fit seconds:", {k: round(v, 1) for k, v in seconds.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
