"""Stata ``mixed`` and ``me*`` (``melogit``, ``meprobit``, ``mepoisson``, ``meologit``, ``meglm``)
printouts, Stata 13 to 18 layouts (``Coef.  Std. Err.`` and ``Coefficient  Std. err.``).

What is read:

* the title (``Mixed-effects ML regression``, ``... REML regression``, ``Mixed-effects logistic
  regression``...) and ``Integration method: mvaghermite`` with ``Integration pts. = 7``, giving
  the estimator (ML, REML, MVAGHQ(7), AGHQ(7) for ``mcaghermite``, GHQ(n), Laplace);
* ``Number of obs``, ``Number of groups`` with ``Group variable``, or the per-level table of a
  model with several levels; the final ``Log likelihood`` / ``Log restricted-likelihood``
  (never an iteration's);
* the coefficient table: an estimate and its standard error per row. Factor variables are a
  header row (``schgend |``) followed by level rows (``2 |``); the level is Stata's ``2.schgend``,
  which R calls ``factor(schgend)2`` or ``schgend2`` (the spec's model decides). ``Odds ratio``,
  ``IRR``, ``exp(b)`` and ``Haz. ratio`` columns are exp(b): such values carry ``display: exp``
  (harness/references.py turns them back with their precision). ``/cut1``... are thresholds;
* the random-effects parameters, in ``mixed``'s own table or below the coefficients of ``me*``:
  ``var()``, ``sd()``, ``cov()``, ``corr()`` of ``_cons`` (the intercept), a slope, ``R.x``
  (a crossed factor ``x``) or the residual (``Residual``, ``e.y``), each under its level's header
  (``school: Unstructured``, ``hospital>ward``).

Printed but not imported (listed in :attr:`Printout.skipped`): Wald chi2, the LR test against
the model without random effects, confidence intervals, z and P>|z|.
"""

from __future__ import annotations

import re

from harness.keys import ParamKey
from harness.printouts.base import PrintedValue, Printout, PrintoutError, intercept, number_text

_EXP_COLUMNS = ("Odds ratio", "Odds Ratio", "IRR", "exp(b)", "Haz. ratio", "Haz. Ratio",
                "Rel. risk", "RRR")
_COEF_COLUMNS = ("Coef.", "Coefficient", *_EXP_COLUMNS)
_PARAM = re.compile(r"^(var|sd|cov|corr)\((.+)\)$")
_INTEGRATION = {"mvaghermite": "MVAGHQ", "mcaghermite": "AGHQ", "ghermite": "GHQ",
                "laplace": "Laplace"}


def parse_stata(text: str, fmt: str) -> Printout:
    lines = [line.rstrip() for line in text.replace("\t", "    ").splitlines()]
    out = Printout(format=fmt, software="Stata", method=_method(text))
    _header(lines, out)
    tables = _tables(lines)
    if not tables:
        raise PrintoutError("no Stata estimation table (a line with 'Coefficient' or 'Coef.' "
                            "and '|') found: paste the output from the title line "
                            "('Mixed-effects ... regression') to the end of the tables")
    for header, rows in tables:
        _table(header, rows, out)
    if not any(v.candidates[0].kind in ("fixed", "ran_pars") for v in out.values):
        raise PrintoutError("the tables hold no coefficients or variance parameters")
    return out


def _method(text: str) -> str | None:
    if re.search(r"Mixed-effects REML regression", text):
        return "REML"
    if re.search(r"Mixed-effects ML regression", text):
        return "ML"
    hit = re.search(r"Integration method:\s*(\w+)", text)
    if hit and hit.group(1) in _INTEGRATION:
        kind = _INTEGRATION[hit.group(1)]
        if kind == "Laplace":
            return "Laplace"
        pts = re.search(r"Integration pts\.\s*=\s*(\d+)", text)
        if pts:
            n = int(pts.group(1))
            return "Laplace" if n == 1 else f"{kind}({n})"
    return None


def _header(lines: list[str], out: Printout) -> None:
    """Counts and the final log-likelihood from the lines above the tables."""
    loglik = None
    group = None
    for i, line in enumerate(lines):
        hit = re.match(r"^\s*Log (?:restricted-)?likelihood\s*=\s*(\S+)", line)
        if hit and number_text(hit.group(1)):
            loglik = number_text(hit.group(1))
        if re.match(r"^\s*Log pseudolikelihood", line):
            out.skipped.append("log pseudolikelihood (not a likelihood of the model)")
        hit = re.search(r"Group variable:\s*(\S+)", line)
        if hit:
            group = hit.group(1)
        hit = re.search(r"Number of obs\s*=\s*([\d,]+)", line)
        if hit:
            out.values.append(PrintedValue("Number of obs", (ParamKey.stat("nobs"),),
                                           number_text(hit.group(1))))
        hit = re.search(r"Number of groups\s*=\s*([\d,]+)", line)
        if hit and group:
            out.values.append(PrintedValue(f"Number of groups ({group})",
                                           (ParamKey.stat(f"ngroups/{group}"),),
                                           number_text(hit.group(1))))
        if re.search(r"Group [Vv]ariable\s*\|\s*Groups", line):
            _level_counts(lines[i + 1:], out)
        for stat in re.findall(r"(Wald chi2\(\d+\)\s*=\s*\S+)", line):
            out.skipped.append(" ".join(stat.split()))
        if re.match(r"^\s*LR test vs\.", line):
            out.skipped.append(" ".join(line.split()))
    if loglik is not None:
        out.values.append(PrintedValue("Log likelihood", (ParamKey.stat("loglik"),), loglik))


