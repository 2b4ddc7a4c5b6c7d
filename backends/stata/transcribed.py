"""The Stata numbers the course itself printed, kept as stored results (mode "transcribed").

The printed text is the source of truth here (kept as strings, so the printed precision is not
lost); :func:`write_all` turns it into the JSON files in ``backends/stata/stored/`` and
``tests/stata/test_stored.py`` checks those files are exactly what this module builds. Values
come from models.md §4.2 (talk 4 slide 6, blocks A-C), §4.5 (talk 2 slide 18; N61 and N63 from
lab 1 Stata ex 1.5). Standard errors are recorded only on the scale Stata printed them (Stata's
delta-method SEs of SDs in block C, of variances after melogit); rows on other scales are derived
from the printed estimates and carry no SE. Run ``python -m backends.stata.transcribed`` to
rewrite the files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.stata.stored import save_stored
from harness.formula import parse_formula
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, Statistics,
                             residual_parameters, variance_parameters)

PRECISION = ("as printed by Stata (about 7 significant digits; the log likelihood to 3 decimals); "
             "compare with a tolerance of half a unit in the last printed digit")

GCSE_FIXED = "gcse ~ lrt + girl + sch_2 + sch_3"


def _model(formula: str, family: str = "gaussian", link: str = "identity", method: str = "ML",
           integration: str | None = None, cluster_se: str | None = None) -> dict[str, Any]:
    from backends.stata.render import normal_formula
    return {"formula": normal_formula(parse_formula(formula)), "family": family, "link": link,
            "method": method, "integration": integration or method, "cluster_se": cluster_se}


# spec id -> what the course printed. "fixed": term -> (estimate, SE) as printed text;
# "sd"/"var": group -> {effect: (estimate, SE or None)}; "cor": group -> {(a, b): (r, SE)}.
TRANSCRIBED: dict[str, dict[str, Any]] = {
    "lab1.ex1.1.lin1": {
        "source": "talk 4 slide 6, Stata regress output (models.md §4.2 block A; N6)",
        "model": _model(GCSE_FIXED, method="OLS"),
        "command": "regress gcse lrt girl sch_2 sch_3",
        "fixed": {"lrt": (".5910456", ".0126259"), "girl": ("1.326415", ".3431437"),
                  "sch_2": ("1.825545", ".4256816"), "sch_3": ("1.680108", ".3259095"),
                  "(Intercept)": ("-1.608613", ".2395156")},
        "residual_sd": ("7.9702", None),
        "nobs": 4059,
        "notes": ["Root MSE 7.9702 (divisor N - K) is the residual SD",
                  "also printed: F(4, 4054) = 580.15, R-squared 0.3640, adj. 0.3634"],
    },
    "lab2.stata2.2.gcse_robust/robust": {
        "source": "talk 4 slide 6, Stata regress with vce(cluster school) (models.md §4.2 "
                  "block B; N7)",
        "model": _model(GCSE_FIXED, method="OLS", cluster_se="school"),
        "command": "regress gcse lrt girl sch_2 sch_3, vce(cluster school)",
        "fixed": {"lrt": (".5910456", ".0228708"), "girl": ("1.326415", ".3065043"),
                  "sch_2": ("1.825545", ".8978494"), "sch_3": ("1.680108", ".8797399"),
                  "(Intercept)": ("-1.608613", ".4846955")},
        "residual_sd": ("7.9702", None),
        "nobs": 4059,
        "notes": ["cluster-robust SEs: 65 clusters in school; t with 64 df, F(4, 64) = 189.65"],
    },
    "lab1.stata1.1.rs_ml": {
        "source": "talk 4 slide 6, Stata mixed ML, cov(unstructured), SD display (models.md "
                  "§4.2 block C; N19)",
        "model": _model(GCSE_FIXED + " + (1 + lrt | school)"),
        "command": "mixed gcse lrt girl sch_2 sch_3 || school: lrt, cov(unstructured) mle "
                   "stddeviations",
        "fixed": {"lrt": (".5544234", ".0199381"), "girl": ("1.682633", ".3382158"),
                  "sch_2": ("1.79864", ".9914847"), "sch_3": ("1.748186", ".7876956"),
                  "(Intercept)": ("-1.888208", ".5135382")},
        "sd": {"school": {"(Intercept)": ("2.820425", ".2901373"),
                          "lrt": (".1210464", ".0189266")}},
        "cor": {"school": {("(Intercept)", "lrt"): (".5886686", ".1389937")}},
        "residual_sd": ("7.417498", ".0837029"),
        "loglik": "-13986.738", "nobs": 4059, "ngroups": {"school": 65}, "converged": True,
        "notes": ["SEs of sd(lrt), sd(_cons), corr and sd(Residual) are Stata's delta-method "
                  "SEs on the SD/correlation scale, as printed",
                  "Wald chi2(4) = 820.18; obs per group 2 / 62.4 / 198"],
    },
    "slide.talk2.p18.poor_health_rs": {
        "source": "talk 2 slide 18, Stata melogit, mvaghermite 7 points, independent "
                  "covariance (models.md §4.5; N64)",
        "model": _model("poor_health ~ female + c_age + age_fem + (1 | occ_ind_gp) + "
                        "(0 + agegpt | occ_ind_gp)", family="binomial", link="logit",
                        integration="AGHQ(7)"),
        "command": "melogit poor_health female c_age age_fem || occ_ind_gp: agegpt",
        "fixed": {"female": (".1282234", ".05366"), "c_age": (".0484283", ".0017969"),
                  "age_fem": ("-.0066825", ".0019679"),
                  "(Intercept)": ("-3.543554", ".0693899")},
        "var": {"occ_ind_gp": {"(Intercept)": (".2134169", ".0551743"),
                               "agegpt": (".0027651", ".0009485")}},
        "loglik": "-11969.091", "nobs": 63388, "ngroups": {"occ_ind_gp": 118},
        "converged": None,
        "notes": ["SEs of var(agegpt) and var(_cons) are Stata's, on the variance scale",
                  "the slide's log: 13 iterations, 0-6 'not concave', the final log likelihood "
                  "repeated at iterations 11 and 12; the course says it 'struggled to converge'",
                  "the command as printed states no covariance (Stata's default, independent) "
                  "and no integration options (defaults: mvaghermite, 7 points)"],
    },
    "lab1.stata1.5.m3a": {
        "source": "lab 1 Stata ex 1.5: the variances the course's hand calculations use "
                  "(models.md §4.5, N61)",
        "model": _model("health1 ~ c_age + c_age2 + (1 | occ_ind_gp) + (1 | eth_in_occ)"),
        "command": "mixed health1 c_age c_age2 || occ_ind_gp: || eth_in_occ:, mle",
        "var": {"occ_ind_gp": {"(Intercept)": (".0317953", None)},
                "eth_in_occ": {"(Intercept)": (".0018472", None)}},
        "residual_var": (".6395205", None),
        "notes": ["only the variance components are stated (no fixed effects, SEs or "
                  "log likelihood)"],
    },
    "lab1.stata1.5.cross": {
        "source": "lab 1 Stata ex 1.5: the variances the course's hand calculations use "
                  "(models.md §4.5, N63)",
        "model": _model("health1 ~ c_age + c_age2 + (1 | rel_eth_gp) + (1 | occ_ind_gp)"),
        "command": "mixed health1 c_age c_age2 || _all: R.rel_eth_gp || occ_ind_gp:, mle",
        "var": {"rel_eth_gp": {"(Intercept)": (".0113245", None)},
                "occ_ind_gp": {"(Intercept)": (".0332933", None)}},
        "residual_var": (".6392549", None),
        "notes": ["only the variance components are stated (no fixed effects, SEs or "
                  "log likelihood)"],
    },
}


def _f(text: str | None) -> float | None:
    return None if text is None else float(text)


def build(spec_id: str) -> tuple[FitResult, dict[str, Any]]:
    """The transcribed FitResult for ``spec_id`` and the extra JSON keys (model, printed)."""
    t = TRANSCRIBED[spec_id]
    printed: dict[str, Any] = {}
    params: list[Parameter] = []
    for term, (est, se) in t.get("fixed", {}).items():
        params.append(Parameter("fixed", None, term, float(est), _f(se)))
        printed[f"fixed/{term}"] = {"estimate": est, "std_error": se}
    for scale in ("sd", "var"):
        for group, effects in t.get(scale, {}).items():
            names = list(effects)
            sds = [float(e) if scale == "sd" else float(e) ** 0.5 for e, _ in effects.values()]
            cors = t.get("cor", {}).get(group)
            corr = None
            if cors:
                corr = [[1.0 if i == j else 0.0 for j in names] for i in names]
                for (a, b), (r, _) in cors.items():
                    i, j = names.index(a), names.index(b)
                    corr[i][j] = corr[j][i] = float(r)
            rows = variance_parameters(group, names, sds, corr)
            ses = {f"{scale}__{n}": _f(se) for n, (_, se) in effects.items()}
            for n, (est, se) in effects.items():
                printed[f"ran_pars/{group}/{scale}__{n}"] = {"estimate": est, "std_error": se}
            for (a, b), (r, se) in (cors or {}).items():
                ses[f"cor__{a}.{b}"] = _f(se)
                printed[f"ran_pars/{group}/cor__{a}.{b}"] = {"estimate": r, "std_error": se}
            params += [replace(p, std_error=ses.get(p.term)) for p in rows]
    if "residual_sd" in t or "residual_var" in t:
        scale = "sd" if "residual_sd" in t else "var"
        est, se = t[f"residual_{scale}"]
        sigma = float(est) if scale == "sd" else float(est) ** 0.5
        rows = residual_parameters(sigma)
        params += [replace(p, std_error=_f(se) if p.term == f"{scale}__Observation" else None)
                   for p in rows]
        printed[f"ran_pars/Residual/{scale}__Observation"] = {"estimate": est, "std_error": se}
    if "loglik" in t:
        printed["stat/loglik"] = t["loglik"]
    stats = Statistics(nobs=t.get("nobs"), ngroups=dict(t.get("ngroups", {})),
                       loglik=_f(t.get("loglik")))
    model = t["model"]
    result = FitResult(
        spec_id=spec_id, backend="stata", status="ok",
        message="transcribed from the course materials, not fitted",
        parameters=params, statistics=stats,
        diagnostics=Diagnostics(converged=t.get("converged"), messages=[
            f"precision: {PRECISION}",
            "rows on scales Stata did not print (e.g. var from a printed sd) are derived from "
            "the printed estimates and carry no SE",
            f"equivalent Stata command (the source shows output, not this line): "
            f"{t['command']}", *t.get("notes", [])]),
        provenance=Provenance(backend="stata", mode="transcribed",
                              software={"Stata": "17 (the version the course names)"},
                              method=model["integration"], call=None,
                              source=t["source"]))
    return result, {"model": model, "printed": printed, "precision": PRECISION}


def write_all(folder: Path | None = None) -> list[Path]:
    paths = []
    for spec_id in TRANSCRIBED:
        result, extra = build(spec_id)
        paths.append(save_stored(result, extra.pop("model"), folder, extra=extra))
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in write_all():
        print(p)
