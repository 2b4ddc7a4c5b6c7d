"""A study's claim, judged in words derived from its summary numbers (never written by hand).

"Within Monte Carlo error" means: within two Monte Carlo standard errors of the nominal value,
the MC SE of a coverage taken at the nominal level, ``sqrt(level (1 - level) / n)``, so that a
cell whose intervals all covered (an observed rate of 1, MC SE 0) is not called exact.

Three kinds, one per shipped claim (study key ``verdict.kind``):

* ``sample_size``: "k clusters of n suffice" — at which (k, n) the Wald intervals of the fixed
  effects and of the random-effect sds reach nominal coverage for every fit, and whether the
  rule's own cell does;
* ``ignore_clustering``: "if ICC < c, no real impact on the betas" — the bias and the SE ratio
  (reported SE / actual spread) of the fits that ignore the clustering, at ICCs below c;
* ``subsample``: "k at 20 or above is getting fairly close" — RMSE and coverage as the number of
  clusters grows, at the named k against the largest (simulated outcomes: an observed outcome
  is compared with the full-sample fit, which the full design reproduces exactly).
"""

from __future__ import annotations

import math

import pandas as pd

from .study import LoadedStudy, SampleSizeVerdict, SubsampleVerdict

MC_Z = 2.0


def within(value: float, n: int, level: float) -> bool:
    return abs(value - level) <= MC_Z * math.sqrt(level * (1 - level) / max(n, 1))


def _fmt_cov(row: pd.Series) -> str:
    return f"{row['value']:.3f} ± {row['mcse']:.3f}"


def _is_group_sd(key: str) -> bool:
    return key.startswith("ran_pars/") and "/sd__" in key and not key.startswith(
        "ran_pars/Residual/")


