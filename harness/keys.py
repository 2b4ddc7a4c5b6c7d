"""Parameter keys and comparison sources: parsed and formatted here, and nowhere else.

A *key* names one comparable quantity of a model, the same for every backend and reference:

* ``fixed/<term>``: a fixed effect, named as R prints it (``fixed/(Intercept)``,
  ``fixed/factor(schgend)2``);
* ``threshold/<a>|<b>``: an ordinal cut point (clmm's names);
* ``ran_pars/<group>/<scale>__<effects>``: a variance parameter of grouping factor ``group``
  (``Residual`` for the residual) on one scale: ``sd__(Intercept)``, ``var__lrt``,
  ``cor__(Intercept).lrt``, ``cov__(Intercept).lrt``, ``sd__Observation``;
* ``ranef/<group>/<effect>``: the conditional modes of one random effect (compared worst level);
* ``stat/<name>``: a statistic of the fit (``stat/loglik``, ``stat/icc``, ``stat/ngroups/school``,
  ``stat/lr/<spec>/chi2``); the name may itself contain ``/``.

A *source* is one column of a comparison: a backend (``native``), a reference block of the spec
(``ref:N7``) or a cross-spec check value (``native@base (x10)``).

Why a type: the key text used to be re-split in a dozen places, each with its own idea of where
the group ends; a misspelled reference key then matched nothing and was silently ignored. Now a
key is parsed once (:meth:`ParamKey.parse`, with errors that say how to write it) and the spec
loader can check every reference key against the keys the model will have
(:func:`closest_key` suggests the one that was meant).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

KeyKind = Literal["fixed", "threshold", "ran_pars", "ranef", "stat"]
KINDS: tuple[KeyKind, ...] = ("fixed", "threshold", "ran_pars", "ranef", "stat")
Scale = Literal["sd", "var", "cor", "cov"]
SCALES: tuple[Scale, ...] = ("sd", "var", "cor", "cov")
RESIDUAL = "Residual"
OBSERVATION = "Observation"


class KeyFormatError(ValueError):
    """A key that cannot be read; the message shows how to write it."""


@dataclass(frozen=True)
class ParamKey:
    """One comparable quantity: ``kind``, its grouping factor (ran_pars, ranef) and its name.

    ``name`` is the term (``lrt``), the ran_pars term with its scale (``sd__(Intercept)``),
    the threshold (``1|2``) or the statistic (``ngroups/school``).
    """

    kind: KeyKind
    group: str | None
    name: str

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "ParamKey":
        kind, sep, rest = text.partition("/")
        if kind not in KINDS or not sep or not rest:
            raise KeyFormatError(f"key {text!r} must start with one of "
                            f"{', '.join(k + '/' for k in KINDS)} (e.g. fixed/lrt, "
                            "ran_pars/school/sd__(Intercept), stat/loglik)")
        if kind in ("ran_pars", "ranef"):
            group, sep, name = rest.partition("/")
            if not sep or not group or not name or (kind == "ranef" and "/" in name):
                example = ("ran_pars/school/var__(Intercept)" if kind == "ran_pars"
                           else "ranef/school/(Intercept)")
                raise KeyFormatError(f"key {text!r}: write {kind}/<group>/<term>, e.g. {example}")
            key = cls(kind, group, name)  # type: ignore[arg-type]
            if kind == "ran_pars":
                key._check_ran_pars(text)
            return key
        return cls(kind, None, rest)  # type: ignore[arg-type]

    def _check_ran_pars(self, text: str) -> None:
        scale, sep, effects = self.name.partition("__")
        if not sep or scale not in SCALES or not effects:
            raise KeyFormatError(f"key {text!r}: a variance parameter is <scale>__<effect> with "
                            "scale sd, var, cor or cov (e.g. sd__(Intercept), "
                            "cor__(Intercept).lrt)")

    @classmethod
    def fixed(cls, term: str) -> "ParamKey":
        return cls("fixed", None, term)

    @classmethod
    def threshold(cls, name: str) -> "ParamKey":
        return cls("threshold", None, name)

    @classmethod
    def ran_pars(cls, group: str, scale: Scale, *effects: str) -> "ParamKey":
        return cls("ran_pars", group, f"{scale}__{'.'.join(effects)}")

    @classmethod
    def residual(cls, scale: Literal["sd", "var"] = "sd") -> "ParamKey":
        return cls.ran_pars(RESIDUAL, scale, OBSERVATION)

    @classmethod
    def ranef(cls, group: str, effect: str) -> "ParamKey":
        return cls("ranef", group, effect)

    @classmethod
    def stat(cls, name: str) -> "ParamKey":
        return cls("stat", None, name)

    # ---- reading --------------------------------------------------------------------------
    def sort_key(self) -> tuple[int, str]:
        """Report order: fixed effects, thresholds, variance parameters, BLUPs, statistics."""
        return (KINDS.index(self.kind), str(self))

    def __str__(self) -> str:
        if self.group is None:
            return f"{self.kind}/{self.name}"
        return f"{self.kind}/{self.group}/{self.name}"

    @property
    def scale(self) -> Scale | None:
        """``sd``/``var``/``cor``/``cov`` for a variance parameter, else None."""
        if self.kind != "ran_pars":
            return None
        return self.name.partition("__")[0]  # type: ignore[return-value]

    @property
    def effects(self) -> str:
        """The effect part of a variance parameter: ``(Intercept)`` or ``(Intercept).lrt``."""
        return self.name.partition("__")[2] if self.kind == "ran_pars" else self.name

    @property
    def is_residual(self) -> bool:
        return self.kind == "ran_pars" and self.group == RESIDUAL

    @property
    def stat_head(self) -> str:
        """The first part of a statistic's name: ``lr`` for ``stat/lr/m1/chi2``."""
        return self.name.split("/", 1)[0] if self.kind == "stat" else ""

    def on_scale(self, scale: Scale) -> "ParamKey":
        """The same variance parameter on another scale (sd <-> var, cor <-> cov)."""
        assert self.kind == "ran_pars"
        return ParamKey("ran_pars", self.group, f"{scale}__{self.effects}")

    def in_group(self, group: str) -> "ParamKey":
        return ParamKey(self.kind, group, self.name)


