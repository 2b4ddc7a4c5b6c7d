"""The self-contained R script that reproduces an lme4-backend fit.

The script reads the same data file, derives the same variables (``harness.derive.r_code``),
applies the same subset, declares the same factors and runs *the same call text* the worker ran,
then prints ``summary(fit)``. A user can paste it into R; a test runs it with Rscript and checks
the estimates against the backend's.
"""

from __future__ import annotations

from pathlib import Path

from backends.lme4.translate import DATA_SYMBOL, RPlan, plan as make_plan
from harness.derive import r_code
from harness.rsyntax import r_comment, r_name, r_string
from harness.spec import Derived, Model, Spec

PLACEHOLDER_PATH = "<path to the {dataset} data file>"  # the dataset is unknown to the registry
_CLUSTER_VCOV = Path(__file__).with_name("extract.R")


def read_line(path: str, frame: str = DATA_SYMBOL) -> str:
    """How the script reads the data: labels are never applied, as the harness reads it."""
    suffix = Path(path.rstrip(">")).suffix.lower()  # also for a "<path to x.dta>" placeholder
    quoted = r_string(path)
    if suffix == ".dta":
        return f"{frame} <- foreign::read.dta({quoted}, convert.factors = FALSE)"
    if suffix in (".sav", ".zsav"):
        # use.missings = FALSE: user-missing codes stay values, as the harness reads .sav files
        # by default (harness.datasets.SPSS_USER_MISSING_RULES, "as_values")
        return (f"{frame} <- foreign::read.spss({quoted}, to.data.frame = TRUE, "
                "use.value.labels = FALSE, use.missings = FALSE)")
    if suffix == ".csv":
        # check.names = FALSE: column names as the harness reads them, not make.names()'d
        return f"{frame} <- read.csv({quoted}, check.names = FALSE)"
    if suffix == ".parquet":
        return f"{frame} <- as.data.frame(arrow::read_parquet({quoted}))"
    return f"{frame} <- read.csv({quoted})  # unknown file type: adjust the reader"


def _cluster_vcov_source() -> str:
    """harness_cluster_vcov, copied from extract.R so script and worker compute the same."""
    text = _CLUSTER_VCOV.read_text()
    start = text.index("harness_cluster_vcov <- function")
    end = text.index("\n}\n", start) + 3
    return text[start:end]


def render_script(spec: Spec, model: Model, plan: RPlan, data_path: str | Path | None,
                  backend: str = "lme4") -> str:
    path = str(data_path) if data_path else PLACEHOLDER_PATH.format(dataset=spec.dataset)
    d = DATA_SYMBOL
    lines = [r_comment(f"mlm-harness spec {spec.id}: {spec.title}"),
             r_comment(f"{backend} backend, method {plan.method_label}. Reproduces the harness's "
                       "fit: run with"),
             "#   Rscript this_file.R"]
    lines += [f"suppressPackageStartupMessages(library({p}))" for p in plan.packages]
    lines += ["", read_line(path, d)]
    rep = spec.replicate
    if rep is not None:
        lines += ["", f"# replicate the data {rep.times} times (copies numbered in rep1)",
                  f"n0 <- nrow({d})",
                  f"{d} <- {d}[rep(seq_len(n0), times = {rep.times}), , drop = FALSE]",
                  f"rownames({d}) <- NULL",
                  f"{d}$rep1 <- rep(seq_len({rep.times}), each = n0)"]
        if rep.new_id:
            lines.append(f"{d}${r_name(rep.new_id)} <- {d}${r_name(rep.cluster)} * 100000 + "
                         f"{d}$rep1")
    if spec.derive:
        lines += ["", "# derived variables"] + r_code(spec.derive, frame=d)
    if spec.subset:
        keep = r_code([Derived(name=".keep", expr=spec.subset)], frame=d)[0]
        lines += ["", r_comment(f"subset: keep rows where {spec.subset} is nonzero (and not "
                                "missing)"),
                  keep,
                  f"{d} <- {d}[!is.na({d}$.keep) & {d}$.keep != 0, , drop = FALSE]",
                  f"{d}$.keep <- NULL"]
    if plan.factor_lines:
        lines += ["", "# factors: levels sorted, the reference level first"]
        lines += list(plan.factor_lines)
    lines += [""]
    if plan.cluster:
        lines += ["# cluster-robust (CR1) standard errors, as the harness computes them",
                  _cluster_vcov_source().rstrip(), ""]
    lines += [f"fit <- {plan.call}", "print(summary(fit))"]
    if plan.cluster:
        lines += [f"cl <- {d}${r_name(plan.cluster)}[match(rownames(model.frame(fit)), "
                  f"rownames({d}))]",
                  f"V <- harness_cluster_vcov(fit, cl, ols = {'TRUE' if plan.ols else 'FALSE'})",
                  "print(cbind(estimate = coef(fit)[!is.na(coef(fit))], "
                  "cluster_se = sqrt(diag(V))))"]
    return "\n".join(lines) + "\n"


def default_data_path(dataset: str) -> str:
    """Where the script reads ``dataset`` when no fit told us: the local copy if the registry
    finds one, else a placeholder naming the registry's file (so the reader still matches)."""
    from harness.datasets import DatasetError, load_registry, locate

    try:
        registry = load_registry()
    except (DatasetError, OSError):
        registry = {}
    if dataset in registry:
        try:
            return str(locate(dataset))
        except DatasetError:
            return f"<path to {registry[dataset].file}>"
    return dataset  # a spec may name a data file by path


def render(spec: Spec, data_path: str | Path | None = None) -> str:
    model = spec.model_for("lme4")
    path = data_path if data_path else default_data_path(spec.dataset)
    return render_script(spec, model, make_plan(spec, model), path)
