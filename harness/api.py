"""The Python API of mlm-harness: load or build a spec, fit it on backends, read the comparison.

Import it as ``import mlm_harness as mh`` (the package re-exports exactly :data:`__all__`)::

    spec = mh.spec("gcse", "gcse ~ lrt + (1 | school)", method="ML")
    comparison = mh.fit(spec, backends=["native", "lme4"])
    comparison.status               # "agree", "explained", "unexplained", ...
    comparison.tidy()               # broom.mixed-style long DataFrame, one row per source
    print(comparison.to_markdown()) # the side-by-side table (also to_latex/to_csv/to_html)
    comparison.report("reports/gcse")

The names in :data:`__all__` and their parameters are the stable contract (docs/api.md); the
objects underneath (:class:`harness.runner.SpecRun`, :class:`harness.compare.Check`) are
reachable through :attr:`Comparison.run` for those who need more, without that promise.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.build import build_spec
from harness.spec import Spec, SpecError, load_spec, load_specs, parse_spec

if TYPE_CHECKING:
    import pandas as pd

    from harness.compare import Check, SpecComparison
    from harness.results import FitResult
    from harness.runner import SpecRun, SuiteRun
    from harness.tables import Table

__all__ = ["Comparison", "Suite", "Spec", "SpecError", "load", "load_all", "from_dict", "spec",
           "fit", "fit_all"]

DEFAULT_BACKENDS = ("native", "lme4")


# ---- specs ---------------------------------------------------------------------------------

def load(path: str | Path) -> Spec:
    """One spec file (YAML); a problem is a :class:`SpecError` naming the file and key."""
    return load_spec(path)


def load_all(*paths: str | Path) -> list[Spec]:
    """Every spec in these files and folders (recursively), sorted by path."""
    return [s for _, s in load_specs(list(paths))]


def from_dict(data: dict[str, Any]) -> Spec:
    """A spec from the mapping its YAML would hold."""
    return parse_spec(data, "from_dict")


def spec(data: str | Path | pd.DataFrame, formula: str, *, family: str = "gaussian",
         method: str | None = None, link: str | None = None, nagq: int = 1,
         factors: Sequence[str] = (), derive: dict[str, str] | None = None,
         subset: str | None = None, id: str = "model", title: str | None = None,
         **overrides: Any) -> Spec:
    """A spec for ``formula`` fitted to ``data``: a registry name (``"gcse"``), a data file
    (.csv, .dta, .sav, .parquet) or a pandas DataFrame.

    ``method`` defaults to REML for a Gaussian mixed model, OLS for a single-level Gaussian
    model and ML otherwise; ``nagq`` is 1 (Laplace) or the adaptive quadrature points of a
    GLMM. Any other spec key is a keyword with ``__`` for the dots of its path:
    ``backends__lme4__optimizer="bobyqa"``. A DataFrame is written to a temporary CSV file
    first, so that every backend reads the same bytes and the report records their SHA-256.
    """
    dataset = _frame_file(data) if _is_frame(data) else str(data)
    return build_spec(dataset, formula, family=family, link=link, method=method, nagq=nagq,
                      factors=list(factors), derive=derive, subset=subset, spec_id=id,
                      title=title, source="Python API", where="mlm_harness.spec()",
                      overrides={k.replace("__", "."): v for k, v in overrides.items()})


def _is_frame(data: object) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_csv")


_FRAME_DIR: list[Path] = []


def _frame_file(frame: pd.DataFrame) -> str:
    """Write ``frame`` to a CSV file in a folder removed when the process exits."""
    if not _FRAME_DIR:
        folder = Path(tempfile.mkdtemp(prefix="mlm-harness-frames-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _FRAME_DIR.append(folder)
    path = _FRAME_DIR[0] / f"frame{len(list(_FRAME_DIR[0].iterdir())) + 1}.csv"
    frame.to_csv(path, index=False)
    return str(path)


# ---- fitting ---------------------------------------------------------------------------------

def fit(spec: Spec | str | Path, *, backends: Sequence[str] = DEFAULT_BACKENDS,
        require: Sequence[str] = (), data_dir: str | Path | None = None, jobs: int = 1,
        cache: bool = True, cache_dir: str | Path | None = None) -> Comparison:
    """Fit one spec (a :class:`Spec` or a spec file) on ``backends`` and compare everything.

    Backends that cannot run here become columns with status ``unavailable`` (``require``
    makes that a failure in :attr:`Comparison.required_failures`). Finished fits are reused
    from the fit cache (``~/.cache/mlm-harness/fits``, or ``cache_dir``) unless ``cache`` is
    False. Data and spec problems raise :class:`SpecError` or
    :class:`harness.runner.DataPreparationError` naming the key and the fix.
    """
    return fit_all([spec], backends=backends, require=require, data_dir=data_dir, jobs=jobs,
                   cache=cache, cache_dir=cache_dir)[0]


def fit_all(specs: Sequence[Spec | str | Path], *, backends: Sequence[str] = DEFAULT_BACKENDS,
            require: Sequence[str] = (), data_dir: str | Path | None = None, jobs: int = 1,
            cache: bool = True, cache_dir: str | Path | None = None) -> Suite:
    """Fit several specs together (their LR tests and replication checks see each other)."""
    from harness.paths import default_cache_dir
    from harness.runner import RunOptions, run_specs

    unknown = [b for b in [*backends, *require] if b not in _backend_names()]
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(_backend_names())}")
    pairs: list[tuple[Path | None, Spec]] = []
    for s in specs:
        if isinstance(s, Spec):
            pairs.append((None, s))
        else:
            pairs.append((Path(s), load_spec(s)))
    options = RunOptions(backends=list(dict.fromkeys([*backends, *require])),
                         required=set(require), data_dir=Path(data_dir) if data_dir else None,
                         jobs=jobs, cache_dir=(Path(cache_dir) if cache_dir else
                                               default_cache_dir()) if cache else None)
    return Suite(run_specs(pairs, options))


def _backend_names() -> list[str]:
    from backends import backend_names

    return backend_names()


# ---- results ---------------------------------------------------------------------------------

@dataclass
class Comparison:
    """One spec fitted on several backends and compared with its references."""

    run: SpecRun
    suite: SuiteRun

    @property
    def spec(self) -> Spec:
        return self.run.spec

    @property
    def results(self) -> dict[str, FitResult]:
        """Each backend's canonical result (harness/results.py), by backend name."""
        return self.run.results

    @property
    def comparison(self) -> SpecComparison:
        return self.run.comparison

    @property
    def checks(self) -> list[Check]:
        """Every comparison of two sources for one number, with its verdict."""
        return self.run.comparison.checks

    @property
    def status(self) -> str:
        """The worst verdict: ``unexplained``, ``error``, ``explained``, ``agree``, ``pending``."""
        return self.run.comparison.status

    @property
    def unexplained(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "unexplained"]

    @property
    def required_failures(self) -> list[str]:
        return self.suite.required_failures()

    # ---- tables --------------------------------------------------------------------------
    def tidy(self) -> pd.DataFrame:
        """One row per parameter and source: ``effect, group, term, estimate, std.error,
        backend, verdict, digits, key`` (broom.mixed's names; see harness/tidy.py)."""
        from harness.tidy import tidy

        return tidy(self.comparison)

    def wide(self, value: str = "estimate") -> pd.DataFrame:
        """Parameters by source: ``value`` is ``estimate`` or ``std.error``."""
        from harness.tidy import wide

        return wide(self.comparison, value)

    def glance(self) -> pd.DataFrame:
        """Fit statistics per source (``nobs, logLik, AIC, BIC, deviance, REMLcrit``)."""
        from harness.tidy import glance

        return glance(self.comparison)

    def checks_frame(self) -> pd.DataFrame:
        """Every check as a row: both values, difference, tolerance, verdict, explanation."""
        from harness.tidy import checks_frame

        return checks_frame(self.comparison)

    def side_by_side(self, digits: int = 3, verdicts: bool = True) -> Table:
        """The modelsummary-style table (harness/sidebyside.py)."""
        from harness.sidebyside import side_by_side

        return side_by_side(self.comparison, digits, verdicts)

    def to_markdown(self, digits: int = 3, verdicts: bool = True) -> str:
        return self.side_by_side(digits, verdicts).to_markdown()

    def to_latex(self, digits: int = 3, verdicts: bool = True) -> str:
        return self.side_by_side(digits, verdicts).to_latex()

    def to_csv(self, path: str | Path | None = None, digits: int = 3,
               verdicts: bool = True) -> str:
        return self.side_by_side(digits, verdicts).to_csv(path)

    def to_html(self, digits: int = 3, verdicts: bool = True) -> str:
        return self.side_by_side(digits, verdicts).to_html()

    def _repr_html_(self) -> str:  # Jupyter shows the table
        return self.to_html()

    def __repr__(self) -> str:
        counts = self.comparison.counts()
        return (f"<Comparison {self.spec.id}: {self.status}; "
                + ", ".join(f"{n} {v}" for v, n in counts.items())
                + f"; backends {', '.join(f'{b} {r.status}' for b, r in self.results.items())}>")

    def report(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the HTML report of this comparison into ``out``; returns its index.html."""
        from harness.runner import SuiteRun

        one = SuiteRun(runs=[self.run], options=self.suite.options,
                       availability=self.suite.availability, started=self.suite.started,
                       seconds=self.suite.seconds, command_line=self.suite.command_line,
                       platform=self.suite.platform)
        return Suite(one).report(out, overwrite)


class Suite:
    """Several comparisons fitted together (:func:`fit_all`)."""

    def __init__(self, run: SuiteRun):
        self.run = run
        self.comparisons = [Comparison(r, run) for r in run.runs]

    def __iter__(self) -> Iterator[Comparison]:
        return iter(self.comparisons)

    def __len__(self) -> int:
        return len(self.comparisons)

    def __getitem__(self, index: int | str) -> Comparison:
        if isinstance(index, str):
            for c in self.comparisons:
                if c.spec.id == index:
                    return c
            raise KeyError(f"no spec {index!r} in this suite")
        return self.comparisons[index]

    @property
    def status(self) -> str:
        order = ["unexplained", "error", "explained", "agree", "pending"]
        statuses = {c.status for c in self.comparisons}
        return next((s for s in order if s in statuses), "agree")

    def tidy(self) -> pd.DataFrame:
        """:meth:`Comparison.tidy` of every spec, with a first column ``spec``."""
        import pandas as pd

        frames = [c.tidy().assign(spec=c.spec.id) for c in self.comparisons]
        long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return long[["spec", *[c for c in long.columns if c != "spec"]]] if frames else long

    def report(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the HTML report (index, one page per spec, summary.json, junit.xml)."""
        from harness.report import write_report
        from harness.report_folder import open_report_folder

        folder = open_report_folder(Path(out), overwrite, Path(out).parent)
        try:
            write_report(self.run, folder.staging)
            folder.commit()
        finally:
            folder.close()
        return folder.path / "index.html"
