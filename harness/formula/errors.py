"""The one error type of the formula package."""

from __future__ import annotations


class FormulaError(ValueError):
    """A formula the harness cannot read; the message says which part and why."""
