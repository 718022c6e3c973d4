"""Lexical search of Chinese, Japanese and Korean text: the cut ``cjk`` (characters and bigrams of
each run, compounds around them kept whole), stored with the index; an index without a stored cut
keeps the old one (``words``). The Chinese documents are pages of the tuning set
(``tests/fixtures/zh_tune/``, Debian's manpages-zh)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bertsearch.cli.main import cli
from bertsearch.indexer import Index, Settings
from bertsearch.indexer.lexical import POINTER_FILE, LexicalIndex
from bertsearch.indexer.terms import DEFAULT_CUT, LEGACY_CUT, lexical_terms, query_terms

TUNE = Path(__file__).resolve().parent / "fixtures" / "zh_tune"
PAGES = ["gzip.1", "userdel.8", "ping.8", "shutdown.8", "nohup.1", "mkdir.1", "ln.1", "head.1"]
# Questions of zh_tune_questions.json over those pages, none a sentence of its page.
QUESTIONS = {
    "删除用户账号时怎样连他的主目录和邮箱一起删掉？": "userdel.8",
    "已经安排好的关机计划怎么取消？": "shutdown.8",
    "忽略挂起信号运行命令时，输出默认追加到哪个文件？": "nohup.1",
    "新建目录时上级目录不存在也一并创建，用什么选项？": "mkdir.1",
    "怎样创建符号链接而不是硬链接？": "ln.1",
}


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    root = tmp_path / "pages"
    root.mkdir()
    for page in PAGES:
        shutil.copy(TUNE / "man" / f"{page}.txt", root / f"{page}.txt")
    return root


@pytest.fixture
def make_settings(tmp_path: Path, tiny_bert_path: str):
    return lambda: Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)


def _top_path(index: Index, query: str) -> str | None:
    hits = index.search_lexical(query, 1)
    return index.fetch_chunks([hits[0][0]])[0].path if hits else None


def _store_no_cut(index_dir: Path) -> None:
    """Make the index look built before the cut was stored: no cut in SQL, none in the lexical build."""
    with sqlite3.connect(index_dir / "meta.db") as conn:
        conn.execute("UPDATE index_state SET lexical_cut = NULL")
    (index_dir / POINTER_FILE).unlink()


def test_a_chinese_question_finds_its_page_lexically(make_settings, pages: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(pages)
        assert index.info()["lexical_cut"] == DEFAULT_CUT == "cjk"
        for question, page in QUESTIONS.items():
            assert _top_path(index, question) == f"{page}.txt", question


def test_the_old_cut_misses_what_the_new_one_finds(pages: Path) -> None:
    chunks = list(enumerate((p.read_text(encoding="utf-8") for p in sorted(pages.iterdir())), start=1))
    old, new = (LexicalIndex.build(1, chunks, cut=cut) for cut in (LEGACY_CUT, DEFAULT_CUT))
    question = "怎样创建符号链接而不是硬链接？"
    assert old.search(question, 5) == []  # the question's one run of Han is in no page
    assert new.search(question, 1)[0][0] == sorted(p.name for p in pages.iterdir()).index("ln.1.txt") + 1


def test_a_query_is_cut_as_the_documents_are() -> None:
    line = "如果标准输出定向至终端，则在可能的情况下将输出附加在 'nohup.out' 文件后"
    for cut in (LEGACY_CUT, DEFAULT_CUT):
        index = LexicalIndex.build(1, [(1, line)], cut=cut)
        assert index.cut == cut
        assert index.query_terms(line) == list(dict.fromkeys(index._analyzer.analyze(" ".join(lexical_terms(line, cut)))))[:64]
        assert index.search(line, 1)[0][0] == 1
    assert query_terms(line, DEFAULT_CUT)[:4] == ["如", "如果", "果", "果标"]
    assert "如果标准输出定向至终端" in query_terms(line, LEGACY_CUT)


def test_technical_terms_in_chinese_text_stay_whole() -> None:
    text = "编辑/etc/apt/sources.list文件，然后运行 apt-get --purge remove；参见 APT::Get::Purge 和 sshd_config。"
    terms = lexical_terms(text, cut=DEFAULT_CUT)
    for whole in ("/etc/apt/sources.list", "apt-get", "--purge", "apt::get::purge", "sshd_config"):
        assert whole in terms, whole
    assert {"编辑", "文件", "然后", "运行", "参见"} <= set(terms)
    assert "编辑/etc/apt/sources.list文件" not in terms
    # The old cut glued the Han to the path around it, and split APT::Get.
    assert "编辑/etc/apt/sources.list文件" in lexical_terms(text, cut=LEGACY_CUT)
    assert "apt::get::purge" not in lexical_terms(text, cut=LEGACY_CUT)
    # Text without Chinese, Japanese or Korean is cut as before (but for "::").
    english = "Set PermitRootLogin in /etc/ssh/sshd_config, then run --rebuild on localhost:8080"
    assert lexical_terms(english, cut=DEFAULT_CUT) == lexical_terms(english, cut=LEGACY_CUT)


def test_japanese_and_korean_text_give_terms_and_are_found() -> None:
    docs = {1: "設定ファイルを開いてから、サーバーを再起動してください。",
            2: "설정 파일을 연 다음 서버를 다시 시작하십시오.",
            3: "Open the settings file, then restart the server."}
    assert {"設定", "ファ", "ァイ", "イル", "再起", "起動"} <= set(lexical_terms(docs[1], cut=DEFAULT_CUT))
    assert {"설정", "파일", "서버", "시작"} <= set(lexical_terms(docs[2], cut=DEFAULT_CUT))
    index = LexicalIndex.build(1, docs.items(), cut=DEFAULT_CUT)
    assert index.search("ファイルの設定", 1)[0][0] == 1
    assert index.search("서버 다시 시작", 1)[0][0] == 2
    assert index.search("settings file", 1)[0][0] == 3
    assert LexicalIndex.build(1, docs.items(), cut=LEGACY_CUT).search("ファイルの設定", 1) == []


def test_an_unknown_cut_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown lexical cut"):
        lexical_terms("text", cut="jieba")


def test_an_index_without_a_stored_cut_keeps_the_old_one(make_settings, pages: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(pages)
    _store_no_cut(make_settings().index_dir)
    with Index.open(make_settings()) as index:  # the lexical index is rebuilt from SQL with the old cut
        assert index.info()["lexical_cut"] == LEGACY_CUT
        assert LexicalIndex.load(index.index_dir).cut == LEGACY_CUT
        assert index.search_lexical("怎样创建符号链接而不是硬链接？", 5) == []  # as before: one run, one term
        assert _top_path(index, "创建符号链接而非硬链接") == "ln.1.txt"  # a run as it is written
        (pages / "mkdir.1.txt").write_text("mkdir 创建目录", encoding="utf-8")
        index.update(pages)  # incremental commits keep the build's cut
    with Index.open(make_settings()) as index:
        assert index.last_repair is None and LexicalIndex.load(index.index_dir).cut == LEGACY_CUT
        assert _top_path(index, "创建目录") == "mkdir.1.txt"


def test_a_rebuild_takes_the_new_cut(make_settings, pages: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(pages)
    _store_no_cut(make_settings().index_dir)
    with Index.open(make_settings(), rebuild=True) as index:
        index.update(pages)
        assert index.info()["lexical_cut"] == DEFAULT_CUT
        assert _top_path(index, "怎样创建符号链接而不是硬链接？") == "ln.1.txt"


def test_a_lexical_build_cut_another_way_is_rebuilt(make_settings, pages: Path) -> None:
    with Index.open(make_settings(), create=True) as index:
        index.update(pages)
        generation, index_id = index.generation, index.snapshot.params.index_id
    index_dir = make_settings().index_dir
    with sqlite3.connect(index_dir / "meta.db") as conn:
        chunks = conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    LexicalIndex.rebuild_on_disk(index_dir, generation, chunks, index_id, cut=LEGACY_CUT)  # all else right
    with Index.open(make_settings()) as index:
        assert index.last_repair is not None and "cut 'words', not 'cjk'" in index.last_repair
        assert LexicalIndex.load(index.index_dir).cut == DEFAULT_CUT


def test_info_shows_the_cut(tmp_path: Path, pages: Path, tiny_bert_path: str) -> None:
    where = ["--index", str(tmp_path / "idx")]
    assert CliRunner().invoke(cli, ["index", str(pages), "--quiet", "--model", tiny_bert_path, *where]).exit_code == 0
    result = CliRunner().invoke(cli, ["info", "--json", *where])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["lexical_cut"] == "cjk"
    result = CliRunner().invoke(cli, ["info", *where])
    assert "lexical cut" in result.output and "cjk" in result.output
