"""A model's canonical parameters: read from harness keys, and put on a smooth working scale.

One parameter point has three views here:

* **canonical keys** (harness/keys.py) mapped to values, as engines report them and references
  print them: ``fixed/lrt``, ``threshold/1|2``, ``ran_pars/school/sd__(Intercept)`` or
  ``var__(Intercept)``, ``cor__(Intercept).lrt`` or ``cov__(Intercept).lrt``,
  ``ran_pars/Residual/sd__Observation`` or ``var__Observation``;
* a :class:`Point`: fixed effects, thresholds, each grouping factor's random-effects covariance
  matrix on the absolute scale, and the residual sd: what the likelihoods take;
* the **working vector** ``phi``: fixed effects and thresholds as they are, ``log sd`` of every
  random effect and of the residual, ``atanh`` of every correlation. It is unbounded and smooth
  in the interior (Stata's own parameterisation of ``mixed``), so the observed information is
  computed on it by finite differences, and every canonical key is an explicit function of it
  (:meth:`ParameterLayout.canonical` gives the values and the analytic Jacobian, for the delta
  method to every scale).

Why one module: reading a printed reference (variances only), reconstructing lme4's theta, and
the delta method must all agree on what a key means; they are written once, here.

Boundary points (an sd of 0, a correlation of +/-1) have no finite working coordinate; they are
kept at their value and marked not free, with the reason (:class:`Working`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from harness.keys import KeyFormatError, ParamKey

from .design import FactorBlock

COR_BOUNDARY = 1e-10     # |cor| >= 1 - this is a correlation at the boundary (+/-1)
PSD_TOL = 1e-12          # relative pivot below which a covariance's Cholesky pivot is zero

Transform = Literal["identity", "log", "atanh"]


class ParameterError(ValueError):
    """Estimates that are not a valid parameter point (a negative sd, |cor| > 1, a covariance
    matrix that is not positive semi-definite); the message names the key."""


@dataclass(frozen=True)
class Point:
    """One parameter point as the likelihoods take it."""

    beta: np.ndarray
    alpha: np.ndarray                        # ordinal thresholds (empty otherwise)
    covariances: tuple[np.ndarray, ...]      # per grouping factor, k x k, absolute scale
    sigma: float | None                      # residual sd (gaussian), None otherwise


@dataclass(frozen=True)
class Coordinate:
    """One entry of the working vector: the canonical key it stands for and its transform."""

    key: ParamKey
    transform: Transform
    kind: Literal["beta", "alpha", "sd", "cor", "sigma"]
    factor: int = -1
    a: int = -1                              # effect index (sd) or first effect (cor)
    b: int = -1                              # second effect (cor)
    index: int = -1                          # position in beta / alpha


@dataclass(frozen=True)
class FactorTerms:
    """A grouping factor's random effects and how they split into correlated terms."""

    name: str
    columns: tuple[str, ...]
    term_sizes: tuple[int, ...]

    @property
    def k(self) -> int:
        return len(self.columns)

    def pairs(self) -> list[tuple[int, int]]:
        """(a, b), a < b, for every pair of effects in the same term (those have a cor)."""
        out, start = [], 0
        for size in self.term_sizes:
            out += [(a, b) for a in range(start, start + size) for b in range(a + 1, start + size)]
            start += size
        return out


@dataclass
class Working:
    """A point on the working scale: ``phi``, which coordinates are free, and why not."""

    phi: np.ndarray
    free: np.ndarray
    fixed_values: dict[int, float] = field(default_factory=dict)   # natural value, not free
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass
class Reading:
    """What :meth:`ParameterLayout.read` made of a set of estimates."""

    point: Point | None
    missing: list[str]
    unused: list[str]
    notes: list[str]


