"""Native GLMMs vs glmer / clmm: wall-clock medians on the course GLMMs.

Run as ``python -m benchmarks.glmm [--repeats N] [--only CASE ...]``. glmer and clmm are timed inside
R (``system.time`` around the fit, data already in R, one R session), so R's start-up and data
reading are excluded; the native time is the whole ``fit_glmm`` call (design matrices, all
stages, Hessian and random effects) on data already in pandas. Ratio = native / R.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.native_glmm import data as course

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sgsss-2025"


@dataclass(frozen=True)
class GCase:
    id: str
    dataset: str                  # loader name in tests.native_glmm.data
    formula: str
    family: str
    link: str
    points: int                   # 1 = Laplace
    r_points: int | None = None   # points R uses when it cannot use ``points`` (glmer: vector
                                  # random effects only by Laplace); default: the same

    @property
    def r_call(self) -> str:
        """The R fit of the same model (data frame ``d``), derived so the two cannot drift."""
        n = self.r_points or self.points
        if self.family == "ordinal":
            y, rhs = (t.strip() for t in self.formula.split("~"))
            return f"ordinal::clmm(factor({y}) ~ {rhs}, data = d, nAGQ = {n})"
        fam = self.family if self.link in ("logit", "log") else \
            f"{self.family}(link = '{self.link}')"
        return f"glmer({self.formula}, data = d, family = {fam}, nAGQ = {n})"


_GCSE_RI = "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school)"
_POP_RI = "sex + Cextrav + Ctexp + (1 | class)"
_POP_RS = "sex + Cextrav + Ctexp + (1 + Cextrav | class)"
_CENSUS_RI = "good_health ~ agegpt + (1 | occ_ind_gp)"

CASES = (
    GCase("gcse_logit_laplace", "gcse", _GCSE_RI, "binomial", "logit", 1),
    GCase("gcse_logit_aghq7", "gcse", _GCSE_RI, "binomial", "logit", 7),
    GCase("pop_logit_laplace", "popular2", f"pop2 ~ {_POP_RI}", "binomial", "logit", 1),
    GCase("pop_logit_aghq7", "popular2", f"pop2 ~ {_POP_RI}", "binomial", "logit", 7),
    GCase("pop_logit_rs_laplace", "popular2", f"pop2 ~ {_POP_RS}", "binomial", "logit", 1),
    GCase("pop_poisson_laplace", "popular2", f"pop7 ~ {_POP_RI}", "poisson", "log", 1),
    GCase("pop_poisson_rs_laplace", "popular2", f"pop7 ~ {_POP_RS}", "poisson", "log", 1),
    GCase("pop_ordinal_laplace", "popular2", f"pop3 ~ {_POP_RI}", "ordinal", "logit", 1),
    GCase("census_logit_aghq7", "census", _CENSUS_RI, "binomial", "logit", 7),
    GCase("census_probit_aghq7", "census", _CENSUS_RI, "binomial", "probit", 7),
    GCase("census_stata_mvaghq7", "census",
          "poor_health ~ female + c_age + age_fem + (1 | occ_ind_gp) + (0 + agegpt | occ_ind_gp)",
          "binomial", "logit", 7, r_points=1),
)

_R_PREP = {
    "gcse": """d <- foreign::read.dta(file.path(D, "gcse.dta"), convert.factors = FALSE)
d$hi_gcse <- as.numeric(d$gcse >= 10); d$sch_2 <- as.numeric(d$schgend == 2)
d$sch_3 <- as.numeric(d$schgend == 3)""",
    "popular2": """d <- foreign::read.dta(file.path(D, "popular2.dta"), convert.factors = FALSE)
p <- d$popular; d$pop2 <- as.numeric(p > 5); d$pop3 <- 1 + (p > 5) + (p > 7)
d$pop7 <- (p > 5) + (p > 6) + (p > 6.5) + (p > 7) + (p > 7.5) + (p > 8)""",
    "census": """d <- foreign::read.dta(file.path(D, "censusmicroteaching11s.dta"),
                       convert.factors = FALSE)
d$occ_ind_gp <- as.integer(factor(paste(d$indus1ts, d$occupat1t, sep = ":")))
d$good_health <- as.numeric(d$health1 %in% c(1, 2)); d$poor_health <- as.numeric(d$health1 >= 4)
d$female <- as.numeric(d$sex == 2); d$c_age <- 10 * d$agegpt - 40
d$age_fem <- d$c_age * d$female""",
}


def r_times(cases: tuple[GCase, ...], repeats: int) -> dict[str, list[float]]:
    """Time every case's R call ``repeats`` times in one R session (after one warm-up fit)."""
    lines = ["suppressPackageStartupMessages({library(lme4); library(ordinal)})",
             f"D <- {json.dumps(str(DATA))}", "out <- list()"]
    for c in cases:
        lines += [_R_PREP[c.dataset], f"invisible({c.r_call})",
                  f"out[[{json.dumps(c.id)}]] <- replicate({repeats}, "
                  f"system.time({c.r_call})[['elapsed']])"]
    with tempfile.TemporaryDirectory() as tmp:
        script, res = Path(tmp) / "bench.R", Path(tmp) / "times.json"
        lines.append(f"jsonlite::write_json(out, {json.dumps(str(res))}, digits = NA)")
        script.write_text("\n".join(lines) + "\n")
        subprocess.run(["Rscript", str(script)], check=True, capture_output=True, timeout=3600)
        return json.loads(res.read_text())


def native_times(cases: tuple[GCase, ...], repeats: int) -> dict[str, list[float]]:
    from backends.native.glmm import fit_glmm

    out: dict[str, list[float]] = {}
    for c in cases:
        df = getattr(course, c.dataset)()
        kw = dict(family=c.family, link=c.link,
                  integration="laplace" if c.points == 1 else "aghq", points=c.points)
        fit_glmm(c.formula, df, **kw)            # warm-up (imports, caches)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fit_glmm(c.formula, df, **kw)
            times.append(time.perf_counter() - t0)
        out[c.id] = times
    return out


def table(cases: tuple[GCase, ...], nat: dict, r: dict) -> str:
    rows = ["| model | method | native median (s) | R median (s) | native / R |",
            "|---|---|---:|---:|---:|"]
    for c in cases:
        n = statistics.median(nat[c.id])
        method = "Laplace" if c.points == 1 else (
            f"MVAGHQ({c.points})" if "+ (0 +" in c.formula else f"AGHQ({c.points})")
        if c.id in r:
            rm = statistics.median(r[c.id])
            rc = "clmm" if "clmm" in (c.r_call or "") else "glmer"
            if "mvaghq" in c.id:
                rc = "glmer Laplace; glmer has no AGQ for vector effects"
            rows.append(f"| {c.id} | {method} | {n:.3f} | {rm:.3f} ({rc}) | "
                        f"{n / rm:.2f} |")
        else:
            rows.append(f"| {c.id} | {method} | {n:.3f} | - | - |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="case ids")
    args = ap.parse_args()
    cases = tuple(c for c in CASES if not args.only or c.id in args.only)
    nat = native_times(cases, args.repeats)
    r = r_times(cases, args.repeats)
    print(table(cases, nat, r))


if __name__ == "__main__":
    main()
