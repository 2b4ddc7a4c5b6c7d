"""Random effects per level, named once for the fit results and the evidence engine.

Native LMM and GLMM results and :meth:`EvidenceModel.conditional_modes
<backends.native.evidence.EvidenceModel.conditional_modes>` all turn per-level arrays (modes or
posterior means ``b`` of shape ``(m, k)`` and covariances ``V`` of shape ``(m, k, k)``) into
``(group, term, level) -> (value, sd)``; doing it here keeps the names of
:class:`harness.results.RandomEffect` (grouping factor, model-matrix column, level label) and
the order (term by term, levels in factor order) the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.results import RandomEffect

from .design import FactorBlock
from .likelihood import RandomEffects


def by_level(factors: Sequence[FactorBlock], modes: Sequence[np.ndarray],
             covariances: Sequence[np.ndarray]) -> RandomEffects:
    """``(group, term, level) -> (value, sd)`` from per-factor ``b`` and ``V``."""
    out: RandomEffects = {}
    for f, b, V in zip(factors, modes, covariances):
        sd = np.sqrt(np.clip(np.diagonal(V, axis1=1, axis2=2), 0.0, None))
        for a, term in enumerate(f.columns):
            for j, level in enumerate(f.levels):
                out[(f.name, term, str(level))] = (float(b[j, a]), float(sd[j, a]))
    return out


def rows(effects: RandomEffects) -> list[RandomEffect]:
    """The FitResult rows of :func:`by_level`'s mapping, in its order."""
    return [RandomEffect(group, level, term, value, sd)
            for (group, term, level), (value, sd) in effects.items()]
