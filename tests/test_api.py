"""The Python API (harness/api.py, ``import mlm_harness as mh``) and the code the docs and the
report show for it: each runs as written."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mlm_harness as mh
from harness.cli import main
from harness.tidy import TIDY_COLUMNS

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "api.md"


def doc_example() -> tuple[str, str]:
    text = DOC.read_text()
    section = text[text.index("## Example"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    output = re.search(r"<!-- api-example-output:start -->\n```\n(.*?)```\n<!-- api-example",
                       text, re.S).group(1)
    return code, output


def test_the_docs_example_runs_and_prints_the_markdown_table(data_dir, monkeypatch, capsys):
    code, documented = doc_example()
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MLM_HARNESS_DATA", str(data_dir))
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out
    comparison = namespace["comparison"]
    assert comparison.to_markdown() in printed
    assert printed.startswith("agree\n") and "| (Intercept) |" in printed
    if comparison.results["lme4"].status == "ok":
        assert printed.rstrip() == documented.rstrip()  # the docs show what it prints
    else:
        assert "| native | ref:N12 |" in printed  # no empty lme4 column


def test_the_reports_native_code_runs_as_shown(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    spec = "specs/gcse/lab1.stata1.1.ri_ml.yaml"
    out = tmp_path / "report"
    assert main(["run", spec, "--backends", "native", "--out", str(out), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(data_dir)]) == 0
    page = (out / "specs" / "lab1.stata1.1.ri_ml.html").read_text()
    code = html.unescape(re.search(r'<pre id="code-native"><code>(.*?)</code></pre>', page,
                                   re.S).group(1))
    assert code.startswith("import mlm_harness as mh")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO),
                               "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert done.returncode == 0, done.stderr
    assert "| (Intercept) |" in done.stdout and "| native |" in done.stdout


def test_a_spec_without_a_file_gets_a_snippet_that_rebuilds_it(data_dir, tmp_path):
    from harness.report import api_snippet

    comparison = mh.fit(mh.spec("gcse", "gcse ~ lrt + (1 | school)", method="ML"),
                        backends=["native"], data_dir=data_dir, cache=False)
    code = api_snippet(comparison.run, data_dir)
    assert "mh.from_dict(" in code and f"data_dir={str(data_dir)!r}" in code
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "| lrt | 0.563 |" in done.stdout


def test_tidy_wide_glance_and_exports(data_dir, tmp_path):
    comparison = mh.fit(REPO / "specs/gcse/lab1.stata1.1.ri_ml.yaml", backends=["native"],
                        data_dir=data_dir, cache=False)
    tidy = comparison.tidy()
    assert list(tidy.columns) == TIDY_COLUMNS
    assert TIDY_COLUMNS[:5] == ["effect", "group", "term", "estimate", "std.error"]
    native = tidy[tidy.backend == "native"].set_index("key")
    assert native.loc["fixed/lrt", "effect"] == "fixed"
    assert native.loc["ran_pars/Residual/sd__Observation", "group"] == "Residual"
    assert native.loc["ran_pars/Residual/sd__Observation", "term"] == "sd__Observation"
    assert set(tidy.verdict) <= {"agree", "explained", "unexplained", ""}
    printed = tidy[tidy.backend == "ref:N12"]
    assert printed.estimate.tolist() == [8.11] and printed.verdict.tolist() == ["agree"]
    wide = comparison.wide()
    assert wide.loc["fixed/lrt", "native"] == native.loc["fixed/lrt", "estimate"]
    assert list(comparison.wide("std.error").columns) == list(wide.columns)
    glance = comparison.glance().set_index("backend")
    assert glance.loc["native", "nobs"] == 4059 and glance.loc["native", "estimator"] == "ML"
    csv = comparison.to_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == csv
    assert pd.read_csv(tmp_path / "t.csv").columns[1] == "native"
    assert comparison.to_latex().count("\\midrule") == 2
    assert comparison._repr_html_().startswith('<table class="side-by-side">')
    index = comparison.report(tmp_path / "r")
    assert index.exists() and (tmp_path / "r" / "tables").is_dir()


def test_a_dataframe_is_fitted_from_the_bytes_the_report_records(data_dir):
    frame = pd.read_stata(data_dir / "gcse.dta")[["gcse", "lrt", "school"]]
    comparison = mh.fit(mh.spec(frame, "gcse ~ lrt + (1 | school)", method="ML"),
                        backends=["native"], cache=False)
    assert comparison.status in ("agree", "pending")
    result = comparison.results["native"]
    assert result.statistics.nobs == 4059
    assert abs(result.fixed_effects()["lrt"] - 0.5633697) < 1e-6
    assert comparison.run.data.sha256 and comparison.spec.dataset.endswith(".csv")


def test_bad_input_is_a_clear_error():
    with pytest.raises(mh.SpecError, match="backends.lme4.optimiser"):
        mh.spec("gcse", "gcse ~ lrt + (1 | school)", backends__lme4__optimiser="bobyqa")
    with pytest.raises(ValueError, match="unknown backend"):
        mh.fit(mh.spec("gcse", "gcse ~ lrt + (1 | school)"), backends=["spss"])
    with pytest.raises(mh.SpecError, match="formula"):
        mh.spec("gcse", "gcse ~")
