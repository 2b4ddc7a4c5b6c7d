"""lme4-style model formulas, parsed by the harness into its own syntax tree.

User text never reaches an engine: the formula is tokenised (:mod:`.lexer`), parsed against an
allow-list into a tree (:mod:`.parser`, :mod:`.syntax`), expanded into R's terms (:mod:`.terms`)
and re-emitted by each backend from the tree (R text by ``to_r()``, Stata commands, native
design matrices). :mod:`.model` holds the formula object every caller uses.
"""

from .errors import FormulaError
from .model import ModelFormula, RandomTerm, parse_formula
from .terms import CONTRASTS, INDICATORS, FixedTerms, column_names

__all__ = ["CONTRASTS", "INDICATORS", "FixedTerms", "FormulaError", "ModelFormula", "RandomTerm",
           "column_names", "parse_formula"]
