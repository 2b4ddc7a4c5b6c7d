"""Spec validation: good specs load, and every kind of mistake names the file and key path."""

import textwrap
from pathlib import Path

import pytest

from harness.spec import SpecError, load_spec, load_specs, parse_spec

GOOD = {
    "id": "t.gcse.ri",
    "title": "GCSE random intercept",
    "source": "lab 1 ex 1.1",
    "dataset": "gcse",
    "derive": [{"name": "sch_2", "expr": "schgend == 2"}],
    "model": {"formula": "gcse ~ lrt + sch_2 + (1 | school)", "method": "REML"},
}


def spec_with(**changes):
    d = {**GOOD, **changes}
    return parse_spec(d, "t.yaml")


def test_good_spec_loads_with_defaults():
    s = spec_with()
    assert s.model.family == "gaussian" and s.model.resolved_link == "identity"
    assert s.model.parsed.grouping_factors == ["school"]


def test_backend_override_applies_only_to_that_backend():
    s = spec_with(backends={"lme4": {"method": "ML"}})
    assert s.model_for("lme4").method == "ML"
    assert s.model_for("native").method == "REML"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_typo_in_key_names_file_and_key_path(tmp_path):
    p = write(tmp_path, """\
        id: x
        title: t
        source: s
        dataset: gcse
        model:
          formula: "gcse ~ lrt + (1 | school)"
          methd: ML
        """)
    with pytest.raises(SpecError) as e:
        load_spec(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "unknown key 'model.methd'" in msg
    assert "missing required key 'model.method'" in msg


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(SpecError, match=r"key 'model.integration.points'"):
        spec_with(model={"formula": "y ~ x + (1 | g)", "family": "binomial", "method": "ML",
                         "integration": {"method": "aghq", "points": "seven"}})


def test_missing_top_level_field():
    d = dict(GOOD)
    del d["dataset"]
    with pytest.raises(SpecError, match="missing required key 'dataset'"):
        parse_spec(d, "t.yaml")


@pytest.mark.parametrize("model, fragment", [
    ({"formula": "y ~ x + (1 | g)", "family": "binomial", "method": "ML"},
     "must state its integration"),
    ({"formula": "y ~ x + (1 | g)", "family": "binomial", "method": "REML",
      "integration": {"method": "laplace"}}, "fitted by ML"),
    ({"formula": "y ~ x", "method": "REML"}, "OLS or ML, not REML"),
    ({"formula": "y ~ x + (1 | g)", "method": "OLS"}, "ML or REML, not OLS"),
    ({"formula": "y ~ x + (1 | g)", "family": "poisson", "link": "logit", "method": "ML",
      "integration": {"method": "laplace"}}, "link 'logit' is not available"),
    ({"formula": "y ~ x + (1 | g)", "family": "binomial", "method": "ML",
      "integration": {"method": "laplace", "points": 7}}, "laplace uses exactly 1 point"),
    ({"formula": "y ~ x + (1 + log(x) | g)", "method": "ML"}, "not a plain variable name"),
])
def test_inconsistent_models_are_rejected_with_reason(model, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(")):
        spec_with(model=model)


def test_derived_needs_exactly_one_operation():
    with pytest.raises(SpecError, match="needs exactly one of"):
        spec_with(derive=[{"name": "z", "expr": "x + 1", "group_mean": "x", "by": "g"}])
    with pytest.raises(SpecError, match="needs 'by"):
        spec_with(derive=[{"name": "z", "group_mean": "x"}])


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(write(tmp_path, "id: [unclosed\n"))
    with pytest.raises(SpecError, match="YAML mapping"):
        load_spec(write(tmp_path, "- a\n- b\n"))


def test_duplicate_ids_across_files_and_all_errors_reported(tmp_path):
    import yaml
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**GOOD, "id": "c", "dataset": 3}))
    with pytest.raises(SpecError) as e:
        load_specs([tmp_path])
    assert "already used" in str(e.value) and "c.yaml" in str(e.value)


def test_repository_specs_all_validate():
    root = Path(__file__).resolve().parents[1] / "specs"
    specs = load_specs([root])
    assert specs, "the repository ships specs"
