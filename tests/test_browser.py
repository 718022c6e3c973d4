"""The search page in a real browser: Debian's headless Chromium driven by selenium against a real
`bertsearch serve` (the packaged encoder and the shipped QA head) on the sample folder.

Screenshots go to ``$BERTSEARCH_ARTIFACTS`` (default ``artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import serve
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("BERTSEARCH_ARTIFACTS", REPO / "artifacts"))
HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> Tarpaulin notes."
KEY = "browser-key-0123456789abcdef"


def _chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium never fetches a driver or a browser
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000",
                 "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("browser")
    docs = work / "docs"
    shutil.copytree(REPO / "samples" / "docs", docs)
    (docs / "hostile.md").write_text(f"# Hostile\n\n{HOSTILE}\n")
    with Index.open(Settings(index_dir=work / "idx"), create=True) as index:
        index.update(docs)
    serving = serve(work / "idx", None, work / "log.txt", env={"BERTSEARCH_API_KEYS": KEY})
    url = next(serving)
    try:
        yield url
    finally:
        serving.close()


@pytest.fixture(scope="module")
def browser(site: str):
    driver = _chrome()
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _ask(browser, site: str, question: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/")
    box = browser.find_element(By.ID, "question")
    assert browser.switch_to.active_element == box  # the question box has the focus on arrival
    key_row = browser.find_element(By.ID, "key-row")
    if not key_row.is_displayed():  # first visit: the server asks for the key
        box.send_keys("warm up", Keys.ENTER)
        WebDriverWait(browser, 30).until(ec.visibility_of(key_row))
        browser.find_element(By.ID, "api-key").send_keys(KEY)
    box = browser.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question, Keys.ENTER)
    try:
        WebDriverWait(browser, 120).until(
            lambda d: d.find_element(By.ID, "status").text.startswith(("Answered", "Error")))
    except TimeoutException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "timeout.png"))
        pytest.fail(f"no answer on the page: status {browser.find_element(By.ID, 'status').text!r}, "
                    f"console {browser.get_log('browser')}")


def test_an_answer_appears_highlighted_with_its_source(browser, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _ask(browser, site, "How long are rotated logs kept?")
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("Answered"), status
    first = browser.find_element(By.CSS_SELECTOR, "#answer-list li")
    assert "14 days" in first.find_element(By.CSS_SELECTOR, ".answer-text").text
    assert "14 days" in first.find_element(By.CSS_SELECTOR, ".context mark").text
    assert "logging.md" in first.find_element(By.CSS_SELECTOR, ".source").text
    assert "Confidence" in first.find_element(By.CSS_SELECTOR, ".confidence").text
    assert browser.find_elements(By.CSS_SELECTOR, "#passage-list li")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "search-page.png"))

    # The source opens the document with the answer highlighted at its offsets.
    first.find_element(By.CSS_SELECTOR, ".source a").click()
    mark = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#document-text mark"))
    assert "14 days" in mark.text and browser.find_element(By.ID, "document-title").text
    browser.save_screenshot(str(ARTIFACTS / "document-page.png"))


def test_a_question_without_an_answer_says_so_and_shows_passages(browser, site: str) -> None:
    from selenium.webdriver.common.by import By

    _ask(browser, site, "Who painted the ceiling of the Sistine Chapel?")
    assert browser.find_element(By.ID, "no-answer").is_displayed()
    assert "No answer found" in browser.find_element(By.ID, "no-answer").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#answer-list li")
    assert browser.find_elements(By.CSS_SELECTOR, "#passage-list li")
    browser.save_screenshot(str(ARTIFACTS / "no-answer.png"))


def test_document_text_is_shown_as_text_never_run(browser, site: str) -> None:
    from selenium.webdriver.common.by import By

    _ask(browser, site, "What do the tarpaulin notes say?")
    texts = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "#passage-list .context"))
    assert "<script>window.pwned = 1</script>" in texts
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "#passage-list script, #passage-list img")


def test_the_page_passes_axe_accessibility_checks(browser, site: str) -> None:
    from axe_selenium_python import Axe

    _ask(browser, site, "How long are rotated logs kept?")
    for width in (1200, 380):  # a desktop and a phone
        browser.set_window_size(width, 1000)
        axe = Axe(browser)
        axe.inject()
        results = axe.run()
        assert results["violations"] == [], axe.report(results["violations"])
    browser.set_window_size(1200, 1000)


def test_api_docs_render_without_a_network(browser, site: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + "/docs")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    paths = {e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/search", "/ask"} <= {p.replace("\u200b", "") for p in paths}
    browser.get(site + "/redoc")
    WebDriverWait(browser, 60).until(lambda d: "/search" in d.find_element(By.TAG_NAME, "body").text)
    # Every script and style the pages load comes from this server.
    for page in ("/docs", "/redoc", "/"):
        browser.get(site + page)
        sources = browser.execute_script(
            "return [...document.querySelectorAll('script[src],link[href]')].map(e => e.src || e.href)")
        assert sources and all(s.startswith(site) for s in sources), sources