@dataclass(frozen=True)
class ParameterLayout:
    """The canonical parameters of one model, in a fixed order."""

    fixed: tuple[str, ...]
    thresholds: tuple[str, ...]
    factors: tuple[FactorTerms, ...]
    residual: bool

    @classmethod
    def build(cls, fixed: Sequence[str], thresholds: Sequence[str],
              factors: Sequence[FactorBlock], residual: bool) -> "ParameterLayout":
        return cls(tuple(fixed), tuple(thresholds),
                   tuple(FactorTerms(f.name, tuple(f.columns), tuple(f.term_sizes))
                         for f in factors), residual)

    # ---- the working coordinates -----------------------------------------------------------
    @cached_property
    def coordinates(self) -> tuple[Coordinate, ...]:
        out = [Coordinate(ParamKey.fixed(n), "identity", "beta", index=i)
               for i, n in enumerate(self.fixed)]
        out += [Coordinate(ParamKey.threshold(n), "identity", "alpha", index=i)
                for i, n in enumerate(self.thresholds)]
        for f, ft in enumerate(self.factors):
            out += [Coordinate(ParamKey.ran_pars(ft.name, "sd", c), "log", "sd", f, a)
                    for a, c in enumerate(ft.columns)]
            out += [Coordinate(ParamKey.ran_pars(ft.name, "cor", ft.columns[a], ft.columns[b]),
                               "atanh", "cor", f, a, b) for a, b in ft.pairs()]
        if self.residual:
            out.append(Coordinate(ParamKey.residual("sd"), "log", "sigma"))
        return tuple(out)

    @property
    def n_location(self) -> int:
        """How many fixed effects and thresholds: the leading working coordinates."""
        return len(self.fixed) + len(self.thresholds)

    def keys(self) -> list[str]:
        """The canonical keys on the sd/cor scale: one per working coordinate, in order."""
        return [str(c.key) for c in self.coordinates]

    def all_keys(self) -> list[str]:
        """Every canonical key of the model on every scale (sd, var, cor, cov)."""
        out = [str(ParamKey.fixed(n)) for n in self.fixed]
        out += [str(ParamKey.threshold(n)) for n in self.thresholds]
        for ft in self.factors:
            for scale in ("sd", "var"):
                out += [str(ParamKey.ran_pars(ft.name, scale, c)) for c in ft.columns]
            for a, b in ft.pairs():
                out += [str(ParamKey.ran_pars(ft.name, s, ft.columns[a], ft.columns[b]))
                        for s in ("cor", "cov")]
        if self.residual:
            out += [str(ParamKey.residual("sd")), str(ParamKey.residual("var"))]
        return out

    # ---- canonical keys -> Point ------------------------------------------------------------
    def read(self, estimates: Mapping[str, float], require_sigma: bool = True) -> Reading:
        """A :class:`Point` from canonical estimates, or the keys that are missing.

        Each variance parameter may be given on either scale: ``sd__x`` or ``var__x``,
        ``cor__x.y`` or ``cov__x.y``. Where both are given the sd/cor value is used, and a
        disagreement beyond 1e-6 relative is noted. A correlation involving an effect whose sd
        is 0 does not enter the likelihood and is not required. NaN counts as absent.
        Raises :class:`ParameterError` for values that are not a parameter point.
        """
        given = {k: float(v) for k, v in estimates.items()
                 if v is not None and not math.isnan(float(v))}
        missing: list[str] = []
        notes: list[str] = []

        def take(key: ParamKey) -> float | None:
            v = given.get(str(key))
            if v is None:
                missing.append(str(key))
            return v

        beta = np.array([take(ParamKey.fixed(n)) or 0.0 for n in self.fixed])
        alpha = np.array([take(ParamKey.threshold(n)) or 0.0 for n in self.thresholds])
        covs = [self._read_factor(ft, given, missing, notes) for ft in self.factors]
        sigma: float | None = None
        if self.residual:
            sigma = _sd_from(given, ParamKey.residual("sd"), notes)
            if sigma is None and require_sigma:
                missing.append(str(ParamKey.residual("sd")))
            elif sigma is not None and sigma <= 0:
                raise ParameterError(f"{ParamKey.residual('sd')} must be positive, not {sigma}")
        known = set(self.all_keys())
        unused = [k for k in given if _is_parameter_key(k) and k not in known]
        point = None if missing else Point(beta, alpha, tuple(covs), sigma)
        return Reading(point, missing, unused, notes)

    def _read_factor(self, ft: FactorTerms, given: dict[str, float], missing: list[str],
                     notes: list[str]) -> np.ndarray:
        sd = np.zeros(ft.k)
        for a, c in enumerate(ft.columns):
            key = ParamKey.ran_pars(ft.name, "sd", c)
            v = _sd_from(given, key, notes)
            if v is None:
                missing.append(str(key))
            else:
                sd[a] = v
        S = np.diag(sd ** 2)
        for a, b in ft.pairs():
            key = ParamKey.ran_pars(ft.name, "cor", ft.columns[a], ft.columns[b])
            cor = given.get(str(key))
            cov = given.get(str(key.on_scale("cov")))
            scale = sd[a] * sd[b]
            if cor is None and cov is not None and scale > 0:
                cor = cov / scale
            elif cor is not None and cov is not None and not _close(cor * scale, cov):
                notes.append(f"{key.on_scale('cov')} = {cov:.10g} disagrees with "
                             f"{key} x sds = {cor * scale:.10g}; {key} is used")
            if cor is None:
                if scale > 0:
                    missing.append(str(key))
                continue
            if abs(cor) > 1.0 + 1e-12:
                raise ParameterError(f"{key} is {cor}: a correlation lies in [-1, 1]")
            S[a, b] = S[b, a] = float(np.clip(cor, -1.0, 1.0)) * scale
        return S

    # ---- Point <-> working scale -------------------------------------------------------------
    def encode(self, point: Point) -> Working:
        """The working vector of ``point``; boundary coordinates are kept and marked not free."""
        coords = self.coordinates
        phi = np.zeros(len(coords))
        free = np.ones(len(coords), dtype=bool)
        w = Working(phi, free)
        sds = [np.sqrt(np.clip(np.diag(S), 0.0, None)) for S in point.covariances]
        for i, c in enumerate(coords):
            if c.kind == "beta":
                phi[i] = point.beta[c.index]
            elif c.kind == "alpha":
                phi[i] = point.alpha[c.index]
            elif c.kind in ("sd", "sigma"):
                v = sds[c.factor][c.a] if c.kind == "sd" else float(point.sigma or 0.0)
                if v > 0:
                    phi[i] = math.log(v)
                else:
                    _fix(w, i, 0.0, f"{c.key} is 0: a boundary estimate, where the likelihood "
                                    "has no quadratic approximation (no standard error)")
            else:
                sa, sb = sds[c.factor][c.a], sds[c.factor][c.b]
                if sa == 0 or sb == 0:
                    _fix(w, i, 0.0, f"{c.key} is not identified: an sd it involves is 0")
                    continue
                r = float(point.covariances[c.factor][c.a, c.b] / (sa * sb))
                if abs(r) >= 1 - COR_BOUNDARY:
                    _fix(w, i, float(np.sign(r)), f"{c.key} is {r:+.0f}: a boundary estimate "
                                                  "(no standard error)")
                else:
                    phi[i] = math.atanh(r)
        return w

    def decode(self, phi: np.ndarray, base: Working) -> Point:
        """The point with working coordinates ``phi`` (boundary ones taken from ``base``)."""
        coords = self.coordinates
        nat = self._natural(phi, base)
        beta = np.array([nat[i] for i, c in enumerate(coords) if c.kind == "beta"])
        alpha = np.array([nat[i] for i, c in enumerate(coords) if c.kind == "alpha"])
        covs = [np.zeros((ft.k, ft.k)) for ft in self.factors]
        sigma = None
        for i, c in enumerate(coords):
            if c.kind == "sd":
                covs[c.factor][c.a, c.a] = nat[i]
            elif c.kind == "sigma":
                sigma = nat[i]
        for S in covs:                          # sd on the diagonal -> variances, keep the sds
            sd = np.diag(S).copy()
            S[np.diag_indices_from(S)] = sd ** 2
        for i, c in enumerate(coords):
            if c.kind == "cor":
                S = covs[c.factor]
                S[c.a, c.b] = S[c.b, c.a] = nat[i] * math.sqrt(S[c.a, c.a] * S[c.b, c.b])
        return Point(beta, alpha, tuple(covs), sigma)

    def _natural(self, phi: np.ndarray, base: Working) -> np.ndarray:
        """Each coordinate on its natural scale (sd, cor, ...)."""
        out = np.empty(phi.size)
        for i, c in enumerate(self.coordinates):
            if i in base.fixed_values:
                out[i] = base.fixed_values[i]
            elif c.transform == "log":
                out[i] = math.exp(phi[i])
            elif c.transform == "atanh":
                out[i] = math.tanh(phi[i])
            else:
                out[i] = phi[i]
        return out

    def canonical(self, phi: np.ndarray, base: Working
                  ) -> tuple[list[str], np.ndarray, np.ndarray, list[list[int]]]:
        """Every canonical key's value at ``phi``, the Jacobian d key / d phi, and the working
        coordinates each key depends on, its own first (to tell which keys a boundary
        coordinate affects, and why)."""
        coords = self.coordinates
        nat = self._natural(phi, base)
        where = {str(c.key): i for i, c in enumerate(coords)}
        keys = self.all_keys()
        values = np.zeros(len(keys))
        J = np.zeros((len(keys), len(coords)))
        deps: list[list[int]] = []
        for r, text in enumerate(keys):
            key = ParamKey.parse(text)
            scale = key.scale
            if scale in (None, "sd", "cor"):
                i = where[text]
                values[r] = nat[i]
                J[r, i] = {"identity": 1.0, "log": nat[i],
                           "atanh": 1.0 - nat[i] ** 2}[coords[i].transform]
                deps.append([i])
            elif scale == "var":
                i = where[str(key.on_scale("sd"))]
                values[r] = nat[i] ** 2
                J[r, i] = 2.0 * nat[i] ** 2
                deps.append([i])
            else:                                 # cov = cor sd_a sd_b
                i = where[str(key.on_scale("cor"))]
                c = coords[i]
                ft = self.factors[c.factor]
                ia = where[str(ParamKey.ran_pars(ft.name, "sd", ft.columns[c.a]))]
                ib = where[str(ParamKey.ran_pars(ft.name, "sd", ft.columns[c.b]))]
                values[r] = nat[i] * nat[ia] * nat[ib]
                J[r, i] = (1.0 - nat[i] ** 2) * nat[ia] * nat[ib]
                J[r, ia] += values[r]
                J[r, ib] += values[r]
                deps.append([i, ia, ib])
        return keys, values, J, deps


