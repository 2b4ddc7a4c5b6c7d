"""The study file (YAML), validated with pydantic, and its expansion into design cells.

A study is a claim about methods turned into an experiment: a data-generating ``model`` with
``truth`` values, a ``design`` (a grid, or a list of grids whose cells are pooled), the ``fits``
to run on every simulated data set, the ``tests`` whose rejection rates to report, a ``seed`` and
the number of ``replications``. The format is documented in docs/simulate.md; errors name the
file and the key path, as spec errors do.

Two kinds of population:

* **synthetic** (``model.formula`` with ``covariates``): cluster sizes and covariates are drawn
  per replication; the design varies the number of clusters, their sizes (balanced, a range, or
  drawn like a real dataset's), the ICC, effect sizes and the family;
* **a spec's data** (``model.spec``): the rows of a real dataset (the spec's prepared data) are
  subsampled (clusters, cases, a cap on the cluster size) and the outcome is either redrawn from
  the model at the truth (``outcome: simulated``) or kept (``outcome: observed``: then the truth
  is the full-data fit, a finite-population reference). ``truth_from: <engine>`` takes the
  truth from that engine's fit of the spec on its full data ("the fitted values of spec X").

Why every replication's random stream is keyed by ``(seed, cell, replication)``: the same study
gives the same table however many workers run it, in whatever order, and a resumed study
continues the very same streams (:meth:`Cell.seed_sequence`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from harness.estimator import Estimator, EstimatorError
from harness.formula import FormulaError, parse_formula
from harness.keys import KeyFormatError, ParamKey
from harness.names import check_name
from harness.spec import (BACKEND_NAMES, Spec, SpecError, Strict, load_spec, parse_spec,
                          read_yaml)

STUDY_SCHEMA_VERSION = 1
SimFamily = Literal["gaussian", "binomial", "poisson"]
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class StudyError(SpecError):
    """A study that cannot be run; ``str()`` names the file and the key path (the same shape
    as a spec error, and caught wherever one is)."""


# ---- the population ------------------------------------------------------------------------


class Covariate(Strict):
    """One synthetic covariate, drawn per replication (in the order the study lists them).

    ``level: cluster`` draws one value per cluster; ``observation`` one per row, and for a
    normal covariate ``cluster_share`` puts that share of its variance between clusters (so an
    observation-level predictor can be correlated within clusters, as most real ones are).
    """

    level: Literal["observation", "cluster"] = "observation"
    distribution: Literal["normal", "bernoulli", "uniform"] = "normal"
    mean: float = 0.0
    sd: float = Field(default=1.0, gt=0)
    p: float | None = Field(default=None, gt=0, lt=1)
    low: float = 0.0
    high: float = 1.0
    cluster_share: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Covariate":
        if self.distribution == "bernoulli" and self.p is None:
            raise ValueError("a bernoulli covariate needs p (0 < p < 1)")
        if self.distribution != "bernoulli" and self.p is not None:
            raise ValueError("p applies to bernoulli covariates only")
        if self.distribution == "uniform" and not self.high > self.low:
            raise ValueError("a uniform covariate needs high > low")
        if self.cluster_share and (self.level == "cluster" or self.distribution != "normal"):
            raise ValueError("cluster_share applies to observation-level normal covariates only")
        return self


class SizesLike(Strict):
    """Cluster sizes drawn (with replacement) from a real dataset's cluster sizes."""

    like: Name
    cluster: Name

    def label(self) -> str:
        return f"like {self.like}/{self.cluster}"


class SizesRange(Strict):
    """Cluster sizes drawn uniformly from the integers ``min`` .. ``max``."""

    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "SizesRange":
        if self.max < self.min:
            raise ValueError("cluster_size range needs max >= min")
        return self

    def label(self) -> str:
        return f"{self.min}-{self.max}"


All = Literal["all"]
ClusterSize = Annotated[int, Field(ge=1)] | All | SizesLike | SizesRange


