"""mlm-harness: one multilevel model spec, several packages, every estimate lined up."""

__version__ = "0.1.0"
