"""SPSS MIXED output tables pasted as text: cells separated by tabs (the Viewer's Copy) or by two
or more spaces (Export as text), English locale.

What is read:

* ``Estimates of Fixed Effects``: Estimate and Std. Error per parameter. ``Intercept`` is R's
  ``(Intercept)``; a factor level ``[sex=1]`` may be R's ``factor(sex)1`` or ``sex1`` (the spec's
  model decides); a redundant level (``0b``, "set to zero because it is redundant") is skipped
  and listed;
* ``Estimates of Covariance Parameters``: ``Residual``; ``<effects> [subject = <g>]`` with
  ``Variance`` (COVTYPE VC or ID: one variance per RANDOM statement) or ``UN (i,j)`` (the i,j
  element of the unstructured matrix of ``<effects>``, in their printed order: diagonal
  variances, off-diagonal covariances). SPSS prints variances, never standard deviations;
* ``Information Criteria``: ``-2 Log Likelihood`` (ML: the deviance) or ``-2 Restricted Log
  Likelihood`` (REML: the REML criterion, which also says the method); AIC and BIC for ML fits
  only, because SPSS's REML criteria count the covariance parameters alone, unlike lme4's.
"""

from __future__ import annotations

import re

from harness.keys import ParamKey
from harness.printouts.base import PrintedValue, Printout, PrintoutError, intercept, number_text

_TABLES = ("Estimates of Fixed Effects", "Estimates of Covariance Parameters",
           "Information Criteria", "Model Dimension", "Type III Tests of Fixed Effects")
_SUBJECT = re.compile(r"^(?P<effects>.*?)\s*\[subject\s*=\s*(?P<subject>[^\]]+)\]\s*(?P<what>.*)$")
_UN = re.compile(r"^UN\s*\((\d+)\s*,\s*(\d+)\)$")


def parse_spss(text: str, fmt: str) -> Printout:
    out = Printout(format=fmt, software="SPSS", method=None)
    tables = _tables(text.splitlines())
    if "Estimates of Fixed Effects" not in tables and \
            "Estimates of Covariance Parameters" not in tables:
        raise PrintoutError("no 'Estimates of Fixed Effects' or 'Estimates of Covariance "
                            "Parameters' table: paste the MIXED output tables as text "
                            "(/PRINT = SOLUTION TESTCOV)")
    _criteria(tables.get("Information Criteria", []), out)
    _fixed(tables.get("Estimates of Fixed Effects", []), out)
    _covariance(tables.get("Estimates of Covariance Parameters", []), out)
    return out


def _cells(line: str) -> list[str]:
    if "\t" in line:
        return [c.strip() for c in line.split("\t")]
    stripped = line.rstrip()
    lead = [""] if stripped[:1].isspace() else []  # an indented row continues the one above
    return lead + re.split(r"\s{2,}", stripped.strip())


def _tables(lines: list[str]) -> dict[str, list[list[str]]]:
    """Each known table's data rows as cells (header and footnote lines left out)."""
    tables: dict[str, list[list[str]]] = {}
    current = None
    for line in lines:
        title = next((t for t in _TABLES if line.strip().startswith(t)), None)
        if title:
            current = title
            tables[current] = []
            continue
        if current is None or not line.strip():
            continue
        cells = _cells(line)
        first = next((c for c in cells if c), "")
        if first in ("Parameter", "Lower Bound") or first.startswith(("a. ", "b. ", "c. ")) \
                or first.startswith("The information criteria") or "Confidence Interval" in \
                first:
            continue
        tables[current].append(cells)
    return tables


def _split(cells: list[str]) -> tuple[list[str], list[str | None]]:
    """The label cells and the printed values (None for a cell that is not a number)."""
    label: list[str] = []
    i = 0
    while i < len(cells) and (not cells[i] or number_text(cells[i]) is None):
        label.append(cells[i])
        i += 1
    return label, [number_text(c) if c else None for c in cells[i:]]


def _criteria(rows: list[list[str]], out: Printout) -> None:
    reml = any("Restricted" in " ".join(r) for r in rows)
    if rows:
        out.method = "REML" if reml else "ML"
    for cells in rows:
        label, values = _split(cells)
        name = " ".join(c for c in label if c)
        value = next((v for v in values if v is not None), None)
        if value is None:
            continue
        if name.startswith("-2"):
            key = "reml_criterion" if reml else "deviance"
            out.values.append(PrintedValue(name, (ParamKey.stat(key),), value))
        elif "(AIC)" in name or "(BIC)" in name:
            if reml:
                out.skipped.append(f"{name} {value} (SPSS's REML criteria count only the "
                                   "covariance parameters)")
            else:
                key = "aic" if "(AIC)" in name else "bic"
                out.values.append(PrintedValue(name, (ParamKey.stat(key),), value))
        else:
            out.skipped.append(f"{name} {value}")


