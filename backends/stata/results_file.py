"""The one structured export Stata writes, and its one reader.

A results file is plain text, one named field per line, tab-separated, numbers at full precision
(``%21.0g``). It is written by the do-files from ``render.py`` (batch, live and suite export all
use the same code) and never parsed from a log. Lines:

========================================  ===================================================
``mlmh-stata-results <TAB> 1``            format and version (first line)
``model <TAB> <spec id>``                 starts a model block
``layout <TAB> <json>``                   the harness's layout (names to map back to)
``meta <TAB> <name> <TAB> <text>``        data_sha256, stata_version, flavour, date,
                                          datasignature
``rc <TAB> <return code>``                of the estimation command (0 = it ran)
``macro <TAB> <name> <TAB> <text>``       e(cmd), e(cmdline), e(depvar), e(ivars), ...
``scalar <TAB> <name> <TAB> <number>``    e(N), e(ll), e(converged), ...; ``.`` = missing
``b <TAB> <name> <TAB> <number>``         one e(b) column, by its full name (``eq:coef``)
``V <TAB> <row> <TAB> <col> <TAB> <num>`` lower triangle of e(V), by names
``ngroups <TAB> <group> <TAB> <count>``   groups in the estimation sample
``re <TAB> <group> <TAB> <term> <TAB> <level> <TAB> <estimate> <TAB> <se>``
``end <TAB> <spec id>``                   closes the block
========================================  ===================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.stata.render import RESULTS_FORMAT, RESULTS_VERSION


class ResultsFileError(ValueError):
    """A results file that cannot be read; the message names the file, line and problem."""


@dataclass
class StataRecord:
    """Everything one model's block of a results file says, by name."""

    spec_id: str
    layout: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    rc: int | None = None
    macros: dict[str, str] = field(default_factory=dict)
    scalars: dict[str, float | None] = field(default_factory=dict)
    b: dict[str, float] = field(default_factory=dict)
    V: dict[tuple[str, str], float] = field(default_factory=dict)
    ngroups: dict[str, int] = field(default_factory=dict)
    re: list[tuple[str, str, str, float, float | None]] = field(default_factory=list)
    complete: bool = False
    line: int = 0  # of the block's 'model' line
    #: values that cannot be used, with their line ("line 12: e(b) column lrt is missing");
    #: a record with problems is imported as an error, never as an ok fit
    problems: list[str] = field(default_factory=list)

    def cov(self, a: str, b: str) -> float | None:
        v = self.V.get((a, b), self.V.get((b, a)))
        return v