class Grid(Strict):
    """One design grid: every combination of the listed values is a cell.

    Dimensions not listed take their default: the model's family, ``outcome: simulated`` and,
    for a spec's data, all clusters, all cases and no cap on the cluster size.
    """

    clusters: list[Annotated[int, Field(ge=1)] | All] | None = Field(default=None, min_length=1)
    cluster_size: list[ClusterSize] | None = Field(default=None, min_length=1)
    cases: list[Annotated[int, Field(ge=2)]] | None = Field(default=None, min_length=1)
    icc: list[Annotated[float, Field(ge=0, lt=1)]] | None = Field(default=None, min_length=1)
    family: list[SimFamily] | None = Field(default=None, min_length=1)
    outcome: list[Literal["simulated", "observed"]] | None = Field(default=None, min_length=1)
    effects: dict[str, list[float]] = Field(
        default_factory=dict, description="truth values to vary: {key: [values]}")

    @field_validator("effects")
    @classmethod
    def _effect_keys(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for key, values in v.items():
            _parse_truth_key(key)
            if not values:
                raise ValueError(f"effects.{key} needs at least one value")
        return v


def _parse_truth_key(text: str) -> ParamKey:
    try:
        key = ParamKey.parse(text)
    except KeyFormatError as e:
        raise ValueError(str(e)) from None
    if key.kind not in ("fixed", "ran_pars"):
        raise ValueError(f"truth key {text!r}: only fixed/<term> and ran_pars/<group>/<scale>__"
                         "<effect> have true values")
    return key


class StudyModel(Strict):
    """The data-generating model: an lme4-style formula, or a spec whose model and data to use."""

    formula: str | None = None
    family: SimFamily = "gaussian"
    link: Literal["identity", "logit", "probit", "log"] | None = None
    spec: str | None = Field(default=None, description="a spec file, relative to the study")

    @model_validator(mode="after")
    def _one_source(self) -> "StudyModel":
        if (self.formula is None) == (self.spec is None):
            raise ValueError("give exactly one of model.formula (a synthetic population) or "
                             "model.spec (a spec's model and data)")
        if self.formula is not None:
            try:
                parse_formula(self.formula)
            except FormulaError as e:
                raise ValueError(f"formula: {e}") from None
        return self


class Fit(Strict):
    """One engine and estimator fitted to every simulated data set.

    ``estimator`` uses the harness's estimator grammar (``REML``, ``ML``, ``OLS``,
    ``Laplace``, ``AGHQ(7)``, ``OLS, cluster-robust SE by g (CR1)``), or maps a family to one:
    a fit runs in exactly the cells whose family it names (a plain label: every family).
    ``formula`` fits another model than the generating one (``y ~ x`` ignores the clusters).
    """

    label: Label
    engine: Literal["native", "lme4", "stata"]
    estimator: str | dict[SimFamily, str]
    formula: str | None = None

    @field_validator("estimator")
    @classmethod
    def _labels_parse(cls, v: str | dict[str, str]) -> str | dict[str, str]:
        for text in ([v] if isinstance(v, str) else list(v.values())):
            model_fields(text)
        return v

    def fingerprint(self) -> str:
        """What this fit's stored results depend on (engine, estimator, formula)."""
        return _digest(self.model_dump(mode="json"))

    def estimator_for(self, family: str) -> str | None:
        if isinstance(self.estimator, str):
            return self.estimator
        return self.estimator.get(family)  # type: ignore[call-overload]


class WaldTest(Strict):
    """A two-sided Wald z test of ``key = h0`` at level ``alpha``: its rejection rate is the
    power where the truth differs from ``h0`` and the size where it equals it. (Not called
    ``null``: YAML reads that key as a null.)"""

    key: str
    h0: float = 0.0
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if ParamKey.parse(v).kind != "fixed":
            raise ValueError("tests apply to fixed effects (fixed/<term>)")
        return v


class SampleSizeVerdict(Strict):
    """Rule of thumb "k clusters of n suffice": judged from coverage and bias per (k, n)."""

    kind: Literal["sample_size"]
    rule: dict[SimFamily, tuple[int, int]] = Field(
        description="family -> (k, n) the rule of thumb names")


class IgnoreClusteringVerdict(Strict):
    """"If ICC < threshold there's no real impact": judged from the fits that ignore the
    clustering against the multilevel ones, per ICC and cluster size."""

    kind: Literal["ignore_clustering"]
    threshold: float = Field(gt=0, lt=1)
    naive: list[Label] = Field(min_length=1, description="fits that ignore the clustering")


class SubsampleVerdict(Strict):
    """"k at 20 or above seems to be getting fairly close": judged from RMSE and coverage of
    subsample fits against the truth, as the number of clusters grows."""

    kind: Literal["subsample"]
    k: int = Field(ge=1, description="the number of clusters the claim names")


Verdict = Annotated[SampleSizeVerdict | IgnoreClusteringVerdict | SubsampleVerdict,
                    Field(discriminator="kind")]


class Study(Strict):
    id: Label
    title: str
    source: str = Field(description="where the claim is made (course slide, lab exercise)")
    claim: str
    description: str | None = None
    seed: int = Field(ge=0, lt=2**63)
    replications: int = Field(ge=1, le=10_000_000)
    batch_size: int | None = Field(default=None, ge=1, le=100_000,
                                   description="replications per Dask task (default: auto)")
    level: float = Field(default=0.95, gt=0, lt=1, description="confidence level of intervals")
    model: StudyModel
    truth: dict[str, float] = Field(default_factory=dict)
    truth_from: Literal["native", "lme4", "stata"] | None = None
    covariates: dict[Name, Covariate] = Field(default_factory=dict)
    design: Grid | list[Grid]
    fits: list[Fit] = Field(min_length=1)
    tests: list[WaldTest] = Field(default_factory=list)
    verdict: Verdict | None = None

    @field_validator("truth")
    @classmethod
    def _truth_keys(cls, v: dict[str, float]) -> dict[str, float]:
        for key, value in v.items():
            _parse_truth_key(key)
            if not math.isfinite(value):
                raise ValueError(f"truth {key}: {value} is not a finite number")
        return v

    @field_validator("covariates")
    @classmethod
    def _covariate_names(cls, v: dict[str, Covariate]) -> dict[str, Covariate]:
        for name in v:
            check_name(name)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Study":
        labels = [f.label for f in self.fits]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"fits: label(s) {', '.join(dup)} are used more than once")
        synthetic = self.model.formula is not None
        for i, grid in enumerate(self.grids):
            where = f"design[{i}]" if isinstance(self.design, list) else "design"
            if synthetic:
                if grid.cases is not None or grid.outcome is not None:
                    raise ValueError(f"{where}: cases and outcome apply to a spec's data "
                                     "(model.spec), not to a synthetic population")
                if "all" in (grid.clusters or []) or "all" in (grid.cluster_size or []):
                    raise ValueError(f"{where}: 'all' applies to a spec's data (model.spec)")
                if grid.clusters is None or grid.cluster_size is None:
                    raise ValueError(f"{where}: a synthetic population needs clusters and "
                                     "cluster_size")
            else:
                if grid.family is not None:
                    raise ValueError(f"{where}: family is the spec's own for a spec's data")
                bad = [s for s in grid.cluster_size or [] if not isinstance(s, int | str)]
                if bad:
                    raise ValueError(f"{where}: for a spec's data cluster_size caps the rows "
                                     "kept per cluster (a number or 'all')")
        if synthetic and self.truth_from:
            raise ValueError("truth_from applies to a spec's data (model.spec)")
        if not synthetic and self.covariates:
            raise ValueError("covariates apply to a synthetic population; a spec's data has "
                             "its own")
        return self

    @property
    def grids(self) -> list[Grid]:
        return self.design if isinstance(self.design, list) else [self.design]

    def fingerprint(self) -> str:
        """What every stored replication depends on: changing it makes them another study's.

        Not included: the replication count (raise it to extend a study), the batch size, the
        design (cells are stored under their own id, so cells can be added), the fits (each is
        stored under its label, checked by :meth:`Fit.fingerprint`, so fits can be added),
        tests and verdicts (computed from stored estimates), and the prose.
        """
        data = self.model_dump(mode="json", include={"seed", "level", "model", "truth",
                                                    "truth_from", "covariates"})
        data["schema"] = STUDY_SCHEMA_VERSION
        return _digest(data)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# ---- estimators of a fit ---------------------------------------------------------------------


