"""Every key a spec's model will have, known before anything is fitted; reference keys checked.

A reference key that matches no parameter used to be ignored silently: ``fixed/days`` for
``Days`` or ``ran_pars/subject/...`` for ``Subject`` left the spec "agreeing" with nothing
checked. Here the keys a model will have are derived from its formula, the prepared data (factor
levels name the dummies and the thresholds) and the spec's cross-checks, and every reference key
must be one of them; a miss is a spec error naming the file, the key and the closest valid key.

The fixed-effect names come from the native design (R's names, the ones every backend reports),
so this module and the engines cannot disagree about what a term is called.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from harness.attributes import ModelAttributes
from harness.formula import ModelFormula
from harness.keys import KeyFormatError, ParamKey, closest_key
from harness.spec import Spec

#: statistics the harness computes for every fit (harness/postestimation.py)
FIT_STATISTICS = ("loglik", "deviance", "reml_criterion", "aic", "bic", "aic_computed",
                  "bic_computed", "nobs", "df")
LR_STATISTICS = ("chi2", "df", "p")


def _variance_keys(formula: ModelFormula, gaussian: bool) -> set[ParamKey]:
    keys: set[ParamKey] = set()
    for term in formula.random:
        for name in term.names:
            keys |= {ParamKey.ran_pars(term.group, s, name) for s in ("sd", "var")}
        for a, b in combinations(term.names, 2):
            keys |= {ParamKey.ran_pars(term.group, s, a, b) for s in ("cor", "cov")}
    if gaussian:
        keys |= {ParamKey.residual("sd"), ParamKey.residual("var")}
    return keys


def _threshold_keys(frame: pd.DataFrame, response: str,
                    levels: list[str] | None) -> set[ParamKey]:
    """clm's threshold names: between consecutive levels, in R's order (a categorical
    response's own ``levels``; a numeric response's sorted values)."""
    from backends.native.names import level_labels

    if levels is None:
        labels = level_labels(pd.unique(frame[response].dropna()))
        levels = sorted(labels, key=lambda v: (float(v) if _is_number(v) else float("inf"), v))
    return {ParamKey.threshold(f"{a}|{b}") for a, b in zip(levels, levels[1:])}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _statistic_keys(spec: Spec, formula: ModelFormula) -> set[ParamKey]:
    names = set(FIT_STATISTICS)
    groups = formula.grouping_factors
    names |= {f"ngroups/{g}" for g in groups} | {f"vpc/{g}" for g in groups} | \
        {f"icc/{g}" for g in groups}
    if formula.has_random:
        names.add("icc")
    for cc in spec.cross_checks:
        if cc.type == "lr_test":
            names |= {f"lr/{cc.against}/{s}" for s in LR_STATISTICS}
    return {ParamKey.stat(n) for n in names}


def expected_keys(spec: Spec, frame: pd.DataFrame) -> set[str]:
    """The keys of every backend's version of the model (a backend may override the formula)."""
    from backends.native.design import build_design

    keys: set[ParamKey] = set()
    models = {spec.model_for(b).formula: spec.model_for(b) for b in (None, *spec.backends)}
    for model in models.values():
        f = model.parsed
        design = build_design(f, frame, spec.factor_columns(),
                              dict(model.reference_level) or None, contrasts=spec.contrasts(),
                              attributes=ModelAttributes.of(model).values(frame))
        names = design.x_names
        if model.family == "multinomial":
            from backends.native.glmm.mlogit_result import coefficient_names, response_codes
            base = dict(model.reference_level).get(f.response)
            names = coefficient_names(response_codes(design, base)[1], names)
        if model.family == "ordinal":
            names = [n for n in names if n != "(Intercept)"]
            keys |= _threshold_keys(frame.loc[design.row_index], f.response,
                                    design.response_levels)
        keys |= {ParamKey.fixed(n) for n in names}
        keys |= _variance_keys(f, model.family == "gaussian")
        keys |= _statistic_keys(spec, f)
    return {str(k) for k in keys}


def reference_key_problems(spec: Spec, frame: pd.DataFrame) -> list[str]:
    """One message per reference key that no backend's model can have (empty when all fit)."""
    valid = expected_keys(spec, frame)
    problems = []
    for ref in spec.references:
        for key in ref.values:
            where = f"references[{ref.id}].values.{key}"
            try:
                ParamKey.parse(key)
            except KeyFormatError as e:
                problems.append(f"{where}: {e}")
                continue
            if key not in valid:
                hint = closest_key(key, valid)
                problems.append(f"{where}: the model has no such quantity"
                                + (f"; did you mean {hint!r}?" if hint else
                                   " (see docs/spec-format.md for the key names)"))
    return problems
