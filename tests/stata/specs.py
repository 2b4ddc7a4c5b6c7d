"""Specs used by the Stata tests: the course models of models.md §3, written as the catalogue does.

These are test fixtures (the real specs live in specs/, written by another engineer); their ids
and formulas follow the catalogue so the transcribed stored results match them.
"""

from __future__ import annotations

from typing import Any

from harness.spec import Spec, parse_spec

GCSE_DERIVE = [{"name": "sch_2", "expr": "schgend == 2"}, {"name": "sch_3", "expr": "schgend == 3"}]
CENSUS_DERIVE = [
    {"name": "occ_ind_gp", "group_id": ["indus1ts", "occupat1t"]},
    {"name": "rel_eth_gp", "expr": "100 * cofbt + 10 * eths1t + relgs1t"},
    {"name": "eth_in_occ", "group_id": ["rel_eth_gp", "occ_ind_gp"]},
    {"name": "female", "expr": "sex == 2"},
    {"name": "c_age", "expr": "10 * agegpt - 40"},
    {"name": "c_age2", "expr": "c_age ** 2 - 1600"},
    {"name": "age_fem", "expr": "c_age * female"},
    {"name": "poor_health", "expr": "health1 >= 4"},
    {"name": "tory_points", "recode": {-9: 0, 1: 0, 2: 1, 3: 2, 4: 3}, "source": "numhrs"},
]


def _spec(id: str, dataset: str, formula: str, derive: list[dict[str, Any]] | None = None,
          **model: Any) -> Spec:
    return parse_spec({"id": id, "title": id, "source": "models.md", "dataset": dataset,
                       "derive": derive or [], "model": {"formula": formula, **model}})


def specs() -> dict[str, Spec]:
    out = [
        _spec("lab2.stata2.2.gcse_robust/robust", "gcse", "gcse ~ lrt + girl + sch_2 + sch_3",
              GCSE_DERIVE, method="OLS", cluster_se="school"),
        _spec("lab1.ex1.1.lin1", "gcse", "gcse ~ lrt + girl + sch_2 + sch_3", GCSE_DERIVE,
              method="OLS"),
        _spec("lab1.stata1.1.rs_ml", "gcse",
              "gcse ~ lrt + girl + sch_2 + sch_3 + (1 + lrt | school)", GCSE_DERIVE, method="ML"),
        _spec("lab1.stata1.3.rs_biv_reml", "gcse", "gcse ~ lrt + (1 | school) + (0 + lrt | school)",
              method="REML"),
        _spec("lab1.stata1.5.l3_c", "nurses",
              "stress ~ expcon + age + gender + experien + wardtype + hospsize + (1 | hospital) "
              "+ (0 + expcon | hospital) + (1 | wardid)", method="ML"),
        _spec("lab1.stata1.5.m3a", "census",
              "health1 ~ c_age + c_age2 + (1 | occ_ind_gp) + (1 | eth_in_occ)", CENSUS_DERIVE,
              method="ML"),
        _spec("lab1.stata1.5.cross", "census",
              "health1 ~ c_age + c_age2 + (1 | rel_eth_gp) + (1 | occ_ind_gp)", CENSUS_DERIVE,
              method="ML"),
        _spec("slide.talk2.p18.poor_health_rs", "census",
              "poor_health ~ female + c_age + age_fem + (1 | occ_ind_gp) + (0 + agegpt | occ_ind_gp)",
              CENSUS_DERIVE, family="binomial", link="logit", method="ML",
              integration={"method": "aghq", "points": 7}),
        _spec("lab1.stata1.4.cen_ologit_ri", "census", "health1 ~ agegpt + (1 | occ_ind_gp)",
              CENSUS_DERIVE, family="ordinal", method="ML",
              integration={"method": "aghq", "points": 7}),
        _spec("lab1.stata1.4.cen_pois_ri", "census", "tory_points ~ agegpt + (1 | occ_ind_gp)",
              CENSUS_DERIVE, family="poisson", method="ML",
              integration={"method": "aghq", "points": 7}),
        _spec("lab1.stata1.4.bin_rs/laplace", "gcse",
              "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school) + (0 + lrt | school)",
              GCSE_DERIVE + [{"name": "hi_gcse", "expr": "gcse >= 10"}], family="binomial",
              method="ML", integration={"method": "laplace"}),
    ]
    return {s.id: s for s in out}
