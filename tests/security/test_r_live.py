"""The attacks that can still be written as a valid spec reach R only as data: live lme4 fits
and the generated R script (run with Rscript) create no marker file.

What remains writable after load-time validation is text that is *allowed*: names with quotes,
backticks, parentheses and semicolons (any printable character is a valid column name), and free
text (title, description, subset) with newlines. The first must arrive in R as one symbol, the
second only inside one-line comments.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from backends.base import FitJob
from backends.lme4 import rscript, translate
from harness.rsyntax import r_name
from harness.spec import Spec, parse_spec

pytestmark = [pytest.mark.needs_r]

SYMBOL = re.compile(r"`(?:[^`\\]|\\.)*`")  # an R backquoted symbol, escapes included

DATA = pd.DataFrame({"gcse": [1.0, 2.5, 0.5, 4.0, 3.0, 6.5, 2.0, 5.5, 4.5, 7.0, 1.5, 3.5],
                     "lrt": [0.1, 1.0, -0.5, 2.0, 1.1, 3.2, 0.4, 2.6, 1.9, 3.9, -0.2, 1.2],
                     "school": [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]}, dtype=float)


def attack_spec(marker: Path) -> Spec:
    touch = f"system('touch {marker}')"
    name = f"x`); {touch}; (`"
    title = f"title\n{touch}\r\n# \u2028{touch}"
    quoted = r_name(name)  # how the spec's author has to write it in a formula
    assert quoted.startswith("`") and "\\`" in quoted
    return parse_spec({
        "id": "attack", "title": title, "source": f"source\n{touch}", "dataset": "gcse",
        "description": f"d\n{touch}",
        "derive": [{"name": name, "expr": "lrt * 2", "note": f"n\n{touch}"},
                   {"name": f"cl\"; {touch}; \"", "expr": "school"}],
        "subset": "(lrt >\n-100)",
        "model": {"formula": f"gcse ~ {quoted}", "method": "OLS",
                  "cluster_se": f"cl\"; {touch}; \""}})


def run_rscript(script: str, folder: Path) -> None:
    path = folder / "fit.R"
    path.write_text(script)
    done = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=300,
                          cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "an attack ran code: the marker file exists"


def test_names_with_code_in_them_reach_r_as_symbols(lme4_backend, marker: Path,
                                                    tmp_path: Path) -> None:
    spec = attack_spec(marker)
    data = DATA.assign(**{spec.derive[0].name: DATA["lrt"] * 2,
                          spec.derive[1].name: DATA["school"]})
    csv = tmp_path / "data.csv"
    DATA.to_csv(csv, index=False)
    result = lme4_backend.fit(FitJob(spec=spec, model=spec.model, data=data, data_path=csv))
    assert result.status == "ok", result.message
    name = spec.derive[0].name
    # R named the coefficient after the backquoted symbol, as the formula tree names it
    assert {p.term for p in result.parameters if p.effect == "fixed"} == {
        "(Intercept)", r_name(name)}
    assert not marker.exists()

    script = result.provenance.script
    for line in script.splitlines():
        # outside comments and backquoted symbols, no line holds the payload
        code = SYMBOL.sub("SYMBOL", line).split("#")[0]
        assert "system(" not in code and "touch" not in code, line
    run_rscript(script, tmp_path)
    assert not marker.exists()


def test_reference_levels_and_paths_are_r_string_literals(lme4_backend, marker: Path,
                                                         tmp_path: Path) -> None:
    touch = f"system('touch {marker}')"
    spec = parse_spec({"id": "attack", "title": "t", "source": "s", "dataset": "gcse",
                       "columns": {"g": "factor"},
                       "model": {"formula": "gcse ~ lrt + g", "method": "OLS",
                                 "reference_level": {"g": f'b"); {touch}; ("'}}})
    level = spec.model.reference_level["g"]
    data = DATA.assign(g=["a", level, "c"] * 4)
    # a path cannot hold the marker's absolute path: it touches PWNED in Rscript's folder
    folder = tmp_path / 'data"); system(\'touch PWNED\'); ("'
    folder.mkdir()
    csv = folder / "data.csv"
    data.to_csv(csv, index=False)
    result = lme4_backend.fit(FitJob(spec=spec, model=spec.model, data=data, data_path=csv))
    assert result.status == "ok", result.message
    terms = {p.term for p in result.parameters if p.effect == "fixed"}
    assert terms == {"(Intercept)", "lrt", "ga", "gc"}  # the odd level is the reference
    plan = translate.plan(spec, spec.model)
    script = rscript.render_script(spec, spec.model, plan, csv)
    run_rscript(script, tmp_path)
    assert not marker.exists()
