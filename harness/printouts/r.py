"""R ``summary()`` printouts of lme4's ``lmer``/``glmer`` and ordinal's ``clmm``.

What is read (R names are the canonical names, so keys need no translation):

* the fit line: ``fit by REML`` / ``maximum likelihood``, glmer's ``(Laplace Approximation)`` or
  ``(Adaptive Gauss-Hermite Quadrature, nAGQ = 7)``, clmm's ``fitted with the Laplace
  approximation`` / ``adaptive Gauss-Hermite quadrature ... with 7 quadrature points``;
* ``REML criterion at convergence``, the ``AIC BIC logLik deviance df.resid`` line (clmm: the
  ``link threshold nobs logLik AIC ...`` line);
* ``Random effects``: each row's Variance and Std.Dev. (both keys, as printed) and its Corr
  column (the lower triangle within a group); lme4's ``school.1`` for a second term of the same
  factor (``(1 | g) + (0 + x | g)``) is group ``school``;
* ``Number of obs: 4059, groups:  school, 65`` (clmm: ``Number of groups:  class 100``);
* the fixed-effects (clmm: ``Coefficients``) and ``Threshold coefficients`` tables: estimate and
  standard error.
"""

from __future__ import annotations

import re

from harness.keys import ParamKey
from harness.printouts.base import (NUMBER_RE, PrintedValue, Printout, PrintoutError,
                                    number_text)

_ROW = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<est>\S+)\s+(?P<se>\S+)(?:\s|$)")


def parse_r(text: str, fmt: str) -> Printout:
    lines = text.replace("\t", "    ").splitlines()
    software = "R ordinal" if fmt == "r-clmm" else "R lme4"
    out = Printout(format=fmt, software=software, method=_method(text, fmt))
    out.formula = _formula(lines)
    _statistics(lines, out)
    _random_effects(lines, out)
    _groups(lines, out)
    heading = "Coefficients:" if fmt == "r-clmm" else "Fixed effects:"
    fixed = _coefficients(lines, heading, out, "fixed")
    if fmt == "r-clmm":
        _coefficients(lines, "Threshold coefficients:", out, "threshold")
    if not fixed and not any(v.candidates[0].kind == "ran_pars" for v in out.values):
        raise PrintoutError(f"no '{heading}' table and no random effects found: is this the "
                            "output of summary() of the fitted model?")
    if "Correlation of Fixed Effects" in text:
        out.skipped.append("correlation of fixed effects (not a quantity the model is compared "
                           "on)")
    if "Scaled residuals" in text:
        out.skipped.append("scaled residuals quantiles")
    return out


def _method(text: str, fmt: str) -> str | None:
    flat = " ".join(text.split())
    if fmt == "r-lmer":
        if re.search(r"fit by REML", flat):
            return "REML"
        return "ML" if "fit by maximum likelihood" in flat else None
    hit = re.search(r"nAGQ = (\d+)", flat) or re.search(
        r"adaptive Gauss-Hermite quadrature approximation with (\d+) quadrature points", flat)
    if hit:
        return f"AGHQ({hit.group(1)})" if int(hit.group(1)) > 1 else "Laplace"
    if re.search(r"Laplace", flat):
        return "Laplace"
    return None


def _formula(lines: list[str]) -> str | None:
    for i, line in enumerate(lines):
        hit = re.match(r"^\s*[Ff]ormula:\s*(.*)$", line)
        if hit:
            parts = [hit.group(1).strip()]
            for cont in lines[i + 1:]:  # R wraps a long formula onto indented lines
                if cont.startswith("    ") and not re.match(r"^\s*(Data|data):", cont):
                    parts.append(cont.strip())
                else:
                    break
            return " ".join(parts)
    return None


_STAT_NAMES = {"AIC": "aic", "BIC": "bic", "logLik": "loglik", "deviance": "deviance",
               "nobs": "nobs"}


def _statistics(lines: list[str], out: Printout) -> None:
    for line in lines:
        hit = re.match(r"^\s*REML criterion at convergence:\s*(\S+)", line)
        if hit and number_text(hit.group(1)):
            out.values.append(PrintedValue("REML criterion at convergence",
                                           (ParamKey.stat("reml_criterion"),),
                                           number_text(hit.group(1))))
    for i, line in enumerate(lines[:-1]):
        head = line.split()
        if "logLik" in head and ("AIC" in head or "BIC" in head):
            cells = lines[i + 1].split()
            if len(cells) != len(head):
                raise PrintoutError(f"the line under {' '.join(head)!r} has {len(cells)} "
                                    f"values for {len(head)} names")
            for name, cell in zip(head, cells):
                if name in _STAT_NAMES and number_text(cell) is not None:
                    out.values.append(PrintedValue(name, (ParamKey.stat(_STAT_NAMES[name]),),
                                                   number_text(cell)))
                elif name not in _STAT_NAMES:
                    out.skipped.append(f"{name} {cell}")
            return


