"""The Stata backend without Stata: fakes for batch and live mode, stored results, and the
unavailable paths. Nothing here runs Stata (docs/stata.md says so)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from backends.base import FitJob, get_backend
from backends.stata import backend as stata_backend
from backends.stata import execution
from harness.options import StataOptions
from backends.stata.results_file import write_results
from backends.stata.stored import save_stored
from harness.runner import PreparedData, fit_one
from tests.stata.fakes import FakePystata, fake_stata_executable
from tests.stata.fixtures import block_c_b, record, stored_block_c
from tests.stata.specs import specs

SPECS = specs()
RS = SPECS["lab1.stata1.1.rs_ml"]


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A clean environment: no Stata on PATH, no STATA_HOME, an empty stored folder."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for k in ("STATA_HOME", "STATA_EXE", "MLMH_STATA_MODE", "STATA_EDITION"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PATH", str(empty))
    stored = tmp_path / "stored"
    stored.mkdir()
    monkeypatch.setenv("MLMH_STATA_STORED", str(stored))
    for name in ("stata_setup", "pystata", "pystata.stata"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    execution._LIVE_STATE.clear()
    stata_backend.reset_detection()
    yield tmp_path
    stata_backend.reset_detection()
    execution._LIVE_STATE.clear()


def prepared(tmp_path: Path) -> PreparedData:
    data = tmp_path / "gcse.dta"
    data.write_bytes(b"not really a dta: Stata is faked")
    frame = pd.DataFrame({"gcse": [1.0, 2.0], "lrt": [0.0, 1.0], "school": [1.0, 2.0]})
    return PreparedData(frame=frame, path=data, sha256="ab" * 32, rows_in_file=2,
                        rows_after_subset=2, derived=[])


def canned_block_c(tmp_path: Path) -> Path:
    b, se = block_c_b()
    rec = record(RS, b, se, scalars={"N": 4059, "ll": -13986.738, "converged": 1},
                 ngroups={"school": 65}, re=[("school", "lrt", "1", .01, .002),
                                             ("school", "(Intercept)", "1", 3.7, .9)])
    path = tmp_path / "canned.txt"
    path.write_text(write_results([rec]))
    return path


# ---- no Stata ---------------------------------------------------------------------------------

def test_no_stata_and_nothing_stored_is_unavailable_with_reason_and_fix(env: Path) -> None:
    a = get_backend("stata").availability()
    assert not a.ok
    assert "no Stata found" in a.reason and "STATA_HOME" in a.fix
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "unavailable" and "no Stata found" in r.message


def test_no_stata_with_stored_results_is_stored_only(env: Path) -> None:
    result, model = stored_block_c(RS)
    save_stored(result, model)
    a = get_backend("stata").availability()
    assert a.ok and "stored results only" in a.reason
    assert ("mode", "stored results only, 1 specs") in a.versions
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "ok" and r.provenance.mode == "stored"
    assert "canned.txt" in r.provenance.source and r.provenance.method == "ML"
    assert "Stata not run here" in r.message
    # a spec with no stored result is unavailable, with the reason and the fix
    other = fit_one(SPECS["lab1.stata1.3.rs_biv_reml"], "stata", prepared(env))
    assert other.status == "unavailable" and "no stored Stata result" in other.message
    assert "mlm-harness stata import" in other.message


def test_stale_stored_result_is_refused(env: Path) -> None:
    result, model = stored_block_c(RS)
    save_stored(result, dict(model, method="REML"))
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "error" and "another model" in r.message and "method" in r.message


def test_stored_result_on_other_data_is_refused(env: Path) -> None:
    result, model = stored_block_c(RS)
    result.provenance.data_sha256 = "cd" * 32
    save_stored(result, model)
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "error" and "SHA-256" in r.message


def test_forced_stored_mode_never_starts_stata(env: Path, monkeypatch) -> None:
    fake_stata_executable(env / "bin")
    monkeypatch.setenv("PATH", str(env / "bin"))
    monkeypatch.setenv("MLMH_STATA_MODE", "stored")
    a = get_backend("stata").availability()
    assert not a.ok and "MLMH_STATA_MODE=stored" in a.reason


# ---- batch mode (fake executable) ---------------------------------------------------------

def test_batch_mode_with_fake_executable(env: Path, monkeypatch) -> None:
    fake_stata_executable(env / "bin")
    monkeypatch.setenv("PATH", str(env / "bin"))
    monkeypatch.setenv("FAKE_STATA_RESULTS", str(canned_block_c(env)))
    a = get_backend("stata").availability()
    assert a.ok and ("mode", "batch") in a.versions and ("Stata", "18 MP") in a.versions
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "ok", r.message
    assert r.provenance.mode == "batch"
    assert "mixed gcse lrt girl sch_2 sch_3 || school: lrt, cov(unstructured) mle" in \
        r.provenance.script
    assert f'use "{env / "gcse.dta"}", clear' in r.provenance.script
    p = {x.key: x for x in r.parameters}
    assert p["ran_pars/school/sd__lrt"].estimate == pytest.approx(.1210464)
    assert {(e.term, e.level) for e in r.random_effects} == {("lrt", "1"), ("(Intercept)", "1")}


def test_batch_licence_failure_is_an_error_with_log_tail(env: Path, monkeypatch) -> None:
    fake_stata_executable(env / "bin")
    monkeypatch.setenv("PATH", str(env / "bin"))
    monkeypatch.setenv("FAKE_STATA_MODE", "licence")
    a = get_backend("stata").availability()
    assert not a.ok and "licence" in a.reason and "license not valid" in a.reason
    # with stored results the backend falls back to them, and says why
    result, model = stored_block_c(RS)
    save_stored(result, model)
    stata_backend.reset_detection()
    a = get_backend("stata").availability()
    assert a.ok and "licence" in a.reason and "stored results only" in a.reason
    other = fit_one(SPECS["lab1.stata1.3.rs_biv_reml"], "stata", prepared(env))
    assert other.status == "error" and "license not valid" in other.message


def test_licence_failure_during_a_fit_is_not_an_empty_success(env: Path) -> None:
    exe = fake_stata_executable(env / "bin")
    inst = execution.StataInstall("batch", str(exe), version="18", flavour="MP")
    os.environ["FAKE_STATA_MODE"] = "licence"
    try:
        job = FitJob(spec=RS, model=RS.model, data=prepared(env).frame, data_path=env / "gcse.dta",
                     data_sha256="ab" * 32)
        r = stata_backend.StataBackend()._fit_now(job, inst, StataOptions())
    finally:
        del os.environ["FAKE_STATA_MODE"]
    assert r.status == "error" and "licence" in r.message and "r(9)" in r.message
    assert r.provenance.mode == "batch"


def test_batch_stata_error_reports_the_return_code(env: Path) -> None:
    exe = fake_stata_executable(env / "bin")
    inst = execution.StataInstall("batch", str(exe))
    os.environ["FAKE_STATA_MODE"] = "stataerror"
    try:
        job = FitJob(spec=RS, model=RS.model, data=prepared(env).frame, data_path=env / "gcse.dta")
        r = stata_backend.StataBackend()._fit_now(job, inst, StataOptions())
    finally:
        del os.environ["FAKE_STATA_MODE"]
    assert r.status == "error" and "r(111)" in r.message and "variable gcse not found" in r.message


def test_results_file_without_e_b_is_an_error(env: Path, monkeypatch) -> None:
    fake_stata_executable(env / "bin")
    monkeypatch.setenv("PATH", str(env / "bin"))
    empty = record(RS, {})
    path = env / "empty.txt"
    path.write_text(write_results([empty]))
    monkeypatch.setenv("FAKE_STATA_RESULTS", str(path))
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "error" and "no e(b)" in r.message


# ---- live mode (fake pystata) -------------------------------------------------------------

def test_live_mode_with_fake_pystata(env: Path, monkeypatch) -> None:
    home = env / "stata18"
    home.mkdir()
    fake = FakePystata(canned=canned_block_c(env).read_text())
    for name, mod in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setenv("STATA_HOME", str(home))
    monkeypatch.setenv("STATA_EDITION", "mp")
    a = get_backend("stata").availability()
    assert a.ok and ("mode", "live") in a.versions
    assert fake.configured == [(str(home), "mp")]
    r = fit_one(RS, "stata", prepared(env))
    assert r.status == "ok" and r.provenance.mode == "live"
    assert "cov(unstructured) mle" in fake.ran[-1]
    assert r.statistics.loglik == -13986.738


def test_live_licence_failure_falls_back_to_batch_or_reports(env: Path, monkeypatch) -> None:
    home = env / "stata18"
    home.mkdir()
    fake = FakePystata(fail_config="Stata license not found")
    for name, mod in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setenv("STATA_HOME", str(home))
    a = get_backend("stata").availability()
    assert not a.ok and "license not found" in a.reason
    monkeypatch.setenv("MLMH_STATA_MODE", "live")
    a = get_backend("stata").availability()
    assert not a.ok and "pystata could not start Stata" in a.reason


def test_render_shows_code_and_stored_source(env: Path) -> None:
    result, model = stored_block_c(RS)
    save_stored(result, model)
    text = get_backend("stata").render(RS)
    assert "mixed gcse lrt girl sch_2 sch_3 || school: lrt, cov(unstructured) mle" in text
    assert "predict mlmh_re*, reffects reses(mlmh_se*)" in text
    assert "stored result lab1.stata1.1.rs_ml.json" in text


def test_multinomial_glmm_is_not_estimable() -> None:
    from harness.spec import parse_spec
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "census",
                       "model": {"formula": "fam_health ~ agegpt + (1 | g)", "family": "multinomial",
                                 "method": "ML", "integration": {"method": "laplace"}}})
    assert "gllamm" in get_backend("stata").unsupported_reason(spec.model)


# ---- real Stata (skipped here) ----------------------------------------------------------------

def _real_stata() -> bool:
    if not (os.environ.get("STATA_HOME") or os.environ.get("STATA_EXE")):
        return False
    stata_backend.reset_detection()
    return stata_backend.installation().usable


@pytest.mark.needs_stata
@pytest.mark.skipif(not _real_stata(), reason="no usable Stata here (set STATA_HOME or STATA_EXE)")
def test_real_stata_reproduces_talk4_block_c(data_dir: Path) -> None:  # pragma: no cover
    from harness.runner import prepare_data
    data = prepare_data(RS, data_dir)
    r = fit_one(RS, "stata", data)
    assert r.status == "ok", r.message
    assert r.provenance.mode in ("live", "batch")
    p = {x.key: x for x in r.parameters}
    printed = json.loads((Path(__file__).resolve().parents[2] / "backends/stata/stored/"
                          "lab1.stata1.1.rs_ml.json").read_text())["printed"]
    for key, v in printed.items():
        if key.startswith("stat/"):
            continue
        est = float(v["estimate"])
        assert p[key].estimate == pytest.approx(est, abs=0.5 * 10 ** -len(v["estimate"].split(".")[1]))


def test_an_interrupt_kills_a_batch_stata_in_progress(tmp_path: Path) -> None:
    """Batch Stata runs in its own session (a terminal Ctrl-C reaches the harness only), so the
    harness kills it when interrupted: stop_batches() from another thread ends run_batch now."""
    import threading
    import time

    from backends.stata.execution import StataRunError, run_batch, stop_batches

    exe = tmp_path / "slow-stata"
    exe.write_text("#!/bin/sh\nsleep 60 & wait\n")  # the child proves the whole group is killed
    exe.chmod(0o755)
    killed: list[int] = []
    timer = threading.Timer(0.5, lambda: killed.append(stop_batches()))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(StataRunError, match="produced no results"):
        run_batch(str(exe), "* nothing", tmp_path)
    assert time.monotonic() - t0 < 10 and killed == [1]
    assert stop_batches() == 0
