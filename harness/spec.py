"""The declarative model spec (YAML), validated with pydantic.

A spec says everything a backend needs and never leans on a package default: estimation method,
covariance structure (explicit in the formula: ``(1 + x | g)`` is unstructured, ``(1 | g) +
(0 + x | g)`` or ``||`` independent), and integration for GLMMs are always stated. Errors name
the file and the key path (``model.method``) and say what would fix them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.filenames import output_names
from harness.formula import FormulaError, ModelFormula, parse_formula
from harness.safeyaml import YamlError
from harness.safeyaml import load_file as load_yaml_file

Family = Literal["gaussian", "binomial", "poisson", "ordinal", "multinomial"]
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
    formula: str
    family: Family = "gaussian"
    link: Link | None = None
    method: Method
    integration: Integration | None = None
    cluster_se: str | None = Field(
        default=None, description="single-level models: cluster-robust SEs by this column")
    optimizer: str | None = None
    max_iterations: int | None = None
    reference_level: dict[str, Any] = Field(default_factory=dict)

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
        return self

    @property
    def parsed(self) -> ModelFormula:
        return parse_formula(self.formula)

    @property
    def resolved_link(self) -> str:
        return self.link or _DEFAULT_LINK[self.family]

    def method_label(self) -> str:
        if self.family == "gaussian":
            return self.method
        return self.integration.label() if self.integration else "ML"


class Derived(Strict):
    """One derived variable, in a small safe vocabulary (no arbitrary Python).

    Exactly one of the operation keys is given:

    * ``expr``: arithmetic and comparison over columns, e.g. ``"schgend == 2"``,
      ``"10 * agegpt - 40"``, ``"(gcse > -10) + (gcse > -5)"``, ``"isin(health1, [1, 2])"``;
      comparisons give 0/1.
    * ``group_mean`` / ``group_count`` / ``group_first``: by the column(s) in ``by``.
    * ``group_id``: one id per observed combination of the listed columns, numbered 1.. in sorted
      order (Stata's ``egen group``).
    * ``recode``: a mapping ``{old: new}`` applied to ``source``, with ``otherwise``.
    """

    name: str
    expr: str | None = None
    group_mean: str | None = None
    group_count: bool | None = None
    group_first: bool | None = None
    group_id: list[str] | None = None
    by: list[str] | str | None = None
    recode: dict[float, float] | None = None
    source: str | None = None
    otherwise: float | None = None
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
        return self

    @property
    def by_columns(self) -> list[str]:
        if self.by is None:
            return []
        return [self.by] if isinstance(self.by, str) else list(self.by)


ColumnType = Literal["numeric", "factor"]


class Reference(Strict):
    """Values some software printed for this model, with where they were printed.

    ``values`` maps canonical keys to printed numbers. Keys are ``fixed/<term>``,
    ``ran_pars/<group>/<term>`` (e.g. ``ran_pars/school/var__(Intercept)``,
    ``ran_pars/Residual/sd__Observation``), ``threshold/<k>`` or ``stat/<name>`` (``loglik``,
    ``nobs``, ``icc``...). A value is the printed text (quote it to keep trailing zeros) or
    ``{estimate: ..., std_error: ...}``. The printed precision sets the default tolerance: half a
    unit in the last printed digit.
    """

    id: str
    software: str
    version: str | None = None
    source: str
    method: str | None = None
    kind: Literal["printed", "refit"] = "printed"
    note: str | None = None
    values: dict[str, Any]


class KnownDifference(Strict):
    id: str
    explanation: str
    applies_to: list[str] = Field(default_factory=list, description="keys or backends affected")


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
    cluster: str
    new_id: str | None = None


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
    optimizer: str | None = None
    skip: str | None = Field(default=None, description="why this backend cannot fit the spec")
    options: dict[str, Any] = Field(default_factory=dict)


class Spec(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-/]+$")]
    title: str
    source: str
    dataset: str
    description: str | None = None
    derive: list[Derived] = Field(default_factory=list)
    columns: dict[str, ColumnType] = Field(default_factory=dict)
    subset: str | None = None
    replicate: Replicate | None = None
    model: Model
    backends: dict[Literal["native", "lme4", "stata"], BackendSettings] = Field(default_factory=dict)
    references: list[Reference] = Field(default_factory=list)
    tolerances: dict[str, float] = Field(default_factory=dict)
    known_differences: list[KnownDifference] = Field(default_factory=list)
    known_issues: list[KnownIssue] = Field(default_factory=list)
    cross_checks: list[CrossCheck] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    def model_for(self, backend: str) -> Model:
        """The model as ``backend`` should fit it, with that backend's overrides applied."""
        settings = self.backends.get(backend)  # type: ignore[call-overload]
        if settings is None:
            return self.model
        updates = {k: v for k, v in (("formula", settings.formula), ("method", settings.method),
                                     ("integration", settings.integration),
                                     ("optimizer", settings.optimizer)) if v is not None}
        if not updates:
            return self.model
        return Model.model_validate({**self.model.model_dump(), **updates})

    def skip_reason(self, backend: str) -> str | None:
        settings = self.backends.get(backend)  # type: ignore[call-overload]
        return settings.skip if settings else None


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            problems.append(f"unknown key '{loc}' (check the spelling; see docs/spec-format.md)")
        elif e["type"] == "missing":
            problems.append(f"missing required key '{loc}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"key '{loc}': {msg}")
    return problems


def parse_spec(data: Any, path: str | Path | None = None) -> Spec:
    if not isinstance(data, dict):
        raise SpecError(path, ["a spec must be a YAML mapping (key: value pairs) at the top level"])
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(path, _format_errors(err)) from None


def load_spec(path: str | Path) -> Spec:
    """Read and validate one spec file; every problem is a :class:`SpecError` naming the file.

    The YAML is read within the bounds of :mod:`harness.safeyaml` (file size, aliases, expanded
    size), because a spec is often someone else's text.
    """
    path = Path(path)
    try:
        data = load_yaml_file(path)
    except YamlError as e:
        raise SpecError(path, [str(e).removeprefix(f"{path}: ")]) from None
    return parse_spec(data, path)


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
