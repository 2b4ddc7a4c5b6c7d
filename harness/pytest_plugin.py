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
(else ``$MLM_HARNESS_DATA``, then ``~/.cache/mlm-harness/data``), ``--mlm-jobs N`` (fits in
parallel), ``--mlm-cache-dir DIR`` (reuse finished fits, as ``mlm-harness run`` does),
``--mlm-include-optional`` (run specs tagged ``optional``), ``--mlm-results DIR`` (compare
stored results ``DIR/<spec>/<backend>.json`` — e.g. a report's ``results/`` folder — instead of
fitting; without data and native refits there is no evidence, so only agreement and the spec's
own bounded known differences can pass). All specs are fitted together on the first test, so
cross-spec checks (LR tests, replication) see each other.

A registry dataset (the course data) that is not there stops the session once, before any
test runs, with the places looked in and the fetch command (``pytest.UsageError``, exit 4),
instead of one failure per comparison. Any other spec or data error (an invalid spec, a data
file path that does not exist, a failed data check, a reference key the model cannot have)
fails that spec's tests with the harness's message, not a traceback.

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
    group.addoption("--mlm-jobs", type=int, default=1, help="fits to run in parallel (default: 1)")
    group.addoption("--mlm-cache-dir", default=None,
                    help="reuse finished fits kept in this folder (default: refit everything)")
    group.addoption("--mlm-include-optional", action="store_true",
                    help="also run specs tagged 'optional'")
    group.addoption("--mlm-results", default=None,
                    help="compare stored results (<dir>/<spec>/<backend>.json) instead of fitting")


def pytest_configure(config: pytest.Config) -> None:
    jobs = config.getoption("--mlm-jobs")
    if jobs < 1:
        raise pytest.UsageError(f"--mlm-jobs must be at least 1, not {jobs}")
    config.stash[_STATE] = {"specs": {}, "suite": None, "error": None}


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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop once, before anything is fitted, when a registry dataset a spec needs is not here.

    Without the course data every comparison would fail for the same reason; one message with
    the places looked in and the fetch command says it better. Only the file's presence is
    checked here (cheap, so ``--collect-only`` stays fast); a data file given by path, a checksum
    or a data check is a problem of the specs that use it (their tests fail with the message).
    """
    config = session.config
    specs = config.stash[_STATE]["specs"]
    if not specs or config.getoption("--mlm-results") or session.config.option.collectonly:
        return
    from harness.datasets import FETCH_COMMAND, DatasetError, load_registry, locate, search_dirs

    data_dir = config.getoption("--mlm-data-dir")
    registry = load_registry()
    missing: dict[str, list[str]] = {}  # dataset -> the ids of the specs that need it
    for _, spec in specs.values():
        if spec.dataset in registry:
            try:
                locate(spec.dataset, data_dir)
            except DatasetError:
                missing.setdefault(spec.dataset, []).append(spec.id)
    if not missing:
        return
    lines = [f"mlm-harness: {sum(map(len, missing.values()))} of {len(specs)} collected spec(s) "
             f"need course datasets that are not here, so nothing was fitted.", "Missing:"]
    for name, ids in missing.items():
        lines.append(f"  {name} ({registry[name].file}), needed by {len(ids)} spec(s): "
                     f"{', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}")
    lines.append("Looked in:")
    for where, folder in search_dirs(data_dir):
        where = where.replace("--data-dir", "--mlm-data-dir")
        lines.append(f"  {folder.absolute() if folder else '(not set)'}  [{where}]")
    lines.append(f"Fetch them into the user cache with: {FETCH_COMMAND} {' '.join(missing)}")
    lines.append("(or point --mlm-data-dir or $MLM_HARNESS_DATA at the folder that holds them, "
                 "or compare stored results with --mlm-results DIR)")
    raise pytest.UsageError("\n".join(lines))


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
        if isinstance(comp, Exception):  # this spec's data or reference keys are wrong
            raise comp
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
        """The harness's message alone: a difference's rows, or a spec or data error."""
        if isinstance(excinfo.value, SpecComparisonFailure) or _expected(excinfo.value):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):  # noqa: ANN201
        return self.path, None, f"{self.spec_id or self.path.name}: {self.case_name}"


class SpecComparisonFailure(AssertionError):
    pass


def _expected(error: BaseException) -> bool:
    """Errors that describe bad input (a spec, its data), not a bug: shown without traceback."""
    from harness.datasets import DatasetError
    from harness.runner import DataPreparationError
    from harness.spec import SpecError

    return isinstance(error, (SpecError, DataPreparationError, DatasetError))


def _suite(config: pytest.Config) -> dict[str, Any]:
    """Fit (or load) every collected spec once, on first use.

    {spec id: SpecComparison, or the spec or data error that kept it from being fitted}. An
    unexpected error (a bug) is raised with its traceback by the first test only; the others
    say so in one line instead of refitting everything or repeating the traceback.
    """
    state = config.stash[_STATE]
    if state["error"] is not None:
        e = state["error"]
        raise SpecComparisonFailure(f"the fits did not run: {type(e).__name__}: {e} "
                                    f"(see the first failing test)")
    if state["suite"] is None:
        specs = list(state["specs"].values())
        stored = config.getoption("--mlm-results")
        try:
            state["suite"] = (_stored(specs, _backends(config), Path(stored)) if stored
                              else _fitted(specs, config))
        except Exception as e:
            state["error"] = e
            raise
    return state["suite"]


def _fitted(specs: list, config: pytest.Config) -> dict[str, Any]:
    """Fit the specs whose data and reference keys are sound; the others map to their error.

    ``run_specs`` stops the whole run at the first bad spec (right for the CLI, which exits 2);
    here one bad spec should fail only its own tests, so each spec's data are prepared first
    (the dataset itself is read once, ``load_dataset`` caches it).
    """
    from harness.model_keys import reference_key_problems
    from harness.runner import DataPreparationError, RunOptions, prepare_data, run_specs
    from harness.spec import SpecError

    data_dir = config.getoption("--mlm-data-dir")
    data_path = Path(data_dir) if data_dir else None
    out: dict[str, Any] = {}
    sound = []
    for path, spec in specs:
        try:
            problems = reference_key_problems(spec, prepare_data(spec, data_path).frame)
        except DataPreparationError as e:
            out[spec.id] = e
            continue
        if problems:
            out[spec.id] = SpecError.several([f"{path}: {p}" for p in problems])
            continue
        sound.append((path, spec))
    if sound:
        cache = config.getoption("--mlm-cache-dir")
        suite = run_specs(sound, RunOptions(backends=_backends(config), data_dir=data_path,
                                            jobs=config.getoption("--mlm-jobs"),
                                            cache_dir=Path(cache) if cache else None))
        out.update({run.spec.id: run.comparison for run in suite.runs})
    return out


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
