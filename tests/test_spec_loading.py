"""Loading specs other people wrote: bounded YAML, id collisions, and no input that crashes.

The property tests feed the loader random documents (arbitrary text, arbitrary YAML data, and
valid specs with one value replaced by anything) and require that each one either loads or
raises SpecError naming the file: never another exception, which the CLI would show as a
traceback.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import safeyaml
from harness.cli import main
from harness.spec import SpecError, load_spec, load_specs

GOOD = {
    "id": "t.gcse.ri", "title": "GCSE random intercept", "source": "test", "dataset": "gcse",
    "derive": [{"name": "sch_2", "expr": "schgend == 2"}],
    "model": {"formula": "gcse ~ lrt + sch_2 + (1 | school)", "method": "REML"},
    "references": [{"id": "r", "software": "Stata", "source": "s",
                    "values": {"fixed/lrt": "0.56"}}],
}

BOMB = """\
id: bomb
title: t
source: s
dataset: gcse
model: {formula: "gcse ~ lrt + (1 | school)", method: ML}
backends:
  native:
    options:
      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
      b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
      c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
      d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
      e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
      f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
      g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
      h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
      i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def test_the_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    p = write(tmp_path, "bomb.yaml", BOMB)
    assert len(BOMB.encode()) < 800  # 9**9 = 387 million nodes once expanded
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert str(p) in str(e.value) and "200,000 YAML nodes" in str(e.value)


def test_the_alias_bomb_is_exit_2_from_run(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    p = write(tmp_path, "bomb.yaml", BOMB)
    assert main(["run", str(p), "--backends", "native", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and "aliases are expanded" in err
    assert not (tmp_path / "o").exists()


def test_many_aliases_recursive_aliases_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (safeyaml.MAX_ALIASES + 1)) + "]\n"
    recursive = "a: &a [1, *a]\n"
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    for name, text, words in (("many", many, f"more than {safeyaml.MAX_ALIASES} YAML aliases"),
                              ("recursive", recursive, "refers to itself"),
                              ("deep", deep, "nested too deeply")):
        p = write(tmp_path, f"{name}.yaml", text)
        with pytest.raises(SpecError, match=words) as e:
            load_spec(p)
        assert str(p) in str(e.value)


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    text = yaml.safe_dump(GOOD, sort_keys=False) + "tags: &t [x]\nextra: *t\n"
    p = write(tmp_path, "s.yaml", text)
    with pytest.raises(SpecError, match="unknown key 'extra'"):  # parsed fine, key unknown
        load_spec(p)


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    p = write(tmp_path, "big.yaml", "# " + "x" * safeyaml.MAX_BYTES + "\n")
    with pytest.raises(SpecError, match="larger than the 1024 KiB limit") as e:
        load_spec(p)
    assert str(p) in str(e.value)


def test_bad_values_and_encodings_name_the_file(tmp_path: Path) -> None:
    cases = {"date.yaml": "id: 2021-02-30\n", "latin1.yaml": None, "two.yaml": "a: 1\n---\nb: 2\n"}
    for name, text in cases.items():
        p = tmp_path / name
        if text is None:
            p.write_bytes("title: caf\xe9\n".encode("latin-1"))
        else:
            p.write_text(text)
        with pytest.raises(SpecError) as e:
            load_spec(p)
        assert str(e.value).startswith(str(p))


@pytest.mark.parametrize("a,b", [("a/b", "a_b"), ("x.Y", "x.y"), ("p/q", "p__q")])
def test_ids_that_write_the_same_file_are_an_error_naming_both(tmp_path: Path, a: str,
                                                               b: str) -> None:
    pa = write(tmp_path, "one.yaml", yaml.safe_dump({**GOOD, "id": a}))
    pb = write(tmp_path, "two.yaml", yaml.safe_dump({**GOOD, "id": b}))
    with pytest.raises(SpecError) as e:
        load_specs([tmp_path])
    msg = str(e.value)
    assert str(pa) in msg and str(pb) in msg and "would write the same" in msg
    assert "rename one of them" in msg


def test_the_same_id_twice_is_still_reported_as_such(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", yaml.safe_dump(GOOD))
    write(tmp_path, "two.yaml", yaml.safe_dump(GOOD))
    with pytest.raises(SpecError, match="is already used by"):
        load_specs([tmp_path])


def test_the_course_specs_have_no_colliding_ids() -> None:
    assert len(load_specs([Path(__file__).resolve().parents[1] / "specs"])) > 100


# ---- property tests: nothing crashes ------------------------------------------------------------

def _loads_or_spec_error(path: Path) -> None:
    try:
        load_spec(path)
    except SpecError as e:
        assert str(e).startswith(str(path)), str(e)


_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["ML", "REML", "gaussian", "binomial",
                                                           "y ~ x + (1 | g)", "(1 | g)", "~",
                                                           "fixed/x", "laplace", "aghq"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


@_SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_loads_or_is_a_spec_error_naming_the_file(tmp_path: Path, text: str) -> None:
    p = tmp_path / "random.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    _loads_or_spec_error(p)


@_SETTINGS
@given(doc=values)
def test_any_yaml_document_loads_or_is_a_spec_error(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "doc.yaml"
    p.write_text(yaml.safe_dump(doc))
    _loads_or_spec_error(p)


_PATHS = [("id",), ("title",), ("dataset",), ("derive",), ("derive", 0), ("derive", 0, "expr"),
          ("derive", 0, "name"), ("model",), ("model", "formula"), ("model", "method"),
          ("model", "family"), ("model", "integration"), ("references",),
          ("references", 0, "values"), ("references", 0, "values", "fixed/lrt"), ("columns",),
          ("subset",), ("replicate",), ("backends",), ("known_differences",), ("tolerances",),
          ("cross_checks",)]


@_SETTINGS
@given(where=st.sampled_from(_PATHS), value=values)
def test_a_valid_spec_with_any_value_anywhere_loads_or_is_a_spec_error(
        tmp_path: Path, where: tuple, value: object) -> None:
    import copy

    doc = copy.deepcopy(GOOD)
    target = doc
    for key in where[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    if isinstance(target, dict):
        target[where[-1]] = value
    p = tmp_path / "mutated.yaml"
    p.write_text(yaml.safe_dump(doc))
    _loads_or_spec_error(p)


@_SETTINGS
@given(formula=st.text(alphabet="yxg01 ~+-*/:|()._^", max_size=40))
def test_any_formula_text_loads_or_is_a_spec_error(tmp_path: Path, formula: str) -> None:
    p = tmp_path / "formula.yaml"
    p.write_text(yaml.safe_dump({**GOOD, "model": {**GOOD["model"], "formula": formula}}))
    _loads_or_spec_error(p)


def test_the_good_spec_itself_loads(tmp_path: Path) -> None:
    p = tmp_path / "good.yaml"
    p.write_text(textwrap.dedent(yaml.safe_dump(GOOD)))
    assert load_spec(p).id == "t.gcse.ri"