def closest_key(wanted: str, valid: list[str] | set[str]) -> str | None:
    """The valid key most like ``wanted`` (case-insensitive first), for "did you mean".

    A case-only difference (``fixed/days`` for ``fixed/Days``) is always found, however short.
    """
    by_lower = {v.lower(): v for v in valid}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    hits = difflib.get_close_matches(wanted, sorted(valid), n=1, cutoff=0.6)
    return hits[0] if hits else None


# ---- sources ---------------------------------------------------------------------------------

SourceKind = Literal["backend", "reference", "crosscheck"]
_REF = "ref:"


@dataclass(frozen=True)
class Source:
    """One side of a check: a backend, a reference block, or a value from another spec's fit."""

    kind: SourceKind
    name: str  # backend name, reference id, or "<backend>@<spec> (x<times>)"

    @classmethod
    def backend(cls, name: str) -> "Source":
        return cls("backend", name)

    @classmethod
    def reference(cls, ref_id: str) -> "Source":
        return cls("reference", ref_id)

    @classmethod
    def crosscheck(cls, backend: str, spec_id: str, note: str) -> "Source":
        return cls("crosscheck", f"{backend}@{spec_id} ({note})")

    @classmethod
    def parse(cls, text: str) -> "Source":
        if text.startswith(_REF):
            return cls.reference(text[len(_REF):])
        if "@" in text:
            return cls("crosscheck", text)
        return cls.backend(text)

    def __str__(self) -> str:
        return f"{_REF}{self.name}" if self.kind == "reference" else self.name

    @property
    def backend_name(self) -> str:
        """The backend behind a backend or cross-check source ("" for a reference)."""
        if self.kind == "reference":
            return ""
        return self.name.split("@", 1)[0]
