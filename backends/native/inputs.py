"""What the native estimators take from a spec besides the formula: the column attributes and
the model attributes, read once per fit and handed to every native path alike.

* column attributes (``columns:``): which columns are factors, and the contrasts of those that
  are not coded by treatment contrasts;
* model attributes (harness/attributes.py): prior weights, the offset, binomial trials, as one
  value per data row.

``call_arguments`` writes them for the equivalent Python call shown in a result's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.spec import Model, Spec


@dataclass(frozen=True)
class NativeInputs:
    factors: list[str]
    contrasts: dict[str, str]
    reference: dict[str, object] | None
    attributes: ModelAttributes
    values: dict[str, np.ndarray] = field(default_factory=dict)  # per data row

    @classmethod
    def of(cls, spec: Spec, model: Model, data: pd.DataFrame) -> "NativeInputs":
        attributes = ModelAttributes.of(model)
        return cls(factors=spec.factor_columns(), contrasts=spec.contrasts(),
                   reference=dict(model.reference_level) or None, attributes=attributes,
                   values=attributes.values(data))

    def call_arguments(self) -> list[str]:
        """``factors=[...]``, ``contrasts={...}``, ``reference={...}`` and one argument per
        model attribute (``weights=data['w']``, ``offset=<log(expected)>``), as shown."""
        out = [f"factors={self.factors!r}"] if self.factors else []
        if self.contrasts:
            out.append(f"contrasts={self.contrasts!r}")
        if self.reference:
            out.append(f"reference={self.reference!r}")
        a = self.attributes
        if a.weights:
            out.append(f"weights=data[{a.weights!r}]")
        if a.offset is not None:
            out.append(f"offset=<{a.offset.to_r()}>")
        if a.trials is not None:
            out.append(f"trials=<{a.trials.to_r()}>")
        return out

    def keywords(self) -> dict[str, object]:
        """The keyword arguments every native fitting function takes."""
        return dict(factors=self.factors, contrasts=self.contrasts or None,
                    reference=self.reference, **self.values)
