"""The everyday command line: ``fit`` as a one-line comparison, ``run --json``, plain and fast
``--help``/``--version``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.parallel import default_jobs

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HEAVY = ("numpy", "pandas", "scipy", "pydantic", "jinja2", "yaml", "rpy2")


@pytest.fixture
def gcse_csv(data_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    pd.read_stata(data_dir / "gcse.dta").to_csv(path, index=False)
    return path


def test_the_one_line_comparison_writes_a_report(gcse_csv, tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["fit", str(gcse_csv), "gcse ~ lrt + (1|school)", "--backends", "native,lme4",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "index.html").exists() and (out / "tables" / "cli.md").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["specs"][0]["backends"]["native"] in ("agree", "ok")
    assert "| native |" in captured.out and f"report: {out / 'index.html'}" in captured.out


def test_fit_takes_derived_columns_a_subset_and_spec_keys(gcse_csv, tmp_path, capsys):
    code = main(["fit", str(gcse_csv), "gcse ~ lrt + sch_2 + (1 | school)", "--method", "ML",
                 "--derive", "sch_2=schgend == 2", "--subset", "school <= 30",
                 "--set", "backends.lme4.optimizer=bobyqa", "--json", "--no-cache"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["statistics"]["ngroups"] == {"school": 30}
    assert {p["term"] for p in result["parameters"]} >= {"sch_2", "lrt"}
    assert main(["fit", str(gcse_csv), "gcse ~ lrt + (1 | school)",
                 "--set", "backends.lme4.optimiser=bobyqa"]) == 2
    assert "backends.lme4.optimiser" in capsys.readouterr().err


def test_fit_json_of_several_backends_is_the_run_document(gcse_csv, tmp_path, capsys):
    code = main(["fit", str(gcse_csv), "gcse ~ lrt + (1 | school)", "--backends",
                 "native,lme4", "--json", "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 0 and set(doc) == {"summary", "results"}
    assert doc["summary"]["totals"]["specs"] == 1
    assert doc["results"]["cli"]["native"]["status"] == "ok"
    assert "checks" in captured.err  # the human lines went to stderr


@pytest.mark.parametrize("argv,words", [
    (["fit", "gcse", "gcse ~ lrt + (1|school)", "--family", "binomial", "--method", "REML"],
     "fitted by ML"),
    (["fit", "gcse"], "fit needs DATA and FORMULA"),
    (["fit", "gcse", "gcse ~ lrt", "--spec", "x.yaml"], "either --spec FILE or DATA FORMULA"),
    (["fit", "gcse", "gcse ~ lrt + (1|school)", "--nagq", "7"], "apply to GLMMs"),
    (["fit", "gcse", "gcse ~ lrt", "--derive", "nonsense"], "write NAME=VALUE"),
    (["fit", "gcse", "gcse ~ lrt", "--backends", ""], "unknown backend"),
])
def test_fit_errors_are_messages_with_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_backend_that_cannot_fit_is_exit_2_saying_why(gcse_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLMH_STATA_STORED", str(tmp_path / "none"))
    assert main(["fit", str(gcse_csv), "gcse ~ lrt + (1 | school)", "--backend", "stata"]) == 2
    assert "stata could not fit the model" in capsys.readouterr().err


def test_run_json_prints_the_summary_and_every_result(data_dir, tmp_path, capsys):
    spec = REPO / "specs" / "gcse" / "lab1.ex1.1.lin1.yaml"
    code = main(["run", str(spec), "--backends", "native", "--out", str(tmp_path / "r"),
                 "--json", "--no-progress", "--no-cache", "--data-dir", str(data_dir)])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 0
    assert doc["summary"] == json.loads((tmp_path / "r" / "summary.json").read_text())
    assert doc["results"]["lab1.ex1.1.lin1"]["native"]["parameters"]
    assert "report:" in captured.err and "report:" not in captured.out


def test_help_is_plain_text_with_defaults(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "``" not in top and "fit data.csv" in top and "exit codes" in top
    assert main(["run", "--help"]) == 0
    run = capsys.readouterr().out
    assert "(default: native,lme4)" in run
    # run --jobs defaults to the cores (issue 17); help states the number
    assert f"number of cores here (default: {default_jobs()})" in " ".join(run.split())
    assert "``" not in run and "%(" not in run


def test_the_command_line_imports_nothing_heavy_to_answer_help():
    code = ("import sys; from harness.cli import build_parser; build_parser(); "
            f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["fit", "--help"]])
def test_version_and_help_take_under_0_3_s_of_cpu(argv):
    """Whole-process CPU time (user + system) of the child, which a loaded machine does not
    inflate the way it does wall time; benchmarks/cli.py measures wall time too."""
    import resource

    best = float("inf")
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "harness.cli", *argv], env=ENV,
                       capture_output=True, check=True, timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    assert best < 0.3, f"{argv}: {best:.3f} s of CPU"
