"""The data-generating model: true parameter values per cell, and one data set per replication.

The linear predictor is built by the native design code (:func:`backends.native.design.
build_design`), the same that the native estimator fits with, so a formula generates exactly
the model that every engine is asked to fit: ``eta = X beta + sum_f Z_f u_f`` with
``u_f ~ N(0, Sigma_f)`` per level and covariance block of grouping factor ``f``, then the
outcome by family (gaussian ``eta + sigma e``; binomial a Bernoulli draw with the logit or
probit of ``eta``; poisson with the log link).

What is drawn, and in which order, is fixed (cluster sizes, covariates in the order the study
lists them, random effects by factor and block, then the outcome), so a replication's data set
is a function of its :class:`numpy.random.SeedSequence` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from backends.native.design import Design, DesignError, build_design
from harness.attributes import ModelAttributes
from harness.formula import parse_formula
from harness.keys import ParamKey
from harness.results import FitResult, Parameter, residual_parameters, variance_parameters

from .study import Cell, LoadedStudy, SizesLike, SizesRange, StudyError

#: variance of the latent residual of a binary model on each link's scale (latent ICC)
LATENT_VARIANCE = {"logit": math.pi ** 2 / 3, "probit": 1.0}
ICC_KEY = "stat/icc"


# ---- the layout of the generating model -----------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One covariance block of one grouping factor: terms that are correlated."""

    group: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """The parameters of the generating model: fixed-effect columns and covariance blocks."""

    x_names: tuple[str, ...]
    blocks: tuple[Block, ...]

    @classmethod
    def of(cls, design: Design) -> "Layout":
        blocks = []
        for f in design.factors:
            start = 0
            for size in f.term_sizes:
                blocks.append(Block(f.name, tuple(f.columns[start:start + size])))
                start += size
        return cls(tuple(design.x_names), tuple(blocks))

    def groups(self) -> list[str]:
        return list(dict.fromkeys(b.group for b in self.blocks))

    def base_keys(self, gaussian: bool) -> list[str]:
        """Keys a complete truth gives: fixed effects, sds and correlations, residual sd."""
        keys = [str(ParamKey.fixed(x)) for x in self.x_names]
        for b in self.blocks:
            keys += [str(ParamKey.ran_pars(b.group, "sd", t)) for t in b.terms]
            keys += [str(ParamKey.ran_pars(b.group, "cor", a, c))
                     for i, a in enumerate(b.terms) for c in b.terms[i + 1:]]
        if gaussian:
            keys.append(str(ParamKey.residual("sd")))
        return keys