def _level_counts(rows: list[str], out: Printout) -> None:
    """The rows of the per-level table (``hospital |  25  36  40.0  52``) up to its last rule."""
    seen = 0
    for row in rows:
        if set(row.strip()) <= set("-+"):
            if seen:
                return
            continue
        name, sep, rest = row.partition("|")
        cells = rest.split()
        if not sep or not cells or number_text(cells[0]) is None:
            return
        out.values.append(PrintedValue(f"groups {name.strip()}",
                                       (ParamKey.stat(f"ngroups/{name.strip()}"),),
                                       number_text(cells[0])))
        seen += 1


def _tables(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(header, body rows) of each estimation table."""
    tables = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "|" in line and (any(c in line for c in _COEF_COLUMNS)
                            or "Random-effects" in line):
            rows = []
            for row in lines[i + 1:]:
                if not row.strip() or (set(row.strip()) == {"-"} and rows):
                    break
                rows.append(row)
                i += 1
            tables.append((line, rows))
        i += 1
    return tables


def _table(header: str, rows: list[str], out: Printout) -> None:
    random_table = "Random-effects" in header
    display = "exp" if any(c in header for c in _EXP_COLUMNS) else ""
    section = "random" if random_table else "fixed"
    factor = group = ""
    seen = False
    for row in rows:
        if set(row.strip()) <= set("-+"):
            if not random_table and section == "fixed" and seen:
                section = "after"  # me*: below the coefficients' rule, the random part
            group = ""  # each level's parameters follow its own header
            continue
        left, sep, rest = row.partition("|")
        if not sep:
            continue
        name = left.strip()
        cells = rest.split()
        seen = True
        if not name and not cells:  # Stata's blank row closes a factor variable's block
            factor = ""
            continue
        if factor and cells and left.endswith(" ") and not left.endswith("  "):
            factor = ""  # a level row is indented one more (``   2  |``): this is a variable
        numbers = [number_text(c) for c in cells]
        if not cells:  # a header row: a factor variable, or a random-effects level
            if section == "fixed":
                factor = name
            else:
                group = _level_name(name)
            continue
        if numbers[0] is None:
            out.skipped.append(f"{name}: {' '.join(cells)}")  # (omitted), (base), (empty)
            continue
        se = numbers[1] if len(numbers) > 1 else None
        param = _PARAM.match(name)
        if param:
            out.values.append(_variance(name, param.group(1), param.group(2), group,
                                        numbers[0], se))
        elif re.match(r"^/?cut\d+$", name):
            out.values.append(PrintedValue(name, (ParamKey.threshold(name.lstrip("/")),),
                                           numbers[0], se))
        elif name.startswith("/") or name in ("sigma_u", "rho"):
            out.skipped.append(f"{name}: {' '.join(cells)}")
        elif section == "fixed":
            out.values.append(PrintedValue(_printed_term(name, factor), _fixed(name, factor),
                                           numbers[0], se, display))
        else:
            raise PrintoutError(f"row {name!r} below the coefficients is neither a variance "
                                "parameter (var(), sd(), cov(), corr()) nor a cut point")


def _level_name(header: str) -> str:
    """``school: Unstructured`` -> ``school``; ``hospital>ward`` (me*) -> ``ward``."""
    name = header.split(":", 1)[0].strip()
    return name.split(">")[-1].strip()


def _term(name: str) -> str:
    return intercept(name.strip())


def _variance(printed: str, scale: str, inside: str, group: str, est: str | None,
              se: str | None) -> PrintedValue:
    parts = [p.strip() for p in inside.split(",")]
    if len(parts) == 1 and (parts[0] == "Residual" or parts[0].startswith("e.")):
        key = ParamKey.residual("var" if scale == "var" else "sd")
        return PrintedValue(printed, (key,), est, se)
    if len(parts) == 1 and parts[0].startswith("R."):  # _all: R.x, a crossed factor x
        return PrintedValue(printed, (ParamKey.ran_pars(parts[0][2:], _scale(scale),
                                                        "(Intercept)"),), est, se)
    if not group:
        raise PrintoutError(f"{printed}: no level header (such as 'school: Identity') above it")
    if len(parts) == 1:
        return PrintedValue(printed, (ParamKey.ran_pars(group, _scale(scale), _term(parts[0])),),
                            est, se)
    a, b = (_term(p) for p in parts)
    if b == "(Intercept)":  # Stata lists _cons last; R's model order puts the intercept first
        a, b = b, a
    return PrintedValue(printed, (ParamKey.ran_pars(group, _scale(scale), a, b),
                                  ParamKey.ran_pars(group, _scale(scale), b, a)), est, se)


def _scale(stata: str) -> str:
    return {"corr": "cor"}.get(stata, stata)  # type: ignore[return-value]


def _printed_term(name: str, factor: str) -> str:
    return f"{name}.{factor}" if factor else name


def _fixed(name: str, factor: str) -> tuple[ParamKey, ...]:
    """The R names a Stata coefficient may have; the spec's model picks (resolve.py)."""
    hit = re.match(r"^(\d+)[bo]?\.(\w+)$", name)  # 2.schgend printed on one row
    if hit and not factor:
        factor, name = hit.group(2), hit.group(1)
    if factor:
        return tuple(ParamKey.fixed(t) for t in (f"factor({factor}){name}", f"{factor}{name}",
                                                 f"as.factor({factor}){name}"))
    if "#" in name:
        terms = [re.sub(r"^[ci]\.", "", t) for t in name.split("#")]
        return (ParamKey.fixed(":".join(terms)), ParamKey.fixed(":".join(reversed(terms))))
    return (ParamKey.fixed(intercept(name)),)
