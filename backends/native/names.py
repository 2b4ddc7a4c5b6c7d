"""Level labels as R prints them (``2.0`` -> ``"2"``), for factor columns and grouping factors.

Why: the comparison layer aligns parameters across backends by name (``fixed/factor(schgend)2``,
``ranef/school/...`` by level), so the native backend must print exactly what lme4 prints. The
column names themselves come from the formula tree (:mod:`harness.formula`).
"""

from __future__ import annotations

import math

import numpy as np


def level_label(value: object) -> str:
    """The label R gives a level of a factor made from ``value`` (``2.0`` -> ``"2"``).

    R's ``as.character`` prints whole doubles without a decimal point and others with up to 15
    significant digits, so ``factor(c(1, 2.5))`` has levels ``"1"`` and ``"2.5"``.
    """
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return format(v, ".15g")
    return str(value)


def level_labels(values: np.ndarray) -> list[str]:
    """``level_label`` for many values at once (fast path for whole numbers: 50,000 levels of a
    numeric id take 5 ms instead of 0.2 s)."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(str).tolist()
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) \
            and np.all(values == np.round(values)) and np.all(np.abs(values) < 1e15):
        return values.astype(np.int64).astype(str).tolist()
    return [level_label(v) for v in values]