def model_fields(estimator_label: str) -> dict[str, Any]:
    """The spec model keys (method, integration, cluster_se) of an estimator label."""
    try:
        est = Estimator.parse(estimator_label)
    except EstimatorError as e:
        raise ValueError(str(e)) from None
    if est.criterion == "GLS" or est.integration in ("mvaghq", "ghq") or est.se == "linearized":
        raise ValueError(f"estimator {estimator_label!r} cannot be fitted from a spec model; use "
                         "ML, REML, OLS, Laplace, AGHQ(<n>) or '..., cluster-robust SE by <g> "
                         "(CR1)'")
    out: dict[str, Any] = {"method": est.criterion}
    if est.integration == "laplace":
        out["integration"] = {"method": "laplace"}
    elif est.integration == "aghq":
        out["integration"] = {"method": "aghq", "points": est.points}
    if est.cluster:
        out["cluster_se"] = est.cluster
    return out


# ---- cells ---------------------------------------------------------------------------------

DIMENSIONS = ("family", "clusters", "cluster_size", "cases", "icc", "outcome")


def value_label(value: Any) -> str:
    """How a design value is printed in cell ids, tables and plots."""
    if isinstance(value, SizesLike | SizesRange):
        return value.label()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Cell:
    """One design point. ``values`` are (dimension, value) pairs in a fixed order; effects are
    dimensions named by their truth key (``fixed/w``)."""

    values: tuple[tuple[str, Any], ...]

    @property
    def id(self) -> str:
        return " ".join(f"{k}={value_label(v)}" for k, v in self.values)

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.values).get(name, default)

    @property
    def entropy(self) -> int:
        """A stable integer from the cell id (the cell's part of every seed)."""
        return int(hashlib.sha256(self.id.encode()).hexdigest()[:16], 16)

    def seed_sequence(self, seed: int, rep: int) -> np.random.SeedSequence:
        """The random stream of replication ``rep``: a function of seed, cell and rep only."""
        return np.random.SeedSequence([seed, self.entropy, rep])

    def labels(self) -> dict[str, str]:
        return {k: value_label(v) for k, v in self.values}