# ---- true values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """The true parameters of one cell, on the sd/cor scale (``values``), and on every scale
    with the latent ICC where it is defined (:meth:`all_values`)."""

    layout: Layout
    family: str
    link: str
    values: dict[str, float]

    def beta(self) -> np.ndarray:
        return np.array([self.values[str(ParamKey.fixed(x))] for x in self.layout.x_names])

    def sigma(self) -> float:
        return self.values[str(ParamKey.residual("sd"))]

    def block_cov(self, block: Block) -> np.ndarray:
        sds = np.array([self.values[str(ParamKey.ran_pars(block.group, "sd", t))]
                        for t in block.terms])
        corr = np.eye(len(sds))
        for i, a in enumerate(block.terms):
            for j in range(i + 1, len(block.terms)):
                c = self.values[str(ParamKey.ran_pars(block.group, "cor", a, block.terms[j]))]
                corr[i, j] = corr[j, i] = c
        return corr * np.outer(sds, sds)

    def parameters(self) -> list[Parameter]:
        rows = [Parameter("fixed", None, x, self.values[str(ParamKey.fixed(x))])
                for x in self.layout.x_names]
        for b in self.layout.blocks:
            sds = [self.values[str(ParamKey.ran_pars(b.group, "sd", t))] for t in b.terms]
            corr = None
            if len(b.terms) > 1:
                cov = self.block_cov(b)
                corr = (cov / np.outer(sds, sds)).tolist() if all(sds) else np.eye(len(sds))
            rows += variance_parameters(b.group, list(b.terms), sds, corr)
        if self.family == "gaussian":
            rows += residual_parameters(self.sigma())
        return rows

    def all_values(self) -> dict[str, float]:
        out = {p.key: p.estimate for p in self.parameters()}
        icc = icc_of(out, self.layout.groups(), self.family, self.link)
        if icc is not None:
            out[ICC_KEY] = icc
        return out


def icc_of(values: dict[str, float], groups: list[str], family: str, link: str) -> float | None:
    """The (latent) intraclass correlation of a random-intercept model with one grouping
    factor, from canonical values; None where it is not defined (several factors, no
    intercept variance, a Poisson model, no residual variance)."""
    if len(groups) != 1:
        return None
    var_u = values.get(str(ParamKey.ran_pars(groups[0], "var", "(Intercept)")))
    if family == "gaussian":
        var_e = values.get(str(ParamKey.residual("var")))
    else:
        var_e = LATENT_VARIANCE.get(link)
    if var_u is None or var_e is None or var_u + var_e <= 0:
        return None
    return var_u / (var_u + var_e)


def normalise_truth(given: dict[str, float], where: str) -> dict[str, float]:
    """Truth keys on the sd/cor scale: variances become sds, covariances need their sds."""
    out: dict[str, float] = {}
    covs: dict[ParamKey, float] = {}
    for text, value in given.items():
        key = ParamKey.parse(text)
        scale = key.scale
        if scale == "var":
            if value < 0:
                raise StudyError(None, [f"{where} {text}: a variance cannot be negative"])
            key, value = key.on_scale("sd"), math.sqrt(value)
        elif scale == "cov":
            covs[key] = value
            continue
        elif scale == "sd" and value < 0:
            raise StudyError(None, [f"{where} {text}: an sd cannot be negative"])
        if str(key) in out:
            raise StudyError(None, [f"{where}: {key} is given twice (on two scales)"])
        out[str(key)] = value
    for key, cov in covs.items():
        a, b = key.effects.split(".", 1)
        sa = out.get(str(ParamKey.ran_pars(str(key.group), "sd", a)))
        sb = out.get(str(ParamKey.ran_pars(str(key.group), "sd", b)))
        if not sa or not sb:
            raise StudyError(None, [f"{where} {key}: a covariance needs both sds (non-zero)"])
        out[str(key.on_scale("cor"))] = cov / (sa * sb)
    return out


def cell_truth(population: "Population", cell: Cell) -> Truth:
    """The base truth with the cell's effect sizes and ICC applied, checked for completeness."""
    family = population.family_of(cell)
    values = dict(population.base_truth)
    effects = {k: v for k, v in cell.values if "/" in k}
    values.update(normalise_truth(effects, f"cell {cell.id}:"))
    layout = population.layout
    icc = cell.get("icc")
    if icc is not None:
        values[_intercept_sd_key(layout)] = _sd_for_icc(icc, family, population.link_of(cell),
                                                          values)
    keys = layout.base_keys(family == "gaussian")
    missing = [k for k in keys if k not in values]
    extra = sorted(k for k in values if k not in keys
                   and not (family != "gaussian" and ParamKey.parse(k).is_residual))
    problems = []
    if missing:
        problems.append(f"cell {cell.id}: no true value for {', '.join(missing)} (add them "
                        "under truth, or vary them under design.effects)")
    if extra:
        problems.append(f"cell {cell.id}: the model has no parameter {', '.join(extra)} "
                        f"(it has: {', '.join(keys)})")
    bad_cor = [k for k in keys if "/cor__" in k and k in values and not abs(values[k]) < 1]
    if bad_cor:
        problems.append(f"cell {cell.id}: correlations must lie strictly between -1 and 1: "
                        f"{', '.join(bad_cor)}")
    if problems:
        raise StudyError(None, problems)
    return Truth(layout, family, population.link_of(cell),
                 {k: values[k] for k in keys})


def _intercept_sd_key(layout: Layout) -> str:
    groups = layout.groups()
    has_intercept = [b for b in layout.blocks if "(Intercept)" in b.terms]
    if len(groups) != 1 or not has_intercept:
        raise StudyError(None, ["design.icc needs a model with one grouping factor and a "
                                "random intercept"])
    return str(ParamKey.ran_pars(groups[0], "sd", "(Intercept)"))


