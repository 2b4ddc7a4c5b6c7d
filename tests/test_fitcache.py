"""The fit cache: a key that covers the whole source, entries validated on load, and verdicts that
do not depend on whether the cache was used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.native import lmm
from harness.cli import main
from harness.fitcache import CACHE_FORMAT, FitCache, fit_key, source_hash
from harness.results import SCHEMA_VERSION, FitResult
from harness.spec import Spec, parse_spec

REPO = Path(__file__).resolve().parents[1]
KEY = "k" * 64


@pytest.fixture(scope="module")
def result() -> FitResult:
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(15), 8)
    d = pd.DataFrame({"g": g, "x": rng.normal(size=g.size)})
    d["y"] = d.x + rng.normal(size=15)[g] + rng.normal(size=g.size)
    return lmm("y ~ x + (1 | g)", d, reml=False).to_fit_result("cache.test")


def entry_path(cache: FitCache) -> Path:
    return cache.folder / f"{KEY}.json"


def test_a_good_entry_is_reused_exactly(tmp_path: Path, result: FitResult) -> None:
    cache = FitCache(tmp_path)
    cache.put(KEY, result)
    entry = json.loads(entry_path(cache).read_text())
    assert entry["cache_format"] == CACHE_FORMAT and entry["key"] == KEY
    assert entry["schema_version"] == SCHEMA_VERSION and len(entry["sha256"]) == 64
    again = cache.get(KEY)
    assert again is not None and again.to_dict() == result.to_dict() and not cache.rejected


def _forge(cache: FitCache, result: FitResult, how: str) -> None:
    cache.put(KEY, result)
    p = entry_path(cache)
    text = p.read_text()
    entry = json.loads(text)
    if how == "truncated":
        p.write_text(text[: len(text) // 2])
    elif how == "spec_id and backend only":
        p.write_text(json.dumps({"spec_id": "x", "backend": "native"}))
    elif how == "bare result (format 1)":
        p.write_text(result.to_json())
    elif how == "an edited estimate":
        entry["result"]["parameters"][0]["estimate"] += 0.5
        p.write_text(json.dumps(entry))
    elif how == "an edited estimate with a recomputed checksum of something else":
        entry["result"]["parameters"][0]["estimate"] = None
        from harness.fitcache import _checksum
        entry["sha256"] = _checksum(entry["result"])
        p.write_text(json.dumps(entry))
    elif how == "another key":
        entry["key"] = "0" * 64
        p.write_text(json.dumps(entry))
    elif how == "another schema":
        entry["schema_version"] = SCHEMA_VERSION + 1
        p.write_text(json.dumps(entry))
    elif how == "no parameters, valid checksum":
        entry["result"]["parameters"] = []
        from harness.fitcache import _checksum
        entry["sha256"] = _checksum(entry["result"])
        p.write_text(json.dumps(entry))
    elif how == "status error":
        entry["result"]["status"] = "error"
        from harness.fitcache import _checksum
        entry["sha256"] = _checksum(entry["result"])
        p.write_text(json.dumps(entry))
    else:  # pragma: no cover
        raise AssertionError(how)


@pytest.mark.parametrize("how", [
    "truncated", "spec_id and backend only", "bare result (format 1)", "an edited estimate",
    "an edited estimate with a recomputed checksum of something else", "another key",
    "another schema", "no parameters, valid checksum", "status error"])
def test_a_damaged_or_forged_entry_is_refitted_not_reused(tmp_path: Path, result: FitResult,
                                                          how: str) -> None:
    cache = FitCache(tmp_path)
    _forge(cache, result, how)
    assert cache.get(KEY) is None
    assert KEY in cache.rejected


def test_failed_and_unusable_results_are_never_cached(tmp_path: Path, result: FitResult) -> None:
    cache = FitCache(tmp_path)
    cache.put(KEY, FitResult.failed("s", "native", "error", "boom"))
    bad = FitResult.from_dict(result.to_dict())
    bad.parameters[0] = type(bad.parameters[0])("fixed", None, "x", float("nan"), None)
    cache.put(KEY, bad)
    assert not entry_path(cache).exists()


def test_the_key_changes_with_any_source_file(tmp_path: Path) -> None:
    root = tmp_path / "src"
    for rel in ("harness/a.py", "harness/templates/t.yaml", "backends/native/b.py",
                "backends/lme4/extract.R", "data/registry.yaml", "docs/readme.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    base = source_hash.__wrapped__(root)
    for rel in ("harness/a.py", "harness/templates/t.yaml", "backends/native/b.py",
                "backends/lme4/extract.R", "data/registry.yaml"):
        before = (root / rel).read_text()
        (root / rel).write_text(before + "# changed")
        assert source_hash.__wrapped__(root) != base, rel
        (root / rel).write_text(before)
    (root / "docs/readme.md").write_text("docs do not change a fit")
    assert source_hash.__wrapped__(root) == base
    (root / "harness/new.py").write_text("")
    assert source_hash.__wrapped__(root) != base
    # the installed tree: every harness/backends module is covered
    assert source_hash() == source_hash.__wrapped__(REPO)


def _spec(options: dict | None = None, **model: object) -> Spec:
    return parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "x.csv",
                       "model": {"formula": "y ~ x + (1 | g)", "family": "binomial",
                                 "method": "ML", "integration": {"method": "laplace"}, **model},
                       **({"backends": {"native": {"options": options}}}
                          if options is not None else {})})


def test_the_key_covers_the_typed_options() -> None:
    """Options are a pydantic model (harness/options.py): the key hashes what the spec states,
    so a changed option is another fit, and stating none is the same fit as no settings."""
    base = fit_key(_spec(), "native", "d")
    assert fit_key(_spec({}), "native", "d") == base
    assert fit_key(_spec({"laplace": "exact"}), "native", "d") != base
    assert fit_key(_spec({"laplace": "exact"}), "native", "d") != \
        fit_key(_spec({"laplace": "glmer"}), "native", "d")



def test_the_key_covers_the_model_attributes() -> None:
    """Weights, offsets and trials are part of the model (harness/attributes.py): each one is
    another fit, whether stated as a model key or in the formula."""
    base = fit_key(_spec(), "native", "d")
    keys = {fit_key(_spec(weights="w"), "native", "d"), fit_key(_spec(offset="o"), "native", "d"),
            fit_key(_spec(formula="y ~ x + offset(o) + (1 | g)"), "native", "d"),
            fit_key(_spec(formula="y/n ~ x + (1 | g)"), "native", "d")}
    assert base not in keys and len(keys) == 4


def _summary(out: Path) -> tuple[dict, dict]:
    s = json.loads((out / "summary.json").read_text())
    return s["totals"], {sp["id"]: (sp["status"], sp["counts"], sp["backends"]) for sp in s["specs"]}


@pytest.mark.parametrize("backends", ["native", pytest.param("native,lme4",
                                                              marks=pytest.mark.needs_r)])
def test_verdicts_do_not_depend_on_the_cache(request: pytest.FixtureRequest, tmp_path: Path,
                                             data_dir: Path, capsys: pytest.CaptureFixture,
                                             backends: str) -> None:
    if "lme4" in backends:
        request.getfixturevalue("lme4_backend")
    specs = [str(REPO / "specs" / "gcse" / n) for n in
             ("lab1.ex1.1.lin1.yaml", "lab1.ex1.1.mlm1a.yaml", "lab1.ex1.1.mlm2a.yaml")]
    cache = tmp_path / "cache"
    common = ["--backends", backends, "--no-progress", "--data-dir", str(data_dir)]
    runs = {}
    for name, extra in (("fills the cache", ["--cache-dir", str(cache)]),
                        ("from the cache", ["--cache-dir", str(cache)]),
                        ("no cache", ["--no-cache"])):
        out = tmp_path / name.replace(" ", "_")
        # 0, or 1 while native and lme4 BLUPs differ with no evidence yet (not a data error)
        code = main(["run", *specs, *common, *extra, "--out", str(out)])
        assert code in (0, 1)
        runs[name] = (code, _summary(out))
    capsys.readouterr()
    # one entry per distinct fit: every spec x backend, plus native's ML bridge for lin1's
    # printed ML reference (the other bridges are the specs' own OLS/REML fits, reused)
    assert len(list(cache.glob("*.json"))) == 3 * len(backends.split(",")) + 1
    assert runs["fills the cache"] == runs["from the cache"] == runs["no cache"]
    reused = json.loads((tmp_path / "from_the_cache" / "results" / "lab1.ex1.1.mlm1a" /
                         "native.json").read_text())
    assert "reused from the fit cache (run with --no-cache to refit)" in \
        reused["diagnostics"]["messages"]
    # a forged entry in the cache changes nothing either: it is refitted
    for f in cache.glob("*.json"):
        f.write_text(json.dumps({"spec_id": "x", "backend": "native"}))
    out = tmp_path / "forged"
    code = main(["run", *specs, *common, "--cache-dir", str(cache), "--out", str(out)])
    assert (code, _summary(out)) == runs["no cache"]
    shutil.rmtree(cache)