def expand_cells(study: Study) -> list[Cell]:
    """Every cell of every grid, each once, in the order the grids list them."""
    cells: dict[str, Cell] = {}
    for grid in study.grids:
        axes: list[tuple[str, list[Any]]] = []
        for dim in DIMENSIONS:
            values = getattr(grid, dim)
            if values is None:
                values = _default(study, dim)
            if values is not None:
                axes.append((dim, list(values)))
        axes.extend((key, list(values)) for key, values in grid.effects.items())
        for combo in itertools.product(*(v for _, v in axes)):
            cell = Cell(tuple(zip((n for n, _ in axes), combo)))
            cells.setdefault(cell.id, cell)
    return list(cells.values())


def _default(study: Study, dim: str) -> list[Any] | None:
    if dim == "family":
        return [study.model.family] if study.model.formula is not None else None
    if study.model.formula is None and dim in ("clusters", "cluster_size"):
        return ["all"]
    if study.model.formula is None and dim == "outcome":
        return ["simulated"]
    return None


# ---- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedStudy:
    """A validated study with its cells and, for a spec's data, the spec."""

    study: Study
    path: Path | None
    cells: list[Cell]
    spec: Spec | None  # the spec whose model and data the study uses (model.spec)

    @property
    def synthetic(self) -> bool:
        return self.spec is None

    def family_of(self, cell: Cell) -> str:
        if self.spec is not None:
            return self.spec.model.family
        return cell.get("family", self.study.model.family)

    def formula(self) -> str:
        return self.spec.model.formula if self.spec is not None else str(self.study.model.formula)

    def select(self, filters: list[str]) -> "LoadedStudy":
        """Only the cells whose design values match every ``dimension=value`` filter (the
        values as cell ids print them), to run or report part of a large study."""
        wanted = []
        for text in filters:
            name, sep, value = text.partition("=")
            if not sep:
                raise StudyError(self.path, [f"--only {text!r}: write dimension=value, e.g. "
                                             "family=gaussian"])
            wanted.append((name.strip(), value.strip()))
        cells = [c for c in self.cells if all(c.labels().get(n) == v for n, v in wanted)]
        if not cells:
            raise StudyError(self.path, [f"--only {' '.join(filters)} matches no cell; cells "
                                         f"look like: {self.cells[0].id}"])
        return LoadedStudy(self.study, self.path, cells, self.spec)


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            problems.append(f"unknown key '{loc}' (see docs/simulate.md for the study format)")
        elif e["type"] == "missing":
            problems.append(f"missing required key '{loc}'")
        else:
            problems.append(f"key '{loc}': {msg}" if loc else msg)
    return problems