def psd_cholesky(S: np.ndarray, name: str = "covariance") -> np.ndarray:
    """Lower Cholesky factor of a positive *semi*-definite matrix (zero pivots give zero
    columns, as lme4's theta has at a boundary). Raises :class:`ParameterError` if ``S`` is not
    positive semi-definite."""
    k = S.shape[0]
    L = np.zeros_like(S, dtype=float)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        tol = PSD_TOL * max(S[j, j], 0.0)
        if d < -tol - 1e-300:
            raise ParameterError(f"the {name} matrix is not positive semi-definite")
        if d <= tol:
            rest = S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]
            bound = 1e-6 * np.sqrt(np.clip(np.diag(S)[j + 1:], 0.0, None) * max(S[j, j], 0.0))
            if np.any(np.abs(rest) > bound + 1e-300):
                raise ParameterError(f"the {name} matrix is not positive semi-definite")
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


def _fix(w: Working, i: int, value: float, reason: str) -> None:
    w.free[i] = False
    w.fixed_values[i] = value
    w.reasons[i] = reason


def _sd_from(given: dict[str, float], key: ParamKey, notes: list[str]) -> float | None:
    """An sd from its own key or from the variance key; negative values are an error."""
    sd, var = given.get(str(key)), given.get(str(key.on_scale("var")))
    if sd is not None:
        if sd < 0:
            raise ParameterError(f"{key} is {sd}: a standard deviation cannot be negative")
        if var is not None and not _close(sd * sd, var):
            notes.append(f"{key.on_scale('var')} = {var:.10g} disagrees with {key}^2 = "
                         f"{sd * sd:.10g}; {key} is used")
        return sd
    if var is not None:
        if var < 0:
            raise ParameterError(f"{key.on_scale('var')} is {var}: a variance cannot be "
                                 "negative")
        return math.sqrt(var)
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-300)


def _is_parameter_key(text: str) -> bool:
    """Keys that name a model parameter (not a statistic or a random effect); unreadable keys
    count, so a misspelt one is reported rather than ignored."""
    try:
        return ParamKey.parse(text).kind in ("fixed", "threshold", "ran_pars")
    except KeyFormatError:
        return True
