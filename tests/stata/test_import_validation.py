"""Imported and stored Stata results are validated: a bad entry is rejected with its line and is
never stored as ok (a results file with '.' estimates used to be stored and crash the next run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.base import FitJob
from backends.stata.backend import StataBackend
from backends.stata.mapping import record_to_result
from backends.stata.stored import (StoredResultError, load_stored, save_stored, stored_path,
                                   import_results)
from backends.stata.results_file import write_results
from tests.stata.fixtures import block_c_b, record, stored_block_c
from tests.stata.specs import specs

SPEC = specs()["lab1.stata1.1.rs_ml"]


def results_text(**change) -> str:
    b, se = block_c_b()
    rec = record(SPEC, b, se, scalars={"N": 4059, "ll": -13986.7}, ngroups={"school": 65})
    for k, v in change.items():
        setattr(rec, k, v)
    return write_results([rec])


def replace_line(text: str, prefix: str, new: str) -> tuple[str, int]:
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(prefix))
    lines[i] = new
    return "\n".join(lines) + "\n", i + 1


def test_a_good_block_imports_as_ok(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text(results_text())
    out = import_results(path, out_dir=tmp_path / "stored")
    assert out[SPEC.id].status == "ok"
    assert stored_path(SPEC.id, tmp_path / "stored").is_file()


@pytest.mark.parametrize("value,words", [
    (".", "is missing"), ("nan", "'nan' is not a finite number"),
    ("inf", "'inf' is not a finite number"), ("1e999", "'1e999' is not a finite number"),
    ("abc", "'abc' is not a number")])
def test_a_bad_estimate_is_rejected_with_its_line_and_not_stored(tmp_path: Path, value: str,
                                                                  words: str) -> None:
    text, line = replace_line(results_text(), "b\tgcse:lrt\t", f"b\tgcse:lrt\t{value}")
    path = tmp_path / "r.txt"
    path.write_text(text)
    r = import_results(path, out_dir=tmp_path / "stored")[SPEC.id]
    assert r.status == "error"
    assert f"line {line}: e(b) column gcse:lrt" in r.message and words in r.message
    assert not (tmp_path / "stored").exists()


def test_a_block_whose_layout_is_for_another_model_is_rejected() -> None:
    b, se = block_c_b()
    rec = record(SPEC, b, se)
    rec.macros["depvar"] = "tory"
    r = record_to_result(rec, mode="stored")
    assert r.status == "error" and "e(depvar) is 'tory'" in r.message
    rec = record(SPEC, b, se)
    rec.spec_id = "another.spec"
    assert "its layout is for 'lab1.stata1.1.rs_ml'" in record_to_result(rec, mode="stored").message


def test_a_block_missing_a_variance_its_layout_names_is_rejected() -> None:
    b, se = block_c_b()
    del b["lns1_1_1:_cons"]
    r = record_to_result(record(SPEC, b, se), mode="stored")
    assert r.status == "error" and "no variance for school/lrt" in r.message


@pytest.mark.parametrize("damage", ["nan estimate", "no parameters", "not json", "other spec",
                                    "status error"])
def test_a_damaged_stored_file_is_an_error_naming_it_never_an_ok_fit(tmp_path: Path,
                                                                     damage: str) -> None:
    result, model = stored_block_c(SPEC)
    path = save_stored(result, model, tmp_path)
    raw = json.loads(path.read_text())
    if damage == "nan estimate":
        raw["parameters"][0]["estimate"] = None  # what a NaN becomes in JSON
    elif damage == "no parameters":
        raw["parameters"] = []
    elif damage == "other spec":
        raw["spec_id"] = "x"
    elif damage == "status error":
        raw["status"] = "error"
    path.write_text("{not json" if damage == "not json" else json.dumps(raw))
    with pytest.raises(StoredResultError) as e:
        load_stored(SPEC.id, tmp_path)
    assert str(path) in str(e.value)


def test_the_backend_reports_a_damaged_stored_file_as_an_error(tmp_path: Path,
                                                               monkeypatch) -> None:
    result, model = stored_block_c(SPEC)
    path = save_stored(result, model, tmp_path)
    raw = json.loads(path.read_text())
    raw["parameters"][0]["estimate"] = None
    path.write_text(json.dumps(raw))
    monkeypatch.setenv("MLMH_STATA_STORED", str(tmp_path))
    monkeypatch.delenv("STATA_HOME", raising=False)
    monkeypatch.delenv("STATA_EXE", raising=False)
    import pandas as pd

    r = StataBackend().fit(FitJob(spec=SPEC, model=SPEC.model_for("stata"), data=pd.DataFrame()))
    assert r.status == "error" and "not a usable stored Stata result" in r.message
    assert "estimate None is not a finite number" in r.message
