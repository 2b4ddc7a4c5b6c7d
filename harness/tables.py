"""A small text table and its four renderings: Markdown, LaTeX (booktabs), CSV and HTML.

Why not pandas' ``to_markdown``/``to_latex``: the first needs ``tabulate`` and neither lays out a
regression table (an estimate with its standard error on the line below, a rule before the fit
statistics, as modelsummary and Stata's esttab do). Every cell is text from other people (term
names, reference ids), so each renderer escapes what its format treats as markup: ``|`` in
Markdown, ``\\ & % $ # _ { } ~ ^`` in LaTeX, ``< > & "`` in HTML.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import Literal

RowKind = Literal["estimate", "se", "stat"]


@dataclass(frozen=True)
class Row:
    """One line of a table: its cells (the first is the row's label) and what it holds."""

    cells: tuple[str, ...]
    kind: RowKind = "estimate"
    rule_before: bool = False  # a horizontal rule above this row (the fit statistics block)


@dataclass
class Table:
    """A rectangular table of text cells with a header, optional title and notes."""

    header: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    title: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row.cells) != len(self.header):
                raise ValueError(f"row {row.cells[:1]} has {len(row.cells)} cells, the header "
                                 f"{len(self.header)}")

    # ---- renderings --------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """A GitHub/pandoc pipe table; standard errors on their own line, as in print."""
        def line(cells: tuple[str, ...]) -> str:
            return "| " + " | ".join(_md(c) for c in cells) + " |"

        out = [f"**{_md(self.title)}**", ""] if self.title else []
        out.append(line(self.header))
        out.append("|" + "|".join([":---"] + ["---:"] * (len(self.header) - 1)) + "|")
        out.extend(line(r.cells) for r in self.rows)
        out.extend(["", *(f"{_md(n)}  " for n in self.notes)] if self.notes else [])
        return "\n".join(out).rstrip() + "\n"

    def to_latex(self) -> str:
        """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), ready for ``\\input``."""
        cols = "l" + "r" * (len(self.header) - 1)
        out = [f"% {_tex(self.title)}" if self.title else "", f"\\begin{{tabular}}{{{cols}}}",
               "\\toprule", " & ".join(_tex(c) for c in self.header) + " \\\\", "\\midrule"]
        for r in self.rows:
            if r.rule_before:
                out.append("\\midrule")
            out.append(" & ".join(_tex(c) for c in r.cells) + " \\\\")
        out.append("\\bottomrule")
        out.append("\\end{tabular}")
        out.extend(f"% {_tex(n)}" for n in self.notes)
        return "\n".join(line for line in out if line) + "\n"

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text (one row per table line, the label in the first column); also written to
        ``path`` when given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header)
        for r in self.rows:
            writer.writerow(r.cells)
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_html(self, table_class: str = "side-by-side") -> str:
        """A ``<table>`` fragment; rows carry their kind as a class (``se``, ``stat``)."""
        e = html_escape
        out = [f'<table class="{e(table_class)}">']
        if self.title:
            out.append(f"<caption>{e(self.title)}</caption>")
        num = ' class="num"'
        out.append("<thead><tr>" + "".join(
            f"<th{'' if i == 0 else num}>{e(c)}</th>"
            for i, c in enumerate(self.header)) + "</tr></thead><tbody>")
        for r in self.rows:
            cls = " ".join(c for c in (r.kind, "rule" if r.rule_before else "") if c)
            out.append(f'<tr class="{cls}">' + "".join(
                f"<th>{e(c)}</th>" if i == 0 else f'<td class="num">{e(c)}</td>'
                for i, c in enumerate(r.cells)) + "</tr>")
        out.append("</tbody></table>")
        if self.notes:
            out.append('<p class="meta">' + "<br>".join(e(n) for n in self.notes) + "</p>")
        return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "\n": " "}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def format_value(v: float | None, digits: int = 3) -> str:
    """``digits`` decimals, as modelsummary's default; a number too small to show that way
    (|v| < 10^-digits, not 0) gets ``digits`` significant digits instead of reading 0.000."""
    if v is None or v != v:
        return ""
    if v == 0:
        return f"{0:.{digits}f}"
    if abs(v) < 10 ** -digits:
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}"