def _sd_for_icc(icc: float, family: str, link: str, values: dict[str, float]) -> float:
    """The random-intercept sd that gives this (latent) ICC."""
    if family == "gaussian":
        sigma = values.get(str(ParamKey.residual("sd")))
        if sigma is None:
            raise StudyError(None, [f"design.icc needs the residual sd in truth "
                                    f"({ParamKey.residual('sd')})"])
        var_e = sigma ** 2
    elif link in LATENT_VARIANCE:
        var_e = LATENT_VARIANCE[link]
    else:
        raise StudyError(None, [f"design.icc is not defined for {family} models with the "
                                f"{link} link; give the random-intercept sd under truth"])
    return math.sqrt(icc / (1 - icc) * var_e)


# ---- drawing the outcome --------------------------------------------------------------------


def draw_outcome(eta: np.ndarray, truth: Truth, rng: np.random.Generator) -> np.ndarray:
    if truth.family == "gaussian":
        return eta + truth.sigma() * rng.standard_normal(eta.size)
    if truth.family == "binomial":
        p = expit(eta) if truth.link == "logit" else norm.cdf(eta)
        return (rng.random(eta.size) < p).astype(float)
    return rng.poisson(np.exp(eta)).astype(float)


def random_part(design_factors: list, truth: Truth, rng: np.random.Generator) -> np.ndarray:
    """``sum_f Z_f u_f`` with new random effects for every level of every factor."""
    out = np.zeros(design_factors[0].Z.shape[0]) if design_factors else 0.0
    for f in design_factors:
        start = 0
        for size in f.term_sizes:
            block = Block(f.name, tuple(f.columns[start:start + size]))
            cov = truth.block_cov(block)
            sds = np.sqrt(np.diag(cov))
            corr = cov / np.where(np.outer(sds, sds) > 0, np.outer(sds, sds), 1.0)
            np.fill_diagonal(corr, 1.0)
            u = rng.standard_normal((f.m, size)) @ np.linalg.cholesky(corr).T * sds
            out = out + np.einsum("ij,ij->i", f.Z[:, start:start + size], u[f.codes])
            start += size
    return out


# ---- populations ---------------------------------------------------------------------------


