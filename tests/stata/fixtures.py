"""Build Stata results as Stata would write them (e(b) stripes, e(V)), for tests without Stata."""

from __future__ import annotations

import math

import numpy as np

from backends.stata.render import Layout, plan
from backends.stata.results_file import StataRecord
from harness.spec import Spec


def record(spec: Spec, b: dict[str, float], V: np.ndarray | dict[str, float] | None = None, *,
           frame=None, scalars: dict[str, float | None] | None = None,
           re: list | None = None, ngroups: dict[str, int] | None = None,
           layout: Layout | None = None, cmdline: str | None = None) -> StataRecord:
    """A complete record: ``V`` is a full matrix in ``b``'s order, or per-name SEs (diagonal)."""
    layout = layout or plan(spec, frame)
    names = list(b)
    if V is None:
        V = np.zeros((len(names), len(names)))
    elif isinstance(V, dict):
        V = np.diag([V.get(n, 0.0) ** 2 for n in names])
    rec = StataRecord(spec_id=spec.id, layout=layout.to_dict(),
                      meta={"stata_version": "17", "flavour": "SE", "date": "25 Nov 2025 10:00:00",
                            "data_sha256": "ab" * 32, "datasignature": "4059:12(1):1:2"},
                      rc=0, macros={"cmd": layout.command, "depvar": layout.depvar,
                                    "cmdline": cmdline or layout.command_line()},
                      scalars=dict(scalars or {}), b=dict(b), ngroups=dict(ngroups or {}),
                      re=list(re or []), complete=True)
    for i, a in enumerate(names):
        for j in range(i + 1):
            rec.V[(a, names[j])] = float(V[i, j])
    return rec


def block_c_b(depvar: str = "gcse") -> tuple[dict[str, float], dict[str, float]]:
    """Talk 4 slide 6 block C as Stata's mixed stores it: log SDs and atanh correlation."""
    sd_lrt, sd_cons, r, sd_e = .1210464, 2.820425, .5886686, 7.417498
    b = {f"{depvar}:lrt": .5544234, f"{depvar}:girl": 1.682633, f"{depvar}:sch_2": 1.79864,
         f"{depvar}:sch_3": 1.748186, f"{depvar}:_cons": -1.888208,
         "lns1_1_1:_cons": math.log(sd_lrt), "lns1_1_2:_cons": math.log(sd_cons),
         "atr1_1_1_2:_cons": math.atanh(r), "lnsig_e:_cons": math.log(sd_e)}
    se = {f"{depvar}:lrt": .0199381, f"{depvar}:girl": .3382158, f"{depvar}:sch_2": .9914847,
          f"{depvar}:sch_3": .7876956, f"{depvar}:_cons": .5135382,
          # printed SEs are on the SD / correlation scale: back to Stata's estimation metric
          "lns1_1_1:_cons": .0189266 / sd_lrt, "lns1_1_2:_cons": .2901373 / sd_cons,
          "atr1_1_1_2:_cons": .1389937 / (1 - r * r), "lnsig_e:_cons": .0837029 / sd_e}
    return b, se


def stored_block_c(spec: Spec) -> tuple:
    """Block C (talk 4 slide 6) as an imported stored result: (FitResult, model fingerprint).

    What ``mlm-harness stata import`` keeps for a results file in which Stata fitted it.
    """
    from backends.stata.mapping import record_to_result
    from backends.stata.render import model_fingerprint

    b, se = block_c_b()
    rec = record(spec, b, se, scalars={"N": 4059, "ll": -13986.738052, "converged": 1},
                 ngroups={"school": 65})
    result = record_to_result(rec, mode="stored",
                              source="Stata results file canned.txt: Stata 17 SE")
    return result, model_fingerprint(spec.model_for("stata"))
