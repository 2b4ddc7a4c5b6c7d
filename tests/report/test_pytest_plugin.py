"""The pytest plugin: one test per spec x comparison, on stored hand-made results and on small
fits of a made-up data file; bad input gives the harness's message, never pytest's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness import pytest_plugin
from harness.report import page_name
from harness.spec import load_spec
from tests.report.fixtures import suite

REPO = Path(__file__).resolve().parents[2]


def _no_data_env(tmp_path: Path) -> dict[str, str]:
    """An environment where no course dataset can be found (no $MLM_HARNESS_DATA, empty cache)."""
    env = {k: v for k, v in os.environ.items() if k != "MLM_HARNESS_DATA"}
    return {**env, "XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "PYTHONPATH": str(REPO)}


def _pytest(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args, "-p", "harness.pytest_plugin",
                           "-p", "no:cacheprovider", "--rootdir", str(cwd)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _write_specs(specs: Path) -> None:
    """The hand-made suite's specs (all on the registry dataset gcse) as YAML files."""
    specs.mkdir()
    for run in suite().runs:
        (specs / f"{run.spec.id}.yaml").write_text(
            yaml.safe_dump(run.spec.model_dump(exclude_defaults=True), sort_keys=False))


def _toy_spec(folder: Path, name: str, dataset: Path, formula: str, extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"id: toy.{name}\ntitle: toy\nsource: made up\ndataset: {dataset}\n"
                    f"model: {{formula: \"{formula}\", family: gaussian, method: REML{extra}}}\n")
    return path


@pytest.fixture
def toy_csv(tmp_path: Path) -> Path:
    """200 rows in 20 groups with a random intercept: a fit takes milliseconds."""
    rng = np.random.default_rng(14)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=200)
    path = tmp_path / "toy.csv"
    pd.DataFrame({"y": 1 + 0.5 * x + rng.normal(size=20)[g] + rng.normal(size=200),
                  "x": x, "g": g}).to_csv(path, index=False)
    return path