@dataclass
class Population:
    """What every replication draws from; built once on the client and sent to each worker."""

    formula: str
    response: str
    group: str
    layout: Layout
    base_truth: dict[str, float]
    link: str
    default_family: str

    def family_of(self, cell: Cell) -> str:
        return cell.get("family", self.default_family)

    def link_of(self, cell: Cell) -> str:
        return _link(self.family_of(cell), self.link)

    def draw(self, cell: Cell, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
        raise NotImplementedError


def _link(family: str, link: str | None) -> str:
    default = {"gaussian": "identity", "binomial": "logit", "poisson": "log"}[family]
    return link if link and family == "binomial" else default


@dataclass
class SyntheticPopulation(Population):
    """Clusters of drawn sizes with synthetic covariates (study.covariates)."""

    covariates: dict = field(default_factory=dict)
    sizes_like: dict[str, np.ndarray] = field(default_factory=dict)

    def sizes(self, cell: Cell, rng: np.random.Generator) -> np.ndarray:
        k, size = int(cell.get("clusters")), cell.get("cluster_size")
        if isinstance(size, SizesLike):
            return rng.choice(self.sizes_like[size.label()], size=k, replace=True)
        if isinstance(size, SizesRange):
            return rng.integers(size.min, size.max + 1, size=k)
        return np.full(k, int(size))

    def frame(self, sizes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        k = sizes.size
        codes = np.repeat(np.arange(k), sizes)
        cols: dict[str, np.ndarray] = {}
        for name, cov in self.covariates.items():
            cols[name] = _covariate(cov, k, codes, rng)
        cols[self.group] = (codes + 1).astype(float)
        cols[self.response] = np.zeros(codes.size)
        return pd.DataFrame(cols)

    def draw(self, cell: Cell, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
        data = self.frame(self.sizes(cell, rng), rng)
        design = build_design(self.formula, data)
        eta = design.X @ truth.beta() + random_part(design.factors, truth, rng)
        data[self.response] = draw_outcome(eta, truth, rng)
        return data


def _covariate(cov, k: int, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # noqa: ANN001
    n = codes.size if cov.level == "observation" else k
    if cov.distribution == "bernoulli":
        v = (rng.random(n) < cov.p).astype(float)
    elif cov.distribution == "uniform":
        v = rng.uniform(cov.low, cov.high, n)
    else:
        z = rng.standard_normal(n)
        if cov.cluster_share:
            between = rng.standard_normal(k)[codes]
            z = math.sqrt(cov.cluster_share) * between + math.sqrt(1 - cov.cluster_share) * z
        v = cov.mean + cov.sd * z
    return v if cov.level == "observation" else v[codes]


@dataclass
class SpecDataPopulation(Population):
    """A spec's prepared data, subsampled per cell; the outcome redrawn or kept.

    The fixed part of the linear predictor and the random-effect columns are computed once on
    the full (complete-case) data, so every subsample uses the same coding of the covariates.
    """

    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    X: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    factors: list = field(default_factory=list)
    spec_family: str = "gaussian"

    def family_of(self, cell: Cell) -> str:
        return self.spec_family

    def rows(self, cell: Cell, rng: np.random.Generator) -> np.ndarray:
        """Row positions of the subsample, in data order."""
        codes = self.factors[0].codes
        keep = np.ones(codes.size, dtype=bool)
        clusters = cell.get("clusters", "all")
        m = self.factors[0].m
        if clusters != "all":
            if int(clusters) > m:
                raise StudyError(None, [f"cell {cell.id}: the data have only {m} clusters"])
            chosen = rng.permutation(m)[:int(clusters)]
            keep &= np.isin(codes, chosen)
        cap = cell.get("cluster_size", "all")
        if cap != "all":
            order = rng.permutation(codes.size)  # a random order within every cluster
            rank = np.empty(codes.size, dtype=np.int64)
            position = pd.Series(codes[order]).groupby(codes[order]).cumcount().to_numpy()
            rank[order] = position
            keep &= rank < int(cap)
        cases = cell.get("cases")
        if cases is not None:
            pool = np.flatnonzero(keep)
            if int(cases) > pool.size:
                raise StudyError(None, [f"cell {cell.id}: only {pool.size} rows to draw "
                                        f"{cases} cases from"])
            keep[:] = False
            keep[rng.choice(pool, size=int(cases), replace=False)] = True
        return np.flatnonzero(keep)

    def draw(self, cell: Cell, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
        rows = self.rows(cell, rng)
        data = self.frame.iloc[rows].reset_index(drop=True)
        if cell.get("outcome", "simulated") == "simulated":
            eta = self.X @ truth.beta() + random_part(self.factors, truth, rng)
            data[self.response] = draw_outcome(eta, truth, rng)[rows]
        return data


# ---- building the population (client side) --------------------------------------------------


def build_population(loaded: LoadedStudy, data_dir: Path | None = None) -> Population:
    """The population of a study, with its base truth, checked against every cell's truth."""
    if loaded.spec is None:
        population: Population = _synthetic(loaded, data_dir)
    else:
        population = _spec_data(loaded, data_dir)
    problems = []
    for cell in loaded.cells:
        try:
            cell_truth(population, cell)
        except StudyError as e:
            problems.extend(e.problems)
    if problems:
        raise StudyError(loaded.path, sorted(set(problems)))
    return population


def _synthetic(loaded: LoadedStudy, data_dir: Path | None) -> SyntheticPopulation:
    study = loaded.study
    formula = loaded.formula()
    parsed = study.model
    mf = parse_formula(formula)
    groups = mf.grouping_factors
    if len(groups) != 1 or ":" in groups[0]:
        raise StudyError(loaded.path, ["model.formula: a synthetic population has one grouping "
                                       f"factor (clusters); this formula has {groups or 'none'}"])
    group = groups[0]
    needed = sorted(v for v in mf.variables() if v not in (mf.response, group))
    missing = [v for v in needed if v not in study.covariates]
    unused = [v for v in study.covariates if v not in needed]
    problems = []
    if missing:
        problems.append(f"covariates: the formula uses {', '.join(missing)}; describe each "
                        "under covariates (e.g. x: {level: observation})")
    if unused:
        problems.append(f"covariates: {', '.join(unused)} are not in the formula {formula!r}")
    if group in study.covariates or mf.response in study.covariates:
        problems.append("covariates: the grouping factor and the response are generated, not "
                        "covariates")
    if problems:
        raise StudyError(loaded.path, problems)
    sizes_like = {}
    for grid in study.grids:
        for size in grid.cluster_size or []:
            if isinstance(size, SizesLike) and size.label() not in sizes_like:
                sizes_like[size.label()] = _real_sizes(size, data_dir, loaded.path)
    pop = SyntheticPopulation(formula=formula, response=mf.response, group=group,
                              layout=Layout((), ()), base_truth={}, link=parsed.link or "",
                              default_family=parsed.family, covariates=dict(study.covariates),
                              sizes_like=sizes_like)
    pilot = pop.frame(np.array([3, 3]), np.random.default_rng(0))
    try:
        pop.layout = Layout.of(build_design(formula, pilot))
    except DesignError as e:
        raise StudyError(loaded.path, [f"model.formula: {e}"]) from None
    pop.base_truth = normalise_truth(study.truth, "truth")
    return pop


def _real_sizes(size: SizesLike, data_dir: Path | None, path: Path | None) -> np.ndarray:
    from harness.datasets import DatasetError, load_dataset

    try:
        frame = load_dataset(size.like, data_dir=data_dir).frame
    except DatasetError as e:
        raise StudyError(path, [f"cluster_size like {size.like}: {e}"]) from None
    if size.cluster not in frame.columns:
        raise StudyError(path, [f"cluster_size like {size.like}: no column {size.cluster!r}"])
    return frame.groupby(size.cluster).size().to_numpy()


def _spec_data(loaded: LoadedStudy, data_dir: Path | None) -> SpecDataPopulation:
    from harness.runner import DataPreparationError, fit_one, prepare_data

    spec = loaded.spec
    assert spec is not None
    study = loaded.study
    try:
        prepared = prepare_data(spec, data_dir)
    except DataPreparationError as e:
        raise StudyError(loaded.path, [f"model.spec: {e}"]) from None
    model = spec.model
    attributes = ModelAttributes.of(model)
    if attributes:
        # the generator draws one unweighted outcome per row from X beta + Z u; a spec whose
        # likelihood has weights, an offset or trials would be fitted as another model
        raise StudyError(loaded.path, [f"model.spec: spec {spec.id} has model attributes "
                                       f"({attributes.describe()}); the generator simulates "
                                       "models without weights, offsets or binomial trials"])
    try:
        design = build_design(model.formula, prepared.frame, spec.factor_columns(),
                              dict(model.reference_level) or None, contrasts=spec.contrasts())
    except DesignError as e:
        raise StudyError(loaded.path, [f"model.spec: {e}"]) from None
    frame = prepared.frame.loc[design.row_index].reset_index(drop=True)
    layout = Layout.of(design)
    base: dict[str, float] = {}
    if study.truth_from:
        fitted = fit_one(spec, study.truth_from, prepared)
        if fitted.status != "ok":
            raise StudyError(loaded.path, [f"truth_from {study.truth_from}: the fit of spec "
                                           f"{spec.id} is {fitted.status}: {fitted.message}"])
        base = fitted_truth(fitted, layout, model.family == "gaussian")
    base.update(normalise_truth(study.truth, "truth"))
    return SpecDataPopulation(
        formula=model.formula, response=design.formula.response, group=design.factors[0].name,
        layout=layout, base_truth=base, link=model.resolved_link, default_family=model.family,
        frame=frame, X=design.X, factors=design.factors, spec_family=model.family)


def fitted_truth(result: FitResult, layout: Layout, gaussian: bool) -> dict[str, float]:
    """A fit's estimates of every parameter of ``layout`` (sd/cor scale)."""
    have = {p.key: p.estimate for p in result.parameters}
    return {k: have[k] for k in layout.base_keys(gaussian) if k in have}
