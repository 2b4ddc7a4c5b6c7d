"""The report leads with causes, explains each row once, shows sources, tables and the
coefficient plot, and hides columns with nothing in them (hand-made suite, no R, no data)."""

from __future__ import annotations

import dataclasses
import html as htmllib
import re
from pathlib import Path

from backends.base import Availability
from harness.causes import unexplained_causes
from harness.compare import compare_spec
from harness.report import write_report
from harness.results import FitResult
from harness.sidebyside import side_by_side
from tests.report.fixtures import suite


def page(report_dir: Path, spec_id: str) -> str:
    return (report_dir / "specs" / f"{spec_id}.html").read_text()


def test_the_cause_of_every_unexplained_cell_comes_first(report_dir: Path) -> None:
    text = page(report_dir, "gcse.ri_reml")
    causes = text.index('id="causes"')
    assert causes < text.index('<h2 id="model">') < text.index('<h2 id="diagnostics">')
    block = text[causes:text.index("</ul>", causes)]
    assert "lme4 warned" in block  # the engine's own warning, quoted
    assert "last printed digit" in block  # the perturbed printed value: a slip is as likely
    comp = next(r for r in suite().runs if r.spec.id == "gcse.ri_reml").comparison
    listed = {cell for cause in unexplained_causes(comp) for cell in cause.cells}
    unexplained = [c for c in comp.checks if c.verdict == "unexplained"]
    assert unexplained and all(any(str(c.key) in cell for cell in listed) for c in unexplained)


def test_an_inconsistent_side_is_named_as_the_cause() -> None:
    s = suite()
    comp = next(r for r in s.runs if r.spec.id == "gcse.ri_reml").comparison
    point = next(p for src, p in comp.evidence.points.items() if src.name == "lme4")
    comp.evidence.points[point.source] = dataclasses.replace(point, reported_loglik=-14000.0)
    texts = [c.text for c in unexplained_causes(comp)]
    assert any("lme4's numbers are not one point of the likelihood: it reports log-likelihood "
               "-14000" in t for t in texts), texts


def test_each_row_states_its_explanation_once_with_every_pairs_evidence(report_dir: Path) -> None:
    comp = next(r for r in suite().runs if r.spec.id == "gcse.ri_reml").comparison
    text = page(report_dir, "gcse.ri_reml")
    explained = [c for c in comp.checks if c.verdict == "explained"]
    assert explained
    for key in {c.key for c in explained}:
        row = [c for c in explained if c.key == key]
        start = text.index(f'data-why="{key}"')
        block = text[start:text.index("</tr>\n", text.index("</table>", start))]
        for rule in {c.known_id for c in row}:
            assert block.count(f'data-rule="{rule}"') == 1  # one explanation per rule and row
            pairs = [c for c in row if c.known_id == rule]
            body = block[block.index(f'data-rule="{rule}"'):]
            assert body.count("<tr><td>") >= len(pairs)
        for c in row:
            for name, _ in c.evidence:
                assert name in block
        # the sentence once, below the row, and not in the row's own cells
        sentence = htmllib.escape(row[0].explanation)[:60]
        assert block.count(sentence) == 1
        main_row = text[text.index(f'data-key="{key}"'):start]
        assert sentence not in main_row


def test_the_index_names_where_each_reference_was_printed(report_dir: Path) -> None:
    text = (report_dir / "index.html").read_text()
    assert 'printed in lab 1 Stata' in text and '<span class="explain">lab 1 Stata</span>' in text
    assert 'class="lead-cause bad"' in text  # the unexplained spec says why, in the matrix


def test_side_by_side_tables_are_written_and_linked(report_dir: Path) -> None:
    for run in suite().runs:
        stem = run.spec.id
        table = side_by_side(run.comparison)
        assert (report_dir / "tables" / f"{stem}.csv").read_text() == table.to_csv()
        assert (report_dir / "tables" / f"{stem}.md").read_text() == table.to_markdown()
        assert (report_dir / "tables" / f"{stem}.tex").read_text() == table.to_latex()
        html = page(report_dir, stem)
        assert f'href="../tables/{stem}.tex"' in html and 'class="side-by-side"' in html
        assert '<figure class="coefplot">' in html


def test_columns_of_engines_with_no_results_are_hidden_unless_asked(tmp_path: Path) -> None:
    s = suite()
    s.options.backends.append("stata")
    s.availability["stata"] = Availability(False, "no Stata here", "mlm-harness stata import")
    for run in s.runs:
        run.results["stata"] = FitResult.failed(run.spec.id, "stata", "unavailable",
                                                "no Stata here")
        run.comparison = compare_spec(run.spec, run.results, evidence=run.comparison.evidence)
    hidden, shown = tmp_path / "hidden", tmp_path / "shown"
    hidden.mkdir()
    shown.mkdir()
    write_report(s, hidden)
    write_report(s, shown, all_columns=True)
    head = re.compile(r"<thead>.*?</thead>", re.S)
    assert "<th>stata</th>" not in head.search((hidden / "index.html").read_text()).group(0)
    assert "No column for stata (3 unavailable)" in (hidden / "index.html").read_text()
    assert "<th>stata</th>" in head.search((shown / "index.html").read_text()).group(0)
    assert "— unavailable" in (shown / "index.html").read_text()  # muted, not a grey badge
