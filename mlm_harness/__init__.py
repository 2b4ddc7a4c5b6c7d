"""mlm-harness for Python users: ``import mlm_harness as mh`` (the API is harness/api.py).

See docs/api.md. Only the names below are the stable contract.
"""

from harness import __version__
from harness.api import (Comparison, Spec, SpecError, Suite, fit, fit_all, from_dict, load,
                         load_all, spec)

__all__ = ["__version__", "Comparison", "Suite", "Spec", "SpecError", "load", "load_all",
           "from_dict", "spec", "fit", "fit_all"]
