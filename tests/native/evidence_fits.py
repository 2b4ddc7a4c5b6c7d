"""Course models, fits through the real backends, and evidence models, for the evidence tests.

Fits go through ``get_backend(name).fit`` on data prepared by the harness (the path a suite run
takes), and are cached per session: several tests evaluate the same fit.
"""

from __future__ import annotations

from typing import Any

from backends.base import FitJob, get_backend
from backends.native.evidence import EvidenceModel
from harness.results import FitResult
from harness.runner import PreparedData, prepare_data
from harness.spec import Spec, parse_spec
from tests.conftest import course_data_dir

GCSE = [{"name": "sch_2", "expr": "schgend == 2"}, {"name": "sch_3", "expr": "schgend == 3"},
        {"name": "hi_gcse", "expr": "gcse >= 10"},
        {"name": "ord_gcse", "expr": "1 + (gcse > -10) + (gcse > -5) + (gcse > 5) + (gcse > 10)"},
        {"name": "ct_gcse", "expr": "(gcse > -5) + (gcse > 5) + (gcse > 10) + (gcse > 15) "
                                    "+ (gcse > 20) + (gcse > 25)"}]
RS = "lrt + girl + sch_2 + sch_3 + (1 + lrt | school)"
RI = "lrt + girl + sch_2 + sch_3 + (1 | school)"
FIXED = "lrt + girl + sch_2 + sch_3"

_PREPARED: dict[str, PreparedData] = {}
_FITS: dict[tuple[str, str], FitResult] = {}
_EVIDENCE: dict[tuple[str, str], EvidenceModel] = {}


def spec(dataset: str, formula: str, method: str = "ML", family: str = "gaussian",
         derive: list[dict[str, str]] | None = None, **model: Any) -> Spec:
    backends = model.pop("backends", {})
    return parse_spec({"id": "evidence", "title": "evidence test", "source": "tests",
                       "dataset": dataset, "derive": GCSE if derive is None else derive,
                       "model": {"formula": formula, "family": family, "method": method,
                                 **model}, "backends": backends})


def gcse(formula: str, **kw: Any) -> Spec:
    return spec("gcse", formula, **kw)


def prepared(s: Spec) -> PreparedData:
    key = s.model_dump_json(include={"dataset", "derive"})
    if key not in _PREPARED:
        _PREPARED[key] = prepare_data(s, course_data_dir())
    return _PREPARED[key]


def fit(s: Spec, backend: str = "native") -> FitResult:
    key = (s.model_dump_json(), backend)
    if key not in _FITS:
        d = prepared(s)
        job = FitJob(spec=s, model=s.model_for(backend), data=d.frame, data_path=d.path,
                     data_sha256=d.sha256)
        result = get_backend(backend).fit(job)
        assert result.status == "ok", result.message
        _FITS[key] = result
    return _FITS[key]


def evidence(s: Spec, backend: str = "native") -> EvidenceModel:
    """The evidence model of the model ``backend`` fits (with its overrides), built once."""
    model = s.model_for(backend)
    key = (s.model_dump_json(), model.model_dump_json())
    if key not in _EVIDENCE:
        _EVIDENCE[key] = EvidenceModel.build(model, prepared(s).frame, s.factor_columns(),
                                             contrasts=s.contrasts())
    return _EVIDENCE[key]


RS_ML = gcse("gcse ~ " + RS)
GAUSSIAN = {
    "gcse random slope ML": RS_ML,
    "gcse random slope REML": gcse("gcse ~ " + RS, method="REML"),
    "gcse independent slope REML": gcse("gcse ~ lrt + girl + (1 | school) + (0 + lrt | school)",
                                        method="REML"),
    "nurses nested ML": spec("nurses", "stress ~ expcon + age + gender + (1 | hospital) "
                             "+ (1 | wardid)", derive=[]),
    "pupcross crossed REML": spec("pupcross", "achiev ~ 1 + (1 | pschool) + (1 | sschool)",
                                  method="REML", derive=[]),
    "gcse OLS": gcse("gcse ~ " + FIXED, method="OLS"),
    "gcse single-level ML": gcse("gcse ~ " + FIXED, method="ML"),
    "gcse OLS, CR1 by school": gcse("gcse ~ " + FIXED, method="OLS", cluster_se="school"),
}

LAPLACE = {"method": "laplace"}
AGHQ7 = {"method": "aghq", "points": 7}
BIN_RS = gcse("hi_gcse ~ " + RS, family="binomial", integration=LAPLACE)
BIN_RS_GLMER = gcse("hi_gcse ~ " + RS, family="binomial", integration=LAPLACE,
                    backends={"native": {"options": {"laplace": "glmer"}}})
BIN_RI_AGHQ7 = gcse("hi_gcse ~ " + RI, family="binomial", integration=AGHQ7)
BIN_RI_AGHQ7_GLMER = gcse("hi_gcse ~ " + RI, family="binomial", integration=AGHQ7,
                          backends={"native": {"options": {"laplace": "glmer"}}})
PROBIT_RI = gcse("hi_gcse ~ " + RI, family="binomial", link="probit", integration=LAPLACE)
POISSON_RI_AGHQ7 = gcse("ct_gcse ~ " + RI, family="poisson", integration=AGHQ7)
BIN_INDEPENDENT = "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school) + (0 + lrt | school)"
ORDINAL_RI = "ord_gcse ~ " + RI
ORDINAL_RS = "ord_gcse ~ " + RS
SINGLE_LEVEL = {
    "logit": gcse("hi_gcse ~ " + FIXED, family="binomial"),
    "probit": gcse("hi_gcse ~ " + FIXED, family="binomial", link="probit"),
    "Poisson": gcse("ct_gcse ~ " + FIXED, family="poisson"),
    "ordinal": gcse("ord_gcse ~ " + FIXED, family="ordinal"),
    "ordinal probit": gcse("ord_gcse ~ " + FIXED, family="ordinal", link="probit"),
}
