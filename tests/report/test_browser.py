"""The report in a real browser: headless Chromium loads it from disk and we check the DOM.

Skipped when chromium or chromedriver is absent (CI installs both through scripts/bootstrap.sh).
Screenshots at a laptop and a phone width go to $MLM_HARNESS_SCREENSHOTS (default: the test's
tmp folder) so a person can look at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.report.browser import find_browser, full_page_screenshot, set_viewport

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def driver(request: pytest.FixtureRequest):
    browser, chromedriver = find_browser()
    if not browser or not chromedriver:
        message = "headless Chromium not installed (apt-get install chromium chromium-driver)"
        if "browser" in request.config.getoption("--require-backend"):
            pytest.fail(message)  # CI requires the browser test: it must not skip silently
        pytest.skip(message)
    pytest.importorskip("selenium")
    from tests.report.browser import chromium

    with chromium() as d:
        yield d


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("MLM_HARNESS_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rows(d):  # noqa: ANN001, ANN202
    from selenium.webdriver.common.by import By

    return d.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")


def test_index_matrix_totals_and_filters(driver, report_dir: Path, shots: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get((report_dir / "index.html").as_uri())
    set_viewport(driver, 1366, 900)
    assert driver.find_element(By.ID, "totals").is_displayed()
    rows = _rows(driver)
    assert len(rows) == 3
    statuses = {r.get_attribute("data-status") for r in rows}
    assert statuses == {"agree", "unexplained", "explained"}
    assert driver.find_element(By.CSS_SELECTOR, ".total-unexplained b").text == "3"
    refs = driver.find_elements(By.CSS_SELECTOR, "td.refs .ref .explain")
    assert refs and all(r.text.strip() for r in refs)  # where each reference was printed
    full_page_screenshot(driver, shots / "index-laptop.png", 1366)
    full_page_screenshot(driver, shots / "index-phone.png", 390, mobile=True)
    set_viewport(driver, 1366, 900)

    Select(driver.find_element(By.ID, "f-status")).select_by_visible_text("unexplained")
    visible = [r for r in _rows(driver) if r.is_displayed()]
    assert [r.get_attribute("data-status") for r in visible] == ["unexplained"]
    assert "1 of 3" in driver.find_element(By.ID, "f-count").text
    Select(driver.find_element(By.ID, "f-status")).select_by_visible_text("all")
    Select(driver.find_element(By.ID, "f-family")).select_by_visible_text("binomial")
    assert [r.get_attribute("data-family") for r in _rows(driver) if r.is_displayed()] == \
        ["binomial"]
    Select(driver.find_element(By.ID, "f-family")).select_by_visible_text("all")
    box = driver.find_element(By.ID, "f-text")
    box.send_keys("reml")
    assert len([r for r in _rows(driver) if r.is_displayed()]) == 1
    box.clear()


def test_every_link_opens_an_existing_page(driver, report_dir: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    seen, todo = set(), [(report_dir / "index.html").as_uri()]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        driver.get(url)
        assert "ERR_FILE_NOT_FOUND" not in driver.page_source
        for a in driver.find_elements(By.CSS_SELECTOR, "a[href]"):
            href = a.get_attribute("href").split("#")[0]
            assert href.startswith("file://"), href  # nothing off-machine
            path = Path(href.removeprefix("file://"))
            assert path.exists(), f"{url}: {href}"
            if path.suffix == ".html":
                todo.append(href)
    assert len(seen) == 5  # index, policy and three spec pages


def test_spec_page_dom(driver, report_dir: Path, shots: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.get((report_dir / "specs" / "gcse.ri_reml.html").as_uri())
    set_viewport(driver, 1366, 900)
    assert driver.find_element(By.ID, "spec-status").text == "unexplained"
    rows = driver.find_elements(By.CSS_SELECTOR, "#params tbody tr")
    by_key = {r.get_attribute("data-key"): r for r in rows}
    assert "unexplained" in by_key["ran_pars/school/var__(Intercept)"].get_attribute("class")
    assert "explained" in by_key["fixed/lrt"].get_attribute("class").split() or \
        "agree" in by_key["fixed/lrt"].get_attribute("class")
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.plot")) == 4  # + coefficient plot
    # the report leads with the likely causes of the unexplained cells
    causes = driver.find_element(By.ID, "causes")
    assert causes.is_displayed() and causes.find_elements(By.CSS_SELECTOR, "li.cause")
    assert causes.location["y"] < driver.find_element(By.ID, "model").location["y"]
    # the side-by-side table and the coefficient plot across engines are on the page
    sbs = driver.find_elements(By.CSS_SELECTOR, "#sbs table.side-by-side tbody tr")
    assert len(sbs) > 6 and any("Num.Obs." in r.text for r in sbs)
    assert driver.find_element(By.CSS_SELECTOR, "figure.coefplot svg").is_displayed()
    # each explained row says why once, below it, with its evidence
    why = driver.find_elements(By.CSS_SELECTOR, "tr.why-row .why")
    assert why and all(w.find_elements(By.CSS_SELECTOR, "table.evidence tbody tr") for w in why)
    assert driver.find_elements(By.CSS_SELECTOR, "#fitstats tbody tr")
    button = driver.find_element(By.CSS_SELECTOR, "button.copy")
    button.click()
    # the clipboard write is a promise: wait for the button to report the outcome
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 5, poll_frequency=0.05).until(
        lambda d: button.text in ("Copied", "Selected: press Ctrl+C"))
    full_page_screenshot(driver, shots / "spec-laptop.png", 1366)
    full_page_screenshot(driver, shots / "spec-phone.png", 390, mobile=True)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 392  # nothing but the tables' own scroll boxes is wider than a phone