def test_plugin_collects_comparisons_and_fails_with_rows(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    results = tmp_path / "results"
    _write_specs(specs)
    for run in suite().runs:
        folder = results / page_name(run.spec.id).removesuffix(".html")
        folder.mkdir(parents=True)
        for name, r in run.results.items():
            (folder / f"{name}.json").write_text(r.to_json())
    # stored results need no data: run where no course dataset can be found
    proc = _pytest([str(specs), "--mlm-backends", "native,lme4", "--mlm-results", str(results),
                    "-rA"], tmp_path, _no_data_env(tmp_path))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "PASSED specs/gcse.ri_ml.yaml::gcse.ri_ml::native vs lme4" in out
    assert "FAILED" in out and "gcse.ri_reml::native vs ref:course-r" in out
    assert "ran_pars/school/var__(Intercept) (estimate): native 8.110688 vs ref:course-r 8.13" \
        in out
    # stored results carry no evidence (no data, no native refits here): lme4's early stop on
    # gcse.ri_reml is not explained from stored files alone, so its two comparisons fail too
    assert "4 failed, 8 passed, 3 skipped" in out
    assert "gcse.ri_reml::native vs lme4" in out


def test_missing_course_data_is_one_usage_error_before_any_test(tmp_path: Path) -> None:
    _write_specs(tmp_path / "specs")
    proc = _pytest(["specs", "--mlm-backends", "native"], tmp_path, _no_data_env(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 4, out  # pytest's usage error: nothing ran
    assert "3 of 3 collected spec(s) need course datasets that are not here" in out
    assert "gcse (gcse.dta), needed by 3 spec(s): gcse.bin_rs, gcse.ri_ml, gcse.ri_reml" in out
    assert f"{tmp_path / 'empty-cache' / 'mlm-harness' / 'data'}  [user cache]" in out
    assert "mlm-harness data fetch gcse" in out
    assert out.count("need course datasets") == 1
    assert "Traceback" not in out and "passed" not in out and "failed" not in out


def test_bad_specs_fail_only_their_own_tests_with_the_message(tmp_path: Path,
                                                               toy_csv: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    _toy_spec(specs, "good", toy_csv, "y ~ x + (1|g)")
    _toy_spec(specs, "good2", toy_csv, "y ~ 1 + (1|g)")
    _toy_spec(specs, "nofile", tmp_path / "absent.csv", "y ~ x + (1|g)")
    _toy_spec(specs, "badvar", toy_csv, "y ~ z + (1|g)")
    _toy_spec(specs, "invalid", toy_csv, "y ~ x + (1|g)", ", colour: blue")
    proc = _pytest(["specs", "--mlm-backends", "native", "--mlm-jobs", "2", "-rA"], tmp_path,
                   _no_data_env(tmp_path))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "PASSED specs/good.yaml::toy.good::native fit" in out
    assert "PASSED specs/good2.yaml::toy.good2::native fit" in out
    assert "3 failed, 2 passed" in out
    assert f"spec toy.nofile: no such data file: {tmp_path / 'absent.csv'}" in out
    assert "spec toy.badvar: model.formula: the model uses ['z']" in out
    assert "invalid.yaml: unknown key 'model.colour'" in out
    assert "Traceback" not in out and "_pytest" not in out and "harness/" not in out


def test_bad_jobs_is_a_usage_error(tmp_path: Path) -> None:
    proc = _pytest(["--mlm-jobs", "0"], tmp_path, _no_data_env(tmp_path))
    assert proc.returncode == 4 and "--mlm-jobs must be at least 1, not 0" in proc.stderr


class _Config:
    """Just what the plugin's fitting reads from a pytest config: options and its stash."""

    def __init__(self, specs: dict, **options: object) -> None:
        self.options = {"--mlm-backends": "native", "--mlm-data-dir": None, "--mlm-jobs": 1,
                        "--mlm-cache-dir": None, "--mlm-results": None,
                        **{f"--mlm-{k.replace('_', '-')}": v for k, v in options.items()}}
        self.stash = {pytest_plugin._STATE: {"specs": specs, "suite": None, "error": None}}

    def getoption(self, name: str) -> object:
        return self.options[name]


def test_jobs_and_cache_reach_the_runner_and_bad_specs_are_left_out(
        tmp_path: Path, toy_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.runner

    paths = [_toy_spec(tmp_path, "good", toy_csv, "y ~ x + (1|g)"),
             _toy_spec(tmp_path, "badvar", toy_csv, "y ~ z + (1|g)")]
    specs = {s.id: (p, s) for p, s in ((p, load_spec(p)) for p in paths)}
    seen = []

    def fake_run_specs(specs_in, options):  # noqa: ANN001, ANN202
        seen.append(([s.id for _, s in specs_in], options))
        return harness.runner.SuiteRun([], options, {}, "", 0.0, "", "")

    monkeypatch.setattr(harness.runner, "run_specs", fake_run_specs)
    config = _Config(specs, jobs=3, cache_dir=str(tmp_path / "fits"))
    out = pytest_plugin._suite(config)
    (ids, options), = seen
    assert ids == ["toy.good"] and options.jobs == 3 and options.cache_dir == tmp_path / "fits"
    assert isinstance(out["toy.badvar"], harness.runner.DataPreparationError)


def test_an_unexpected_error_is_raised_once_then_summarised(
        tmp_path: Path, toy_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.runner

    path = _toy_spec(tmp_path, "good", toy_csv, "y ~ x + (1|g)")
    calls = []

    def broken_run_specs(specs_in, options):  # noqa: ANN001, ANN202
        calls.append(1)
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.runner, "run_specs", broken_run_specs)
    config = _Config({"toy.good": (path, load_spec(path))})
    with pytest.raises(RuntimeError, match="a bug"):
        pytest_plugin._suite(config)
    with pytest.raises(pytest_plugin.SpecComparisonFailure,
                       match="the fits did not run: RuntimeError: a bug"):
        pytest_plugin._suite(config)
    assert calls == [1]  # not refitted for every test
