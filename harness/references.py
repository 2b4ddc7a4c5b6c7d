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
    quantity: str  # estimate | std_error
    number: PrintedNumber


class ReferenceError(ValueError):
    pass


#: ``display:`` values a reference value may state, and what each means
DISPLAYS = {"exp": "the printout shows exp(estimate) and exp(estimate) x SE (Stata's or, irr, "
                   "eform displays)"}
_VALUE_FIELDS = {"estimate", "std_error", "display"}


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
                raise ReferenceError(f"{loc}: unknown key(s) {sorted(unknown)}; use estimate, "
                                     "std_error and display")
            numbers = {q: parse_printed(v, loc) for q, v in raw.items() if q != "display"}
            display = raw.get("display")
            if display is not None:
                numbers = _undisplay(numbers, display, loc)
            for quantity, number in numbers.items():
                out.append(ReferenceValue(ref.id, pkey, quantity, number))
        else:
            out.append(ReferenceValue(ref.id, pkey, "estimate", parse_printed(raw, loc)))
    return out


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