def _fixed(rows: list[list[str]], out: Printout) -> None:
    for cells in rows:
        label, values = _split(cells)
        if any(re.match(r"^0[a-z]$", c) for c in label):  # 0b: "set to zero, redundant"
            name = " ".join(c for c in label if c and not re.match(r"^0[a-z]$", c))
            out.skipped.append(f"{name}: redundant (set to zero)")
            continue
        name = " ".join(c for c in label if c)
        if not values or values[0] is None:
            raise PrintoutError(f"Estimates of Fixed Effects: row {' '.join(cells).strip()!r} "
                                "has no estimate")
        se = values[1] if len(values) > 1 else None
        out.values.append(PrintedValue(name, _fixed_keys(name), values[0], se))


def _fixed_keys(name: str) -> tuple[ParamKey, ...]:
    if "*" in name:
        terms = [_fixed_keys(t.strip())[0].name for t in name.split("*")]
        return (ParamKey.fixed(":".join(terms)), ParamKey.fixed(":".join(reversed(terms))))
    hit = re.match(r"^\[(\w+)\s*=\s*([^\]]+)\]$", name)
    if hit:
        var, level = hit.group(1), hit.group(2).strip()
        level = level[:-2] if level.endswith(".00") else level  # SPSS prints 1.00 for 1
        return tuple(ParamKey.fixed(t) for t in (f"factor({var}){level}", f"{var}{level}",
                                                 f"as.factor({var}){level}"))
    return (ParamKey.fixed(intercept(name)),)


def _covariance(rows: list[list[str]], out: Printout) -> None:
    effects: list[str] = []
    groups: tuple[str, ...] = ()
    block = ""
    for cells in rows:
        label, values = _split(cells)
        text = " ".join(c for c in label if c)
        if not values or values[0] is None:
            raise PrintoutError(f"Estimates of Covariance Parameters: row {text!r} has no "
                                "estimate")
        se = values[1] if len(values) > 1 else None
        if text == "Residual":
            out.values.append(PrintedValue(text, (ParamKey.residual("var"),), values[0], se))
            continue
        hit = _SUBJECT.match(text)
        if hit:
            effects = [intercept(e.strip()) for e in hit.group("effects").split("+")]
            groups = _groups(hit.group("subject"))
            what = hit.group("what").strip()
            block = text[:len(text) - len(what)].strip()
        elif label and not label[0] and effects:  # a continuation row: UN (2,1) ...
            what = text
        else:
            raise PrintoutError(f"Estimates of Covariance Parameters: cannot read row "
                                f"{text!r}; expected Residual or '<effects> [subject = <g>] "
                                "Variance' / 'UN (i,j)'")
        out.values.append(PrintedValue(f"{block} {what}", _covariance_keys(what, effects, groups,
                                                                          text), values[0], se))


def _groups(subject: str) -> tuple[str, ...]:
    """``class`` -> (class,); ``hospital * ward`` -> lme4's names for a nested factor."""
    parts = [p.strip() for p in subject.split("*")]
    if len(parts) == 1:
        return (parts[0],)
    return (":".join(reversed(parts)), ":".join(parts), parts[-1])


def _covariance_keys(what: str, effects: list[str], groups: tuple[str, ...], text: str
                     ) -> tuple[ParamKey, ...]:
    if what in ("Variance", "Identity"):
        if len(effects) != 1:
            raise PrintoutError(f"{text}: one variance for {len(effects)} effects (COVTYPE ID) "
                                "has no key; the harness compares VC and UN structures")
        return tuple(ParamKey.ran_pars(g, "var", effects[0]) for g in groups)
    hit = _UN.match(what)
    if not hit:
        raise PrintoutError(f"{text}: covariance structure {what!r} is not read (VC, ID and UN "
                            "are)")
    i, j = int(hit.group(1)) - 1, int(hit.group(2)) - 1
    if not (0 <= j <= i < len(effects)):
        raise PrintoutError(f"{text}: UN ({i + 1},{j + 1}) does not fit {len(effects)} effects")
    if i == j:
        return tuple(ParamKey.ran_pars(g, "var", effects[i]) for g in groups)
    return tuple(ParamKey.ran_pars(g, "cov", *pair) for g in groups
                 for pair in ((effects[j], effects[i]), (effects[i], effects[j])))