def number(text: str) -> float | None:
    """A Stata number as written by ``%21.0g``: ``.`` (and ``.a`` ... ``.z``) is missing.

    Anything else must be a finite number: Stata never writes ``nan`` or ``inf``, so such text
    means the file was not written by Stata (or was edited) and raises ValueError.
    """
    t = text.strip()
    if t == "" or t.startswith("."):
        if t[1:2].isdigit():  # ".5" is a number in Stata's display
            return float(t)
        if t in ("", ".") or (len(t) == 2 and t[1].isalpha() and t[1].islower()):
            return None
        raise ValueError(f"{t!r} is not a number nor one of Stata's missing values (. .a-.z)")
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{t!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{t!r} is not a finite number (Stata writes '.' for missing)")
    return v


def level_label(text: str) -> str:
    """A level as written (``"  12 :     3"``) -> ``12:3``, whole numbers without decimals."""
    parts = []
    for p in text.split(":"):
        p = p.strip()
        try:
            v = float(p)
            p = str(int(v)) if v.is_integer() and abs(v) < 1e15 else format(v, ".15g")
        except ValueError:
            pass
        parts.append(p)
    return ":".join(parts)


def read_results(path: str | Path) -> dict[str, StataRecord]:
    """Read a results file into one :class:`StataRecord` per model, keyed by spec id."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ResultsFileError(f"{p}: cannot read ({e.strerror})") from None
    return parse_results(text, str(p))


def parse_results(text: str, name: str = "<results>") -> dict[str, StataRecord]:
    lines = text.splitlines()
    if not lines or lines[0].split("\t")[0].strip() != RESULTS_FORMAT:
        raise ResultsFileError(f"{name}: not a mlm-harness Stata results file (first line should "
                               f"start with {RESULTS_FORMAT!r})")
    version = lines[0].split("\t")[1].strip() if "\t" in lines[0] else "?"
    if version != str(RESULTS_VERSION):
        raise ResultsFileError(f"{name}: results format version {version}; this harness reads "
                               f"version {RESULTS_VERSION}")
    records: dict[str, StataRecord] = {}
    cur: StataRecord | None = None
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        f = line.split("\t")
        kind = f[0].strip()
        try:
            if kind == "model":
                cur = StataRecord(spec_id=f[1].strip(), line=n)
                if cur.spec_id in records:
                    raise ResultsFileError(f"a second block for model {cur.spec_id!r} (the "
                                           f"first starts on line {records[cur.spec_id].line})")
                records[cur.spec_id] = cur
                continue
            if cur is None:
                raise ResultsFileError("a field before any 'model' line")
            if kind == "layout":
                cur.layout = json.loads(f[1])
            elif kind == "meta":
                cur.meta[f[1].strip()] = f[2].strip() if len(f) > 2 else ""
            elif kind == "rc":
                cur.rc = int(float(f[1]))
            elif kind == "macro":
                cur.macros[f[1].strip()] = f[2].strip() if len(f) > 2 else ""
            elif kind == "scalar":
                cur.scalars[f[1].strip()] = _value(cur, n, f"scalar {f[1].strip()}", f[2])
            elif kind == "b":
                known = len(cur.problems)
                v = _value(cur, n, f"e(b) column {f[1].strip()}", f[2])
                if v is None and len(cur.problems) == known:
                    cur.problems.append(f"line {n}: e(b) column {f[1].strip()} is missing; "
                                        "Stata always estimates every column it reports")
                cur.b[f[1].strip()] = math.nan if v is None else v
            elif kind == "V":
                v = _value(cur, n, f"e(V)[{f[1].strip()}, {f[2].strip()}]", f[3])
                cur.V[(f[1].strip(), f[2].strip())] = math.nan if v is None else v
            elif kind == "ngroups":
                cur.ngroups[f[1].strip()] = int(float(f[2]))
            elif kind == "re":
                what = f"random effect {f[1].strip()}/{f[2].strip()}/{f[3].strip()}"
                est, se = _value(cur, n, what, f[4]), _value(cur, n, f"SE of {what}", f[5])
                if est is not None:
                    cur.re.append((f[1].strip(), f[2].strip(), level_label(f[3]), est, se))
            elif kind == "end":
                cur.complete = True
                cur = None
            else:
                raise ResultsFileError(f"unknown field {kind!r}")
        except (IndexError, ValueError) as e:
            raise ResultsFileError(f"{name}, line {n}: cannot read {line[:80]!r} ({e})") from None
    return records


def _value(record: StataRecord, line: int, what: str, text: str) -> float | None:
    """A number of a record; text that is neither a number nor a missing value is recorded as
    a problem of that record (with its line) and read as missing."""
    try:
        return number(text)
    except ValueError as e:
        record.problems.append(f"line {line}: {what}: {e}")
        return None


def write_results(records: list[StataRecord]) -> str:
    """The text Stata would write for ``records`` (for tests and fakes: same format, same reader)."""
    out = [f"{RESULTS_FORMAT}\t{RESULTS_VERSION}"]
    g = lambda v: "." if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))  # noqa: E731
    for r in records:
        out.append(f"model\t{r.spec_id}")
        if r.layout:
            out.append("layout\t" + json.dumps(r.layout, separators=(",", ":")))
        out += [f"meta\t{k}\t{v}" for k, v in r.meta.items()]
        out.append(f"rc\t{r.rc if r.rc is not None else 0}")
        out += [f"macro\t{k}\t{v}" for k, v in r.macros.items()]
        out += [f"scalar\t{k}\t{g(v)}" for k, v in r.scalars.items()]
        out += [f"b\t{k}\t{g(v)}" for k, v in r.b.items()]
        out += [f"V\t{a}\t{b}\t{g(v)}" for (a, b), v in r.V.items()]
        out += [f"ngroups\t{k}\t{v}" for k, v in r.ngroups.items()]
        out += [f"re\t{grp}\t{term}\t{lvl}\t{g(e)}\t{g(s)}" for grp, term, lvl, e, s in r.re]
        if r.complete:
            out.append(f"end\t{r.spec_id}")
    return "\n".join(out) + "\n"
