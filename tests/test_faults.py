"""Faults: interrupted runs stop their R workers, write nothing that looks complete, and say so;
an R worker dies with the harness whatever killed it.

The slow tests start a real ``mlm-harness run`` of a census random-slope logit in lme4 (about 30
s of R), wait until its R worker is computing, send the signal and time what follows. Measured
on the 2-core development machine (5 runs): SIGINT and SIGTERM exit 130/143 in 0.6-0.75 s with
the worker already gone; after SIGKILL of the harness the worker is gone 0.08-0.15 s later (it
polls its parent pid every 0.2 s). Before: the worker kept computing until its 1,800 s timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.interrupt import Interrupted, signals_raise
from harness.parallel import imap_unordered

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "census" / "lab1.stata1.4.cen_logit_rs__ip2.yaml"


def test_an_interrupt_does_not_wait_for_the_jobs_in_progress() -> None:
    def slow(x: int) -> int:
        time.sleep(60)
        return x

    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    with pytest.raises(Interrupted) as e:
        with signals_raise():
            list(imap_unordered(slow, [1, 2, 3], 2))
    assert time.monotonic() - t0 < 5
    assert e.value.signal_name == "SIGINT" and e.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_sigterm_is_the_same_exception_with_exit_143() -> None:
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    with pytest.raises(Interrupted) as e:
        with signals_raise():
            time.sleep(10)
    assert e.value.exit_code == 143


def test_job_errors_reach_the_consumer() -> None:
    def boom(x: int) -> int:
        raise ValueError(f"job {x}")

    with pytest.raises(ValueError, match="job"):
        list(imap_unordered(boom, [1], 1))


# ---- a real run, a real R worker ------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and "backends.lme4.worker" in cmd and "--probe" not in cmd:
            out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _run_until_r_computes(tmp_path: Path, data_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(SPEC), "--backends", "lme4",
         "--no-cache", "--no-progress", "--out", str(out), "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers = _children(proc.pid)
        if workers:
            time.sleep(6)  # R has started (about 2 s) and is fitting (about 30 s)
            assert proc.poll() is None, proc.communicate()
            return proc, workers[0], out
        if proc.poll() is not None:
            pytest.fail(f"the run ended before R started: {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no R worker appeared within 120 s")


def _gone_within(pid: int, seconds: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _alive(pid):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


@pytest.mark.slow
@pytest.mark.needs_r
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_its_r_worker(lme4_backend, data_dir, tmp_path, sig,
                                                 code) -> None:
    proc, worker, out = _run_until_r_computes(tmp_path, data_dir)
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == code, stderr
    assert took < 10, f"exit took {took:.1f} s"
    assert _gone_within(worker, 5) is not None, "the R worker outlived the interrupted run"
    name = signal.Signals(sig).name
    assert f"mlm-harness: interrupted by {name}; stopped 1 worker process(es); no report was " \
           f"written to {out}" in stderr
    assert "Traceback" not in stderr and "report:" not in stdout
    assert not out.exists()  # the folder this run created is removed again


@pytest.mark.slow
@pytest.mark.needs_r
def test_an_r_worker_dies_with_a_harness_killed_by_sigkill(lme4_backend, data_dir,
                                                           tmp_path) -> None:
    proc, worker, out = _run_until_r_computes(tmp_path, data_dir)
    proc.kill()
    proc.communicate(timeout=30)
    gone = _gone_within(worker, 10)
    assert gone is not None, "the R worker kept computing after its harness was killed"
    # What a killed run leaves cannot look like a finished report, and does not block the next.
    assert not any((out / name).exists() for name in ("summary.json", "index.html"))
    from harness.report_folder import open_report_folder

    open_report_folder(out, False, tmp_path).close()
