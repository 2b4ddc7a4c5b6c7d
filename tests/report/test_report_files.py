"""The written report without a browser: summary.json contract, JUnit XML, pages, links."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

from harness.keys import ParamKey
from harness.report import model_in_words, parameter_label
from tests.report.fixtures import spec


def test_summary_json_keeps_its_contract(report_dir: Path) -> None:
    data = json.loads((report_dir / "summary.json").read_text())
    assert data["schema_version"] == 1
    for k in ("specs", "references", "checks", "agree", "explained", "unexplained", "pending",
              "errors", "unavailable", "not_estimable"):
        assert isinstance(data["totals"][k], int), k
    by_id = {s["id"]: s for s in data["specs"]}
    assert set(by_id) == {"gcse.ri_ml", "gcse.ri_reml", "gcse.bin_rs"}
    for s in data["specs"]:
        assert {"id", "status", "backends", "references", "unexplained"} <= set(s)
    assert by_id["gcse.ri_ml"]["status"] == "agree"
    assert by_id["gcse.bin_rs"]["backends"]["native"] == "not_estimable"
    assert by_id["gcse.bin_rs"]["references"]["stata7"] == "explained"
    assert by_id["gcse.bin_rs"]["explained"][0]["known_difference"] == "D2"


def test_perturbed_reference_is_unexplained_with_its_digits(report_dir: Path) -> None:
    data = json.loads((report_dir / "summary.json").read_text())
    reml = next(s for s in data["specs"] if s["id"] == "gcse.ri_reml")
    assert reml["status"] == "unexplained"
    assert reml["references"]["course-r"] == "unexplained"
    rows = [r for r in reml["unexplained"] if r["b"] == "ref:course-r"]
    assert {r["key"] for r in rows} == {"ran_pars/school/var__(Intercept)"}
    assert all(2.0 < r["digits"] < 3.0 and r["value_b"] == 8.13 for r in rows)
    page = (report_dir / "specs" / "gcse.ri_reml.html").read_text()
    assert 'id="unexplained"' in page and "they agree to 2.6 digits" in page


def test_junit_has_one_case_per_comparison_and_failures_carry_rows(report_dir: Path) -> None:
    root = ET.parse(report_dir / "junit.xml").getroot()
    cases = {(tc.get("classname"), tc.get("name")): tc for tc in root.iter("testcase")}
    assert ("gcse.ri_ml", "native vs lme4") in cases
    assert ("gcse.ri_ml", "native vs ref:stata") in cases
    assert ("gcse.ri_ml", "lme4 vs ref:stata") in cases
    failure = cases[("gcse.ri_reml", "native vs ref:course-r")].find("failure")
    assert failure is not None and "ran_pars/school/var__(Intercept)" in failure.text
    assert "8.13" in failure.text
    assert cases[("gcse.ri_reml", "native vs lme4")].find("failure") is None  # explained: D18
    assert cases[("gcse.bin_rs", "native fit")].find("skipped") is not None
    assert int(root.get("failures")) == 2


def test_every_link_resolves(report_dir: Path) -> None:
    pages = [report_dir / "index.html", report_dir / "policy.html",
             *(report_dir / "specs").glob("*.html")]
    assert len(pages) == 5
    for page in pages:
        html = page.read_text()
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in html and "<script src" not in html and "<link" not in html
        for href in re.findall(r'href="([^"#]+)', html):
            assert (page.parent / unquote(href)).exists(), f"{page.name}: {href}"


def test_spec_page_shows_code_plots_and_diagnostics(report_dir: Path) -> None:
    html = (report_dir / "specs" / "gcse.ri_reml.html").read_text()
    assert "lmer(gcse ~ lrt + girl + sch_2 + (1 | school)" in html  # lme4 script
    assert "lmm(&#39;gcse ~ lrt" in html  # native call, under the API snippet that makes it
    assert "import mlm_harness as mh" in html
    # the coefficient plot, 2 caterpillars and 1 scatter
    assert html.count('<svg class="plot"') == 4
    assert 'class="identity"' in html
    assert "native reaches a higher log-likelihood than lme4" in html
    assert "[D18]" in html


def test_model_in_words() -> None:
    s = spec("x", "y ~ lrt + (1 + lrt | school)", method="REML")
    words = model_in_words(s)
    assert "random intercept and slope of lrt for each school, correlated" in words
    assert "restricted maximum likelihood" in words
    s = spec("z", "y ~ 1 + (1 | school) + (0 + lrt | school)", family="binomial",
             integration={"method": "aghq", "points": 7})
    words = model_in_words(s)
    assert "intercept only" in words and "independent" in words
    assert "7-point adaptive Gauss-Hermite" in words


def test_parameter_labels() -> None:
    K = ParamKey.parse
    assert parameter_label(K("ran_pars/school/sd__(Intercept)")) == "sd of school intercepts"
    assert parameter_label(K("ran_pars/school/cor__(Intercept).lrt")) == \
        "correlation of school intercept and lrt"
    assert parameter_label(K("ran_pars/Residual/sd__Observation")) == "residual sd"
    assert parameter_label(K("stat/icc/wardid")).startswith("ICC at the wardid level")
