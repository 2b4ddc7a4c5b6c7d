"""The declarative model spec (YAML), validated with pydantic.

A spec says everything a backend needs and never leans on a package default: estimation method,
covariance structure (explicit in the formula: ``(1 + x | g)`` is unstructured, ``(1 | g) +
(0 + x | g)`` or ``||`` independent), and integration for GLMMs are always stated. Errors name
the file and the key path (``model.method``) and say what would fix them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, FiniteFloat, PrivateAttr,
                      ValidationError, field_validator, model_validator)

from harness.estimator import Estimator, EstimatorError
from harness.filenames import output_names
from harness.formula import FormulaError, ModelFormula, parse_formula
from harness.names import check_name
from harness.options import (ColumnName, Lme4Options, NativeOptions, Optimizer, StataOptions,
                             lme4_problems, native_problems, r_function)
from harness.safeyaml import YamlError
from harness.safeyaml import load_file as load_yaml_file

Family = Literal["gaussian", "binomial", "poisson", "ordinal", "multinomial"]
ReferenceValue = Annotated[str, AfterValidator(check_name)] | int | float
RecodeKey = FiniteFloat | Annotated[str, AfterValidator(check_name)]
"""An old value of a recode: a number, or the text of a text column."""
Link = Literal["identity", "logit", "probit", "log"]
Method = Literal["ML", "REML", "OLS"]

_DEFAULT_LINK: dict[str, str] = {"gaussian": "identity", "binomial": "logit", "poisson": "log",
                                 "ordinal": "logit", "multinomial": "logit"}
_ALLOWED_LINKS: dict[str, set[str]] = {"gaussian": {"identity"}, "binomial": {"logit", "probit"},
                                       "poisson": {"log"}, "ordinal": {"logit", "probit"},
                                       "multinomial": {"logit"}}


class SpecError(ValueError):
    """A spec that cannot be used; ``str()`` names the file and key path."""

    def __init__(self, path: str | Path | None, problems: list[str]):
        self.path = str(path) if path else "<spec>"
        self.problems = problems
        super().__init__(f"{self.path}: " + "; ".join(problems))

    @classmethod
    def several(cls, problems: list[str]) -> "SpecError":
        """The problems of several files, each of which already names its file: one a line."""
        err = cls(None, problems)
        err.args = ("\n".join(problems),)
        return err


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Integration(Strict):
    """How a GLMM integrates over the random effects.

    ``laplace`` is lme4's glmer default (nAGQ = 1); ``aghq`` with ``points`` is adaptive
    Gauss-Hermite quadrature (glmer nAGQ = n, Stata mvaghermite with intpoints(n)).
    """

    method: Literal["laplace", "aghq"]
    points: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _points_match(self) -> "Integration":
        if self.method == "laplace" and self.points != 1:
            raise ValueError("laplace uses exactly 1 point; use method: aghq for more")
        if self.method == "aghq" and self.points < 2:
            raise ValueError("aghq needs points >= 2 (1 point is the laplace method)")
        return self

    def label(self) -> str:
        return "Laplace" if self.method == "laplace" else f"AGHQ({self.points})"


class Model(Strict):
    """The model every backend fits: formula, family, estimator and model attributes.

    ``weights`` (R's prior weights) and ``offset`` (a column added to the linear predictor)
    are model attributes, as are ``offset(...)`` terms and a ``cbind(successes, failures)`` or
    ``successes/trials`` response in the formula; what each means per family and per engine is
    stated once, in :mod:`harness.attributes`.
    """

    formula: str
    family: Family = "gaussian"
    link: Link | None = None
    method: Method
    integration: Integration | None = None
    weights: ColumnName | None = Field(
        default=None, description="prior weights (R's weights=): see harness/attributes.py")
    offset: ColumnName | None = Field(
        default=None, description="a column added to the linear predictor, coefficient 1")
    cluster_se: ColumnName | None = Field(
        default=None, description="single-level models: cluster-robust SEs by this column")
    optimizer: Optimizer | None = None
    max_iterations: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    reference_level: dict[ColumnName, ReferenceValue] = Field(default_factory=dict)

    @field_validator("formula")
    @classmethod
    def _formula_parses(cls, v: str) -> str:
        try:
            parse_formula(v)
        except FormulaError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Model":
        f = parse_formula(self.formula)
        link = self.link or _DEFAULT_LINK[self.family]
        if link not in _ALLOWED_LINKS[self.family]:
            raise ValueError(f"link {link!r} is not available for family {self.family!r} "
                             f"(choose from {sorted(_ALLOWED_LINKS[self.family])})")
        if self.family == "gaussian":
            if self.integration is not None:
                raise ValueError("integration applies to non-gaussian families only")
            if not f.has_random and self.method == "REML":
                raise ValueError("a single-level gaussian model is fitted by OLS or ML, not REML")
            if f.has_random and self.method == "OLS":
                raise ValueError("a model with random effects is fitted by ML or REML, not OLS")
        else:
            if self.method != "ML":
                raise ValueError(f"family {self.family!r} is fitted by ML (method: ML)")
            if f.has_random and self.integration is None:
                raise ValueError("a GLMM must state its integration, e.g. "
                                 "{method: laplace} or {method: aghq, points: 7}")
        if self.cluster_se and f.has_random:
            raise ValueError("cluster_se applies to single-level models only")
        if f.binomial is not None:
            written = f.binomial.to_r()
            if self.family != "binomial":
                raise ValueError(f"the response {written} counts successes out of trials, "
                                 f"which needs family: binomial (not {self.family!r})")
            if f.binomial.form == "proportion" and self.weights:
                raise ValueError(
                    f"the response {written} with model.weights is ambiguous: R reads y/n with "
                    "weights = n as proportions whose weights are the trials; write "
                    "cbind(successes, failures) to give prior weights as well")
        return self

    def columns(self) -> set[str]:
        """Every data column the model reads: the formula's variables and the attributes'."""
        return self.parsed.variables() | {c for c in (self.weights, self.offset) if c}

    @property
    def parsed(self) -> ModelFormula:
        return parse_formula(self.formula)

    @property
    def resolved_link(self) -> str:
        return self.link or _DEFAULT_LINK[self.family]

    def method_label(self) -> str:
        return self.estimator().estimates_label()

    def estimator(self) -> Estimator:
        """What the spec asks for. A backend may fit a variant (Stata's quadrature is always
        mean-variance adaptive) and records what it did on its result."""
        se = {"se": "CR1", "cluster": self.cluster_se} if self.cluster_se else {}
        if self.integration is None or not self.parsed.has_random:
            return Estimator(self.method, **se)
        if self.integration.method == "laplace":
            return Estimator("ML", "laplace", 1, **se)
        return Estimator("ML", "aghq", self.integration.points, **se)


class Derived(Strict):
    """One derived variable, in a small safe vocabulary (no arbitrary Python).

    Exactly one of the operation keys is given:

    * ``expr``: arithmetic and comparison over columns, e.g. ``"schgend == 2"``,
      ``"10 * agegpt - 40"``, ``"(gcse > -10) + (gcse > -5)"``, ``"isin(health1, [1, 2])"``;
      comparisons give 0/1.
    * ``group_mean`` / ``group_count`` / ``group_first``: by the column(s) in ``by``.
    * ``group_id``: one id per observed combination of the listed columns, numbered 1.. in sorted
      order (Stata's ``egen group``).
    * ``recode``: a mapping ``{old: new}`` applied to ``source``, with ``otherwise``; the old
      values are numbers, or text for a text column (``{Y: 1, N: 0}``: quote numbers meant as
      text, ``{"1": 0}``), never both; the new values are numbers.
    """

    name: ColumnName
    expr: str | None = None
    group_mean: ColumnName | None = None
    group_count: bool | None = None
    group_first: bool | None = None
    group_id: list[ColumnName] | None = None
    by: list[ColumnName] | ColumnName | None = None
    recode: dict[RecodeKey, FiniteFloat] | None = None
    source: ColumnName | None = None
    otherwise: FiniteFloat | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_operation(self) -> "Derived":
        ops = [k for k in ("expr", "group_mean", "group_count", "group_first", "group_id", "recode")
               if getattr(self, k) not in (None, False)]
        if len(ops) != 1:
            raise ValueError(f"derived variable {self.name!r} needs exactly one of expr, "
                             f"group_mean, group_count, group_first, group_id, recode (got "
                             f"{ops or 'none'})")
        if ops[0] in ("group_mean", "group_count", "group_first") and not self.by:
            raise ValueError(f"{ops[0]} for {self.name!r} needs 'by: <cluster column>'")
        if ops[0] == "recode" and not self.source:
            raise ValueError(f"recode for {self.name!r} needs 'source: <column>'")
        if self.recode and len({isinstance(k, str) for k in self.recode}) > 1:
            raise ValueError(f"recode for {self.name!r} mixes text and numbers as old values "
                             f"({', '.join(map(repr, self.recode))}); a column holds one or the "
                             "other (quote numbers that are text: \"1\": 0)")
        return self

    def recodes_text(self) -> bool:
        """Whether the recode maps text values (``{Y: 1, N: 0}``)."""
        return bool(self.recode) and all(isinstance(k, str) for k in self.recode)

    @property
    def by_columns(self) -> list[str]:
        if self.by is None:
            return []
        return [self.by] if isinstance(self.by, str) else list(self.by)


ColumnType = Literal["numeric", "factor"]
Contrasts = Literal["treatment", "sum", "helmert", "sdif"]
"""How a factor is coded where R codes it by contrasts: R's ``contr.treatment`` (the
default), ``contr.sum``, ``contr.helmert`` and MASS's ``contr.sdif`` (successive differences)."""


class ColumnSpec(Strict):
    """A column's type (``columns: {x: factor}`` is short for ``{x: {type: factor}}``) and, for a
    factor, its coding: ``{type: factor, contrasts: sum}`` codes it by sum-to-zero contrasts."""

    type: ColumnType
    contrasts: Contrasts | None = None

    @model_validator(mode="after")
    def _factor_only(self) -> "ColumnSpec":
        if self.contrasts is not None and self.type != "factor":
            raise ValueError("contrasts apply to factor columns only (type: factor)")
        return self


class Reference(Strict):
    """Values some software printed for this model, with where they were printed.

    ``values`` maps canonical keys to printed numbers. Keys are ``fixed/<term>``,
    ``ran_pars/<group>/<term>`` (e.g. ``ran_pars/school/var__(Intercept)``,
    ``ran_pars/Residual/sd__Observation``), ``threshold/<k>`` or ``stat/<name>`` (``loglik``,
    ``nobs``, ``icc``...). A value is the printed text (quote it to keep trailing zeros) or
    ``{estimate: ..., std_error: ...}``, optionally with a printed interval (``ci_lower``,
    ``ci_upper`` and its convention ``ci: wald/log/z``) and test (``df``, ``p_value``,
    ``df_method``; harness/references.py). The printed precision sets the default tolerance: half a
    unit in the last printed digit. Every key is checked against the parameters the model will
    have before anything is fitted (harness/model_keys.py): a key that cannot exist is an error.

    ``method`` is the estimator that printed the numbers, in the grammar of
    :meth:`harness.estimator.Estimator.label` (``ML``, ``REML``, ``Laplace``, ``AGHQ(7)``,
    ``MVAGHQ(7)``, ``OLS, cluster-robust SE by school (CR1)``...). Without it the reference is
    taken to be printed by the spec's own model and estimator.
    """

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")]
    software: str
    version: str | None = None
    source: str
    method: str | None = None
    kind: Literal["printed", "refit"] = "printed"
    note: str | None = None
    values: dict[str, Any]

    @field_validator("method")
    @classmethod
    def _method_parses(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Estimator.parse(v)
            except EstimatorError as e:
                raise ValueError(str(e)) from None
        return v


class Bound(Strict):
    """How large a difference a known difference may explain: relative and/or absolute."""

    relative: float | None = Field(default=None, gt=0)
    absolute: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> "Bound":
        if self.relative is None and self.absolute is None:
            raise ValueError("give relative and/or absolute")
        return self

    def allows(self, a: float, b: float) -> bool:
        limit = max(self.relative * max(abs(a), abs(b)) if self.relative else 0.0,
                    self.absolute or 0.0)
        return abs(a - b) <= limit


class AppliesTo(Strict):
    """Which cells a spec-level known difference may explain: checks that involve one of
    ``sources`` (backend names, or ``ref:<id>`` for a reference of this spec) and whose key is
    one of ``keys`` (exact keys, globs such as ``ran_pars/school/*``, or quantity classes such as
    ``fixed_se``; see harness/tolerances.py)."""

    sources: list[str] = Field(min_length=1)
    keys: list[str] = Field(min_length=1)


class KnownDifference(Strict):
    """A difference this spec knows about, scoped and bounded so that it explains only itself.

    Exactly one of ``expected`` (the value the reference should have printed, e.g. the course's
    slip 4659 for 4059: the cell is explained only when the engine matches ``expected`` at its
    printed precision) or ``max_difference`` (the largest difference the measured cause allows,
    with the measurement in ``measured``) must be given.
    """

    id: str
    explanation: str
    applies_to: AppliesTo
    expected: str | None = None
    max_difference: Bound | None = None
    measured: str | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "KnownDifference":
        if (self.expected is None) == (self.max_difference is None):
            raise ValueError(f"known difference {self.id!r} needs exactly one of 'expected' (the "
                             "value the reference should have been) or 'max_difference' (the "
                             "bound its measured cause allows); prose that explains no cell "
                             "belongs under 'notes'")
        if self.max_difference is not None and not self.measured:
            raise ValueError(f"known difference {self.id!r}: max_difference needs 'measured' "
                             "(the measurement that justifies the bound)")
        return self


class Note(Strict):
    """Prose for the report: background, a catalogue pitfall that applies; explains no cell."""

    id: str
    text: str


class KnownIssue(Strict):
    id: str
    description: str
    effect: str | None = None


class Replicate(Strict):
    """Stack ``times`` copies of the data (the course's upscaled GCSE files).

    With ``new_id`` each copy becomes its own set of clusters: ``new_id = cluster * 100000 +
    copy`` (copies numbered 1..times), as the course's ``school2``. Without it the copies are
    pooled into the original clusters.
    """

    times: int = Field(ge=2, le=1000)
    cluster: ColumnName
    new_id: ColumnName | None = None


class CrossCheck(Strict):
    """A check that involves another spec's results.

    * ``lr_test``: likelihood-ratio test of this spec against the nested spec ``against``; gives
      ``stat/lr/<against>/chi2``, ``.../df`` and ``.../p`` for references. Stated as REML or ML
      from the fits; a REML test between different fixed parts is reported as invalid.
    * ``replication``: this spec refits spec ``base`` on its data replicated ``times`` times with
      each copy its own clusters. Exact under ML: log-likelihood = times x base, estimates equal,
      SEs shrink by sqrt(times).
    """

    type: Literal["lr_test", "replication"]
    against: str | None = None
    base: str | None = None
    times: int | None = None

    @model_validator(mode="after")
    def _fields(self) -> "CrossCheck":
        if self.type == "lr_test" and not self.against:
            raise ValueError("lr_test needs 'against: <spec id>'")
        if self.type == "replication" and not (self.base and self.times):
            raise ValueError("replication needs 'base: <spec id>' and 'times: <n>'")
        return self


class BackendSettings(Strict):
    """Per-backend overrides, for where the course used different settings in each package."""

    formula: str | None = None
    method: Method | None = None
    integration: Integration | None = None
    optimizer: Optimizer | None = None
    skip: str | None = Field(default=None, description="why this backend cannot fit the spec")


class NativeSettings(BackendSettings):
    options: NativeOptions = Field(default_factory=NativeOptions)


class Lme4Settings(BackendSettings):
    options: Lme4Options = Field(default_factory=Lme4Options)


class StataSettings(BackendSettings):
    options: StataOptions = Field(default_factory=StataOptions)


class GlmmtmbSettings(BackendSettings):
    """glmmTMB has no options of its own here (its call: backends/glmmtmb/translate.py)."""


BackendName = Literal["native", "lme4", "stata", "glmmtmb"]
BACKEND_NAMES: tuple[BackendName, ...] = ("native", "lme4", "stata", "glmmtmb")


class Backends(Strict):
    """``backends:`` of a spec, each backend with its own typed options.

    Reads like the mapping it is in YAML: ``"lme4" in spec.backends``, ``spec.backends["lme4"]``,
    ``spec.backends.get(name)`` and ``spec.backends.items()`` see only the backends the spec
    mentions.
    """

    native: NativeSettings | None = None
    lme4: Lme4Settings | None = None
    stata: StataSettings | None = None
    glmmtmb: GlmmtmbSettings | None = None

    def get(self, name: str) -> BackendSettings | None:
        return getattr(self, name) if name in BACKEND_NAMES else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> BackendSettings:
        settings = self.get(name)
        if settings is None:
            raise KeyError(name)
        return settings

    def items(self) -> list[tuple[str, BackendSettings]]:
        return [(n, s) for n in BACKEND_NAMES if (s := self.get(n)) is not None]


class Spec(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-/]+$")]
    title: str
    source: str
    dataset: ColumnName = Field(description="a registry name or a data file's path")
    description: str | None = None
    derive: list[Derived] = Field(default_factory=list)
    columns: dict[ColumnName, ColumnSpec] = Field(default_factory=dict)
    subset: str | None = None
    replicate: Replicate | None = None
    model: Model
    backends: Backends = Field(default_factory=Backends)
    references: list[Reference] = Field(default_factory=list)
    tolerances: dict[str, float] = Field(default_factory=dict)
    known_differences: list[KnownDifference] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    known_issues: list[KnownIssue] = Field(default_factory=list)
    cross_checks: list[CrossCheck] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def folder(self) -> Path | None:
        """The folder of the spec's file (None for a spec not read from a file): a relative
        ``dataset`` path is read from there, not from wherever the harness was started."""
        return self._folder

    @model_validator(mode="after")
    def _options_apply(self) -> "Spec":
        """Options a backend could not honour for this model are errors, not silent drops."""
        problems: list[str] = []
        lme4 = self.backends.lme4 or Lme4Settings()
        model = self.model_for("lme4")
        key = "backends.lme4.optimizer" if lme4.optimizer else "model.optimizer"
        fn = r_function(model.family, model.parsed.has_random, model.method)
        problems += lme4_problems(lme4.options, model.optimizer, key, fn)
        if self.backends.native is not None:
            model = self.model_for("native")
            problems += native_problems(self.backends.native.options, model.family,
                                        model.parsed.has_random)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def model_for(self, backend: str) -> Model:
        """The model as ``backend`` should fit it, with that backend's overrides applied."""
        settings = self.backends.get(backend)
        if settings is None:
            return self.model
        updates = {k: v for k, v in (("formula", settings.formula), ("method", settings.method),
                                     ("integration", settings.integration),
                                     ("optimizer", settings.optimizer)) if v is not None}
        if not updates:
            return self.model
        return Model.model_validate({**self.model.model_dump(), **updates})

    @model_validator(mode="after")
    def _known_difference_sources(self) -> "Spec":
        refs = {f"ref:{r.id}" for r in self.references}
        for kd in self.known_differences:
            for src in kd.applies_to.sources:
                if src not in refs and src not in BACKEND_NAMES:
                    raise ValueError(
                        f"known difference {kd.id!r}: source {src!r} is neither a backend "
                        f"({', '.join(BACKEND_NAMES)}) nor a reference of this spec "
                        f"({', '.join(sorted(refs)) or 'none'}; write references as ref:<id>)")
        return self

    def skip_reason(self, backend: str) -> str | None:
        settings = self.backends.get(backend)
        return settings.skip if settings else None

    @field_validator("columns", mode="before")
    @classmethod
    def _short_column_types(cls, v: Any) -> Any:
        """``x: factor`` is short for ``x: {type: factor}``: one form inside the harness."""
        if isinstance(v, dict):
            return {k: {"type": t} if isinstance(t, str) else t for k, t in v.items()}
        return v

    def column_type(self, name: str) -> ColumnType | None:
        """``factor`` or ``numeric`` as ``columns:`` declares ``name`` (None: not declared)."""
        declared = self.columns.get(name)
        return declared.type if declared is not None else None

    def factor_columns(self) -> list[str]:
        """The columns declared factors (``columns: {x: factor}``), sorted."""
        return sorted(c for c in self.columns if self.column_type(c) == "factor")

    def contrasts(self) -> dict[str, str]:
        """Factor column -> its contrasts, for the columns that state other than treatment."""
        return {c: d.contrasts for c, d in sorted(self.columns.items())
                if d.contrasts not in (None, "treatment")}


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            known = _known_keys(e["loc"][:-1])
            hint = f"known keys here: {', '.join(known)}" if known else "check the spelling"
            problems.append(f"unknown key '{loc}' ({hint}; see docs/spec-format.md)")
        elif e["type"] == "missing":
            problems.append(f"missing required key '{loc}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"key '{loc}': {msg}" if loc else msg)
    return problems


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the spec schema accepts at ``loc`` (for 'unknown key' messages)."""
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            if isinstance(part, int):
                continue
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = _model_in(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``list[X]`` or ``X`` (None if there is none)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def parse_spec(data: Any, path: str | Path | None = None) -> Spec:
    if not isinstance(data, dict):
        raise SpecError(path, ["a spec must be a YAML mapping (key: value pairs) at the top level"])
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(path, _format_errors(err)) from None


def read_yaml(path: Path, error: type[SpecError] = SpecError) -> Any:
    """A YAML file's content, read within the bounds of :mod:`harness.safeyaml` (file size,
    aliases, expanded size), because a spec or a simulation study is often someone else's text;
    unreadable or invalid files raise ``error`` naming the file (specs raise SpecError, the
    studies of harness/simulate their own subclass)."""
    try:
        return load_yaml_file(path)
    except YamlError as e:
        raise error(path, [str(e).removeprefix(f"{path}: ")]) from None


def load_spec(path: str | Path) -> Spec:
    """Read and validate one spec file; every problem is a :class:`SpecError` naming the file.
    Dataset paths in the spec are relative to its folder (``spec._folder``)."""
    path = Path(path)
    spec = parse_spec(read_yaml(path), path)
    spec._folder = path.resolve().parent
    return spec


def load_specs(paths: list[str | Path]) -> list[tuple[Path, Spec]]:
    """Load specs from files and folders (recursively, ``*.yaml``/``*.yml``), sorted by path.

    Every broken spec is reported, not just the first. Two specs may not share an id, nor ids
    that would write the same file (a report page, a results folder, a stored Stata result:
    ``a/b`` and ``a_b`` both become ``a_b.html``), because one would silently replace the other.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml"))))
        elif p.exists():
            files.append(p)
        else:
            raise SpecError(p, ["no such file or folder"])
    specs, problems = [], []
    for f in files:
        try:
            specs.append((f, load_spec(f)))
        except SpecError as e:
            problems.append(str(e))
    problems += id_collisions(specs)
    if problems:
        raise SpecError.several(problems)
    return specs


def id_collisions(specs: list[tuple[Path, Spec]]) -> list[str]:
    """Specs whose ids are equal or map to the same output file name (see harness/filenames)."""
    problems = []
    seen: dict[str, tuple[Path, str]] = {}
    for f, s in specs:
        for kind, name in output_names(s.id).items():
            other = seen.get(f"{kind}:{name.casefold()}")
            if other is None:
                seen[f"{kind}:{name.casefold()}"] = (f, s.id)
                continue
            if other[1] == s.id:
                problems.append(f"{f}: id '{s.id}' is already used by {other[0]}")
            else:
                problems.append(f"{f}: id '{s.id}' and id '{other[1]}' of {other[0]} would "
                                f"write the same {kind} {name!r}; rename one of them")
            break
    return problems
