"""Typed backend options: one closed pydantic model per backend, checked when the spec loads.

``backends.<name>.options`` used to be a free mapping, and an option that a backend did not know
was ignored, or worse, pasted into R code (``control: "lmerControl(...)"``). Now every option
has a type and a closed set of values (``extra="forbid"``): a misspelled or unknown key is a spec
error naming it and the known ones (exit 2), and no option carries code. What each option means:

* native (:class:`NativeOptions`): GLMM integration details (``adaptation``, ``laplace``,
  ``intercept_last``). Binomial trials and offsets were native-only options once; they are model
  attributes now (``cbind(s, f)`` or ``s/n`` as the response, ``model.offset`` or ``offset()``,
  see :mod:`harness.attributes`), so every backend fits them or says why not;
* lme4 (:class:`Lme4Options`): the optimizer from lme4's or ordinal's own allow-list,
  ``max_iterations``, ``calc_derivs`` (lme4's ``calc.derivs``) and the worker ``timeout``;
* Stata (:class:`StataOptions`): which command (of those :mod:`backends.stata.render` writes),
  its estimator, covariance, iteration cap, VCE, survey PSU, the random-part structure
  (``levels``, ``crossed``), stored/live mode, timeout and where Stata is.

Which options fit which model (GLMM integration details only for GLMMs, ``clmm``'s optimizers
only for ordinal mixed models, ...) is checked here too (:func:`native_problems`, :func:`lme4_problems`), so a
spec that asks for something a backend would silently drop does not load.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from harness.names import check_name

ColumnName = Annotated[str, AfterValidator(check_name)]
"""A column or variable name from a spec (no control characters; see harness.names)."""

RFunction = Literal["lmer", "glmer", "clmm", "clm", "lm", "glm"]

LME4_OPTIMIZERS = ("nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap", "nmkbw")
CLMM_OPTIMIZERS = ("nlminb", "ucminf", "optim")
CLM_OPTIMIZERS = ("Newton", "nlminb", "ucminf", "optim")
Optimizer = Literal["nloptwrap", "bobyqa", "Nelder_Mead", "nlminbwrap", "nmkbw", "nlminb",
                    "ucminf", "optim", "Newton"]
OPTIMIZERS: dict[RFunction, tuple[str, ...]] = {
    "lmer": LME4_OPTIMIZERS, "glmer": LME4_OPTIMIZERS, "clmm": CLMM_OPTIMIZERS,
    "clm": CLM_OPTIMIZERS, "lm": (), "glm": ()}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self) -> dict[str, object]:
        """The options the spec states (what a backend prints in its call)."""
        return self.model_dump(exclude_none=True)


class NativeOptions(Options):
    adaptation: Literal["mode-curvature", "mean-variance"] | None = Field(
        default=None, description="AGHQ adaptation for a scalar random effect (GLMMs)")
    laplace: Literal["glmer", "exact"] | None = Field(
        default=None, description="exact: the exact Laplace approximation, maximised to the "
        "optimiser's tolerance (the default when unset); glmer: glmer's approximate PIRLS path, "
        "to reproduce glmer's numbers digit for digit (binomial/Poisson Laplace and AGHQ)")
    intercept_last: bool | None = Field(
        default=None, description="GLMM parameter order (default true)")

    @model_validator(mode="before")
    @classmethod
    def _attributes_moved(cls, data: Any) -> Any:
        """``trials`` and ``offset`` are model attributes now; say where they went."""
        if isinstance(data, dict):
            moved = {"trials": "write the response as cbind(successes, failures) or "
                               "successes/trials (family binomial)",
                     "offset": "give model.offset: <column> or an offset(...) term in the "
                               "formula"}
            found = [k for k in moved if k in data]
            if found:
                raise ValueError("; ".join(
                    f"backends.native.options.{k} is no longer an option: it is a model "
                    f"attribute every backend fits; {moved[k]}" for k in found))
        return data


class Lme4Options(Options):
    optimizer: Optimizer | None = Field(
        default=None, description="lmer/glmer: nloptwrap, bobyqa, Nelder_Mead, nlminbwrap, "
        "nmkbw; clmm: nlminb, ucminf, optim; clm: Newton, nlminb, ucminf, optim")
    max_iterations: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    calc_derivs: bool | None = Field(
        default=None, description="lmer/glmer: compute the gradient and Hessian at the optimum")
    timeout: Annotated[float, Field(gt=0, le=86_400)] | None = Field(
        default=None, description="seconds the R worker may take for this fit")


StataCommand = Literal["glm", "meglm", "xtreg", "xtlogit", "meqrlogit", "svy: regress", "gllamm"]


class StataOptions(Options):
    command: StataCommand | None = Field(
        default=None, description="another command than the default (mixed, me*, regress...)")
    estimator: Literal["re"] | None = Field(
        default=None, description="xtreg/xtlogit: the random-effects estimator")
    covariance: Literal["unstructured", "independent", "identity"] | None = None
    iterate: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    vce: Literal["oim", "opg", "robust"] | None = None
    psu: ColumnName | None = Field(default=None, description="svy: regress: the PSU column")
    levels: list[ColumnName] | None = Field(
        default=None, description="nesting order of the grouping factors, highest first")
    crossed: bool | list[ColumnName] | None = Field(
        default=None, description="grouping factors that become _all: R. terms")
    mode: Literal["stored"] | None = Field(
        default=None, description="stored: never start Stata, use the stored result")
    timeout: Annotated[float, Field(gt=0, le=86_400)] | None = None
    stata_home: ColumnName | None = Field(
        default=None, description="the Stata folder (as STATA_HOME)")


def r_function(family: str, has_random: bool, method: str) -> RFunction:
    """The R function that fits a model: lmer, glmer, clmm, clm, lm or glm."""
    if family == "ordinal":
        return "clmm" if has_random else "clm"
    if has_random:
        return "lmer" if family == "gaussian" else "glmer"
    return "lm" if family == "gaussian" and method == "OLS" else "glm"


def lme4_problems(options: Lme4Options, optimizer: str | None, optimizer_key: str,
                  fn: RFunction) -> list[str]:
    """Why these lme4 options cannot be honoured for a model R fits with ``fn``."""
    problems = []
    chosen = options.optimizer or optimizer
    key = "backends.lme4.options.optimizer" if options.optimizer else optimizer_key
    if chosen and chosen not in OPTIMIZERS[fn]:
        allowed = ", ".join(OPTIMIZERS[fn]) or "none (it has no optimizer to choose)"
        problems.append(f"{key} {chosen!r} does not apply: lme4 fits this model with {fn}, "
                        f"whose optimizers are: {allowed}")
    if options.calc_derivs is not None and fn not in ("lmer", "glmer"):
        problems.append(f"backends.lme4.options.calc_derivs applies to lmer/glmer only; this "
                        f"model is fitted with {fn}")
    if options.max_iterations is not None and fn == "lm":
        problems.append("backends.lme4.options.max_iterations does not apply: lm has no "
                        "iterations")
    return problems


def native_problems(options: NativeOptions, family: str, has_random: bool) -> list[str]:
    """Why these native options cannot be honoured for the model."""
    problems = []
    key = "backends.native.options"
    glmm_only = [k for k in ("adaptation", "laplace", "intercept_last")
                 if getattr(options, k) is not None]
    if glmm_only and (family == "gaussian" or not has_random):
        problems.append(f"{key} {', '.join(glmm_only)} apply to native GLMMs only "
                        "(non-gaussian models with random effects)")
    if options.laplace == "glmer" and family == "ordinal":
        problems.append(f"{key}.laplace glmer applies to binomial and Poisson GLMMs only: an "
                        "ordinal model's Laplace approximation is exact (as clmm's)")
    return problems
