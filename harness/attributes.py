"""Model attributes: prior weights, offsets and binomial trials, and what each means.

A model attribute changes the likelihood without being a term of the fixed part. A spec states
three, and every backend fits each one or says why it cannot (nothing is dropped):

* **weights** (``model.weights: <column>``) are R's *prior weights*, ``weights =`` of
  ``lmer``/``glmer``/``lm``/``glm``/``clmm``. What they mean depends on the family:

  - gaussian: *precision* weights, ``Var(e_i) = sigma^2 / w_i`` (a row with weight 2 is as
    precise as the mean of two); the log-likelihood includes ``sum(log w_i) / 2``;
  - binomial, Poisson, ordinal: each row's log-likelihood is multiplied by ``w_i``. For whole
    numbers that is a row counted ``w_i`` times within its groups (frequency weights). Binomial
    weights must be whole numbers: R's binomial log-likelihood rounds ``w_i y_i`` (glm's
    ``binomial()$aic``), so non-integer binomial weights define no binomial likelihood.

  Stata means other things by its weights: ``[fweight=]`` replicates rows, which for gaussian
  models re-estimates sigma on ``sum(w)`` observations (not precision weights); ``[aweight=]``
  rescales weights to sum to N and ``[pweight=]`` are sampling weights with robust SEs. So the
  Stata backend translates weights only where they mean the same: non-gaussian models with
  whole-number weights as ``[fweight=]``; gaussian weights are not estimable in Stata.
* **offset**: ``model.offset: <column>`` and any ``offset(...)`` terms of the formula, added up
  (as R adds its ``offset =`` argument and offset terms); each enters the linear predictor with
  coefficient 1 (``log(exposure)`` for Poisson rates; for gaussian models ``y - offset``).
* **trials**: a binomial response out of trials, written as R writes it:
  ``cbind(successes, failures)`` or ``successes/trials`` (the latter without ``weights``: R
  reads ``y/n`` with ``weights = n`` as proportions whose weights are the trials, which is this
  same model, and ``y/n`` with other weights as something else). The outcome column is the
  successes; the trials are ``successes + failures``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.formula.syntax import Arith, BinOp, Ref
from harness.formula.values import arithmetic
from harness.spec import Model


@dataclass(frozen=True)
class ModelAttributes:
    """The attributes of one model: a weights column, offsets (arithmetic), trials (arithmetic)."""

    weights: str | None = None
    offsets: tuple[Arith, ...] = ()
    trials: Arith | None = None

    @classmethod
    def of(cls, model: Model) -> "ModelAttributes":
        f = model.parsed
        offsets = f.offsets + ((Ref(model.offset),) if model.offset else ())
        return cls(weights=model.weights, offsets=offsets, trials=f.trials)

    @property
    def offset(self) -> Arith | None:
        """All offsets as one sum (None when there is none)."""
        if not self.offsets:
            return None
        total = self.offsets[0]
        for more in self.offsets[1:]:
            total = BinOp("+", total, more)
        return total

    def __bool__(self) -> bool:
        return bool(self.weights or self.offsets or self.trials is not None)

    def columns(self) -> set[str]:
        """The data columns the attributes read."""
        out = {self.weights} if self.weights else set()
        for node in (*self.offsets, *((self.trials,) if self.trials is not None else ())):
            out.update(node.columns())
        return out

    def values(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """``weights``, ``offset`` and ``trials`` per row of ``frame`` (float, NaN where a
        value is missing), for those the model has."""
        out: dict[str, np.ndarray] = {}
        if self.weights:
            out["weights"] = arithmetic(Ref(self.weights), frame, "model.weights")
        offset = self.offset
        if offset is not None:
            out["offset"] = arithmetic(offset, frame, "the offset")
        if self.trials is not None:
            out["trials"] = arithmetic(self.trials, frame, "the binomial trials")
        return out

    def describe(self) -> str:
        """One line for messages and provenance: ``weights w; offset log(e); trials n``."""
        parts = [f"weights {self.weights}"] if self.weights else []
        if self.offsets:
            parts.append("offset " + " + ".join(o.to_r() for o in self.offsets))
        if self.trials is not None:
            parts.append(f"trials {self.trials.to_r()}")
        return "; ".join(parts)