def _section(lines: list[str], heading: str) -> list[str]:
    """The lines after ``heading`` up to the first blank line."""
    for i, line in enumerate(lines):
        if line.strip() == heading:
            body = []
            for row in lines[i + 1:]:
                if not row.strip() or row.startswith("---"):
                    break
                body.append(row)
            return body
    return []


def _random_effects(lines: list[str], out: Printout) -> None:
    body = _section(lines, "Random effects:")
    if not body:
        return
    header = body[0]
    if "Groups" not in header or "Name" not in header:
        raise PrintoutError(f"the random-effects table has no 'Groups  Name' header: {header!r}")
    name_at = header.index("Name")
    scales = [s for s in ("Variance", "Std.Dev.") if s in header]
    if not scales:
        raise PrintoutError("the random-effects table has neither a Variance nor a Std.Dev. "
                            "column")
    group = ""
    terms: dict[str, list[str]] = {}
    for row in body[1:]:
        if re.match(r"^\s*Number of", row):
            break
        label = row[:name_at].strip()
        rest = row[name_at:].split()
        if label:
            group = label
        if not group:
            raise PrintoutError(f"random-effects row {row.strip()!r} has no group")
        name = "Observation" if group == "Residual" else ""
        if rest and number_text(rest[0]) is None:
            name, rest = rest[0], rest[1:]
        if not name:
            raise PrintoutError(f"random-effects row {row.strip()!r} has no term name")
        base = _group(group)
        numbers = [number_text(t) for t in rest]
        if len(numbers) < len(scales) or any(n is None for n in numbers):
            raise PrintoutError(f"random-effects row {row.strip()!r}: expected "
                                f"{' and '.join(scales)} then correlations")
        for scale, value in zip(scales, numbers):
            key = ParamKey.ran_pars(base, "var" if scale == "Variance" else "sd", name)
            out.values.append(PrintedValue(f"{group} {name} {scale}", (key,), value))
        earlier = terms.setdefault(group, [])
        for other, value in zip(earlier, numbers[len(scales):]):
            out.values.append(PrintedValue(
                f"{group} Corr({other}, {name})",
                (ParamKey.ran_pars(base, "cor", other, name),
                 ParamKey.ran_pars(base, "cor", name, other)), value))
        earlier.append(name)


def _group(printed: str) -> str:
    """lme4 prints a second term of one factor as ``school.1``: the group is ``school``."""
    hit = re.match(r"^(.*)\.\d+$", printed)
    return hit.group(1) if hit else printed


def _groups(lines: list[str], out: Printout) -> None:
    text = " ".join(line.strip() for line in lines)
    hit = re.search(r"Number of obs:\s*([\d,]+),\s*groups:\s*(.*?)(?:$|[A-Z][a-z]+ effects)", text)
    if hit:
        out.values.append(PrintedValue("Number of obs", (ParamKey.stat("nobs"),),
                                       number_text(hit.group(1))))
        for g, n in re.findall(r"([^\s,;]+),\s*([\d,]+)", hit.group(2)):
            out.values.append(PrintedValue(f"groups {g}", (ParamKey.stat(f"ngroups/{g}"),),
                                           number_text(n)))
        return
    hit = re.search(r"Number of groups:\s*(.*?)(?:Coefficients:|$)", text)
    if hit:
        for g, n in re.findall(r"(\S+)\s+([\d,]+)", hit.group(1)):
            out.values.append(PrintedValue(f"groups {g}", (ParamKey.stat(f"ngroups/{g}"),),
                                           number_text(n)))


def _coefficients(lines: list[str], heading: str, out: Printout, kind: str) -> int:
    body = _section(lines, heading)
    if not body:
        return 0
    header = body[0]
    if "Estimate" not in header or "Std. Error" not in header:
        raise PrintoutError(f"'{heading}' has no 'Estimate  Std. Error' header: {header!r}")
    n = 0
    for row in body[1:]:
        hit = _ROW.match(row)
        if not hit or not NUMBER_RE.match(hit.group("est").replace("\u2212", "-")):
            if "NA" in row.split()[1:]:
                out.skipped.append(f"{row.split()[0]}: not estimated (NA, aliased)")
                continue
            raise PrintoutError(f"'{heading}' row {row.strip()!r}: expected a name, an estimate "
                                "and a standard error")
        name = hit.group("name")
        key = ParamKey.fixed(name) if kind == "fixed" else ParamKey.threshold(name)
        out.values.append(PrintedValue(name, (key,), number_text(hit.group("est")),
                                       number_text(hit.group("se"))))
        n += 1
    return n
