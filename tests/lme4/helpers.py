"""Helpers shared by the lme4 backend tests."""

from __future__ import annotations

from typing import Any

from harness.results import FitResult
from harness.spec import Spec, parse_spec


def make_spec(dataset: str, model: dict[str, Any], **extra: Any) -> Spec:
    return parse_spec({"id": extra.pop("id", "test"), "title": "lme4 backend test",
                       "source": "tests/lme4", "dataset": dataset, "model": model, **extra})


def pmap(result: FitResult) -> dict[str, float]:
    return {p.key: p.estimate for p in result.parameters}


GCSE_HI = [{"name": "hi_gcse", "expr": "gcse >= 10"},
           {"name": "sch_2", "expr": "schgend == 2"},
           {"name": "sch_3", "expr": "schgend == 3"}]
POP3 = [{"name": "pop3", "expr": "1 + (popular > 5) + (popular > 7)"}]
