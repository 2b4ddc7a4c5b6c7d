"""The canonical fit result that every backend returns.

Other tools read the JSON form of this (``mlm-harness fit --json``, the per-spec result files of a
report), so the top-level keys and the record keys are a contract: ``parameters`` (records with
``effect``, ``group``, ``term``, ``estimate``, ``std_error``), ``statistics`` (``nobs``,
``ngroups``, ``loglik``, ``reml_criterion``, ``deviance``, ``aic``, ``bic``, ``df``),
``random_effects``, ``diagnostics``, ``provenance``, ``timings``, ``estimator`` (the typed
record of harness/estimator.py; ``provenance.method`` is its label), ``intervals`` (confidence
intervals, :class:`Interval`) and ``tests`` (fixed-effect tests with their denominator df,
:class:`FixedTest`). Add keys; never rename them.

A ``std_error`` of a ``ran_pars`` row is on that row's own scale (the SE of ``var__x`` is the SE
of the variance, of ``sd__x`` the SE of the sd); SEs on Stata's log-sd and atanh scales are
carried by the intervals formed on those scales (``Interval.std_error``).

Parameter naming follows broom.mixed: ``effect`` is ``fixed`` or ``ran_pars``; random-effect
variance parameters are named ``sd__(Intercept)``, ``cor__(Intercept).lrt``, ``var__lrt``,
``cov__(Intercept).lrt`` within their grouping factor, and the residual is ``sd__Observation`` in
group ``Residual``. Every backend reports all four scales (sd, cor, var, cov) so a reference printed
on any scale lines up without conversion code in the comparison.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.estimator import Estimator
from harness.keys import ParamKey

SCHEMA_VERSION = 1

Status = Literal["ok", "error", "unavailable", "not_estimable", "pending"]


@dataclass(frozen=True)
class Parameter:
    """One row of the long parameter table."""

    effect: Literal["fixed", "ran_pars", "threshold"]
    group: str | None
    term: str
    estimate: float
    std_error: float | None = None

    @property
    def param_key(self) -> ParamKey:
        """The canonical key that aligns this row across backends (harness/keys.py)."""
        if self.effect == "ran_pars":
            return ParamKey("ran_pars", self.group, self.term)
        return ParamKey(self.effect, None, self.term)

    @property
    def key(self) -> str:
        return str(self.param_key)


@dataclass(frozen=True)
class RandomEffect:
    """A conditional mode (or posterior mean) of one random effect for one group level."""

    group: str
    level: str
    term: str
    estimate: float
    std_error: float | None = None


IntervalMethod = Literal["wald", "profile"]
#: the scale a Wald interval is formed on: the key's own (``natural``), ``log`` (log sd, and
#: so log variance: Stata's ``lns``) or ``atanh`` (a correlation: Stata's ``atr``)
IntervalScale = Literal["natural", "log", "atanh"]
INTERVAL_METHODS = ("wald", "profile")
INTERVAL_SCALES = ("natural", "log", "atanh")
DF_METHODS = ("satterthwaite", "kenward-roger", "residual", "z")


@dataclass(frozen=True)
class Interval:
    """One confidence interval of a canonical key, in that key's units.

    ``method`` is ``wald`` or ``profile``; a Wald interval is ``estimate +/- q * std_error`` on
    ``scale`` (``natural``: the key's own; ``log``: log sd or log variance; ``atanh``: Fisher's
    z of a correlation), mapped back to the key's units. ``std_error`` is the SE on that scale
    (None for a profile interval) and ``distribution`` the reference of ``q`` (``z``, or ``t``
    with ``df``). Different (method, scale, distribution) are different quantities.
    """

    key: str
    method: IntervalMethod
    scale: IntervalScale
    level: float
    lower: float
    upper: float
    std_error: float | None = None
    distribution: str = "z"
    df: float | None = None

    @property
    def param_key(self) -> ParamKey:
        return ParamKey.parse(self.key)

    @property
    def quantity(self) -> str:
        """Its name among a key's comparable quantities: ``ci:wald/log/z`` (the bounds are
        ``ci:wald/log/z:lower`` and ``...:upper``; see :func:`inference_quantities`)."""
        return f"{CI_PREFIX}{self.method}/{self.scale}/{self.distribution}"


@dataclass(frozen=True)
class FixedTest:
    """A test of one fixed effect against 0: ``statistic = estimate / std_error`` with the
    reference distribution t(``df``) for ``df_method`` satterthwaite / kenward-roger / residual,
    or N(0, 1) for ``z`` (``df`` None). ``std_error`` is the one the test uses (for
    Kenward-Roger the adjusted one)."""

    term: str
    df_method: str
    df: float | None
    statistic: float
    p_value: float
    std_error: float | None = None


CI_PREFIX, DF_PREFIX, P_PREFIX = "ci:", "df:", "p:"


def inference_quantities(intervals: list[Interval], tests: list[FixedTest]
                         ) -> dict[ParamKey, dict[str, float]]:
    """The comparable numbers of a result's intervals and tests, by key and quantity name:
    ``ci:<method>/<scale>/<distribution>:lower|upper``, ``df:<df_method>`` and
    ``p:<df_method>`` (a fixed effect's). Different conventions get different names, so the
    comparison pairs only like with like."""
    out: dict[ParamKey, dict[str, float]] = {}
    for iv in intervals:
        entry = out.setdefault(iv.param_key, {})
        entry[f"{iv.quantity}:lower"] = iv.lower
        entry[f"{iv.quantity}:upper"] = iv.upper
    for t in tests:
        entry = out.setdefault(ParamKey.fixed(t.term), {})
        if t.df is not None:
            entry[f"{DF_PREFIX}{t.df_method}"] = t.df
        entry[f"{P_PREFIX}{t.df_method}"] = t.p_value
    return out


@dataclass
class Statistics:
    """Fit statistics. ``deviance`` is always -2 x ``loglik`` for non-REML fits (what lme4's
    ``deviance()`` returns for ML mixed models; not R's residual sum of squares for ``lm``) and
    None for REML fits, which report ``reml_criterion`` instead."""

    nobs: int | None = None
    ngroups: dict[str, int] = field(default_factory=dict)
    loglik: float | None = None
    reml_criterion: float | None = None
    deviance: float | None = None
    aic: float | None = None
    bic: float | None = None
    df: int | None = None
    nobs_dropped: int = 0


@dataclass
class Diagnostics:
    converged: bool | None = None
    singular: bool | None = None
    max_abs_gradient: float | None = None
    warnings: list[str] = field(default_factory=list)
    optimizer: str | None = None
    evaluations: int | None = None
    messages: list[str] = field(default_factory=list)


@dataclass
class Provenance:
    backend: str = ""
    mode: str = "live"  # live | batch | stored
    software: dict[str, str] = field(default_factory=dict)
    platform: str = ""
    data_sha256: str | None = None
    method: str | None = None  # ML | REML | OLS | Laplace | AGHQ(7) ...
    call: str | None = None  # the exact call or command that was run
    script: str | None = None  # a self-contained script that reproduces the fit
    source: str | None = None  # for stored results: where the numbers come from
    date: str | None = None


@dataclass
class FitResult:
    """Everything one backend says about one model, in one canonical form."""

    spec_id: str
    backend: str
    status: Status = "ok"
    message: str = ""
    parameters: list[Parameter] = field(default_factory=list)
    statistics: Statistics = field(default_factory=Statistics)
    random_effects: list[RandomEffect] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    provenance: Provenance = field(default_factory=Provenance)
    timings: dict[str, float] = field(default_factory=dict)
    #: what was estimated (harness/estimator.py); ``provenance.method`` is its label
    estimator: Estimator | None = None
    intervals: list[Interval] = field(default_factory=list)
    tests: list[FixedTest] = field(default_factory=list)

    def set_estimator(self, estimator: Estimator) -> "FitResult":
        """Record what was estimated; the label users see is derived from it."""
        self.estimator = estimator
        self.provenance.method = estimator.label()
        return self

    # ---- construction helpers -------------------------------------------------------------
    @classmethod
    def failed(cls, spec_id: str, backend: str, status: Status, message: str) -> "FitResult":
        """A result that carries no numbers, only why (and how to fix it)."""
        return cls(spec_id=spec_id, backend=backend, status=status, message=message,
                   provenance=Provenance(backend=backend))

    # ---- lookups ----------------------------------------------------------------------------
    def parameter_map(self) -> dict[str, Parameter]:
        return {p.key: p for p in self.parameters}

    def fixed_effects(self) -> dict[str, float]:
        return {p.term: p.estimate for p in self.parameters if p.effect == "fixed"}

    # ---- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["schema_version"] = SCHEMA_VERSION
        return _finite_or_none(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FitResult":
        return cls(
            spec_id=d["spec_id"],
            backend=d["backend"],
            status=d.get("status", "ok"),
            message=d.get("message", ""),
            parameters=[Parameter(**p) for p in d.get("parameters", [])],
            statistics=Statistics(**d.get("statistics", {})),
            random_effects=[RandomEffect(**r) for r in d.get("random_effects", [])],
            diagnostics=Diagnostics(**d.get("diagnostics", {})),
            provenance=Provenance(**d.get("provenance", {})),
            timings=dict(d.get("timings", {})),
            estimator=Estimator.from_dict(d["estimator"]) if d.get("estimator") else None,
            intervals=[Interval(**i) for i in d.get("intervals", [])],
            tests=[FixedTest(**t) for t in d.get("tests", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> "FitResult":
        return cls.from_dict(json.loads(text))


_EFFECTS = ("fixed", "ran_pars", "threshold")
_STATUSES = ("ok", "error", "unavailable", "not_estimable", "pending")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def result_problems(d: Any) -> list[str]:
    """Why a result read back from a file (fit cache, stored Stata result, a report's results
    folder) cannot be used as an ``ok`` fit; [] when it can.

    Checked: the schema version, the required fields and their types, status ``ok``, at least
    one parameter, every estimate a finite number and every standard error a finite number or
    null (a stated missing), every statistic a finite number or null. A file that fails any of
    this was truncated, forged or written by other code, and is never used as a fit.
    """
    if not isinstance(d, dict):
        return ["not a JSON object"]
    problems = []
    if d.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version is {d.get('schema_version')!r}, not {SCHEMA_VERSION}")
    for key in ("spec_id", "backend"):
        if not isinstance(d.get(key), str) or not d.get(key):
            problems.append(f"{key} is missing or not text")
    if d.get("status") != "ok":
        problems.append(f"status is {d.get('status')!r}, not 'ok'")
    params = d.get("parameters")
    if not isinstance(params, list) or not params:
        problems.append("there are no parameters")
        params = []
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            problems.append(f"parameters[{i}] is not an object")
            continue
        name = f"parameters[{i}] ({p.get('effect')}/{p.get('group')}/{p.get('term')})"
        if p.get("effect") not in _EFFECTS or not isinstance(p.get("term"), str) \
                or not isinstance(p.get("group"), (str, type(None))):
            problems.append(f"{name}: effect, group or term is malformed")
        if not _finite(p.get("estimate")):
            problems.append(f"{name}: estimate {p.get('estimate')!r} is not a finite number")
        se = p.get("std_error")
        if se is not None and not (_finite(se) and se >= 0):
            problems.append(f"{name}: std_error {se!r} is not a finite number >= 0 or null")
        extra = set(p) - {"effect", "group", "term", "estimate", "std_error"}
        if extra:
            problems.append(f"{name}: unknown field(s) {sorted(extra)}")
    stats = d.get("statistics", {})
    if not isinstance(stats, dict):
        problems.append("statistics is not an object")
    else:
        for k, v in stats.items():
            if k == "ngroups":
                if not isinstance(v, dict) or not all(isinstance(n, int) for n in v.values()):
                    problems.append("statistics.ngroups is not {group: count}")
            elif v is not None and not _finite(v):
                problems.append(f"statistics.{k} {v!r} is not a finite number or null")
    for key, kind in (("diagnostics", dict), ("provenance", dict), ("timings", dict),
                      ("random_effects", list), ("intervals", list), ("tests", list)):
        if not isinstance(d.get(key, kind()), kind):
            problems.append(f"{key} is not a JSON {'object' if kind is dict else 'array'}")
    problems += _inference_problems(d)
    if problems:
        return problems
    try:
        FitResult.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        problems.append(f"does not match the result format: {type(e).__name__}: {e}")
    return problems


def _inference_problems(d: dict[str, Any]) -> list[str]:
    """Intervals with unknown methods/scales or bounds that are not finite and ordered, tests
    with an unknown df method or a p-value outside [0, 1]."""
    problems = []
    intervals = d.get("intervals", [])
    for i, iv in enumerate(intervals if isinstance(intervals, list) else []):
        if not isinstance(iv, dict):
            problems.append(f"intervals[{i}] is not an object")
            continue
        name = f"intervals[{i}] ({iv.get('key')})"
        if iv.get("method") not in INTERVAL_METHODS or iv.get("scale") not in INTERVAL_SCALES:
            problems.append(f"{name}: method {iv.get('method')!r} / scale {iv.get('scale')!r} "
                            f"is not one of {INTERVAL_METHODS} / {INTERVAL_SCALES}")
        lo, hi = iv.get("lower"), iv.get("upper")
        if not (_finite(lo) and _finite(hi) and lo <= hi):
            problems.append(f"{name}: bounds {lo!r}, {hi!r} are not finite with lower <= upper")
    tests = d.get("tests", [])
    for i, t in enumerate(tests if isinstance(tests, list) else []):
        if not isinstance(t, dict):
            problems.append(f"tests[{i}] is not an object")
            continue
        p = t.get("p_value")
        if t.get("df_method") not in DF_METHODS or not (_finite(p) and 0 <= p <= 1):
            problems.append(f"tests[{i}] ({t.get('term')}): df_method {t.get('df_method')!r} "
                            f"must be one of {DF_METHODS} and p_value {p!r} in [0, 1]")
    return problems


def _finite_or_none(obj: Any) -> Any:
    """JSON has no NaN or infinity: map them to null so every reader can parse the file."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def variance_parameters(group: str, names: list[str], sds: list[float],
                        corr: list[list[float]] | None) -> list[Parameter]:
    """All four scales (sd, var, cor, cov) for one grouping factor's covariance matrix.

    ``names`` are the random-effect terms in model order (``(Intercept)`` first, as lme4 prints);
    ``corr`` is the correlation matrix, or None for independent terms (no cor/cov rows then).
    Backends call this so every one of them names and orders variance parameters identically.
    """
    rows: list[Parameter] = []
    for name, sd in zip(names, sds):
        rows.append(Parameter("ran_pars", group, f"sd__{name}", float(sd)))
    for name, sd in zip(names, sds):
        rows.append(Parameter("ran_pars", group, f"var__{name}", float(sd) ** 2))
    if corr is not None:
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                r = float(corr[i][j])
                rows.append(Parameter("ran_pars", group, f"cor__{names[i]}.{names[j]}", r))
                rows.append(Parameter("ran_pars", group, f"cov__{names[i]}.{names[j]}",
                                      r * float(sds[i]) * float(sds[j])))
    return rows


def residual_parameters(sigma: float) -> list[Parameter]:
    return [Parameter("ran_pars", "Residual", "sd__Observation", float(sigma)),
            Parameter("ran_pars", "Residual", "var__Observation", float(sigma) ** 2)]
