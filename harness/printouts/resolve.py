"""Which key of the spec's model each printed number is.

A parser gives each printed number the keys it may be, best first (harness/printouts/base.py);
the spec's model has a known set of keys (harness/model_keys.py). Resolution takes the first
candidate the model has, and otherwise adapts what a printout cannot know:

* a level of a nested factor printed under its own name (Stata's ``ward``, SPSS's
  ``hospital * ward``) is the model's group that contains that name (``ward:hospital``), when
  exactly one does;
* Stata's cut points ``cut1``, ``cut2``... are the model's thresholds in order;
* a printed name the user maps with ``--rename PRINTED=KEY`` is that key.

A number that matches nothing is an error naming it, the closest key and the ``--rename`` that
would place it: a printed number is never dropped silently. Without a spec (``refs import``
printing YAML) the first candidate is taken and checking is left to the spec loader.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.keys import KeyFormatError, ParamKey, closest_key
from harness.printouts.base import PrintedValue, Printout, PrintoutError


@dataclass(frozen=True)
class Resolved:
    key: ParamKey
    value: PrintedValue


def resolve(printout: Printout, valid: set[str] | None, renames: dict[str, str],
            where: str) -> list[Resolved]:
    out: list[Resolved] = []
    problems: list[str] = []
    thresholds = _thresholds(valid)
    for value in printout.values:
        try:
            key = _key(value, valid, renames, thresholds)
        except PrintoutError as e:
            problems.append(str(e))
            continue
        out.append(Resolved(key, value))
    problems += _conflicts(out)
    unused = sorted(set(renames) - {v.printed for v in printout.values})
    if unused:
        problems.append(f"--rename {', '.join(unused)}: no such name in the printout (printed "
                        f"names: {', '.join(v.printed for v in printout.values)})")
    if problems:
        raise PrintoutError(f"{where}: " + "; ".join(problems))
    return out


def _key(value: PrintedValue, valid: set[str] | None, renames: dict[str, str],
         thresholds: list[ParamKey]) -> ParamKey:
    if value.printed in renames:
        try:
            key = ParamKey.parse(renames[value.printed])
        except KeyFormatError as e:
            raise PrintoutError(f"--rename {value.printed}={renames[value.printed]}: {e}") from None
        if valid is not None and str(key) not in valid:
            raise PrintoutError(f"--rename {value.printed}={key}: the model has no such "
                                f"quantity{_hint(str(key), valid)}")
        return key
    if valid is None:
        return value.candidates[0]
    for key in value.candidates:
        if str(key) in valid:
            return key
    for key in value.candidates:
        adapted = _nested(key, valid) or _cut(key, thresholds)
        if adapted is not None:
            return adapted
    first = str(value.candidates[0])
    raise PrintoutError(f"printed {value.printed!r} (read as {first}) is not a quantity of the "
                        f"model{_hint(first, valid)}; map it with --rename "
                        f"'{value.printed}=<key>'")


def _hint(key: str, valid: set[str]) -> str:
    hint = closest_key(key, valid)
    return f"; did you mean {hint!r}?" if hint else ""


def _nested(key: ParamKey, valid: set[str]) -> ParamKey | None:
    """``ran_pars/ward/...`` -> ``ran_pars/ward:hospital/...`` when one model group holds ward."""
    if key.kind == "ran_pars" and not key.is_residual and key.group:
        groups = {ParamKey.parse(v).group for v in valid if v.startswith("ran_pars/")}
        wanted = set(key.group.split(":"))
        hits = [g for g in groups if g and wanted <= set(g.split(":")) and g != key.group]
        if len(hits) == 1 and str(key.in_group(hits[0])) in valid:
            return key.in_group(hits[0])
    if key.kind == "stat" and key.stat_head == "ngroups":
        g = key.name.partition("/")[2]
        hits = [v for v in valid if v.startswith("stat/ngroups/")
                and g in v.removeprefix("stat/ngroups/").split(":")]
        if len(hits) == 1:
            return ParamKey.parse(hits[0])
    return None


def _thresholds(valid: set[str] | None) -> list[ParamKey]:
    """The model's thresholds in order (``1|2`` before ``2|3``), for Stata's ``cut<k>``."""
    if valid is None:
        return []
    keys = [ParamKey.parse(v) for v in valid if v.startswith("threshold/")]

    def order(k: ParamKey) -> tuple[float, str]:
        low = k.name.split("|")[0]
        try:
            return (float(low), k.name)
        except ValueError:
            return (float("inf"), k.name)

    return sorted(keys, key=order)


def _cut(key: ParamKey, thresholds: list[ParamKey]) -> ParamKey | None:
    if key.kind != "threshold" or not key.name.startswith("cut"):
        return None
    k = int(key.name[3:]) - 1
    return thresholds[k] if 0 <= k < len(thresholds) else None


def _conflicts(resolved: list[Resolved]) -> list[str]:
    """Two printed numbers that landed on one key must say the same."""
    seen: dict[ParamKey, PrintedValue] = {}
    problems = []
    for r in resolved:
        other = seen.get(r.key)
        if other is not None and other.values() != r.value.values():
            problems.append(f"{other.printed!r} and {r.value.printed!r} are both {r.key} with "
                            "different values")
        seen.setdefault(r.key, r.value)
    return problems


def reference_values(resolved: list[Resolved]) -> dict[str, object]:
    """The ``values:`` mapping of a reference: printed text, or estimate/std_error/display."""
    out: dict[str, object] = {}
    for r in resolved:
        if str(r.key) in out:
            continue
        vals: dict[str, str] = r.value.values()
        if r.value.display:
            out[str(r.key)] = {**vals, "display": r.value.display}
        elif set(vals) == {"estimate"}:
            out[str(r.key)] = vals["estimate"]
        else:
            out[str(r.key)] = vals
    return out
