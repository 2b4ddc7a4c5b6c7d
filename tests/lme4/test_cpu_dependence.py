"""Verdicts must not depend on the machine lme4 runs on.

glmer's random-slope Laplace fits stop where its Nelder-Mead stage happens to stop, and that
point depends on the last bits of libm's exp/log: on this machine, with glibc's AVX2/FMA code
paths switched off (GLIBC_TUNABLES, as on a CPU without them), glmer's estimate of sch_2 in
the binary random-slope model moves from 0.2293989 to 0.2295233 — a fresh CI machine printed a
third value, 0.2294669, and the last session's verdicts went red there. Both stopping points
are judged by the likelihood at lme4's estimates (harness/known_differences.py, rule ``flat``),
so the verdict is the same on either path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

SPEC = REPO_ROOT / "specs" / "gcse" / "lab1.stata1.4.bin_rs.yaml"


def _run(tmp_path, data_dir, tunables: str | None):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    out = tmp_path / ("tuned" if tunables else "default")
    proc = subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; raise SystemExit(main())", "run",
         str(SPEC), "--backends", "native,lme4", "--no-cache", "--no-progress",
         "--data-dir", str(data_dir), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900)
    lme4 = json.loads((out / "results" / "lab1.stata1.4.bin_rs" / "lme4.json").read_text())
    sch_2 = next(p["estimate"] for p in lme4["parameters"] if p["term"] == "sch_2")
    return proc, sch_2, json.loads((out / "summary.json").read_text())


def test_glmer_on_another_libm_path_gets_the_same_verdicts(tmp_path, data_dir, lme4_backend):
    default, sch_2_default, summary_default = _run(tmp_path, data_dir, None)
    assert default.returncode == 0, default.stdout[-2000:] + default.stderr[-2000:]
    tuned, sch_2, summary = _run(tmp_path, data_dir, "glibc.cpu.hwcaps=-AVX2,-FMA")
    assert tuned.returncode == 0, tuned.stdout[-2000:] + tuned.stderr[-2000:]
    assert summary["totals"]["unexplained"] == 0
    assert summary["specs"][0]["status"] == summary_default["specs"][0]["status"]
    if abs(sch_2 - sch_2_default) < 1e-9:
        pytest.skip("this CPU takes the same libm path with AVX2/FMA off: the verdicts agree, "
                    "but glmer did not move")
