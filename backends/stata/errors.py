"""The error every Stata code generator raises for a model Stata cannot be given."""

from __future__ import annotations


class StataRenderError(ValueError):
    """The spec cannot be written as Stata code; the message says which part and why."""