def parse_study(data: Any, path: str | Path | None = None) -> LoadedStudy:
    """Validate a study mapping; a ``model.spec`` path is read relative to the study file."""
    if not isinstance(data, dict):
        raise StudyError(path, ["a study must be a YAML mapping at the top level"])
    try:
        study = Study.model_validate(data)
    except ValidationError as err:
        raise StudyError(path, _format_errors(err)) from None
    spec = None
    if study.model.spec is not None:
        base = Path(path).parent if path else Path.cwd()
        spec_path = (base / study.model.spec).resolve()
        try:
            spec = load_spec(spec_path)
        except SpecError as e:
            raise StudyError(path, [f"model.spec: {e}"]) from None
        problems = _spec_problems(spec)
        if problems:
            raise StudyError(path, problems)
    loaded = LoadedStudy(study, Path(path) if path else None, expand_cells(study), spec)
    problems = fit_problems(loaded)
    if problems:
        raise StudyError(path, problems)
    return loaded


def _spec_problems(spec: Spec) -> list[str]:
    model = spec.model
    problems = []
    if model.family not in ("gaussian", "binomial", "poisson"):
        problems.append(f"model.spec: family {model.family!r} cannot be simulated (gaussian, "
                        "binomial and poisson can)")
    if len(model.parsed.grouping_factors) != 1:
        problems.append("model.spec: a spec's data is subsampled by its one grouping factor; "
                        f"this model has {len(model.parsed.grouping_factors)}")
    if spec.replicate is not None:
        problems.append("model.spec: specs with 'replicate' cannot be subsampled")
    return problems


def load_study(path: str | Path) -> LoadedStudy:
    path = Path(path)
    return parse_study(read_yaml(path, StudyError), path)


# ---- the spec of each fit -------------------------------------------------------------------


def fit_spec(loaded: LoadedStudy, fit: Fit, family: str) -> Spec | None:
    """The harness spec that ``fit`` fits in cells of ``family`` (None: it does not run there).

    The spec is what ``fit_one`` runs: its id is ``<study>/<fit>/<family>``, its model the
    generating model (or the fit's ``formula``) under the fit's estimator, and for a spec's
    data the spec's column types and reference levels.
    """
    label = fit.estimator_for(family)
    if label is None:
        return None
    study = loaded.study
    source = loaded.spec
    model: dict[str, Any] = {"formula": fit.formula or loaded.formula(), "family": family,
                             **model_fields(label)}
    link = source.model.link if source is not None else study.model.link
    if link:
        model["link"] = link
    if source is not None and source.model.reference_level:
        model["reference_level"] = dict(source.model.reference_level)
    data = {"id": f"{study.id}/{fit.label}/{family}", "title": study.title,
            "source": f"simulation study {study.id}", "dataset": "simulated", "model": model,
            "columns": dict(source.columns) if source is not None else {}}
    return parse_spec(data, f"fits[{fit.label}]")


def fit_problems(loaded: LoadedStudy) -> list[str]:
    """Fits whose spec would not load for a family of the design, and families with no fit."""
    problems = []
    families = sorted({loaded.family_of(c) for c in loaded.cells})
    for fit in loaded.study.fits:
        if fit.engine not in BACKEND_NAMES:  # pragma: no cover - the schema restricts it
            problems.append(f"fits[{fit.label}]: unknown engine {fit.engine!r}")
        for family in families:
            try:
                fit_spec(loaded, fit, family)
            except SpecError as e:
                problems.append(f"fits[{fit.label}] in {family} cells: " + "; ".join(e.problems))
    for family in families:
        if not any(f.estimator_for(family) for f in loaded.study.fits):
            problems.append(f"no fit runs in the {family} cells: give a fit an estimator for "
                            f"{family}")
    return problems
