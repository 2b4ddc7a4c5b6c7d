"""Failure paths: every one becomes a result with a status and a message; the caller goes on."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from backends.lme4 import backend as backend_module
from backends.lme4 import client, translate

from .helpers import make_spec, pmap

pytestmark = pytest.mark.needs_r

MODEL = {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"}


@contextlib.contextmanager
def faulty_call(control: str):
    """Fits inside run the harness's own call with ``control = <control>`` appended.

    R-side faults (an R error, quit(), a crash, a hang) used to be provoked through the spec's
    free ``control`` option; no spec text reaches R as code any more, so the test stands in
    for a faulty plan instead.
    """
    real = translate.plan

    def plan(spec, model, frame=None):
        p = real(spec, model, frame)
        return dataclasses.replace(p, call=p.call[:-1] + f", control = {control})")

    translate.plan = plan
    try:
        yield
    finally:
        translate.plan = real


def assert_next_fit_works(fit) -> None:
    r = fit("gcse", MODEL)
    assert r.status == "ok", r.message
    assert pmap(r)["fixed/lrt"] == pytest.approx(0.5633697, abs=1e-6)


@pytest.fixture
def fresh_availability():
    backend_module.reset_availability()
    yield
    backend_module.reset_availability()


def test_r_missing_from_path(lme4, job_for, monkeypatch, tmp_path, fresh_availability):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Rscript here
    a = lme4.availability()
    assert not a.ok
    assert a.reason == "R is not installed (Rscript is not on PATH)"
    assert a.fix == "apt-get install r-base-core r-cran-lme4 r-cran-ordinal"
    r = lme4.fit(job_for(make_spec("gcse", MODEL)))
    assert r.status == "unavailable"
    assert "apt-get install r-base-core" in r.message


def test_lme4_missing(lme4, job_for, fit, monkeypatch, tmp_path, fresh_availability):
    """Hide the site library (where Debian puts lme4): availability says so, and a worker
    started in that state returns R's own message as an error result."""
    monkeypatch.setenv("R_LIBS_SITE", str(tmp_path))
    monkeypatch.setenv("R_LIBS_USER", str(tmp_path))
    a = lme4.availability()
    assert not a.ok
    assert "lme4 is not installed" in a.reason and a.fix == "apt-get install r-cran-lme4"
    backend_module.reset_availability()
    monkeypatch.setattr(backend_module, "check_availability",
                        lambda refresh=False: backend_module.Availability(True))
    lme4.close()  # the next fit starts a worker with the site library hidden
    try:
        r = lme4.fit(job_for(make_spec("gcse", MODEL)))
        assert r.status == "error"
        assert "could not load R/rpy2/lme4" in r.message
        assert "there is no package called" in r.message and "lme4" in r.message
    finally:
        monkeypatch.undo()
        lme4.close()
    assert_next_fit_works(fit)


def test_r_error_comes_back_as_error_result(fit):
    # one level per observation: lme4 refuses (an R error, not a crash)
    r = fit("gcse", {"formula": "gcse ~ lrt + (1 | sid)", "method": "ML"},
            derive=[{"name": "sid", "group_id": ["school", "student"]}])
    assert r.status == "error"
    assert "number of levels of each grouping factor must be < number of observations" \
        in r.message
    assert r.provenance.call and r.provenance.script  # what was run, to reproduce it
    with faulty_call("lmerControl(optimizer = 'nosuch')"):
        bad = fit("gcse", MODEL)
    assert bad.status == "error" and "couldn't find optimizer function nosuch" in bad.message
    assert_next_fit_works(fit)


def test_worker_quits(fit):
    with faulty_call("quit(save = 'no', status = 1)"):
        r = fit("gcse", MODEL)
    assert r.status == "error"
    assert r.message.startswith("the R worker process exited with status 1")
    assert_next_fit_works(fit)


@pytest.mark.parametrize("sig, name", [(signal.SIGSEGV, "SIGSEGV"), (signal.SIGKILL, "SIGKILL")])
def test_worker_crash_during_fit(fit, sig, name):
    with faulty_call(f"{{tools::pskill(Sys.getpid(), {int(sig)}L); Sys.sleep(30); "
                     "lmerControl()}"):
        r = fit("gcse", MODEL)
    assert r.status == "error"
    assert f"killed by signal {name}" in r.message
    assert_next_fit_works(fit)


def test_idle_worker_killed_is_replaced(fit, lme4):
    assert_next_fit_works(fit)
    worker = client.POOL.get()
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    worker.proc.wait(timeout=30)  # it died while idle (not during a fit)
    assert_next_fit_works(fit)
    assert client.POOL.get().pid != pid


def test_timeout_kills_the_worker(fit):
    with faulty_call("{Sys.sleep(60); lmerControl()}"):
        r = fit("gcse", MODEL, backends={"lme4": {"options": {"timeout": 1.5}}})
    assert r.status == "error"
    assert r.message == "R did not finish within 1.5 s"
    assert_next_fit_works(fit)


def test_parallel_callers_get_their_own_workers(fit, lme4):
    lme4.close()
    barrier = threading.Barrier(2)

    def one(_):
        barrier.wait(timeout=60)
        r = fit("gcse", MODEL)
        return r.status, pmap(r)["fixed/lrt"], client.POOL.get().pid

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, range(2)))
    assert [s for s, _, _ in results] == ["ok", "ok"]
    assert results[0][1] == results[1][1]
    assert results[0][2] != results[1][2]  # two R processes
    # a worker is reused by its thread: R and lme4 are loaded once, not per fit
    first = fit("gcse", MODEL)
    second = fit("gcse", MODEL)
    assert "worker_start" not in second.timings
    assert first.status == second.status == "ok"
