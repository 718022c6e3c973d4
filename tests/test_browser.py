"""The search page in a real browser: Debian's headless Chromium driven by selenium against a real
`bertsearch serve` (the packaged encoder and the shipped QA head) on the sample folder, with two
Chinese documents beside it; an English browser and one that prefers Chinese. The page's strings
and its language choice are checked here too, without a browser.

Screenshots go to ``$BERTSEARCH_ARTIFACTS`` (default ``artifacts/`` in the repository).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import serve
from bertsearch.indexer.common.settings import Settings
from bertsearch.cli.api.routes.web import WEB, page_language, render_page, strings
from bertsearch.indexer.index import Index

slow = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ZH_MAN = REPO / "tests" / "fixtures" / "zh_tune" / "man" / "cat.1.txt"
# Astral characters (an emoji, a CJK Extension B ideograph: two UTF-16 units each) before the answer.
ZH_PORT = "# 端口\n\n备注 😀𠀀：数据库服务默认监听端口 5432，可以在配置文件中修改。\n"
ZH_QUESTION = "数据库服务默认监听哪个端口？"
ARTIFACTS = Path(os.environ.get("BERTSEARCH_ARTIFACTS", REPO / "artifacts"))
HOSTILE = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"> Tarpaulin notes."
KEY = "browser-key-0123456789abcdef"


def _chrome(languages: str):
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
    options.add_argument(f"--lang={languages.split(',')[0]}")
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})  # the header and navigator.languages
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("browser")
    docs = work / "docs"
    shutil.copytree(REPO / "samples" / "docs", docs)
    (docs / "hostile.md").write_text(f"# Hostile\n\n{HOSTILE}\n")
    (docs / "zh").mkdir()
    shutil.copy(ZH_MAN, docs / "zh" / ZH_MAN.name)
    (docs / "zh" / "port.md").write_text(ZH_PORT, encoding="utf-8")
    with Index.open(Settings(index_dir=work / "idx"), create=True) as index:
        index.update(docs)
    serving = serve(work / "idx", None, work / "log.txt", env={"BERTSEARCH_API_KEYS": KEY})
    url = next(serving)
    try:
        yield url
    finally:
        serving.close()


def _driven(languages: str):
    driver = _chrome(languages)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser(site: str):
    yield from _driven("en-US,en")


@pytest.fixture(scope="module")
def zh_browser(site: str):
    yield from _driven("zh-CN,zh")


def _ask(browser, site: str, question: str, page: str = "/") -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(site + page)
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
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") in ("done", "error"))
    except TimeoutException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "timeout.png"))
        pytest.fail(f"no answer on the page: status {browser.find_element(By.ID, 'status').text!r}, "
                    f"console {browser.get_log('browser')}")


@slow
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


@slow
def test_a_question_without_an_answer_says_so_and_shows_passages(browser, site: str) -> None:
    from selenium.webdriver.common.by import By

    _ask(browser, site, "Who painted the ceiling of the Sistine Chapel?")
    assert browser.find_element(By.ID, "no-answer").is_displayed()
    assert "No answer found" in browser.find_element(By.ID, "no-answer").text
    assert not browser.find_elements(By.CSS_SELECTOR, "#answer-list li")
    assert browser.find_elements(By.CSS_SELECTOR, "#passage-list li")
    browser.save_screenshot(str(ARTIFACTS / "no-answer.png"))


@slow
def test_document_text_is_shown_as_text_never_run(browser, site: str) -> None:
    from selenium.webdriver.common.by import By

    _ask(browser, site, "What do the tarpaulin notes say?")
    texts = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, "#passage-list .context"))
    assert "<script>window.pwned = 1</script>" in texts
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, "#passage-list script, #passage-list img")


@slow
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


@slow
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


def test_every_string_exists_in_both_languages() -> None:
    table = strings()
    assert set(table) == {"en", "zh"}
    assert set(table["en"]) == set(table["zh"])
    for key, text in table["en"].items():
        assert text.strip() and table["zh"][key].strip(), key
        # The same {values} are filled into both.
        assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", table["zh"][key])), key


def test_the_page_and_its_script_use_only_strings_of_the_table() -> None:
    keys = set(strings()["en"])
    assert set(re.findall(r"\{\{(\w+)\}\}", (WEB / "index.html").read_text())) <= keys | {"home", "strings"}
    used = set(re.findall(r"""\bt\("(\w+)\"""", (WEB / "app.js").read_text()))
    assert used and used <= keys, used - keys
    for language in ("en", "zh"):
        page = render_page(language)
        assert "{{" not in page and f'<html lang="{strings()[language]["html_lang"]}">' in page
        data = re.search(r'<script id="strings" type="application/json">(.*?)</script>', page).group(1)
        assert json.loads(data) == strings()[language]


