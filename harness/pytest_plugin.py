"""A pytest plugin: every spec x comparison becomes a test, failing with the differing rows.

Use it from the project root::

    pytest specs/ -p harness.pytest_plugin --mlm-backends native,lme4
    pytest specs/gcse -p harness.pytest_plugin --mlm-backends native -k ri_ml

Each YAML spec under the given paths is collected as a file of tests:

* ``<spec id>::<backend> fit`` — errors when the backend fails, skips when it is unavailable
  or cannot fit the model (``not_estimable``);
* ``<spec id>::<a> vs <b>`` — one per pair of backends and per backend x reference; fails when
  any check between the two is an unexplained difference, with those rows in the message;
  explained differences pass and are printed in the test's report section.

Options: ``--mlm-backends`` (comma-separated, default ``native,lme4``), ``--mlm-data-dir``
(else ``$MLM_HARNESS_DATA``), ``--mlm-include-optional`` (run specs tagged ``optional``),
``--mlm-results DIR`` (compare stored results ``DIR/<spec>/<backend>.json`` — e.g. a report's
``results/`` folder — instead of fitting; without data and native refits there is no evidence,
so only agreement and the spec's own bounded known differences can pass). All specs are fitted together on the first test, so
cross-spec checks (LR tests, replication) see each other.

The plugin is not auto-loaded (the project's own test suite does not collect specs); pass
``-p harness.pytest_plugin`` or add ``addopts = -p harness.pytest_plugin`` to your pytest config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.junit import comparison_cases

_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlm-harness", "multilevel-model spec comparisons")
    group.addoption("--mlm-backends", default="native,lme4",
                    help="comma-separated backends to fit each collected spec with")
    group.addoption("--mlm-data-dir", default=None, help="folder with the course datasets")
    group.addoption("--mlm-include-optional", action="store_true",
                    help="also run specs tagged 'optional'")
    group.addoption("--mlm-results", default=None,
                    help="compare stored results (<dir>/<spec>/<backend>.json) instead of fitting")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STATE] = {"specs": {}, "suite": None}


def pytest_collect_file(parent: pytest.Collector, file_path: Path):  # noqa: ANN201
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    from harness.spec import SpecError, load_spec

    try:
        spec = load_spec(file_path)
    except SpecError:
        if "id" not in file_path.read_text(errors="replace"):
            return None  # not a spec at all (some other YAML)
        return SpecFile.from_parent(parent, path=file_path, spec=None)
    if "optional" in spec.tags and not parent.config.getoption("--mlm-include-optional"):
        return None
    parent.config.stash[_STATE]["specs"][spec.id] = (file_path, spec)
    return SpecFile.from_parent(parent, path=file_path, spec=spec)


def _backends(config: pytest.Config) -> list[str]:
    return [b.strip() for b in config.getoption("--mlm-backends").split(",") if b.strip()]


class SpecFile(pytest.File):
    def __init__(self, *, spec=None, **kw: Any) -> None:  # noqa: ANN001
        super().__init__(**kw)
        self.spec = spec

    def collect(self):  # noqa: ANN201
        if self.spec is None:
            yield SpecItem.from_parent(self, name="spec", spec_id="", case_name="invalid")
            return
        backends = _backends(self.config)
        names = [f"{b} fit" for b in backends]
        names += [f"{a} vs {b}" for i, a in enumerate(backends) for b in backends[i + 1:]]
        names += [f"{b} vs ref:{r.id}" for r in self.spec.references for b in backends]
        for name in names:
            yield SpecItem.from_parent(self, name=f"{self.spec.id}::{name}",
                                       spec_id=self.spec.id, case_name=name)


class SpecItem(pytest.Item):
    def __init__(self, *, spec_id: str, case_name: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.spec_id = spec_id
        self.case_name = case_name
        self.user_properties.append(("mlm_spec", spec_id))

    def runtest(self) -> None:
        if not self.spec_id:
            from harness.spec import load_spec

            load_spec(self.path)  # raises the SpecError with the file and key path
            return
        comp = _suite(self.config)[self.spec_id]
        cases = {c["name"]: c for c in comparison_cases(comp)}
        case = cases.get(self.case_name)
        if case is None:  # e.g. "a vs b" when one of them did not fit: reported by its own test
            pytest.skip(f"{self.case_name}: not compared (a backend did not produce a result)")
        if case.get("out"):
            self.add_report_section("call", "explained differences", case["out"])
        if case["outcome"] == "skipped":
            pytest.skip(case["message"])
        if case["outcome"] in ("failure", "error"):
            raise SpecComparisonFailure(f"{self.spec_id}: {case['message']}\n{case['text']}")

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001, ANN201
        if isinstance(excinfo.value, SpecComparisonFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):  # noqa: ANN201
        return self.path, None, f"{self.spec_id}: {self.case_name}"


class SpecComparisonFailure(AssertionError):
    pass


def _suite(config: pytest.Config) -> dict[str, Any]:
    """Fit (or load) every collected spec once, on first use; {spec id: SpecComparison}."""
    state = config.stash[_STATE]
    if state["suite"] is None:
        specs = list(state["specs"].values())
        backends = _backends(config)
        stored = config.getoption("--mlm-results")
        if stored:
            state["suite"] = _stored(specs, backends, Path(stored))
        else:
            from harness.runner import RunOptions, run_specs

            data_dir = config.getoption("--mlm-data-dir")
            suite = run_specs(specs, RunOptions(backends=backends,
                                                data_dir=Path(data_dir) if data_dir else None))
            state["suite"] = {run.spec.id: run.comparison for run in suite.runs}
    return state["suite"]


def _stored(specs: list, backends: list[str], folder: Path) -> dict[str, Any]:
    from harness.compare import compare_spec
    from harness.report import page_name
    from harness.results import FitResult

    out = {}
    for _, spec in specs:
        results = {}
        for b in backends:
            f = folder / page_name(spec.id).removesuffix(".html") / f"{b}.json"
            results[b] = (FitResult.from_json(f.read_text()) if f.exists() else
                          FitResult.failed(spec.id, b, "unavailable", f"no stored result {f}"))
        out[spec.id] = compare_spec(spec, results)
    return out
