"""The command line end to end: exit codes, messages, the canonical JSON and report folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main

RI_SPEC = {
    "id": "cli.gcse.ri_ml", "title": "GCSE random intercept (ML)", "source": "test",
    "dataset": "gcse",
    "derive": [{"name": "sch_2", "expr": "schgend == 2"}, {"name": "sch_3", "expr": "schgend == 3"}],
    "model": {"formula": "gcse ~ lrt + girl + sch_2 + sch_3 + (1 | school)", "method": "ML"},
    "references": [{"id": "N12", "software": "Stata", "source": "lab 1 Stata ex 1.1(a)",
                    "method": "ML", "values": {"ran_pars/school/var__(Intercept)": "8.11"}}],
}


def write_spec(folder: Path, spec: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_typo_in_spec_key_is_exit_2_naming_the_key(tmp_path, capsys):
    bad = {**RI_SPEC, "model": {**RI_SPEC["model"], "methd": "ML"}}
    path = write_spec(tmp_path / "specs", bad)
    code = main(["run", str(path), "--backends", "native", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown key 'model.methd'" in err and str(path) in err


def test_unknown_backend_is_a_usage_error(capsys):
    assert main(["run", "--backends", "spss"]) == 2
    assert "unknown backend(s) spss" in capsys.readouterr().err


def test_fit_json_prints_the_canonical_result(data_dir, capsys):
    code = main(["fit", "gcse", "gcse ~ lrt + (1|school)", "--method", "ML", "--backend",
                 "native", "--json", "--data-dir", str(data_dir)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "ok" and out["backend"] == "native"
    for key in ("parameters", "statistics", "random_effects", "diagnostics", "provenance",
                "timings"):
        assert key in out
    assert out["statistics"]["nobs"] == 4059 and out["statistics"]["ngroups"] == {"school": 65}
    assert out["provenance"]["method"] == "ML"


def test_missing_dataset_is_exit_2_with_the_fetch_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLM_HARNESS_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["fit", "gcse", "gcse ~ lrt + (1|school)", "--backend", "native"])
    assert code == 2
    assert "mlm-harness data fetch gcse" in capsys.readouterr().err


def test_run_agrees_then_a_perturbed_reference_is_exit_1(data_dir, tmp_path, capsys):
    good = write_spec(tmp_path / "good", RI_SPEC)
    out = tmp_path / "report"
    assert main(["run", str(good), "--backends", "native", "--out", str(out), "--no-progress",
                 "--no-cache", "--data-dir", str(data_dir)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["unexplained"] == 0 and summary["totals"]["agree"] >= 1
    assert (out / "index.html").exists()

    perturbed = {**RI_SPEC, "references": [{**RI_SPEC["references"][0],
                                            "values": {"ran_pars/school/var__(Intercept)": "8.13"}}]}
    bad = write_spec(tmp_path / "bad", perturbed)
    out2 = tmp_path / "report2"
    code = main(["run", str(bad), "--backends", "native", "--out", str(out2), "--no-progress",
                 "--no-cache", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "ran_pars/school/var__(Intercept)" in err and "8.13" in err


def test_report_folder_is_never_overwritten_without_asking(data_dir, tmp_path, capsys):
    spec = write_spec(tmp_path / "s", RI_SPEC)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    args = [str(spec), "--backends", "native", "--no-progress", "--no-cache",
            "--data-dir", str(data_dir)]
    assert main(["run", *args, "--out", str(foreign)]) == 2
    assert (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "r"
    assert main(["run", *args, "--out", str(out)]) == 0
    assert main(["run", *args, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", *args, "--out", str(out), "--overwrite"]) == 0


def test_list_and_show(capsys):
    assert main(["list"]) == 0
    assert "lab1.stata1.1.rs_ml" in capsys.readouterr().out
    assert main(["show", "lab1.stata1.1.rs_ml"]) == 0
    shown = capsys.readouterr().out
    assert "lmer(" in shown and "mixed gcse" in shown and "cov(unstructured)" in shown
    assert main(["show", "no.such.spec"]) == 2


@pytest.mark.needs_r
def test_fit_json_with_lme4(lme4_backend, data_dir, capsys):
    code = main(["fit", "gcse", "gcse ~ lrt + (1|school)", "--method", "ML", "--backend",
                 "lme4", "--json", "--data-dir", str(data_dir)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["backend"] == "lme4" and out["status"] == "ok"
    assert "lmer(" in out["provenance"]["call"]
