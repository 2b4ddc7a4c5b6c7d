"""Reference values recorded in a spec: parsing printed numbers and their precision.

A number printed as ``.5544234`` tells us its precision: half a unit in the seventh decimal.
Values are kept as the printed text where the spec quotes them, so trailing zeros count.
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
        return _decimals(self.text)


@dataclass(frozen=True)
class ReferenceValue:
    reference_id: str
    key: ParamKey  # fixed/lrt, ran_pars/school/var__(Intercept), stat/loglik, ...
    quantity: str  # estimate | std_error
    number: PrintedNumber


class ReferenceError(ValueError):
    pass


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
            unknown = set(raw) - {"estimate", "std_error"}
            if unknown:
                raise ReferenceError(f"{loc}: unknown key(s) {sorted(unknown)}; use estimate and "
                                     "std_error")
            for quantity, v in raw.items():
                out.append(ReferenceValue(ref.id, pkey, quantity, parse_printed(v, loc)))
        else:
            out.append(ReferenceValue(ref.id, pkey, "estimate", parse_printed(raw, loc)))
    return out