@pytest.mark.parametrize(("override", "header", "language"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "zh-Hans", "zh"),
    (None, "zh-SG", "zh"),
    (None, "zh-TW", "zh"),  # Traditional Chinese readers get the Simplified strings, not English
    (None, "en-US,en;q=0.9,zh;q=0.8", "en"),
    (None, "fr, zh;q=0.8, en;q=0.5", "zh"),  # the first supported language by quality
    (None, "en;q=0.2, zh;q=0.9", "zh"),
    (None, "zh;q=0, en", "en"),  # q=0 refuses
    (None, "de, *;q=0.5", "en"),
    (None, None, "en"),
    (None, "zh-CN;q=oops, en", "en"),  # a malformed quality drops its tag
    ("en", "zh-CN", "en"),
    ("zh", "en-US", "zh"),
    ("zh-CN", None, "zh"),
    ("xx", "zh-CN", "zh"),  # an unknown override is ignored
])
def test_the_page_language_follows_lang_then_accept_language(override, header, language) -> None:
    assert page_language(override, header) == language


def _labels(driver) -> dict[str, str]:
    return driver.execute_script("""
        const text = (selector) => document.querySelector(selector).textContent.trim();
        return {lang: document.documentElement.lang, question_label: text("label[for=question]"),
                ask: text("#ask-form button"), where_label: text("label[for=where]"),
                mode_lexical: text("#mode option[value=lexical]"), answers: text("#answers-title"),
                question_placeholder: document.getElementById("question").placeholder,
                home: document.querySelector(".bar h1 a").getAttribute("href")};""")


@slow
def test_the_page_speaks_the_browsers_language_unless_lang_says_otherwise(browser, zh_browser, site: str) -> None:
    assert zh_browser.execute_script("return navigator.languages")[0] == "zh-CN"
    for driver, page, language, home in [(zh_browser, "/", "zh", "/"), (browser, "/", "en", "/"),
                                         (zh_browser, "/?lang=en", "en", "/?lang=en"),
                                         (browser, "/?lang=zh", "zh", "/?lang=zh")]:
        driver.get(site + page)
        table = strings()[language]
        expected = {key: table[key] for key in ("question_label", "ask", "where_label", "mode_lexical", "answers",
                                                "question_placeholder")}
        assert _labels(driver) == {"lang": table["html_lang"], "home": home, **expected}, (page, language)
    assert strings()["zh"]["html_lang"] == "zh-CN" and strings()["zh"]["ask"] == "提问"


@slow
def test_a_chinese_answer_is_highlighted_exactly_after_astral_characters(zh_browser, site: str) -> None:
    from axe_selenium_python import Axe
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _ask(zh_browser, site, ZH_QUESTION)
    status = zh_browser.find_element(By.ID, "status").text
    assert status.startswith("已回答"), status
    shown = zh_browser.execute_script("""
        const text = (li, selector) => li.querySelector(selector).textContent;
        return {answers: [...document.querySelectorAll("#answer-list li")].map((li) => ({
                    text: text(li, ".answer-text"), mark: text(li, ".context mark"), context: text(li, ".context"),
                    confidence: text(li, ".confidence"), source: text(li, ".source")})),
                passages: [...document.querySelectorAll("#passage-list li")].map((li) => ({
                    context: text(li, ".context"), source: text(li, ".source")}))};""")
    first = shown["answers"][0]
    assert first["text"] == "5432" and "port.md" in first["source"] and first["confidence"].startswith("置信度")
    assert "😀𠀀：数据库服务默认监听端口 5432" in first["context"]
    for answer in shown["answers"]:  # the highlight is the answer, character for character
        assert answer["mark"] == answer["text"], answer
    # Passages show the documents' text as it is: no mojibake, no character cut in half.
    sources = {"port.md": ZH_PORT, ZH_MAN.name: ZH_MAN.read_text(encoding="utf-8")}
    chinese = [p for p in shown["passages"] if "zh/" in p["source"]]
    assert chinese and any("😀𠀀" in p["context"] for p in chinese)
    for passage in chinese:
        name = next(n for n in sources if n in passage["source"])
        assert passage["context"] in sources[name] and "\ufffd" not in passage["context"], passage
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    zh_browser.save_screenshot(str(ARTIFACTS / "search-page-zh.png"))
    axe = Axe(zh_browser)
    axe.inject()
    results = axe.run()
    assert results["violations"] == [], axe.report(results["violations"])

    # The document view converts the API's offsets (code points) to the page's (UTF-16 units) too.
    zh_browser.find_element(By.CSS_SELECTOR, "#answer-list li .source a").click()
    mark = WebDriverWait(zh_browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#document-text mark"))
    assert mark.get_attribute("textContent") == "5432"
    assert zh_browser.find_element(By.ID, "document-text").get_attribute("textContent") == ZH_PORT
    assert zh_browser.find_element(By.ID, "document-meta").text == f"zh/port.md · 共 {len(ZH_PORT)} 个字符"
    assert zh_browser.find_element(By.ID, "back").text == "返回搜索"
