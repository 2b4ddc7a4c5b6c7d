"""What a parsed printout is: named printed numbers, each with the keys it may be.

A printout names its numbers in its own software's words (``sd(_cons)``, ``school.1 lrt``,
``UN (2,1) [subject = class]``, ``2.schgend``). A parser turns each into a
:class:`PrintedValue` carrying the printed text exactly as shown (so its precision is kept) and
the canonical keys it may stand for, best first (harness/keys.py); which one is meant is decided
against the spec's model by :func:`harness.printouts.resolve.resolve`. Numbers that are printed
but name no quantity of the model (Wald chi2, the LR test against a model without random
effects, scaled residuals) are listed in :attr:`Printout.skipped`, never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.keys import ParamKey


class PrintoutError(ValueError):
    """A printout that cannot be read; the message names the file and what was expected."""


Display = str  # "" (the key's own scale) or "exp" (exp(b), Stata's or/irr/eform)


@dataclass(frozen=True)
class PrintedValue:
    """One printed quantity: the name as printed, the keys it may be, the printed texts."""

    printed: str
    candidates: tuple[ParamKey, ...]
    estimate: str | None
    std_error: str | None = None
    display: Display = ""

    def values(self) -> dict[str, str]:
        return {q: v for q, v in (("estimate", self.estimate), ("std_error", self.std_error))
                if v is not None}


@dataclass
class Printout:
    """Everything taken from one printout."""

    format: str  # r-lmer, r-glmer, r-clmm, stata-mixed, stata-me, spss-mixed
    software: str  # "R lme4", "Stata", "SPSS"
    method: str | None  # the estimator label (harness/estimator.py grammar), when printed
    values: list[PrintedValue] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # printed, but no quantity of a model
    formula: str | None = None  # R prints the formula
    version: str | None = None


# ---- numbers ---------------------------------------------------------------------------------

_NUMBER = r"[-\u2212]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER_RE = re.compile(rf"^{_NUMBER}$")


def number_text(token: str) -> str | None:
    """The printed number in ``token`` as text a spec can hold (``"4,059"`` -> ``"4059"``,
    ``"\u2212.5"`` -> ``"-.5"``), or None when it is not a number. The digits are kept as printed,
    so the precision they state survives."""
    t = token.strip().replace("\u2212", "-")
    if not NUMBER_RE.match(t) or t in ("-", "."):
        return None
    if "," in t:
        whole, _, frac = t.partition(".")
        groups = whole.lstrip("-").split(",")
        if any(len(g) != 3 for g in groups[1:]) or not groups[0]:
            return None  # "1,5" is not a thousands separator
        t = whole.replace(",", "") + ("." + frac if "." in t else "")
    return t


def numbers_in(tokens: list[str]) -> list[str]:
    return [n for n in (number_text(t) for t in tokens) if n is not None]


def intercept(name: str) -> str:
    """Stata's and SPSS's intercept names in R's spelling."""
    return "(Intercept)" if name in ("_cons", "Intercept", "(Intercept)", "cons") else name
