"""Printed output of other software (R, Stata, SPSS) read into reference values.

``parse(text, fmt)`` reads one printout (:mod:`.r`, :mod:`.stata`, :mod:`.spss`), and
:func:`harness.printouts.resolve.resolve` decides which key of the spec's model each printed
number is. ``mlm-harness refs import`` (harness/refs_import.py) puts the two together.
"""

from __future__ import annotations

import re

from harness.printouts.base import Printout, PrintoutError

FORMATS = ("r-lmer", "r-glmer", "r-clmm", "stata-mixed", "stata-me", "spss-mixed")

#: what in a printout says which software printed it, first match wins
_SIGNATURES = (
    ("r-clmm", r"Cumulative Link Mixed Model"),
    ("r-glmer", r"Generalized linear mixed model fit by"),
    ("r-lmer", r"Linear mixed model fit by"),
    ("stata-mixed", r"Mixed-effects (?:ML|REML) regression"),
    ("stata-me", r"Mixed-effects \w[\w -]* regression|Integration method:"),
    ("spss-mixed", r"Estimates of (?:Fixed Effects|Covariance Parameters)"),
    ("stata-mixed", r"Random-effects [Pp]arameters\s*\|"),
)


def detect(text: str) -> str:
    """The format of a printout, from the words its software prints."""
    for fmt, pattern in _SIGNATURES:
        if re.search(pattern, text):
            return fmt
    raise PrintoutError("cannot tell which software printed this (looked for R's 'Linear mixed "
                        "model fit by', Stata's 'Mixed-effects ... regression', SPSS's "
                        f"'Estimates of Fixed Effects'); give --format ({', '.join(FORMATS)})")


def parse(text: str, fmt: str | None = None) -> Printout:
    """Read one printout; ``fmt`` None detects it."""
    fmt = fmt or detect(text)
    if fmt not in FORMATS:
        raise PrintoutError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    titles = len(re.findall(r"Linear mixed model fit by|Generalized linear mixed model fit by|"
                            r"Cumulative Link Mixed Model|Mixed-effects [\w -]+ regression", text))
    if titles > 1:
        raise PrintoutError(f"{titles} models in one printout; put each in its own file")
    if fmt.startswith("r-"):
        from harness.printouts.r import parse_r

        return parse_r(text, fmt)
    if fmt.startswith("stata-"):
        from harness.printouts.stata import parse_stata

        return parse_stata(text, fmt)
    from harness.printouts.spss import parse_spss

    return parse_spss(text, fmt)