def coverage_rows(summary: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Coverage rows of fixed effects (Wald) or group sds (Wald on the log scale)."""
    cov = summary[summary["metric"] == "coverage"]
    if kind == "fixed":
        return cov[cov["key"].str.startswith("fixed/") & (cov["interval"] == "wald")]
    return cov[cov["key"].map(_is_group_sd) & (cov["interval"] == "wald_log")]


def verdict(loaded: LoadedStudy, summary: pd.DataFrame) -> list[str]:
    """Paragraphs for the study's claim (empty when it states no verdict or has no numbers)."""
    rule = loaded.study.verdict
    if rule is None or summary.empty:
        return []
    level = loaded.study.level
    if isinstance(rule, SampleSizeVerdict):
        return [p for fam, kn in rule.rule.items()
                if (p := _sample_size(summary, fam, kn, level))]
    if isinstance(rule, SubsampleVerdict):
        return _subsample(summary, rule.k, level)
    return _ignore_clustering(summary, rule.threshold, rule.naive, level)


# ---- sample size ---------------------------------------------------------------------------


def _adequate(rows: pd.DataFrame, level: float) -> bool:
    return bool(len(rows)) and all(within(r.value, r.n, level) for r in rows.itertuples())


def _smallest_k(rows: pd.DataFrame, n: int, level: float) -> int | None:
    """The smallest k from which every larger k (at cluster size n) is adequate."""
    at_n = rows[rows["cluster_size"] == n]
    ks = sorted(at_n["clusters"].unique())
    good = None
    for k in reversed(ks):
        if not _adequate(at_n[at_n["clusters"] == k], level):
            break
        good = int(k)
    return good


def _sample_size(summary: pd.DataFrame, family: str, rule: tuple[int, int],
                 level: float) -> str:
    s = summary[summary.get("family", pd.Series(dtype=str)) == family] \
        if "family" in summary else summary
    s = s[pd.to_numeric(s["clusters"], errors="coerce").notna()
          & pd.to_numeric(s["cluster_size"], errors="coerce").notna()]
    if s.empty:
        return ""
    s = s.assign(clusters=s["clusters"].astype(int), cluster_size=s["cluster_size"].astype(int))
    k_rule, n_rule = rule
    ks, ns = sorted(s["clusters"].unique()), sorted(s["cluster_size"].unique())
    k_at = next((k for k in ks if k >= k_rule), ks[-1])
    n_at = next((n for n in ns if n >= n_rule), ns[-1])
    fixed, sds = coverage_rows(s, "fixed"), coverage_rows(s, "sd")
    fits = ", ".join(sorted(fixed["fit"].unique()))
    parts = [f"{family.capitalize()} outcomes (fits {fits}), against the rule of thumb of "
             f"{k_rule} clusters of {n_rule}: the nearest design cell at or above it is "
             f"k = {k_at}, n = {n_at}."]
    cell_fixed = fixed[(fixed["clusters"] == k_at) & (fixed["cluster_size"] == n_at)]
    cell_sd = sds[(sds["clusters"] == k_at) & (sds["cluster_size"] == n_at)]
    ok_fixed, ok_sd = _adequate(cell_fixed, level), _adequate(cell_sd, level)
    for name, rows, ok in (("fixed effects (Wald)", cell_fixed, ok_fixed),
                           ("random-effect sds (Wald on the log scale)", cell_sd, ok_sd)):
        if rows.empty:
            continue
        worst = rows.loc[(rows["value"] - level).abs().idxmax()]
        parts.append(f"There, the coverage of the {name} is "
                     f"{'within' if ok else 'outside'} Monte Carlo error of {level:.0%} for "
                     f"every fit (furthest: {worst['fit']} {worst['key']} "
                     f"{_fmt_cov(worst)}, n = {int(worst['n'])}).")
    for name, rows in (("fixed effects", fixed), ("random-effect sds", sds)):
        if rows.empty:
            continue
        smallest = {n: _smallest_k(rows, n, level) for n in ns}
        said = "; ".join(f"n = {n}: " + (f"k ≥ {k}" if k is not None else "no k in the design")
                         for n, k in smallest.items())
        parts.append(f"Nominal coverage of the {name} for every fit from: {said}.")
    bias = s[(s["metric"] == "relative_bias") & s["key"].map(_is_group_sd)
             & (s["clusters"] == k_at) & (s["cluster_size"] == n_at)]
    if not bias.empty:
        worst = bias.loc[bias["value"].abs().idxmax()]
        parts.append(f"The random-effect sd's relative bias there is at most "
                     f"{worst['value']:+.1%} ± {worst['mcse']:.1%} ({worst['fit']}).")
    smaller = _smallest_k(fixed, n_at, level)
    if ok_fixed and ok_sd:
        word = "holds"
        if smaller is not None and smaller < k_at:
            word += (f", and is conservative for the fixed effects (k = {smaller} already "
                     f"suffices at n = {n_at})")
    elif ok_fixed:
        word = "holds for the fixed effects but not for the variance components"
    else:
        word = "does not hold"
    parts.append(f"Verdict: the rule {word}.")
    return " ".join(parts)


# ---- ignoring the clustering ----------------------------------------------------------------


def _ignore_clustering(summary: pd.DataFrame, threshold: float, naive: list[str],
                       level: float) -> list[str]:
    s = summary[pd.to_numeric(summary.get("icc"), errors="coerce").notna()] \
        if "icc" in summary else pd.DataFrame()
    if s.empty:
        return []
    s = s[s["key"].str.startswith("fixed/") & (s["key"] != "fixed/(Intercept)")]
    below = sorted(v for v in s["icc"].unique() if v <= threshold)
    if not below:
        return [f"No design cell has an ICC at or below {threshold:g}."]
    at = below[-1]
    ns = sorted(s["cluster_size"].unique()) if "cluster_size" in s else [None]
    paras = []
    bias = s[(s["metric"] == "bias") & s["fit"].isin(naive) & (s["icc"] <= threshold)]
    biased = [r for r in bias.itertuples() if abs(r.value) > MC_Z * r.mcse]
    paras.append(
        f"Point estimates: in {len(bias)} naive-fit estimates at ICC ≤ {threshold:g} "
        f"({', '.join(naive)}), {len(biased)} {'has' if len(biased) == 1 else 'have'} a bias "
        "beyond two Monte Carlo SEs"
        + (f" (largest: {max(biased, key=lambda r: abs(r.value)).key} "
           f"{max(biased, key=lambda r: abs(r.value)).value:+.4f})" if biased else "")
        + "; ignoring the clustering leaves the coefficients themselves unbiased"
        + (" here." if not biased else " except there."))
    worst_cov = []
    for n in ns:
        rows = s[(s["icc"] == at) & ((s["cluster_size"] == n) if n is not None else True)]
        ratio = rows[rows["metric"] == "se_ratio"]
        cov = rows[(rows["metric"] == "coverage") & (rows["interval"] == "wald")]
        bits = []
        for r in ratio.sort_values(["key", "fit"]).itertuples():
            c = cov[(cov["fit"] == r.fit) & (cov["key"] == r.key)]
            cv = f", coverage {c['value'].iloc[0]:.3f} ± {c['mcse'].iloc[0]:.3f}" if len(c) else ""
            bits.append(f"{r.fit} {r.key.removeprefix('fixed/')}: SE ratio {r.value:.2f}{cv}")
            if r.fit in naive and len(c) and not within(c["value"].iloc[0], int(c["n"].iloc[0]),
                                                        level):
                worst_cov.append((n, r.key, c["value"].iloc[0]))
        paras.append(f"Standard errors at ICC = {at:g}" + (f", {n} per cluster" if n else "")
                     + " (reported SE / actual spread of the estimates; 1 is right): "
                     + "; ".join(bits) + ".")
    if worst_cov:
        sizes = sorted({n for n, _, _ in worst_cov if n is not None})
        paras.append(f"Verdict: the claim holds for the coefficients but not for their "
                     f"standard errors: at ICC = {at:g} the naive intervals under-cover"
                     + (f" with {', '.join(map(str, sizes))} per cluster" if sizes else "")
                     + " (the design effect 1 + (n - 1) ICC grows with the cluster size n), "
                     "so tests that ignore the clustering reject too often there.")
    else:
        paras.append(f"Verdict: the claim holds in this design: at ICC ≤ {threshold:g} the "
                     "naive fits' coefficients are unbiased and their intervals keep nominal "
                     "coverage within Monte Carlo error.")
    return paras


# ---- subsamples ----------------------------------------------------------------------------


def _subsample(summary: pd.DataFrame, k_claim: int, level: float) -> list[str]:
    s = summary[pd.to_numeric(summary.get("clusters"), errors="coerce").notna()] \
        if "clusters" in summary else pd.DataFrame()
    if s.empty:
        return []
    s = s.assign(clusters=s["clusters"].astype(int))
    if "outcome" in s:  # observed outcomes compare with the full-sample fit, not the truth
        s = s[s["outcome"].isin(["simulated", ""])]
    if "cluster_size" in s:
        s = s[s["cluster_size"].astype(str).isin(["all", ""])]
    if "cases" in s:
        s = s[s["cases"].astype(str).isin(["", "<NA>", "nan"])]
    ks = sorted(s["clusters"].unique())
    if not ks:
        return []
    k_at = next((k for k in ks if k >= k_claim), ks[-1])
    k_max = ks[-1]
    rmse = s[s["metric"] == "rmse"]
    bits = []
    for (fit, key), r in rmse.groupby(["fit", "key"], sort=True):
        if not (key.startswith("fixed/") or _is_group_sd(key)) or key == "fixed/(Intercept)":
            continue
        a, b = r[r["clusters"] == k_at], r[r["clusters"] == k_max]
        if len(a) and len(b) and b["value"].iloc[0] > 0:
            bits.append(f"{fit} {key.removeprefix('fixed/')}: {a['value'].iloc[0] / b['value'].iloc[0]:.2f}")
    fixed, sds = coverage_rows(s, "fixed"), coverage_rows(s, "sd")
    at_fixed, at_sd = fixed[fixed["clusters"] >= k_at], sds[sds["clusters"] >= k_at]
    paras = [f"RMSE at k = {k_at} clusters relative to k = {k_max} (the full design): "
             + "; ".join(bits) + "."]
    for name, rows in (("fixed effects (Wald)", at_fixed),
                       ("school-level sd (Wald, log scale)", at_sd)):
        if rows.empty:
            continue
        bad = rows[[not within(r.value, r.n, level) for r in rows.itertuples()]]
        paras.append(f"Coverage of the {name} at k ≥ {k_at}: "
                     + ("within Monte Carlo error of the nominal level for every fit."
                        if bad.empty else
                        f"outside Monte Carlo error in {len(bad)} of {len(rows)} cases "
                        f"(lowest {bad['value'].min():.3f})."))
    below = fixed[fixed["clusters"] < k_at]
    low = below[[not within(r.value, r.n, level) for r in below.itertuples()]]
    ok = all(within(r.value, r.n, level) for r in pd.concat([at_fixed, at_sd]).itertuples())
    paras.append(f"Verdict: {'supported' if ok else 'not supported'}: from k = {k_at} on the "
                 f"intervals are {'nominal' if ok else 'not yet nominal'}"
                 + (f", while below it {len(low)} fixed-effect coverages fall outside Monte "
                    "Carlo error" if len(low) else "") + ".")
    return paras
