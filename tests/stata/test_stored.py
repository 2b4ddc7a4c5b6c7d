"""Stored results: suite export -> (Stata, faked) -> one results file -> import -> FitResults."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from backends.stata.render import Layout
from backends.stata.results_file import StataRecord, write_results
from backends.stata.stored import export_do, fingerprint_mismatch, import_results, load_stored
from tests.stata.fakes import layouts_in
from tests.stata.specs import specs

SPECS = specs()
SUITE = ["lab2.stata2.2.gcse_robust/robust", "lab1.stata1.1.rs_ml",
         "slide.talk2.p18.poor_health_rs", "lab1.stata1.4.cen_ologit_ri"]


def fake_b(layout: Layout) -> dict[str, float]:
    """An e(b) named as Stata names it for this layout (values arbitrary but valid)."""
    eq = "" if layout.command == "regress" else f"{layout.depvar}:"
    b = {f"{eq}{t}": 0.1 * (i + 1) for i, t in enumerate(layout.fixed_terms)}
    if layout.family != "ordinal":
        b[f"{eq}_cons"] = -1.0
    else:
        b.update({"/:cut1": 1.0, "/:cut2": 2.0})
    if layout.command == "mixed":
        for L, e in enumerate(layout.equations, start=1):
            for j, _ in enumerate(e.stata_effects, start=1):
                b[f"lns{L}_1_{j}:_cons"] = math.log(0.5 * j)
            if e.covariance == "unstructured":
                b[f"atr{L}_1_1_2:_cons"] = 0.3
        b["lnsig_e:_cons"] = math.log(7.0)
    elif layout.equations:
        for e in layout.equations:
            for s in e.stata_effects:
                b[f"/:var({s}[{e.level}])"] = 0.2
    return b


def fake_stata_run(do_text: str) -> str:
    """What the exported do-file writes, built from the layouts it carries."""
    records = []
    for spec_id, layout_d, sha in layouts_in(do_text):
        layout = Layout.from_dict(layout_d)
        b = fake_b(layout)
        rec = StataRecord(spec_id=spec_id, layout=layout_d, rc=0, complete=True,
                          meta={"data_sha256": sha, "stata_version": "17", "flavour": "MP",
                                "date": "25 Nov 2025 12:00:00", "datasignature": "1:2"},
                          macros={"cmdline": layout.command_line(), "depvar": layout.depvar},
                          scalars={"N": 100, "ll": -50.0, "converged": 1}, b=b)
        for i, a in enumerate(b):
            rec.V[(a, a)] = 0.01
        records.append(rec)
    return write_results(records)


def test_export_do_is_one_file_for_the_suite() -> None:
    text = export_do([SPECS[i] for i in SUITE], results_file="out.txt", use_data=False,
                     stata_data_dir="/stata/data")
    assert text.count('file open mlmh_fh using "out.txt", write text replace') == 1
    assert text.count("\nfile close mlmh_fh") == 1
    assert 'global MLMH_DATA "/stata/data"' in text
    assert 'use "$MLMH_DATA/gcse.dta", clear' in text
    assert "version 15" in text
    blocks = layouts_in(text)
    assert [b[0] for b in blocks] == SUITE
    for _, layout, _ in blocks:  # each estimation is captured: one failure cannot stop the rest
        assert f"capture noisily {Layout.from_dict(layout).command_line()}" in text


def test_export_skips_what_stata_cannot_fit() -> None:
    from harness.spec import parse_spec
    multi = parse_spec({"id": "m", "title": "m", "source": "s", "dataset": "census",
                        "model": {"formula": "y ~ x + (1 | g)", "family": "multinomial",
                                  "method": "ML", "integration": {"method": "laplace"}}})
    text = export_do([SPECS["lab1.stata1.1.rs_ml"], multi], use_data=False)
    assert text.startswith("* Not exported") and "m: Stata has no official" in text


def test_export_import_round_trip(tmp_path: Path) -> None:
    text = export_do([SPECS[i] for i in SUITE], results_file="out.txt", use_data=False)
    results_file = tmp_path / "out.txt"
    results_file.write_text(fake_stata_run(text))
    out = import_results(results_file, out_dir=tmp_path / "stored")
    assert sorted(out) == sorted(SUITE)
    for spec_id, r in out.items():
        assert r.status == "ok", (spec_id, r.message)
        assert r.provenance.mode == "stored"
        assert "Stata 17 MP" in r.provenance.source and "out.txt" in r.provenance.source
        assert r.provenance.call and not r.diagnostics.warnings, r.diagnostics.warnings
        saved, raw = load_stored(spec_id, tmp_path / "stored")
        assert saved.to_dict() == r.to_dict()
        assert fingerprint_mismatch(SPECS[spec_id], raw) is None
    assert (tmp_path / "stored" / "lab2.stata2.2.gcse_robust__robust.json").is_file()
    p = {x.key: x for x in out["lab1.stata1.1.rs_ml"].parameters}
    assert p["ran_pars/school/sd__lrt"].estimate == pytest.approx(0.5)
    assert p["ran_pars/school/cor__(Intercept).lrt"].estimate == pytest.approx(math.tanh(0.3))
    p = {x.key: x for x in out["lab1.stata1.4.cen_ologit_ri"].parameters}
    assert p["threshold/2|3"].estimate == 2.0


def test_import_keeps_failed_models_out_of_the_store(tmp_path: Path) -> None:
    rec = StataRecord(spec_id="lab1.stata1.1.rs_ml", rc=2000, complete=True,
                      layout=json.loads(json.dumps(
                          layouts_in(export_do([SPECS["lab1.stata1.1.rs_ml"]],
                                               use_data=False))[0][1])))
    path = tmp_path / "r.txt"
    path.write_text(write_results([rec]))
    out = import_results(path, out_dir=tmp_path / "stored")
    assert out["lab1.stata1.1.rs_ml"].status == "error"
    assert not (tmp_path / "stored").exists()
