"""What a fit estimated, as a typed record: criterion, integration, standard errors, df method.

Every backend sets an :class:`Estimator` on its result, and every label users see (``REML``,
``AGHQ(7)``, ``OLS, cluster-robust SE by school (CR1)``) is derived from it by :meth:`label`.
Pairing and tolerances choose by its fields, never by label text: two fits whose estimates come
from the same criterion and integration solve the same optimisation problem and get the tight
engine tolerance (:meth:`same_estimates`), and their standard errors are comparable when the
standard-error type matches too (:meth:`same_standard_errors`).

A reference states its estimator as a label in the spec (``method: AGHQ(7)``); :meth:`parse` reads
exactly the labels :meth:`label` writes, so there is one grammar.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Criterion = Literal["ML", "REML", "OLS", "GLS"]
Integration = Literal["none", "laplace", "aghq", "mvaghq", "ghq"]
SeType = Literal["model", "CR1", "linearized"]

_INTEGRATION_LABEL = {"laplace": "Laplace", "aghq": "AGHQ", "mvaghq": "MVAGHQ", "ghq": "GHQ"}
_SE_LABEL = {"CR1": ", cluster-robust SE by {} (CR1)", "linearized": ", survey-linearised SE by {}"}
_LABEL = re.compile(r"^(?P<base>ML|REML|OLS|GLS|Laplace|(?P<q>AGHQ|MVAGHQ|GHQ)\((?P<n>\d+)\))"
                    r"(?:, (?:cluster-robust SE by (?P<cr1>[^ ]+) \(CR1\)"
                    r"|survey-linearised SE by (?P<svy>[^ ]+)))?$")
_INTEGRATION_OF = {"AGHQ": "aghq", "MVAGHQ": "mvaghq", "GHQ": "ghq"}


class EstimatorError(ValueError):
    """An estimator label that does not follow the grammar of :meth:`Estimator.label`."""


@dataclass(frozen=True)
class Estimator:
    """The estimator behind a set of numbers.

    * ``criterion``: what was optimised — ``ML`` (GLMMs too), ``REML``, ``OLS``, or ``GLS``
      (Stata's ``xtreg, re``: feasible GLS with Swamy-Arora variance components, not a
      likelihood estimator);
    * ``integration``: for GLMMs, how the random effects were integrated out — ``laplace``
      (1 point), ``aghq`` (adaptive Gauss-Hermite centred at the conditional mode, as glmer's
      nAGQ > 1), ``mvaghq`` (mean-variance adaptive, Stata's default) or ``ghq``
      (non-adaptive, gllamm's default); ``none`` otherwise;
    * ``points``: quadrature points (1 for Laplace, 0 without integration);
    * ``se``: ``model`` (inverse information), ``CR1`` (cluster-robust by ``cluster``) or
      ``linearized`` (survey linearisation with primary sampling unit ``cluster``: Stata's
      ``svy``, which lacks CR1's (N-1)/(N-K) factor);
    * ``df_method``: the reference distribution of tests, when the fit states one.
    """

    criterion: Criterion
    integration: Integration = "none"
    points: int = 0
    se: SeType = "model"
    cluster: str | None = None
    df_method: str | None = None

    def __post_init__(self) -> None:
        expected = {"none": 0, "laplace": 1}.get(self.integration)
        if expected is not None and self.points != expected:
            raise EstimatorError(f"{self.integration} integration has {expected} points, "
                                 f"not {self.points}")
        if self.integration in ("aghq", "mvaghq", "ghq") and self.points < 2:
            raise EstimatorError("quadrature needs at least 2 points")
        if (self.se == "model") != (self.cluster is None):
            raise EstimatorError("cluster-robust and survey SEs need a cluster, and only they do")

    # ---- labels ----------------------------------------------------------------------------
    def label(self) -> str:
        base = (self.criterion if self.integration == "none" else
                "Laplace" if self.integration == "laplace" else
                f"{_INTEGRATION_LABEL[self.integration]}({self.points})")
        if self.se != "model":
            base += _SE_LABEL[self.se].format(self.cluster)
        return base

    def estimates_label(self) -> str:
        """The label without the standard-error part: what determines the estimates."""
        return replace(self, se="model", cluster=None, df_method=None).label()

    @classmethod
    def parse(cls, text: str) -> "Estimator":
        hit = _LABEL.match(text.strip())
        if not hit:
            raise EstimatorError(
                f"estimator {text!r} is not one of ML, REML, OLS, Laplace, AGHQ(<points>), "
                "MVAGHQ(<points>), GLS, GHQ(<points>), optionally followed by ', cluster-robust "
                "SE by <column> (CR1)' or ', survey-linearised SE by <column>'")
        base = hit.group("base")
        se: dict[str, Any] = ({"se": "CR1", "cluster": hit.group("cr1")} if hit.group("cr1") else
                              {"se": "linearized", "cluster": hit.group("svy")}
                              if hit.group("svy") else {})
        if base in ("ML", "REML", "OLS", "GLS"):
            return cls(base, **se)  # type: ignore[arg-type]
        if base == "Laplace":
            return cls("ML", "laplace", 1, **se)
        return cls("ML", _INTEGRATION_OF[hit.group("q")], int(hit.group("n")),  # type: ignore
                   **se)

    # ---- pairing ---------------------------------------------------------------------------
    def same_estimates(self, other: "Estimator") -> bool:
        """Same criterion and integration: the estimates solve one optimisation problem."""
        return (self.criterion, self.integration, self.points) == \
            (other.criterion, other.integration, other.points)

    def same_standard_errors(self, other: "Estimator") -> bool:
        return self.same_estimates(other) and (self.se, self.cluster) == (other.se, other.cluster)

    @property
    def is_quadrature(self) -> bool:
        return self.integration in ("aghq", "mvaghq", "ghq")

    # ---- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Estimator":
        return cls(**d)
