"""Build a spec from a dataset and a formula: the one place ``fit``, ``new`` and the Python API
turn options into a validated :class:`harness.spec.Spec`.

The defaults are stated once here, because a spec never leans on a package default
(harness/spec.py): the method is REML for a Gaussian mixed model (lmer's default), OLS for a
single-level Gaussian model and ML otherwise; a GLMM integrates by Laplace (``nagq=1``) unless
``nagq`` asks for adaptive quadrature. Anything else a spec can say is set with ``overrides``:
dotted spec keys (``{"backends.lme4.optimizer": "bobyqa"}``, the command line's ``--set``),
validated like every spec, so a misspelled key is an error naming it.
"""

from __future__ import annotations

from typing import Any

from harness.spec import Spec, SpecError, parse_spec

WHERE = "command line"


def default_method(family: str, has_random: bool) -> str:
    if family != "gaussian":
        return "ML"
    return "REML" if has_random else "OLS"


def build_spec(dataset: str, formula: str, *, family: str = "gaussian", link: str | None = None,
               method: str | None = None, nagq: int = 1, factors: list[str] | tuple[str, ...] = (),
               derive: dict[str, str] | None = None, subset: str | None = None,
               spec_id: str = "cli", title: str | None = None, source: str = WHERE,
               overrides: dict[str, Any] | None = None, where: str = WHERE) -> Spec:
    """The spec for ``formula`` on ``dataset`` (a registry name or a data file's path).

    ``derive`` maps new column names to expressions (harness/derive.py's vocabulary);
    ``factors`` are columns to treat as categorical. Every problem is a
    :class:`harness.spec.SpecError` naming the option (``where``) and the key.
    """
    return parse_spec(spec_dict(dataset, formula, family=family, link=link, method=method,
                                nagq=nagq, factors=factors, derive=derive, subset=subset,
                                spec_id=spec_id, title=title, source=source,
                                overrides=overrides, where=where), where)


def spec_dict(dataset: str, formula: str, *, family: str = "gaussian", link: str | None = None,
              method: str | None = None, nagq: int = 1, factors: list[str] | tuple[str, ...] = (),
              derive: dict[str, str] | None = None, subset: str | None = None,
              spec_id: str = "cli", title: str | None = None, source: str = WHERE,
              overrides: dict[str, Any] | None = None, where: str = WHERE) -> dict[str, Any]:
    """The plain mapping :func:`build_spec` validates (what ``mlm-harness new`` writes as YAML)."""
    from harness.formula import FormulaError, parse_formula

    try:
        parsed = parse_formula(formula)
    except FormulaError as e:
        raise SpecError(where, [f"formula: {e}"]) from None
    if nagq < 1:
        raise SpecError(where, [f"nagq: {nagq} is not a number of quadrature points (1 = "
                                "Laplace, n > 1 = adaptive Gauss-Hermite with n points)"])
    model: dict[str, Any] = {"formula": formula, "family": family,
                             "method": method or default_method(family, parsed.has_random)}
    if link:
        model["link"] = link
    if family != "gaussian" and parsed.has_random:
        model["integration"] = ({"method": "laplace"} if nagq == 1
                                else {"method": "aghq", "points": nagq})
    elif nagq != 1:
        raise SpecError(where, [f"nagq: {nagq} quadrature points apply to GLMMs (a non-gaussian "
                                "family with random effects) only"])
    data: dict[str, Any] = {"id": spec_id, "title": title or formula, "source": source,
                            "dataset": dataset}
    if derive:
        data["derive"] = [{"name": name, "expr": expr} for name, expr in derive.items()]
    if factors:
        data["columns"] = {c: "factor" for c in factors}
    if subset:
        data["subset"] = subset
    data["model"] = model
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value, where)
    return data


def set_dotted(data: dict[str, Any], dotted: str, value: Any, where: str = WHERE) -> None:
    """``data["a"]["b"]["c"] = value`` for ``dotted`` = ``a.b.c``, creating mappings on the way.

    Only mappings are walked: a list element or a scalar on the way is an error naming the key
    (``--set derive.0.expr=...`` cannot be meant; use ``--derive``).
    """
    parts = dotted.split(".")
    if not all(parts):
        raise SpecError(where, [f"--set {dotted}: write a dotted spec key such as "
                                "model.optimizer or backends.lme4.optimizer"])
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(where, [f"--set {dotted}: {'.'.join(parts[:i + 1])} is not a "
                                    "mapping of keys"])
        node = child
    node[parts[-1]] = value


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` from the command line (``--derive``, ``--set``); an error names the option."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(WHERE, [f"{option} {text!r}: write NAME=VALUE"])
    return name.strip(), value.strip()
