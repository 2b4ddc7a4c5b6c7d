"""Readable names for canonical keys, in one place for the report, the tables and the CLI.

``ran_pars/school/sd__(Intercept)`` reads "sd of school intercepts" in the report
(:func:`parameter_label`) and "SD (Intercept school)" in a side-by-side table
(:func:`table_label`, modelsummary's wording); the key itself is always shown as well or
recoverable, so a label is never the only name of a number.
"""

from __future__ import annotations

from harness.keys import ParamKey

_TERM_WORDS = {"sd": "sd", "var": "variance", "cor": "correlation", "cov": "covariance"}
_STAT_WORDS = {"loglik": "log-likelihood", "aic": "AIC (as reported)", "bic": "BIC (as reported)",
               "aic_computed": "AIC = -2LL + 2k", "bic_computed": "BIC = -2LL + k log N",
               "deviance": "deviance", "reml_criterion": "REML criterion (-2 REML LL)",
               "nobs": "observations", "df": "parameters (k)", "icc": "ICC"}


def term_words(t: str) -> str:
    return "intercept" if t == "(Intercept)" else t


def parameter_label(key: ParamKey) -> str:
    """``ran_pars/school/sd__(Intercept)`` -> "sd of school intercepts" (the key stays shown)."""
    if key.kind == "fixed":
        return term_words(key.name)
    if key.kind == "threshold":
        return f"threshold {key.name}"
    if key.kind == "ran_pars":
        word = _TERM_WORDS.get(key.scale or "", key.scale or "")
        if key.is_residual:
            return f"residual {word}"
        if key.scale in ("cor", "cov"):
            a, _, b = key.effects.partition(".")
            return f"{word} of {key.group} {term_words(a)} and {term_words(b)}"
        return f"{word} of {key.group} {term_words(key.effects)}" + \
            ("s" if key.effects == "(Intercept)" else "")
    if key.kind == "ranef":
        return f"BLUPs of {key.group} {term_words(key.name)} (worst level)"
    head, _, rest = key.name.partition("/")
    if head == "vpc":
        return f"VPC at the {rest} level"
    if head == "icc" and rest:
        return f"ICC at the {rest} level (Stata estat icc)"
    if head == "ngroups":
        return f"number of {rest} groups"
    if head == "lr":
        against, _, stat = rest.rpartition("/")
        return f"LR test vs {against}: {stat}"
    return _STAT_WORDS.get(key.name, key.name)


_TABLE_SCALE = {"sd": "SD", "var": "Var", "cor": "Cor", "cov": "Cov"}
_TABLE_STATS = {"nobs": "Num.Obs.", "loglik": "Log.Lik.", "aic": "AIC", "bic": "BIC",
                "deviance": "Deviance", "reml_criterion": "REML crit.", "icc": "ICC",
                "df": "k (parameters)"}


def table_label(key: ParamKey) -> str:
    """The row name of ``key`` in a side-by-side table, as modelsummary writes it:
    ``(Intercept)``, ``SD (Intercept school)``, ``Cor (Intercept~lrt school)``,
    ``SD (Observations)``, ``Num.Obs.``, ``Groups (school)``."""
    if key.kind in ("fixed", "threshold"):
        return key.name
    if key.kind == "ran_pars":
        scale = _TABLE_SCALE.get(key.scale or "", key.scale or "")
        if key.is_residual:
            return f"{scale} (Observations)"
        effects = "~".join(e.removeprefix("(").removesuffix(")") if e == "(Intercept)" else e
                           for e in key.effects.split("."))
        return f"{scale} ({effects} {key.group})"
    if key.kind == "ranef":
        return f"BLUPs ({key.name} {key.group})"
    head, _, rest = key.name.partition("/")
    if head == "ngroups":
        return f"Groups ({rest})"
    return _TABLE_STATS.get(key.name, key.name)
