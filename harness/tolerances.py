"""The tolerance policy: the one place that says how close two numbers must be, and why.

Defaults depend on the kind of pair:

* ``engines``: two live engines fitting the same estimator. They solve the same optimisation
  problem, so they must agree to about 5 significant digits (relative 1e-5 with a small absolute
  floor for estimates near zero); log-likelihoods to 1e-4 absolute.
* ``printed``: an engine against a number some software printed: half a unit in the last printed
  digit (plus 1e-12 for binary floating point).
* ``estimators``: two engines with different estimators (REML vs ML, Laplace vs quadrature). They
  are not expected to agree; a loose tolerance (2 % relative) marks the difference as small, and a
  larger one is explained by the estimator difference, never counted as agreement silently.

A spec overrides any of them with ``tolerances: {<key or quantity>: <relative tolerance>}``, e.g.
``{"ran_pars/school/cor__(Intercept).lrt": 1e-3}``; the override is shown in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.spec import Spec

ENGINE_RELATIVE = {"estimate": 1e-5, "std_error": 1e-4}
ENGINE_ABSOLUTE_FLOOR = 1e-7
LOGLIK_ABSOLUTE = 1e-4
ESTIMATORS_RELATIVE = 0.02


@dataclass(frozen=True)
class Tolerance:
    relative: float = 0.0
    absolute_floor: float = 0.0
    rule: str = ""

    def absolute(self, a: float, b: float) -> float:
        return max(self.relative * max(abs(a), abs(b)), self.absolute_floor)


def tolerance_for(spec: Spec, key: str, quantity: str, pair: str,
                  half_unit: float | None = None) -> Tolerance:
    override = spec.tolerances.get(key if quantity == "estimate" else f"{key}:{quantity}")
    if override is not None:
        return Tolerance(relative=override, absolute_floor=half_unit or 0.0,
                         rule=f"spec override: relative {override:g}")
    if pair == "printed":
        assert half_unit is not None
        return Tolerance(absolute_floor=half_unit + 1e-12,
                         rule=f"half a unit in the last printed digit ({half_unit:g})")
    if pair == "engines":
        if key in ("stat/loglik", "stat/deviance", "stat/reml_criterion", "stat/aic", "stat/bic"):
            return Tolerance(absolute_floor=LOGLIK_ABSOLUTE * (2 if key != "stat/loglik" else 1),
                             rule=f"same estimator: absolute {LOGLIK_ABSOLUTE:g} on the likelihood")
        rel = ENGINE_RELATIVE[quantity]
        return Tolerance(relative=rel, absolute_floor=ENGINE_ABSOLUTE_FLOOR,
                         rule=f"same estimator: relative {rel:g}")
    return Tolerance(relative=ESTIMATORS_RELATIVE, absolute_floor=ENGINE_ABSOLUTE_FLOOR,
                     rule=f"different estimators: relative {ESTIMATORS_RELATIVE:g}")
