"""Reference values recorded in a spec: parsing printed numbers and their precision.

A number printed as ``.5544234`` tells us its precision: half a unit in the seventh decimal.
Values are kept as the printed text where the spec quotes them, so trailing zeros count.

Some software prints a transform of the quantity a key names: Stata's ``or``, ``irr`` and
``eform`` displays show exp(b) and the delta-method SE exp(b)·SE(b). Such a value says so with
``display: exp`` (``{estimate: "1.137", std_error: ".0512", display: exp}``) and is taken back
to the key's scale here, with the printed precision carried through the inverse exactly: the
printed interval [p - h, p + h] becomes [log(p - h), log(p + h)], and the half-width that covers
it is the tolerance (for the SE, the interval of s / p over both printed intervals). So a
transformed value is never judged more tightly than what was printed allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from harness.keys import KeyFormatError, ParamKey
from harness.results import (CI_PREFIX, DF_METHODS, DF_PREFIX, INTERVAL_METHODS,
                             INTERVAL_SCALES, P_PREFIX)
from harness.spec import Reference


@dataclass(frozen=True)
class PrintedNumber:
    value: float
    text: str
    half_unit: float  # half a unit in the last printed digit

    @property
    def decimals(self) -> int:
        """Printed decimals (for a transformed value: those its half unit corresponds to)."""
        return round(-math.log10(2 * self.half_unit))


@dataclass(frozen=True)
class ReferenceValue:
    reference_id: str
    key: ParamKey  # fixed/lrt, ran_pars/school/var__(Intercept), stat/loglik, ...
    quantity: str  # estimate | std_error | ci:<m>/<s>/<d>:lower|upper | df:<m> | p:<m>
    number: PrintedNumber


class ReferenceError(ValueError):
    pass


#: ``display:`` values a reference value may state, and what each means
DISPLAYS = {"exp": "the printout shows exp(estimate) and exp(estimate) x SE (Stata's or, irr, "
                   "eform displays)"}
_VALUE_FIELDS = {"estimate", "std_error", "display", "ci", "ci_lower", "ci_upper", "df",
                 "p_value", "df_method"}
#: the printed inference numbers of a value and the fields that state their convention
_CI_FIELDS = ("ci_lower", "ci_upper")
_TEST_FIELDS = ("df", "p_value")


def parse_printed(raw: Any, where: str) -> PrintedNumber:
    """Parse a printed number (text or YAML number) and derive its precision."""
    if isinstance(raw, bool) or raw is None:
        raise ReferenceError(f"{where}: {raw!r} is not a number")
    text = raw.strip().replace("\u2212", "-") if isinstance(raw, str) else repr(raw)
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):
        raise ReferenceError(f"{where}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ReferenceError(f"{where}: {raw!r} is not finite")
    return PrintedNumber(value=value, text=text, half_unit=0.5 * 10.0 ** (-_decimals(text)))


def _decimals(text: str) -> int:
    d = Decimal(text)
    exponent = d.as_tuple().exponent
    return -int(exponent) if isinstance(exponent, int) else 0


def reference_values(ref: Reference, where: str = "") -> list[ReferenceValue]:
    """Flatten one reference block into (key, quantity, printed number) records."""
    out: list[ReferenceValue] = []
    for key, raw in ref.values.items():
        loc = f"{where}references[{ref.id}].values.{key}"
        try:
            pkey = ParamKey.parse(key)
        except KeyFormatError as e:
            raise ReferenceError(f"{loc}: {e}") from None
        if pkey.kind == "ranef":
            raise ReferenceError(f"{loc}: BLUPs are compared between engines only; a reference "
                                 "cannot state them")
        if isinstance(raw, dict):
            unknown = set(raw) - _VALUE_FIELDS
            if unknown:
                raise ReferenceError(f"{loc}: unknown key(s) {sorted(unknown)}; use "
                                     f"{', '.join(sorted(_VALUE_FIELDS))}")
            numbers = {q: parse_printed(v, loc) for q, v in raw.items()
                       if q in ("estimate", "std_error")}
            display = raw.get("display")
            if display is not None:
                numbers = _undisplay(numbers, display, loc)
            numbers.update(_inference_numbers(raw, pkey, display, loc))
            for quantity, number in numbers.items():
                out.append(ReferenceValue(ref.id, pkey, quantity, number))
        else:
            out.append(ReferenceValue(ref.id, pkey, "estimate", parse_printed(raw, loc)))
    return out


def _inference_numbers(raw: dict[str, Any], key: ParamKey, display: Any, loc: str
                       ) -> dict[str, PrintedNumber]:
    """Printed interval bounds, df and p-values, under the quantity names of the comparison
    (harness/results.py: ``ci:<method>/<scale>/<distribution>:lower``, ``df:<df_method>``,
    ``p:<df_method>``). The convention must be stated: an interval's ``ci`` (e.g.
    ``wald/log/z``, Stata's for an sd), a test's ``df_method`` (``satterthwaite``,
    ``kenward-roger``, ``residual``; ``z`` for a p-value from N(0, 1))."""
    out: dict[str, PrintedNumber] = {}
    bounds = [f for f in _CI_FIELDS if f in raw]
    if bounds or "ci" in raw:
        if display is not None:
            raise ReferenceError(f"{loc}: an interval cannot be stated with display: "
                                 f"{display} (state it on the scale of the key)")
        if len(bounds) != 2 or "ci" not in raw:
            raise ReferenceError(f"{loc}: an interval needs ci_lower, ci_upper and ci "
                                 "(method/scale/distribution, e.g. ci: wald/log/z)")
        name = _ci_name(raw["ci"], loc)
        for f in bounds:
            out[f"{name}:{f.removeprefix('ci_')}"] = parse_printed(raw[f], loc)
    tests = [f for f in _TEST_FIELDS if f in raw]
    if tests or "df_method" in raw:
        method = raw.get("df_method")
        if method not in DF_METHODS:
            raise ReferenceError(f"{loc}: df and p_value need df_method, one of "
                                 f"{', '.join(DF_METHODS)} (not {method!r})")
        if key.kind != "fixed":
            raise ReferenceError(f"{loc}: df and p-values are stated for fixed effects only")
        if "df" in raw and method == "z":
            raise ReferenceError(f"{loc}: a z test has no df")
        if "df" in raw:
            out[f"{DF_PREFIX}{method}"] = parse_printed(raw["df"], loc)
        if "p_value" in raw:
            out[f"{P_PREFIX}{method}"] = parse_printed(raw["p_value"], loc)
    return out


def _ci_name(text: Any, loc: str) -> str:
    parts = str(text).split("/")
    if len(parts) != 3 or parts[0] not in INTERVAL_METHODS or parts[1] not in INTERVAL_SCALES \
            or parts[2] not in ("z", "t"):
        raise ReferenceError(f"{loc}: ci {text!r} must be <method>/<scale>/<distribution> with "
                             f"method {' or '.join(INTERVAL_METHODS)}, scale "
                             f"{', '.join(INTERVAL_SCALES)} and distribution z or t "
                             "(e.g. wald/log/z)")
    return f"{CI_PREFIX}{text}"


def _undisplay(numbers: dict[str, PrintedNumber], display: Any, loc: str
               ) -> dict[str, PrintedNumber]:
    """Printed exp(b) and exp(b)·SE(b) back on the scale of b, precision carried through."""
    if display not in DISPLAYS:
        raise ReferenceError(f"{loc}: display {display!r} is not one of {sorted(DISPLAYS)}")
    est = numbers.get("estimate")
    if est is None:
        raise ReferenceError(f"{loc}: display: exp needs the printed estimate (the SE on the "
                             "exp scale is exp(b)·SE(b); b comes from the estimate)")
    p, h = est.value, est.half_unit
    if p - h <= 0:
        raise ReferenceError(f"{loc}: {est.text} cannot be exp(b): exp(b) is positive and "
                             "this is not, at its printed precision")
    b = math.log(p)
    out = {"estimate": PrintedNumber(b, f"exp {est.text}",
                                     max(math.log(p + h) - b, b - math.log(p - h)))}
    se = numbers.get("std_error")
    if se is not None:
        s, hs = se.value, se.half_unit
        mid = s / p
        lo, hi = max(s - hs, 0.0) / (p + h), (s + hs) / (p - h)
        out["std_error"] = PrintedNumber(mid, f"exp-scale SE {se.text}", max(hi - mid, mid - lo))
    return out
